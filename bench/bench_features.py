"""Item pages of 1,000 features with a bbox: requests/s and p50/p99 with 20 concurrent clients.

    .venv/bin/python bench/bench_features.py [--database-url URL] [--duration 10]

Runs each server in ``PEERS`` on 127.0.0.1 (started and stopped here, by PID) against the same
database and loads it with ``wrk`` (``apt-get install wrk``; a slower asyncio client otherwise),
then runs the same SQL as our server directly in the database with as many connections (the
limit). Prints figures, not a verdict. A peer is one entry in ``PEERS``: how to start it and
its item URL. The database must hold the demo district (``pingan demo load --scale 1``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PY = sys.executable
UVICORN = [PY, "-m", "uvicorn", "--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"]
# Boxes over the dense centre of the demo district (CRS84), each matching well over 1,000 rows.
WORKLOADS = {"hazards": "120.55,27.95,120.70,28.10", "cases": "120.55,27.95,120.70,28.10"}


@dataclass(frozen=True)
class Peer:
    name: str
    command: list[str]  # "{port}" is replaced
    url: str  # "{base}", "{layer}", "{table}", "{bbox}" are replaced
    env: dict[str, str] = field(default_factory=dict)  # "{db}" is replaced
    needs: str | None = None  # a module that must be importable
    # Or started by bench/peers.py (generated config): a context manager taking the database URL
    # and yielding a RunningPeer, whose ``items`` template replaces ``url``'s "{base}".
    start_with: Callable[[str], AbstractContextManager] | None = None
    also: str | None = None  # a second URL to check once and report (not loaded)


PEERS = [
    Peer(
        "pingan",
        [*UVICORN, "--port", "{port}", "--factory", "api.asgi:app"],
        "{base}/ogc/collections/{layer}/items?limit=1000&bbox={bbox}",
        {"PINGAN_SERVICE_DATABASE_URL": "{service_db}"},
    ),
    Peer(
        "pingan via pygeoapi",
        [*UVICORN, "--port", "{port}", "--factory", "bench.bench_features:pygeoapi_only"],
        "{base}/ogc/collections/{layer}/items?limit=1000&bbox={bbox}",
        {"PINGAN_SERVICE_DATABASE_URL": "{service_db}"},
    ),
    Peer(
        "tipg",
        [*UVICORN, "--port", "{port}", "tipg.main:app"],
        "{base}/collections/pingan.{table}/items?limit=1000&bbox={bbox}",
        {"DATABASE_URL": "{db}", "TIPG_DB_SCHEMAS": '["pingan"]', "TIPG_MAX_FEATURES_PER_QUERY": "10000"},
        needs="tipg",
    ),
    # pygeoapi's stock PostgreSQL provider (bench/peers.py writes its config and OpenAPI). With
    # storage CRS EPSG:4490 it turns a CRS84 bbox into lat/lon order (pyproj without always_xy)
    # and matches nothing: the page is asked with bbox-crs=EPSG:4490 in lon/lat order, which
    # pygeoapi passes through, so that it returns the same 1,000 features. The standard request
    # is checked once and reported ("also").
    Peer(
        "pygeoapi (stock)",
        [],
        "{base}/collections/{layer}/items?f=json&limit=1000&bbox={bbox}"
        "&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/4490",
        needs="psycopg2",
        start_with=lambda db: _peers().pygeoapi_stock(db),
        also="{base}/collections/{layer}/items?f=json&limit=1000&bbox={bbox}",
    ),
]


def _peers():  # noqa: ANN202 - bench/peers.py, imported when used
    from bench import peers

    return peers


# Set by main(): the service role's URL of the database, and the headers every request sends.
SERVICE_DB = [""]
HEADERS: dict[str, str] = {}


def _request(url: str) -> urllib.request.Request:
    return urllib.request.Request(url, headers=HEADERS)  # noqa: S310 - our own loopback servers


def pygeoapi_only():  # noqa: ANN201 - a uvicorn factory
    """Our app with every item page through pygeoapi (the native path switched off)."""
    from api.asgi import app as make_app

    app = make_app()
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a):  # noqa: ANN001, ANN202
        async with inner(a) as state:
            a.state.ogc.native_items = False
            yield state

    app.router.lifespan_context = lifespan
    return app


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int = 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(peer: Peer, db: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [c.replace("{port}", str(port)) for c in peer.command]
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           **{k: v.replace("{service_db}", SERVICE_DB[0]).replace("{db}", db) for k, v in peer.env.items()}}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{peer.name} exited: {proc.stderr.read().decode()[-800:]}")
        try:
            urllib.request.urlopen(_request(base + "/"), timeout=2)  # noqa: S310 - our loopback server
            return proc, base
        except OSError as err:
            if getattr(err, "code", None):  # an HTTP error: the server answers
                return proc, base
            time.sleep(0.3)
    stop(proc)
    raise RuntimeError(f"{peer.name} did not start")


@contextmanager
def running(peer: Peer, db: str) -> Iterator[str]:
    """The peer's server, started on a free loopback port and stopped by its PID: its base URL."""
    if peer.start_with is not None:
        with peer.start_with(db) as p:
            yield p.base
        return
    proc, base = start(peer, db)
    try:
        yield base
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def load(url: str, seconds: int, clients: int) -> Result:
    if shutil.which("wrk"):
        return wrk(url, seconds, clients)
    return asyncio.run(python_load(url, seconds, clients))


def wrk(url: str, seconds: int, clients: int) -> Result:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "--latency", "--timeout", "60s",
         *[a for k, v in HEADERS.items() for a in ("-H", f"{k}: {v}")], url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        value, unit = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return Result(
        float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        ms("50%"),
        ms("99%"),
        (int(errors.group(1)) if errors else 0) + (sum(map(int, sockets.groups())) if sockets else 0),
    )


async def python_load(url: str, seconds: int, clients: int) -> Result:
    import httpx

    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            t = time.perf_counter()
            r = await http.get(url)
            latencies.append(time.perf_counter() - t)
            errors += r.status_code != 200

    async with httpx.AsyncClient(timeout=60, headers=HEADERS) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return summarise(latencies, seconds, errors)


def summarise(latencies: list[float], seconds: float, errors: int = 0) -> Result:
    cuts = statistics.quantiles(latencies, n=100)
    return Result(len(latencies) / seconds, cuts[49] * 1000, cuts[98] * 1000, errors)


@asynccontextmanager
async def _pool(db: str, size: int) -> AsyncIterator[object]:
    from psycopg_pool import AsyncConnectionPool

    async with AsyncConnectionPool(db, min_size=size, max_size=size) as pool:
        yield pool


async def database_limit(db: str, layer_id: str, bbox: str, seconds: int, clients: int) -> Result:
    """Our server's statements for the same page, run straight on the database.

    Each page ends in a rollback, on which psycopg forgets its prepared statements: these run
    with custom plans, the physical limit. The service commits, so psycopg prepares them after
    five executions (see docs/performance.md for what that costs at scale 10).
    """
    from api.ogc.params import items_query
    from api.ogc.queries import page_steps
    from api.ogc.store import arun
    from layers.catalog import default_registry

    query = items_query({"limit": "1000", "bbox": bbox}, default_registry()[layer_id])
    latencies: list[float] = []
    async with _pool(db, clients) as pool:

        async def warm() -> None:  # every connection runs the page once, untimed
            async with pool.connection() as conn:
                await arun(conn, page_steps(query))
                await conn.rollback()
                await asyncio.sleep(0.2)  # hold it, so that each warm-up gets its own connection

        await asyncio.gather(*(warm() for _ in range(clients)))
        stop_at = time.perf_counter() + seconds

        async def client() -> None:
            async with pool.connection() as conn:
                while time.perf_counter() < stop_at:
                    t = time.perf_counter()
                    await arun(conn, page_steps(query))
                    latencies.append(time.perf_counter() - t)
                    await conn.rollback()

        await asyncio.gather(*(client() for _ in range(clients)))
    return summarise(latencies, seconds)


def drain(url: str) -> None:
    """One more request, waited for: requests that the load left queued in the server are done
    when it returns, so they do not slow down what is measured next."""
    with contextlib.suppress(OSError):
        urllib.request.urlopen(_request(url), timeout=180).read()  # noqa: S310 - our loopback server


def check(url: str) -> tuple[str, float]:
    """What one request returns, and how long it takes alone."""
    import json

    t0 = time.perf_counter()
    with urllib.request.urlopen(_request(url), timeout=60) as r:  # noqa: S310 - our loopback server
        body = r.read()
    seconds = time.perf_counter() - t0
    doc = json.loads(body)
    return (f"{len(doc['features'])} features, numberMatched {doc.get('numberMatched')},"
            f" {len(body) / 1e6:.2f} MB, {1000 * seconds:.0f} ms alone"), seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=None, help="default: `pingan db url`")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--only", default=None, help="comma-separated peer names")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    parser.add_argument("--token", default=os.environ.get("PINGAN_BENCH_TOKEN"),
                        help="API token of a command or admin user of the database (pingan tokens create);"
                             " sent to every server (others ignore it)")
    parser.add_argument("--service-url", default=None,
                        help="the service role's URL for the database (default: the private cluster's)")
    parser.add_argument("--max-duration", type=int, default=40,
                        help="longest run for a slow peer (2.5 x clients x one page alone,"
                             " at least --duration)")
    args = parser.parse_args()
    from cli.config import database_target
    from layers.catalog import default_registry
    from layers.db import libpq_url

    db = libpq_url(args.database_url or database_target().url)
    from cli.config import private_service_url

    SERVICE_DB[0] = args.service_url or private_service_url(db) or ""
    if args.token:
        HEADERS["Authorization"] = f"Bearer {args.token}"
    registry = default_registry()
    rows: list[tuple[str, str, Result, str]] = []
    for layer_id, bbox in WORKLOADS.items():
        rows.append(
            (
                layer_id,
                "database (same SQL)",
                asyncio.run(database_limit(db, layer_id, bbox, args.duration, args.clients)),
                f"load avg {os.getloadavg()[0]:.1f}",  # evaluated after the run
            )
        )
    peers = [p for p in PEERS if not args.only or p.name in args.only.split(",")]
    for peer in peers:
        if (
            peer.needs
            and shutil.which(PY)
            and subprocess.run([PY, "-c", f"import {peer.needs}"], capture_output=True).returncode
        ):
            print(f"skipping {peer.name}: {peer.needs} is not installed")
            continue
        with running(peer, db) as base:
            for layer_id, bbox in WORKLOADS.items():
                fill = {"base": base, "layer": layer_id, "bbox": bbox,
                        "table": registry[layer_id].table.partition(".")[2]}
                url = peer.url.format(**fill)
                check(url)  # the first request opens connections; the second is timed
                note, alone = check(url)
                if peer.also:
                    also = peer.also.format(**fill)
                    note += f"; the standard request ({also.partition('?')[2]}): {check(also)[0]}"
                # A server that needs `alone` seconds for one page needs about clients x alone
                # for a round of pages when it shares its CPU: a run far shorter than that counts
                # no answers at all. Such peers are loaded long enough for several rounds.
                seconds = max(args.duration, min(args.max_duration, round(2.5 * args.clients * alone)))
                if args.clients * alone < 10:
                    load(url, 2, args.clients)  # warm up the server's connections
                    drain(url)
                result = load(url, seconds, args.clients)
                note += f"; load avg {os.getloadavg()[0]:.1f}"
                drain(url)
                if seconds != args.duration:
                    note += f"; loaded {seconds} s"
                rows.append((layer_id, peer.name, result, note))
    report(rows, args)


def report(rows: list[tuple[str, str, Result, str]], args: argparse.Namespace) -> None:
    print(
        f"\nitem pages, limit=1000 with a bbox; {args.clients} clients, {args.duration} s each, "
        f"{'wrk' if shutil.which('wrk') else 'asyncio client'}; {os.cpu_count()} CPUs shared by load,"
        f" server and"
        f" database; 1-min load average {os.getloadavg()[0]:.2f} at the end"
    )
    print(f"{'layer':8} {'server':22} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'vs pingan':>9}  response")
    ours = {layer: r.rps for layer, name, r, _ in rows if name == "pingan"}
    for layer, name, r, note in rows:
        ratio = f"{ours[layer] / r.rps:8.1f}x" if ours.get(layer) and r.rps else ""
        err = f" ({r.errors} errors)" if r.errors else ""
        if r.rps:
            print(f"{layer:8} {name:22} {r.rps:8.2f} {r.p50_ms:8.1f} {r.p99_ms:8.1f} {ratio:>9}  {note}{err}")
        else:
            print(f"{layer:8} {name:22} {0:8.2f} {'-':>8} {'-':>8} {'∞':>9}"
                  f"  no page answered under load; {note}{err}")
    print("\ntarget (issue 3): item pages at least 5x TiPG")
    for layer in ours:
        tipg = next((r.rps for lay, name, r, _ in rows if lay == layer and name == "tipg"), None)
        if tipg:
            verdict = "met" if ours[layer] >= 5 * tipg else "NOT met"
            print(f"  {layer}: {ours[layer]:.1f} vs {tipg:.1f} req/s = {ours[layer] / tipg:.1f}x: {verdict}")
    if args.json:
        import json
        from dataclasses import asdict

        Path(args.json).write_text(json.dumps(
            [{"layer": lay, "server": name, **asdict(r), "response": note} for lay, name, r, note in rows],
            indent=1))


if __name__ == "__main__":
    main()
