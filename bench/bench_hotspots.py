"""Benchmark gis.hotspots: Gi* with FDR beside esda's G_Local, and kernel density of 1M points.

Run with ``.venv/bin/python bench/bench_hotspots.py [--cells 100000,1000000] [--repeat 3]``
(needs ``pip install -e '.[bench]'`` for esda and libpysal).

Gi*: hexagon cells on a lattice, Poisson counts with a few hot blobs, binary weights (the six
edge neighbours: contiguity, or the same pairs found by a fixed distance band). Ours is
``gi_star(values, W, fdr=True)`` (the diagonal, z, p, Benjamini-Hochberg and bins); the peer is
``esda.G_Local(values, Graph, transform="B", star=True, permutations=0)`` (z and one-sided p, no
FDR) on the same weights, handed over as a ``libpysal.graph.Graph`` built beforehand (its build
time is printed apart). Both in this process, one after the other; the z-scores are compared.

Kernel density: 1M points (clustered) to a 2,000 x 2,000 raster, quartic and Gaussian, with the
binned FFT method; accuracy against the exact sum on a smaller case.

Peak memory: ``tracemalloc`` peak of one extra, untimed call of each of ours (numpy and scipy
allocations are traced), and the process's maximum resident set size at the end.
"""

from __future__ import annotations

import argparse
import math
import resource
import time
import tracemalloc
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from gis.hotspots import distance_band, gi_star, hex_grid, kernel_density


def _load() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def _best(func: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = math.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        out = func()
        best = min(best, time.perf_counter() - start)
    return best, out


def _peak_mb(func: Callable[[], Any]) -> float:
    tracemalloc.start()
    try:
        func()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def _lattice(n_cells: int, seed: int) -> tuple[Any, np.ndarray]:
    """About ``n_cells`` unit hexagons in a 4:3 rectangle, with Poisson counts and hot blobs."""
    side = 1.0
    area = n_cells * 1.5 * math.sqrt(3) * side**2
    width, height = math.sqrt(area * 4 / 3), math.sqrt(area * 3 / 4)
    grid = hex_grid((0, 0, width, height), side)
    rng = np.random.default_rng(seed)
    x, y = grid.centres.T
    rate = np.full(len(grid), 2.0)
    for cx, cy, r in zip(rng.uniform(0, width, 40), rng.uniform(0, height, 40),
                         rng.uniform(5, 40, 40), strict=True):
        rate += 6 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))
    return grid, rng.poisson(rate).astype(float)


def bench_gi(n_cells: int, weights: str, repeat: int, esda_repeat: int, seed: int) -> dict[str, Any]:
    import esda
    from libpysal.graph import Graph

    grid, values = _lattice(n_cells, seed)
    start = time.perf_counter()
    w = grid.neighbours() if weights == "contiguity" else distance_band(grid.centres, math.sqrt(3) * 1.01)
    build = time.perf_counter() - start
    ours_s, ours = _best(lambda: gi_star(values, w, fdr=True), repeat)
    ours_mb = _peak_mb(lambda: gi_star(values, w, fdr=True))
    start = time.perf_counter()
    graph = Graph.from_sparse(w)
    graph_s = time.perf_counter() - start
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # esda's FutureWarnings are not the subject here
        esda_s, ref = _best(lambda: esda.G_Local(values, graph, transform="B", star=True,
                                                 permutations=0), esda_repeat)
    return {"cells": len(grid), "nnz": w.nnz, "weights": weights, "build_s": build, "ours_s": ours_s,
            "ours_mb": ours_mb, "graph_s": graph_s, "esda_s": esda_s,
            "max_dz": float(np.abs(ours.z - ref.Zs).max()), "hot": ours.n_hot, "cold": ours.n_cold}


def bench_kde(points: int, size: int, repeat: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    extent = (0.0, 0.0, 20_000.0, 20_000.0)
    centres = rng.uniform(2_000, 18_000, (50, 2))
    pick = rng.integers(0, 50, points // 2)
    pts = np.vstack([centres[pick] + rng.normal(0, 400, (len(pick), 2)),
                     rng.uniform(0, 20_000, (points - len(pick), 2))])
    cell = (extent[2] - extent[0]) / size
    out = []
    for kernel, h in (("quartic", 300.0), ("gaussian", 150.0)):
        kwargs = {"extent": extent, "cell_size": cell, "bandwidth": h, "kernel": kernel,
                  "method": "binned"}
        secs, grid = _best(lambda kw=kwargs: kernel_density(pts, **kw), repeat)
        mb = _peak_mb(lambda kw=kwargs: kernel_density(pts, **kw))
        # accuracy: the same bandwidth in cells, 20k points on a 250 x 250 corner of the raster
        sub = pts[(pts[:, 0] < 2_500) & (pts[:, 1] < 2_500)][:20_000]
        small = {**kwargs, "extent": (0.0, 0.0, 2_500.0, 2_500.0)}
        exact = kernel_density(sub, **{**small, "method": "exact"}).values
        binned = kernel_density(sub, **small).values
        err = float(np.abs(binned - exact).max() / exact.max())
        out.append({"kernel": kernel, "bandwidth": h, "shape": grid.shape, "points": points, "s": secs,
                    "mb": mb, "err": err, "err_points": len(sub), "err_shape": exact.shape,
                    "bandwidth_cells": h / cell})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="100000,1000000", help="comma-separated cell counts")
    parser.add_argument("--weights", default="contiguity,distance", help="contiguity and/or distance")
    parser.add_argument("--repeat", type=int, default=3, help="best of N for ours")
    parser.add_argument("--esda-repeat", type=int, default=1, help="best of N for esda")
    parser.add_argument("--kde-points", type=int, default=1_000_000)
    parser.add_argument("--kde-size", type=int, default=2000)
    parser.add_argument("--skip-kde", action="store_true")
    parser.add_argument("--seed", type=int, default=20261124)
    args = parser.parse_args()

    print(f"load average before: {_load()}")
    print("\nGi* with FDR (ours) vs esda G_Local(star=True, permutations=0), same binary weights")
    print(f"{'cells':>10}{'weights':>12}{'nnz':>11}{'ours s':>9}{'esda s':>9}{'ratio':>8}"
          f"{'ours MB':>9}{'max |dz|':>10}{'W build s':>11}{'Graph s':>9}{'hot/cold':>13}")
    rows = []
    for n in (int(v) for v in args.cells.split(",")):
        for kind in args.weights.split(","):
            r = bench_gi(n, kind.strip(), args.repeat, args.esda_repeat, args.seed)
            rows.append(r)
            print(f"{r['cells']:>10,}{r['weights']:>12}{r['nnz']:>11,}{r['ours_s']:>9.3f}"
                  f"{r['esda_s']:>9.3f}{r['esda_s'] / r['ours_s']:>7.1f}x{r['ours_mb']:>9.0f}"
                  f"{r['max_dz']:>10.1e}{r['build_s']:>11.2f}{r['graph_s']:>9.2f}"
                  f"{r['hot']:>7,}/{r['cold']:<6,}", flush=True)
    print(f"load average: {_load()}")

    kde = []
    if not args.skip_kde:
        print(f"\nKernel density, binned + FFT, {args.kde_points:,} points to "
              f"{args.kde_size:,} x {args.kde_size:,}")
        print(f"{'kernel':>10}{'h (cells)':>11}{'seconds':>9}{'peak MB':>9}{'max err / peak':>16}")
        kde = bench_kde(args.kde_points, args.kde_size, args.repeat, args.seed)
        for r in kde:
            print(f"{r['kernel']:>10}{r['bandwidth_cells']:>11.0f}{r['s']:>9.3f}{r['mb']:>9.0f}"
                  f"{r['err']:>16.1e}   (vs the exact sum: {r['err_points']:,} points, "
                  f"{r['err_shape'][1]} x {r['err_shape'][0]} cells)")
        print(f"load average: {_load()}")

    print("\nTargets (issue 7)")
    for r in rows:
        print(f"  Gi* {r['cells']:,} cells ({r['weights']}): {r['esda_s'] / r['ours_s']:.1f}x esda "
              f"(>= 5x: {'met' if r['esda_s'] >= 5 * r['ours_s'] else 'NOT met'})"
              + (f"; {r['ours_s']:.2f} s (< 3 s: {'met' if r['ours_s'] < 3 else 'NOT met'})"
                 if r["cells"] >= 900_000 else ""))
    for r in kde:
        print(f"  KDE {r['kernel']} {r['points']:,} points to {r['shape'][1]} x {r['shape'][0]}: "
              f"{r['s']:.2f} s (< 5 s: {'met' if r['s'] < 5 else 'NOT met'})")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
    print(f"load average after: {_load()}")


if __name__ == "__main__":
    main()
