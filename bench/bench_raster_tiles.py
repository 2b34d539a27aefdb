"""Colour tiles of a monthly density raster: milliseconds per tile, rendered and served.

    .venv/bin/python bench/bench_raster_tiles.py --database-url URL [--zooms 8-15] [--max-tiles 300]

``URL`` is the owner's URL of a database with the demo district (``pingan db url`` for the demo
database, or a test database). If it holds no monthly density yet, the refresh step
(etl/density.py) makes one. Then, for the newest hazards density:

- decode: the COG from bytes to the in-memory levels (once per raster and process);
- render: ``RasterSource.render`` per tile, every tile over the raster at each zoom (up to
  ``--max-tiles``), one thread: the cost of a cache miss, wall and CPU time (the CPU time moves
  less with the load of a shared machine);
- http cold / warm: the same tiles through the app (``GET /api/rasters/{id}/tiles/...png``, with
  authentication, the caller's transaction and row-level security, in FastAPI's TestClient) on a
  fresh app (every tile a cache miss), then again (every tile a hit).

A bench user (analyst) is added and disabled at the end. Prints mean and p95 per zoom and the
load average (the machine is shared: compare runs at similar load).
"""

from __future__ import annotations

import argparse
import base64
import math
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _tiles(bounds: tuple[float, float, float, float], z: int, cap: int) -> list[tuple[int, int, int]]:
    w, s, e, n = bounds
    size = 1 << z

    def col(lon: float) -> int:
        return int((lon + 180) / 360 * size)

    def row(lat: float) -> int:
        return int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * size)

    tiles = [(z, x, y) for y in range(row(n), row(s) + 1) for x in range(col(w), col(e) + 1)]
    step = max(1, len(tiles) // cap)
    return tiles[::step][:cap]


def _summary(ms: list[float]) -> str:
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    return f"mean {statistics.fmean(ms):6.2f} ms  p95 {p95:6.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="owner URL of a demo-district database")
    parser.add_argument("--zooms", default="8-15")
    parser.add_argument("--max-tiles", type=int, default=300)
    args = parser.parse_args()
    lo, hi = (int(v) for v in args.zooms.split("-"))

    from fastapi.testclient import TestClient
    from sqlalchemy.engine import make_url

    from api.app import create_app
    from api.auth import store
    from api.settings import ApiSettings
    from cli.config import database_target
    from etl.density import refresh_density
    from layers.db import libpq_url, make_engine
    from layers.rasters import list_rasters, read_cog
    from layers.settings import DatabaseSettings
    from tiles.raster import RasterSource, scale_top

    engine = make_engine(DatabaseSettings(database_url=args.database_url))
    with engine.connect() as c:
        latest = {i.layer: i for i in list_rasters(c, kind="density", latest=True)}
    if "hazards" not in latest:
        for run in refresh_density(engine):
            print(run.summary())
        with engine.connect() as c:
            latest = {i.layer: i for i in list_rasters(c, kind="density", latest=True)}
    info = latest["hazards"]
    with engine.connect() as c:
        cog = read_cog(c, info.id)
    print(f"raster {info.id}: {info.title}, {info.width} x {info.height} cells, {len(cog):,} bytes")
    t0 = time.perf_counter()
    src = RasterSource(cog)
    print(f"decode: {(time.perf_counter() - t0) * 1e3:.0f} ms ({len(src.levels)} levels)")
    top = scale_top(info.stats)
    zooms = {z: _tiles(info.bounds_crs84, z, args.max_tiles) for z in range(lo, hi + 1)}
    for z, tiles in zooms.items():
        ms, cpu = [], []
        for t in tiles:
            t1, c1 = time.perf_counter(), time.thread_time()
            src.render(*t, top)
            ms.append((time.perf_counter() - t1) * 1e3)
            cpu.append((time.thread_time() - c1) * 1e3)
        # CPU time is what the tile costs; wall time adds the wait for a core on a loaded machine
        print(f"render z{z:<2} {len(tiles):4d} tiles  {_summary(ms)}  cpu {statistics.fmean(cpu):6.2f} ms")

    name, password = f"bench-rasters-{secrets.token_hex(3)}", secrets.token_urlsafe(18)
    with engine.begin() as c:
        store.add_user(c, store.Actor("bench"), name, "analyst", [], password)
    try:
        service = make_url(database_target(start=False).service_url).set(
            database=make_url(args.database_url).database)
        app = create_app(ApiSettings(environment="test"),
                         DatabaseSettings(database_url=libpq_url(service.render_as_string(hide_password=False))))
        basic = "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()
        with TestClient(app, headers={"Authorization": basic}) as client:
            for label in ("cold", "warm"):
                for z, tiles in zooms.items():
                    ms = []
                    for z_, x, y in tiles:
                        t1 = time.perf_counter()
                        r = client.get(f"/api/rasters/{info.id}/tiles/WebMercatorQuad/{z_}/{y}/{x}.png")
                        ms.append((time.perf_counter() - t1) * 1e3)
                        assert r.status_code == 200, r.text
                    print(f"http {label} z{z:<2} {len(tiles):4d} tiles  {_summary(ms)}")
    finally:
        with engine.begin() as c:
            store.set_disabled(c, store.Actor("bench"), name, True)
        engine.dispose()
    print("load average: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
