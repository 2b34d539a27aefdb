"""Benchmark gis.datum against the usual pure-Python, per-point, one-step inverse.

Run with ``.venv/bin/python bench/bench_datum.py [--points N] [--peer-points M]``.

Both run in the same process on the same random points around Wenzhou: ours on all N
points (best of ``--repeat`` runs), the peer on the first M (its rate extrapolated, as a
per-point loop scales linearly). It also prints each one's worst error against the true
WGS84 points, since the peer is faster to write but metres off.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import numpy as np
from pyproj import Geod

from gis.datum import bd09_to_wgs84, gcj02_to_wgs84, wgs84_to_bd09, wgs84_to_gcj02

_A, _E2 = 6378245.0, 0.00669342162296594323
_BD_K = math.pi * 3000.0 / 180.0


def _shift(lon: float, lat: float) -> tuple[float, float]:
    """The public GCJ-02 shift, one point at a time, as most libraries write it."""
    x, y = lon - 105.0, lat - 35.0
    wave = (20.0 * math.sin(6.0 * math.pi * x) + 20.0 * math.sin(2.0 * math.pi * x)) * 2.0 / 3.0
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
            + wave
            + (20.0 * math.sin(math.pi * y) + 40.0 * math.sin(math.pi * y / 3.0)) * 2.0 / 3.0
            + (160.0 * math.sin(math.pi * y / 12.0)
               + 320.0 * math.sin(math.pi * y / 30.0)) * 2.0 / 3.0)
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
            + wave
            + (20.0 * math.sin(math.pi * x) + 40.0 * math.sin(math.pi * x / 3.0)) * 2.0 / 3.0
            + (150.0 * math.sin(math.pi * x / 12.0)
               + 300.0 * math.sin(math.pi * x / 30.0)) * 2.0 / 3.0)
    rad = math.radians(lat)
    magic = 1.0 - _E2 * math.sin(rad) ** 2
    root = math.sqrt(magic)
    dlat = dlat * 180.0 / (_A * (1.0 - _E2) / (magic * root) * math.pi)
    dlon = dlon * 180.0 / (_A / root * math.cos(rad) * math.pi)
    return dlon, dlat


def _peer_gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    if not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271):
        return lon, lat
    dlon, dlat = _shift(lon, lat)  # one step: the shift taken at the shifted point
    return lon - dlon, lat - dlat


def _peer_bd09_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    x, y = lon - 0.0065, lat - 0.006
    r = math.hypot(x, y) - 2e-5 * math.sin(y * _BD_K)
    theta = math.atan2(y, x) - 3e-6 * math.cos(x * _BD_K)
    return _peer_gcj02_to_wgs84(r * math.cos(theta), r * math.sin(theta))


def _best_time(func: Callable[[], object], repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def _max_error_m(lon: np.ndarray, lat: np.ndarray, lon0: np.ndarray, lat0: np.ndarray) -> float:
    _, _, dist = Geod(ellps="WGS84").inv(lon, lat, lon0, lat0)
    return float(np.max(dist))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--peer-points", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20240501)
    args = parser.parse_args()

    # Wenzhou municipality, roughly: the district and its neighbours.
    rng = np.random.default_rng(args.seed)
    lon0 = rng.uniform(119.6, 121.3, args.points)
    lat0 = rng.uniform(27.0, 28.6, args.points)
    sources = {"gcj02": wgs84_to_gcj02(lon0, lat0), "bd09": wgs84_to_bd09(lon0, lat0)}
    ours = {"gcj02": gcj02_to_wgs84, "bd09": bd09_to_wgs84}
    peers = {"gcj02": _peer_gcj02_to_wgs84, "bd09": _peer_bd09_to_wgs84}
    m = args.peer_points

    print(f"{args.points:,} points (peer: {m:,}, extrapolated), best of {args.repeat}")
    print(f"{'conversion':<16}{'ours pts/s':>14}{'peer pts/s':>14}{'ratio':>9}"
          f"{'ours max err':>15}{'peer max err':>15}")
    for name, (lon, lat) in sources.items():
        ours_s = _best_time(lambda f=ours[name], x=lon, y=lat: f(x, y), args.repeat)
        peer_in = list(zip(lon[:m].tolist(), lat[:m].tolist(), strict=True))

        def run_peer(f: Callable[[float, float], tuple[float, float]] = peers[name],
                     pts: list[tuple[float, float]] = peer_in) -> list[tuple[float, float]]:
            return [f(x, y) for x, y in pts]

        peer_s = _best_time(run_peer, 1)
        ours_rate, peer_rate = args.points / ours_s, m / peer_s
        ours_err = _max_error_m(*ours[name](lon, lat), lon0, lat0)
        peer_out = np.array(run_peer())
        peer_err = _max_error_m(peer_out[:, 0], peer_out[:, 1], lon0[:m], lat0[:m])
        print(f"{name + '->wgs84':<16}{ours_rate:>14,.0f}{peer_rate:>14,.0f}"
              f"{ours_rate / peer_rate:>8.1f}x{ours_err * 1000:>12.3f} mm{peer_err:>13.3f} m")


if __name__ == "__main__":
    main()
