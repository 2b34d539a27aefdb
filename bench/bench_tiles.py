"""Benchmark vector tiles: ours, TiPG and pygeoapi over HTTP, against the same SQL in the database.

Run with::

    .venv/bin/python bench/bench_tiles.py --database-url "$(.venv/bin/pingan db url)" --duration 8

after ``.venv/bin/pingan demo load``. Everything runs on 127.0.0.1 in one run, on the same tiles:

- **database (same SQL)**: each tile's statement (``tiles.sql.query_for``) on as many direct
  connections as there are clients, as the service runs it (the admin role, prepared by name,
  generic plans; ``tiles.render.draw``): the physical limit;
- **pingan cold / warm**: uvicorn serving ``api.asgi:app`` on a free port with the tile cache off
  (cold), then on and pre-filled (warm), stopped by its PID;
- **peers** (``PEERS``, see ``bench/peers.py``): TiPG 1.6 and pygeoapi 0.21's stock
  ``MVT-postgresql`` provider, each started with generated configuration for each workload and
  stopped by its PID; ``--peer name=template`` adds a server that is already running.

Load is ``wrk`` (or an httpx loop when wrk is absent) at ``--concurrency`` clients for
``--duration`` seconds per cell. Workloads:

(a) z14 point tiles of hazards and cases over the densest areas;
(b) the whole district at z10-z11, hazards and cases (ours aggregated);
(c) grid polygon tiles at z13.

``--workloads c --modes cold`` runs one workload and mode (for iterating), ``--no-limit`` skips
the database limit. ``--duration-for b=40`` gives one workload longer runs: (b) at scale 10 is
tiles of 40 ms to 5 s, of which 8 seconds finish 150-220, and which heavy ones end inside the
window decides the rate.

Before loading a server, its tiles are fetched once (sample tiles first, within
``--fetch-budget`` seconds): sizes, and the sample decoded with mapbox-vector-tile to compare the
features each tile represents (an aggregated cell counts as its ``count``) with the number the
database holds in that tile. A tile with fewer is reported as *short* (TiPG's silent 10,000
cap), a peer that times out or errors is reported as such.

The last section checks the targets of issue 3 and prints met / not met with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import mapbox_vector_tile  # noqa: E402
import psycopg  # noqa: E402

from bench import peers as peer_servers  # noqa: E402
from layers.catalog import default_registry  # noqa: E402
from layers.db import libpq_url, make_engine  # noqa: E402
from layers.settings import DatabaseSettings  # noqa: E402
from tiles import shapes as tile_shapes  # noqa: E402
from tiles.render import tile_kind  # noqa: E402
from tiles.sql import TileQuery, query_for  # noqa: E402

OURS = "http://127.0.0.1:{port}/ogc/collections/{layer}/tiles/WebMercatorQuad/{z}/{y}/{x}"
# (name, start(database URL) -> context manager yielding a RunningPeer with a ``tiles`` template)
PEERS: list[tuple[str, Callable[..., AbstractContextManager[peer_servers.RunningPeer]]]] = [
    ("tipg", peer_servers.tipg),
    ("pygeoapi", peer_servers.pygeoapi_stock),
]
Tile = tuple[str, int, int, int]  # layer id, z, x, y
DB_NAME = "database (same SQL)"


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    # from fetching the tiles once and decoding a sample
    fetched: int = 0
    sizes: list[int] = field(default_factory=list)
    sampled: int = 0
    features: list[int] = field(default_factory=list)  # features represented, per sampled tile
    expected: list[int] = field(default_factory=list)  # the database's count for the same tiles
    status: str = "ok"  # "ok", or what went wrong (timeouts, errors, not run)
    fetch_s: list[float] = field(default_factory=list)  # seconds per fetched tile, one client
    load: float = float("nan")  # the 1-min load average at the end of the run (other work shows here)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def short(self) -> list[tuple[int, int]]:
        """(got, database) of sampled tiles holding fewer features than the database has."""
        return [(f, e) for f, e in zip(self.features, self.expected, strict=True) if f < e]


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
# What the database holds in a tile: points by the same half-open test as our tile SQL (each
# point in exactly one tile), polygons intersecting the tile.
_COUNT_POINTS = """
    WITH t AS (SELECT ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4490) AS g)
    SELECT count(*) FROM {table} l, t WHERE l.geom && t.g
      AND ST_X(l.geom) >= ST_XMin(t.g) AND ST_X(l.geom) < ST_XMax(t.g)
      AND ST_Y(l.geom) >= ST_YMin(t.g) AND ST_Y(l.geom) < ST_YMax(t.g)"""
_COUNT_POLYGONS = """
    WITH t AS (SELECT ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4490) AS g)
    SELECT count(*) FROM {table} l, t WHERE l.geom && t.g AND ST_Intersects(l.geom, t.g)"""


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


def sample_indices(expected: list[int], size: int) -> list[int]:
    """``size`` tile indices: half the tiles the database holds most features in (where a cap
    bites), half spread evenly over the rest."""
    n = len(expected)
    if n <= size:
        return list(range(n))
    top = sorted(range(n), key=lambda i: -expected[i])[: size // 2]
    rest = [i for i in range(n) if i not in top]
    step = len(rest) / (size - len(top))
    return top + [rest[int(i * step)] for i in range(size - len(top))]


def database_counts(url: str, tiles: list[Tile]) -> list[int]:
    registry = default_registry()
    out = []
    with psycopg.connect(url) as conn:
        for layer_id, z, x, y in tiles:
            layer = registry[layer_id]
            text = _COUNT_POINTS if layer.geometry_type == "Point" else _COUNT_POLYGONS
            out.append(conn.execute(text.format(table=layer.table), {"z": z, "x": x, "y": y}).fetchone()[0])  # type: ignore[arg-type,index]
    return out


def represented(mvt: bytes) -> int:
    """Features a tile stands for: an aggregated cell counts as its ``count``, others as one."""
    if not mvt:
        return 0
    total = 0
    for layer in mapbox_vector_tile.decode(mvt).values():
        for f in layer["features"]:
            props = f.get("properties") or {}
            total += int(props.get("count", 1)) if props.get("aggregated") else 1
    return total


# -- the database limit --------------------------------------------------------------------------
class _Start:
    """All clients warmed up: the clock starts for everyone at once."""

    def __init__(self, clients: int) -> None:
        self.waiting, self.event, self.at = clients, asyncio.Event(), 0.0

    async def arrive(self) -> None:
        self.waiting -= 1
        if self.waiting == 0:
            self.at = time.perf_counter()
            self.event.set()
        await self.event.wait()


# What the service states at the start of each transaction (layers.db), here once per session:
# the same role, the same row-level security, the same statement.
_AS_ADMIN = ("SELECT set_config('pingan.user', 'bench', false), set_config('pingan.role', 'admin', false),"
             " set_config('pingan.areas', '', false),"
             " CASE WHEN pg_has_role(session_user, r.oid, 'MEMBER')"
             " THEN set_config('role', r.rolname, false) END"
             " FROM (SELECT 1) AS one LEFT JOIN pg_roles r ON r.rolname = 'pingan_as_admin'")


async def _db_client(url: str, statements: list[tuple[TileQuery, dict]], first: int, seconds: float,
                     latencies: list[float], start: _Start) -> int:
    errors = 0
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(_AS_ADMIN)
        # As the service runs them (tiles.render.draw): prepared by name, generic plans.
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        for query in {q.name: q for q, _ in statements}.values():
            await conn.execute(query.prepare)
        texts = [f"EXECUTE {q.name}({', '.join(str(p[n]) for n in q.param_names)})" for q, p in statements]
        # Warm-up, not timed: a new backend loads PostGIS and PROJ on its first tile, which the
        # service's pooled connections did long before.
        for text in {q.name: t for (q, _), t in zip(statements, texts, strict=True)}.values():
            await (await conn.execute(text, binary=True)).fetchone()  # type: ignore[arg-type]
        await start.arrive()
        until = start.at + seconds
        i = first
        while time.perf_counter() < until:
            text = texts[i % len(texts)]
            t0 = time.perf_counter()
            try:
                cur = await conn.execute(text, binary=True)  # type: ignore[arg-type]
                await cur.fetchone()
                latencies.append(time.perf_counter() - t0)
            except psycopg.Error:
                errors += 1
            i += 1
    return errors


def current_shapes(url: str) -> set[str]:
    """Layers whose prepared shapes (tiles.shapes) match their data version: the service draws
    their tiles from the shapes, and so does the database limit."""
    with psycopg.connect(url) as conn:
        if not conn.execute("SELECT to_regclass('pingan.tile_shape_versions') IS NOT NULL").fetchone()[0]:  # type: ignore[index]
            return set()
        rows = conn.execute("SELECT s.layer_id FROM pingan.tile_shape_versions s"
                            " LEFT JOIN pingan.layer_versions v USING (layer_id)"
                            " WHERE s.version = coalesce(v.version, 0)").fetchall()
    return {r[0] for r in rows}


def build_shapes(owner_url: str) -> dict[str, int]:
    """Rebuild the shapes (as `pingan etl refresh` does; the tables come with migration 0008)."""
    engine = make_engine(DatabaseSettings(database_url=owner_url))
    try:
        with engine.begin() as conn:
            written = tile_shapes.rebuild(conn, default_registry())
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE pingan.tile_shapes")
        return written
    finally:
        engine.dispose()


async def database_limit(url: str, tiles: list[Tile], clients: int, seconds: float,
                         shapes: set[str] = frozenset()) -> Result:  # type: ignore[assignment]
    """Every tile's statement straight on ``clients`` connections: the physical limit."""
    registry = default_registry()
    statements = []
    for layer_id, z, x, y in tiles:
        layer = registry[layer_id]
        kind = tile_kind(layer, z)
        use = layer_id in shapes and kind == "detail" and z in tile_shapes.stored_zooms(layer)
        statements.append((query_for(layer, kind, shapes=use), {"z": z, "x": x, "y": y}))
    latencies: list[float] = []
    start = _Start(clients)
    errors = await asyncio.gather(*(_db_client(url, statements, c * 7, seconds, latencies, start)
                                    for c in range(clients)))
    result = _result(DB_NAME, latencies, time.perf_counter() - start.at, sum(errors))
    result.load = os.getloadavg()[0]
    return result


def _result(name: str, latencies: list[float], seconds: float, errors: int) -> Result:
    if not latencies:
        return Result(name, 0, seconds, float("nan"), float("nan"), errors)
    ordered = sorted(latencies)
    return Result(name, len(ordered), seconds, 1000 * statistics.median(ordered),
                  1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], errors)


# -- HTTP load -----------------------------------------------------------------------------------
_WRK_SCRIPT = """
paths = {%s}
headers = {%s}
local threads = 0
i = 0
setup = function(thread) threads = threads + 1; thread:set("i", threads * 7) end
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i], headers)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%f %%f %%d %%d %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write, e.status, e.timeout))
end
"""


def _wrk(name: str, urls: list[str], clients: int, seconds: float, timeout: float,
         headers: dict[str, str]) -> Result:
    base = "{0.scheme}://{0.netloc}".format(urlsplit(urls[0]))
    paths = ", ".join('"%s"' % u[len(base):].replace('"', '\\"') for u in urls)  # noqa: UP031
    lua_headers = ", ".join(f'["{k}"] = "{v}"' for k, v in headers.items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT % (paths, lua_headers))
    try:
        out = subprocess.run(["wrk", f"-t{min(clients, 2)}", f"-c{clients}", f"-d{int(seconds)}s",
                              "--timeout", f"{int(timeout)}s", "-s", script.name, base],
                             capture_output=True, text=True, check=True,
                             timeout=seconds + timeout + 30).stdout
    finally:
        os.unlink(script.name)
    line = next(line for line in out.splitlines() if line.startswith("RESULT"))
    fields = line.split()[1:]
    p50, p99 = float(fields[2]), float(fields[3])
    n, micros, socket_errors, status, timeouts = (int(fields[i]) for i in (0, 1, 4, 5, 6))
    # wrk counts an answer with status >= 400 in requests and in errors.status; a timed-out
    # request only in errors.timeout. Requests/s here counts answers with a 2xx/3xx status.
    ok = n - status
    nan = float("nan")
    result = Result(name, ok, micros / 1e6, p50 / 1000 if ok else nan, p99 / 1000 if ok else nan,
                    socket_errors + status + timeouts)
    problems = [f"{status} HTTP errors"] * bool(status)
    problems += [f"{timeouts} timed out (> {timeout:.0f} s)"] * bool(timeouts)
    problems += [f"{socket_errors} socket errors"] * bool(socket_errors)
    if not ok and not timeouts:
        problems.append(f"no request answered within the {seconds:.0f} s run")
    if problems:
        result.status = "under load: " + ", ".join(problems)
    return result


async def _httpx(name: str, urls: list[str], clients: int, seconds: float, timeout: float,
                 headers: dict[str, str]) -> Result:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient, start: int, until: float) -> None:
        nonlocal errors
        i = start
        while time.perf_counter() < until:
            t0 = time.perf_counter()
            try:
                r = await http.get(urls[i % len(urls)])
                ok = r.status_code < 300
            except httpx.HTTPError:
                ok = False
            if ok:
                latencies.append(time.perf_counter() - t0)
            else:
                errors += 1
            i += 1

    async with httpx.AsyncClient(limits=limits, timeout=timeout, headers=headers) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http, c * 7, started + seconds) for c in range(clients)))
    return _result(name, latencies, time.perf_counter() - started, errors)


def http_load(name: str, urls: list[str], clients: int, seconds: float, timeout: float,
              headers: dict[str, str] | None = None) -> Result:
    if shutil.which("wrk"):
        result = _wrk(name, urls, clients, seconds, timeout, headers or {})
    else:
        result = asyncio.run(_httpx(name, urls, clients, seconds, timeout, headers or {}))
    result.load = os.getloadavg()[0]
    return result


@dataclass
class Fetched:
    sizes: list[int]
    features: dict[int, int]  # tile index -> features represented (sampled tiles)
    seconds: list[float]
    problems: list[str]


def fetch_tiles(urls: list[str], sample: list[int], *, budget: float, timeout: float,
                headers: dict[str, str] | None = None) -> Fetched:
    """Fetch the sample tiles (decoded), then the rest, one client, within ``budget`` seconds.

    Stops at the first timeout: a server that cannot answer one tile in ``timeout`` seconds is
    reported as timing out rather than waited for. Fetching also fills a warm cache.
    """
    order = sample + [i for i in range(len(urls)) if i not in set(sample)]
    out = Fetched([], {}, [], [])
    started = time.monotonic()
    with httpx.Client(timeout=timeout, headers=headers or {}) as http:
        for i in order:
            if time.monotonic() - started > budget:
                out.problems.append(f"fetch budget of {budget:.0f} s spent after {len(out.sizes)} tiles")
                break
            t0 = time.perf_counter()
            try:
                r = http.get(urls[i])
            except httpx.TimeoutException:
                out.problems.append(f"timed out (> {timeout:.0f} s) on {urls[i]}")
                break
            except httpx.HTTPError as err:  # e.g. the server dropped the connection
                out.problems.append(f"connection error ({type(err).__name__}: {err}) on {urls[i]}")
                continue
            out.seconds.append(time.perf_counter() - t0)
            if r.status_code not in (200, 204):
                out.problems.append(f"HTTP {r.status_code} on {urls[i]}: {r.text[:120]!r}")
                continue
            out.sizes.append(len(r.content))
            if i in sample:
                out.features[i] = represented(r.content)
    return out


def warm_up(urls: list[str], fetched: Fetched, args: argparse.Namespace,
            headers: dict[str, str] | None = None) -> None:
    """``--warmup`` seconds of the same load, not counted (every pooled connection gets used);
    skipped for a server that needed over a second per tile with one client, where it would only
    leave a backlog behind."""
    if args.warmup > 0 and fetched.seconds and statistics.median(fetched.seconds) < 1.0:
        http_load("warm-up", urls, args.concurrency, args.warmup, args.timeout, headers)


def _with_fetch(result: Result, fetched: Fetched, expected: list[int]) -> Result:
    result.fetched = len(fetched.sizes)
    result.sizes = fetched.sizes
    result.fetch_s = fetched.seconds
    idx = sorted(fetched.features)
    result.sampled = len(idx)
    result.features = [fetched.features[i] for i in idx]
    result.expected = [expected[i] for i in idx]
    if fetched.problems:
        problems = "; ".join(dict.fromkeys(p.split(" on http")[0] for p in fetched.problems))
        result.status = problems if result.status == "ok" else f"{result.status}; {problems}"
    return result


def _durations(args: argparse.Namespace, loads: dict[str, list[Tile]]) -> dict[str, float]:
    """Seconds per run for each workload: ``--duration``, or its ``--duration-for``."""
    given = {}
    for spec in args.duration_for:
        letter, _, value = spec.partition("=")
        if letter not in ("a", "b", "c") or not value:
            raise SystemExit(f"--duration-for {spec!r}: expected W=SECONDS with W one of a, b, c")
        given[letter] = float(value)
    return {name: given.get(name[1], args.duration) for name in loads}


# -- the server under test -----------------------------------------------------------------------
class Server:
    """uvicorn serving ``api.asgi:app`` on loopback; stopped by its PID."""

    def __init__(self, url: str, *, cache: bool, workers: int, pool_size: int) -> None:
        self.port = peer_servers.free_port()
        # ``url``: the service role's URL (the app refuses the owner); same pool size either way
        env = os.environ | {"PINGAN_SERVICE_DATABASE_URL": url, "PINGAN_DATABASE_URL": url,
                            "PINGAN_TILES_CACHE_ENABLED": str(cache).lower(),
                            "PINGAN_POOL_SIZE": str(pool_size), "PINGAN_SERVICE_POOL_SIZE": str(pool_size)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.asgi:app", "--factory", "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", str(workers), "--log-level", "warning",
             "--no-access-log"], cwd=ROOT, env=env)
        self._wait()

    def _wait(self) -> None:
        deadline = time.monotonic() + 180
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
        raise SystemExit("uvicorn did not become healthy in 180 s")

    def stop(self) -> None:
        peer_servers.stop(self.proc)


@contextmanager
def _external(template: str) -> Iterator[peer_servers.RunningPeer]:
    yield peer_servers.RunningPeer("external", "", template, "", None)  # type: ignore[arg-type]


def _settle(url: str, seconds: float = 30) -> None:
    """Wait until no statement other than ours is active in the database (a peer's abandoned
    tiles keep running until their statement timeout), so they do not load the next cell."""
    deadline = time.monotonic() + seconds
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            busy = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                " AND state = 'active' AND pid <> pg_backend_pid()").fetchone()[0]  # type: ignore[index]
            if not busy:
                return
            time.sleep(0.5)


# -- the run -------------------------------------------------------------------------------------
def _urls(template: str, tiles: list[Tile], **extra: object) -> list[str]:
    registry = default_registry()
    return [template.format(layer=layer, table=registry[layer].table, z=z, x=x, y=y, **extra)
            for layer, z, x, y in tiles]


def _kb(values: list[int], how: Callable[[list[int]], float]) -> str:
    return f"{how(values) / 1024:.1f}" if values else "-"


def _print(workload: str, tiles: list[Tile], expected: list[int], results: list[Result]) -> None:
    limit = next((r.rate for r in results if r.name == DB_NAME), 0.0)
    ours = next((r.rate for r in results if r.name == "pingan cold"), 0.0)
    print(f"\n### {workload}: {len(tiles)} tiles; database holds {min(expected)}–{max(expected)} features"
          f" per tile (mean {statistics.mean(expected):.0f})\n")
    print("| target | req/s | p50 ms | p99 ms | errors | vs DB | ours cold / it | size mean KB | size max KB"
          " | features/tile mean (max) | short tiles (got/DB) | load | notes |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|---|")
    for r in results:
        vs_db = f"{r.rate / limit:.2f}" if limit else "-"
        vs_ours = f"{ours / r.rate:.2f}" if r.rate and ours else ("∞" if ours else "-")
        feats = f"{statistics.mean(r.features):.0f} ({max(r.features)})" if r.features else "-"
        short = r.short
        short_s = (f"{len(short)}/{r.sampled}: " + ", ".join(f"{g}/{e}" for g, e in short[:3])
                   + (" …" if len(short) > 3 else "")) if short else (f"0/{r.sampled}" if r.sampled else "-")
        notes = r.status if r.status != "ok" else ""
        if r.fetch_s:
            one = f"one client: {1000 * statistics.median(r.fetch_s):.0f} ms/tile"
            notes = f"{notes}; {one}" if notes else one
        p50 = "-" if math.isnan(r.p50_ms) else f"{r.p50_ms:.1f}"
        p99 = "-" if math.isnan(r.p99_ms) else f"{r.p99_ms:.1f}"
        print(f"| {r.name} | {r.rate:.1f} | {p50} | {p99} | {r.errors} | {vs_db} | {vs_ours}"
              f" | {_kb(r.sizes, statistics.mean)} | {_kb(r.sizes, max)} | {feats} | {short_s}"
              f" | {r.load:.1f} | {notes} |")


def _targets(found: dict[str, list[Result]]) -> list[tuple[str, bool | None, str]]:
    """Issue 3's tile targets: (target, met, figures)."""
    out: list[tuple[str, bool | None, str]] = []

    def get(workload: str, name: str) -> Result | None:
        return next((r for r in found[workload] if r.name == name), None)

    for workload in found:
        cold, warm = get(workload, "pingan cold"), get(workload, "pingan warm")
        tipg, db = get(workload, "tipg"), get(workload, DB_NAME)
        if cold and tipg:
            need = 3.0 if workload.startswith("(c)") else 1.0
            ok = cold.rate >= need * tipg.rate
            out.append((f"{workload}: cold ≥ {need:g}× TiPG", ok,
                        f"{cold.rate:.1f} vs {tipg.rate:.1f} req/s = {cold.rate / tipg.rate:.2f}×"
                        if tipg.rate else f"{cold.rate:.1f} vs 0 req/s"))
        if cold and db and db.rate:
            out.append((f"{workload}: cold ≥ 80% of the database limit", cold.rate >= 0.8 * db.rate,
                        f"{cold.rate:.1f} vs {db.rate:.1f} req/s = {cold.rate / db.rate:.0%}"))
        if warm:
            out.append((f"{workload}: warm ≥ 2,000 req/s", warm.rate >= 2000, f"{warm.rate:.0f} req/s"))
        if workload.startswith("(b)") and cold and cold.sizes:
            out.append((f"{workload}: every tile < 100 KB", max(cold.sizes) < 100 * 1024,
                        f"max {max(cold.sizes) / 1024:.1f} KB,"
                        f" mean {statistics.mean(cold.sizes) / 1024:.1f} KB"))
    return out


def service_url_for(url: str, given: str | None) -> str:
    """The service role's URL for the database of ``url``: ``given``, or the private cluster's."""
    from sqlalchemy.engine import make_url  # noqa: PLC0415

    if not given:
        from cli import config  # noqa: PLC0415 - the private cluster's roles

        given = config.database_target().service_url
        if not given:
            raise SystemExit("no service role URL: pass --service-url or set PINGAN_SERVICE_DATABASE_URL")
    service = make_url(given).set(database=make_url(url).database)
    return libpq_url(service.render_as_string(hide_password=False))


def run(args: argparse.Namespace) -> None:
    url = libpq_url(args.database_url)
    service = service_url_for(url, args.service_url)
    load_before = os.getloadavg()  # other work on the machine skews every figure: printed beside them
    started = time.monotonic()
    if args.build_shapes:
        t0 = time.perf_counter()
        built = build_shapes(url)
        print(f"built tile shapes {built} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    shapes = set() if args.no_shapes else current_shapes(url)
    # Tiles of hazards and cases are for staff: ours is asked as an admin (API token, Bearer)
    auth = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    if args.no_shapes and current_shapes(url):
        raise SystemExit("--no-shapes: drop or stale the shapes first (the service would use them)")
    loads = workloads(url, args.dense)
    if args.workloads:
        letters = {w.strip().strip("()") for w in args.workloads.split(",")}
        unknown = letters - {name[1] for name in loads}
        if unknown:
            raise SystemExit(f"--workloads: no workload {', '.join(sorted(unknown))} (a, b, c)")
        loads = {name: tiles for name, tiles in loads.items() if name[1] in letters}
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if set(modes) - {"cold", "warm"}:
        raise SystemExit("--modes: cold and/or warm")
    wanted = set(args.peers.split(",")) if args.peers else set()
    peers: list[tuple[str, Callable[..., AbstractContextManager[peer_servers.RunningPeer]]]] = [
        (name, start) for name, start in PEERS if name in wanted]
    for spec in args.peer:
        name, template = spec.split("=", 1)
        peers.append((name, lambda _db, t=template, **_kw: _external(t)))
    seconds = _durations(args, loads)
    found: dict[str, list[Result]] = {name: [] for name in loads}
    expected = {name: database_counts(url, tiles) for name, tiles in loads.items()}
    samples = {name: sample_indices(expected[name], args.sample) for name in loads}
    for name, tiles in loads.items():
        if args.no_limit:
            break
        print(f"[{time.monotonic() - started:5.0f} s] database limit, {name}", file=sys.stderr)
        limit = database_limit(service, tiles, args.concurrency, seconds[name], shapes)
        found[name].append(asyncio.run(limit))
    for mode, cache in (("cold", False), ("warm", True)):
        if mode not in modes:
            continue
        server = Server(service, cache=cache, workers=args.workers,
                        pool_size=args.pool_size or args.concurrency)
        try:
            for name, tiles in loads.items():
                print(f"[{time.monotonic() - started:5.0f} s] pingan {mode}, {name}", file=sys.stderr)
                urls = _urls(OURS, tiles, port=server.port)
                # (warm: this fills the cache)
                fetched = fetch_tiles(urls, samples[name], budget=1e9, timeout=args.timeout, headers=auth)
                warm_up(urls, fetched, args, auth)
                result = http_load(f"pingan {mode}", urls, args.concurrency, seconds[name], args.timeout,
                                   auth)
                found[name].append(_with_fetch(result, fetched, expected[name]))
        finally:
            server.stop()
    for peer, start in peers:
        for name, tiles in loads.items():
            print(f"[{time.monotonic() - started:5.0f} s] {peer}, {name}", file=sys.stderr)
            try:
                # a fresh server per workload (no backlog carried over); TiPG with as many workers as ours
                kwargs = {"workers": args.workers, "pool": args.pool_size} if peer == "tipg" else {}
                with start(url, **kwargs) as running:
                    urls = _urls(running.tiles, tiles)
                    fetched = fetch_tiles(urls, samples[name], budget=args.fetch_budget, timeout=args.timeout)
                    warm_up(urls, fetched, args)
                    result = http_load(peer, urls, args.concurrency, seconds[name], args.timeout)
                    found[name].append(_with_fetch(result, fetched, expected[name]))
            except Exception as err:  # noqa: BLE001 - a peer that fails is reported, the run goes on
                found[name].append(Result(peer, 0, 0.0, float("nan"), float("nan"), 0,
                                          status=f"failed: {str(err)[:300]}"))
            _settle(url)
    load_after = os.getloadavg()
    pools = (f"{args.pool_size} database connections per worker (ours and TiPG)" if args.pool_size
             else f"ours {args.concurrency} database connections, TiPG its default")
    longer = "".join(f" ({name[1]}: {t:.0f} s)" for name, t in seconds.items() if t != args.duration)
    print(f"\n{args.concurrency} clients, {args.duration:.0f} s per cell{longer}, {args.workers} uvicorn"
          f" worker(s) per server, {pools}, load by {'wrk' if shutil.which('wrk') else 'httpx'}"
          f" (timeout {args.timeout:.0f} s);"
          f" {os.cpu_count()} CPUs shared by load, servers and database; 1-min load average"
          f" {load_before[0]:.2f} before, {load_after[0]:.2f} after;"
          f" {time.monotonic() - started:.0f} s in all."
          f" Sizes over the tiles fetched once; features over {args.sample} sampled tiles per workload."
          f" Prepared polygon shapes current for: {', '.join(sorted(shapes)) or 'none'} (cold = no tile"
          f" cache anywhere; every tile rendered by the database on each request).")
    for name, tiles in loads.items():
        _print(name, tiles, expected[name], found[name])
    print("\n### Targets (issue 3), cold unless said\n")
    print("| target | met | figures |\n|---|---|---|")
    targets = _targets(found)
    for target, ok, figures in targets:
        print(f"| {target} | {'met' if ok else 'NOT met'} | {figures} |")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "load_before": load_before, "load_after": load_after, "args": vars(args) | {"database_url": None},
            "workloads": {name: {"tiles": loads[name], "expected": expected[name],
                                 "results": [asdict(r) for r in found[name]]} for name in loads},
            "targets": targets, "shapes": sorted(shapes)}, indent=1, default=str))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("PINGAN_DATABASE_URL"),
                        help="the demo database (default: $PINGAN_DATABASE_URL)")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--duration-for", action="append", default=[], metavar="W=SECONDS",
                        help="seconds per run for workload W (a, b, c): a workload of heavy tiles "
                             "finishes few in --duration, and which of them end inside it decides the rate")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers (ours and TiPG's)")
    parser.add_argument("--pool-size", type=int, default=None,
                        help="database connections per worker, ours and TiPG's (default: ours as many as"
                             " clients, TiPG its own default of 10)")
    parser.add_argument("--dense", type=int, default=16, help="dense z14 tiles per layer")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of uncounted load before each run")
    parser.add_argument("--sample", type=int, default=8, help="tiles decoded per workload and target")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds before a request counts as timed out")
    parser.add_argument("--fetch-budget", type=float, default=60.0,
                        help="seconds a peer may take to serve each workload's tiles once, one by one")
    parser.add_argument("--peers", default="tipg,pygeoapi", help="peers of PEERS to start ('' for none)")
    parser.add_argument("--peer", action="append", default=[], metavar="NAME=TEMPLATE",
                        help="a running server: URL template with {layer} {table} {z} {x} {y}")
    parser.add_argument("--workloads", default="",
                        help="only these workloads, by letter: a, b, c (default: all; for iterating)")
    parser.add_argument("--modes", default="cold,warm", help="our server's modes to run: cold, warm")
    parser.add_argument("--no-limit", action="store_true", help="skip the database limit (for iterating)")
    parser.add_argument("--json", default=None, help="also write every figure to this file")
    parser.add_argument("--service-url", default=os.environ.get("PINGAN_SERVICE_DATABASE_URL"),
                        help="the service role's URL (any database; the one of --database-url is used);"
                             " default: the private cluster's")
    parser.add_argument("--token", default=os.environ.get("PINGAN_BENCH_TOKEN"),
                        help="API token of an admin user of the database (pingan tokens create)")
    parser.add_argument("--build-shapes", action="store_true",
                        help="create and rebuild the prepared polygon shapes (tiles.shapes) first")
    parser.add_argument("--no-shapes", action="store_true",
                        help="check that no shapes are current (measure drawing from the tables)")
    args = parser.parse_args()
    if not args.database_url:
        parser.error("--database-url is required (or PINGAN_DATABASE_URL)")
    run(args)


if __name__ == "__main__":
    main()
