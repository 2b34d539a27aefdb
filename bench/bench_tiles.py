"""Benchmark vector tiles: the service over HTTP against the same SQL run in the database.

Run with::

    .venv/bin/python bench/bench_tiles.py --database-url "$(.venv/bin/pingan db url)"

after ``.venv/bin/pingan demo load``. It starts uvicorn on a free loopback port (cache off for
"cold", on and pre-filled for "warm"), stops it by its PID, and drives it with ``wrk`` (or an
httpx loop when wrk is absent) at ``--concurrency`` clients for ``--duration`` seconds per run.
The database limit runs each tile's statement (``tiles.sql.query_for``) on as many direct
connections as there are clients. Workloads:

(a) z14 point tiles of hazards and cases over the densest areas;
(b) the whole district at z10-z11, hazards and cases (aggregated);
(c) grid polygon tiles at z13.

Peers are entries of ``PEERS`` (or ``--peer name=template``): a name and a URL template with
``{layer}`` (registry id), ``{table}`` (``schema.table``), ``{z}``, ``{x}``, ``{y}``, e.g.
``tipg=http://127.0.0.1:8081/collections/{table}/tiles/WebMercatorQuad/{z}/{x}/{y}``. Each is
measured with the same tiles, clients and duration, and printed beside ours.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg

from layers.catalog import default_registry
from layers.db import libpq_url
from tiles.render import tile_kind
from tiles.sql import query_for

ROOT = Path(__file__).resolve().parents[1]
OURS = "http://127.0.0.1:{port}/ogc/collections/{layer}/tiles/WebMercatorQuad/{z}/{y}/{x}"
PEERS: list[tuple[str, str]] = []  # (name, URL template): TiPG, pygeoapi... join here
Tile = tuple[str, int, int, int]  # layer id, z, x, y


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


# -- the workloads -------------------------------------------------------------------------------
_DENSE = """
    WITH p AS (SELECT ST_Transform(ST_PointOnSurface(geom), 3857) AS g FROM {table})
    SELECT floor((ST_X(g) + 20037508.342789244) / (40075016.68557849 / 2 ^ %(z)s))::int AS x,
           floor((20037508.342789244 - ST_Y(g)) / (40075016.68557849 / 2 ^ %(z)s))::int AS y
    FROM p GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT %(n)s"""
_COVER = """
    SELECT x, y FROM (SELECT ST_Transform(ST_SetSRID(ST_Extent(geom)::geometry, 4490), 3857) AS e
                      FROM pingan.towns) s,
    LATERAL (SELECT 40075016.68557849 / 2 ^ %(z)s AS w) w,
    generate_series(floor((ST_XMin(e) + 20037508.342789244) / w)::int,
                    floor((ST_XMax(e) + 20037508.342789244) / w)::int) x,
    generate_series(floor((20037508.342789244 - ST_YMax(e)) / w)::int,
                    floor((20037508.342789244 - ST_YMin(e)) / w)::int) y"""


def workloads(url: str, dense: int) -> dict[str, list[Tile]]:
    """The tiles of each workload, chosen from the data (the densest, or all over the district)."""
    registry = default_registry()
    with psycopg.connect(url) as conn:
        def densest(layer: str, z: int, n: int) -> list[Tile]:
            table = registry[layer].table
            rows = conn.execute(_DENSE.format(table=table), {"z": z, "n": n}).fetchall()  # type: ignore[arg-type]
            return [(layer, z, x, y) for x, y in rows]

        def district(layers: list[str], zooms: list[int]) -> list[Tile]:
            return [(layer, z, x, y) for z in zooms for x, y in conn.execute(_COVER, {"z": z}).fetchall()
                    for layer in layers]

        return {
            "(a) z14 points, dense": densest("hazards", 14, dense) + densest("cases", 14, dense),
            "(b) district z10-z11": district(["hazards", "cases"], [10, 11]),
            "(c) grids z13": densest("grids", 13, 4 * dense),
        }


# -- the database limit --------------------------------------------------------------------------
async def _db_client(url: str, statements: list[tuple[str, dict]], start: int, until: float,
                     latencies: list[float]) -> int:
    errors = 0
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        i = start
        while time.perf_counter() < until:
            text, params = statements[i % len(statements)]
            t0 = time.perf_counter()
            try:
                cur = await conn.execute(text, params, binary=True)  # type: ignore[arg-type]  # as the service
                await cur.fetchone()
                latencies.append(time.perf_counter() - t0)
            except psycopg.Error:
                errors += 1
            i += 1
    return errors


async def database_limit(url: str, tiles: list[Tile], clients: int, seconds: float) -> Result:
    """Every tile's statement straight on ``clients`` connections: the physical limit."""
    registry = default_registry()
    statements = []
    for layer_id, z, x, y in tiles:
        layer = registry[layer_id]
        statements.append((query_for(layer, tile_kind(layer, z)).text, {"z": z, "x": x, "y": y}))
    latencies: list[float] = []
    started = time.perf_counter()
    errors = await asyncio.gather(*(_db_client(url, statements, c * 7, started + seconds, latencies)
                                    for c in range(clients)))
    return _result("database (same SQL)", latencies, time.perf_counter() - started, sum(errors))


def _result(name: str, latencies: list[float], seconds: float, errors: int) -> Result:
    if not latencies:
        return Result(name, 0, seconds, float("nan"), float("nan"), errors)
    ordered = sorted(latencies)
    return Result(name, len(ordered), seconds, 1000 * statistics.median(ordered),
                  1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], errors)


# -- HTTP load -----------------------------------------------------------------------------------
_WRK_SCRIPT = """
paths = {%s}
local threads = 0
i = 0
setup = function(thread) threads = threads + 1; thread:set("i", threads * 7) end
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%f %%f %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def _wrk(name: str, urls: list[str], clients: int, seconds: float) -> Result:
    base = "{0.scheme}://{0.netloc}".format(urlsplit(urls[0]))
    paths = ", ".join('"%s"' % u[len(base):].replace('"', '\\"') for u in urls)  # noqa: UP031
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT % paths)
    try:
        out = subprocess.run(["wrk", f"-t{min(clients, 2)}", f"-c{clients}", f"-d{int(seconds)}s",
                              "-s", script.name, base], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)
    line = next(line for line in out.splitlines() if line.startswith("RESULT"))
    n, micros, p50, p99, errors = line.split()[1:]
    return Result(name, int(n), int(micros) / 1e6, float(p50) / 1000, float(p99) / 1000, int(errors))


async def _httpx(name: str, urls: list[str], clients: int, seconds: float) -> Result:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient, start: int, until: float) -> None:
        nonlocal errors
        i = start
        while time.perf_counter() < until:
            t0 = time.perf_counter()
            r = await http.get(urls[i % len(urls)])
            if r.status_code == 200:
                latencies.append(time.perf_counter() - t0)
            else:
                errors += 1
            i += 1

    async with httpx.AsyncClient(limits=limits, timeout=60) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http, c * 7, started + seconds) for c in range(clients)))
    return _result(name, latencies, time.perf_counter() - started, errors)


def http_load(name: str, urls: list[str], clients: int, seconds: float) -> Result:
    if shutil.which("wrk"):
        return _wrk(name, urls, clients, seconds)
    return asyncio.run(_httpx(name, urls, clients, seconds))


def tile_sizes(urls: list[str]) -> list[int]:
    """Fetch every tile once (this also fills a warm cache); their sizes in bytes."""
    with httpx.Client(timeout=120) as http:
        responses = [http.get(u) for u in urls]
    bad = [r.url for r in responses if r.status_code != 200]
    if bad:
        raise SystemExit(f"tile requests failed: {bad[:3]}")
    return [len(r.content) for r in responses]


# -- the server under test -----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """uvicorn serving ``api.asgi:app`` on loopback; stopped by its PID."""

    def __init__(self, url: str, *, cache: bool, workers: int, pool_size: int) -> None:
        self.port = free_port()
        env = os.environ | {"PINGAN_DATABASE_URL": url, "PINGAN_TILES_CACHE_ENABLED": str(cache).lower(),
                            "PINGAN_POOL_SIZE": str(pool_size)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.asgi:app", "--factory", "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", str(workers), "--log-level", "warning",
             "--no-access-log"], cwd=ROOT, env=env)
        self._wait()

    def _wait(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"uvicorn exited with {self.proc.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit("uvicorn did not become healthy in 60 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- the run -------------------------------------------------------------------------------------
def _urls(template: str, tiles: list[Tile], **extra: object) -> list[str]:
    registry = default_registry()
    return [template.format(layer=layer, table=registry[layer].table, z=z, x=x, y=y, **extra)
            for layer, z, x, y in tiles]


def _print(workload: str, tiles: list[Tile], sizes: list[int], results: list[Result]) -> None:
    limit = results[0].rate
    print(f"\n{workload}: {len(tiles)} tiles, size mean {statistics.mean(sizes) / 1024:.1f} KB,"
          f" max {max(sizes) / 1024:.1f} KB, empty {sum(s == 0 for s in sizes)}")
    print(f"  {'target':<22}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}{'vs DB':>8}")
    for r in results:
        ratio = f"{r.rate / limit:.2f}" if limit else "-"
        print(f"  {r.name:<22}{r.rate:>10.1f}{r.p50_ms:>10.2f}{r.p99_ms:>10.2f}{r.errors:>8}{ratio:>8}")


def run(args: argparse.Namespace) -> None:
    url = libpq_url(args.database_url)
    load = os.getloadavg()  # other work on the machine skews every figure: printed beside them
    loads = workloads(url, args.dense)
    peers = PEERS + [tuple(p.split("=", 1)) for p in args.peer]
    found: dict[str, list[Result]] = {name: [] for name in loads}
    sizes: dict[str, list[int]] = {}
    for name, tiles in loads.items():
        found[name].append(asyncio.run(database_limit(url, tiles, args.concurrency, args.duration)))
    for mode, cache in (("cold", False), ("warm", True)):
        server = Server(url, cache=cache, workers=args.workers, pool_size=args.concurrency)
        try:
            for name, tiles in loads.items():
                urls = _urls(OURS, tiles, port=server.port)
                sizes[name] = tile_sizes(urls)  # warm: this pass fills the cache
                found[name].append(http_load(f"pingan {mode}", urls, args.concurrency, args.duration))
        finally:
            server.stop()
    for peer, template in peers:
        for name, tiles in loads.items():
            found[name].append(http_load(peer, _urls(template, tiles), args.concurrency, args.duration))
    print(f"\n{args.concurrency} clients, {args.duration:.0f} s per run, {args.workers} uvicorn worker(s),"
          f" load by {'wrk' if shutil.which('wrk') else 'httpx'}; {os.cpu_count()} CPUs shared by"
          f" load, service and database; 1-min load average before the run {load[0]:.1f}")
    for name, tiles in loads.items():
        _print(name, tiles, sizes[name], found[name])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("PINGAN_DATABASE_URL"),
                        help="the demo database (default: $PINGAN_DATABASE_URL)")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers")
    parser.add_argument("--dense", type=int, default=16, help="dense z14 tiles per layer")
    parser.add_argument("--peer", action="append", default=[], metavar="NAME=TEMPLATE")
    args = parser.parse_args()
    if not args.database_url:
        parser.error("--database-url is required (or PINGAN_DATABASE_URL)")
    run(args)


if __name__ == "__main__":
    main()
