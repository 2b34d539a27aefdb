"""The peers of the benchmarks: TiPG and pygeoapi's stock providers, started against a database.

Each peer runs as its own uvicorn process on a free 127.0.0.1 port, with configuration
generated here, and is stopped by its PID::

    with tipg(db_url) as peer:          # TiPG 1.6, schema "pingan", defaults otherwise
        peer.tile_url("hazards", 14, x, y)
    with pygeoapi_stock(db_url) as peer:  # pygeoapi 0.21, providers PostgreSQL + MVT-postgresql
        peer.items_url("cases", "120.55,27.95,120.70,28.10", 1000)

A :class:`RunningPeer` carries the URL templates the benchmarks use: ``tiles`` with ``{layer}``
(registry id), ``{table}`` (``schema.table``), ``{z}``, ``{x}``, ``{y}``; ``items`` with
``{layer}``, ``{table}``, ``{bbox}``, ``{limit}``.

What is "stock" here: both peers are configured the way their documentation shows for a
PostGIS table, nothing tuned. The only addition is a ``statement_timeout`` on pygeoapi's
connections (``--pygeoapi-statement-timeout``, psycopg2 ``options``), so that a tile it cannot
finish is cut off in the database instead of loading the machine for the runs that follow; a
tile cut off this way is an error (HTTP 500) in the figures, as it would be for a client.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
UVICORN = [PY, "-m", "uvicorn", "--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"]
# The layers the benchmarks touch (registry id -> table in schema pingan, id column).
LAYERS = {"hazards": ("hazards", "id"), "cases": ("cases", "id"), "grids": ("grids", "code")}
CGCS2000 = "http://www.opengis.net/def/crs/EPSG/0/4490"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


@dataclass
class RunningPeer:
    name: str
    base: str
    tiles: str  # URL template, see the module docstring
    items: str
    proc: subprocess.Popen

    def tile_url(self, layer: str, z: int, x: int, y: int) -> str:
        return self.tiles.format(layer=layer, table=f"pingan.{LAYERS[layer][0]}", z=z, x=x, y=y)

    def items_url(self, layer: str, bbox: str, limit: int = 1000) -> str:
        return self.items.format(layer=layer, table=f"pingan.{LAYERS[layer][0]}", bbox=bbox, limit=limit)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(proc: subprocess.Popen, url: str, name: str, log: Path, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}: {log.read_text()[-1500:]}")
        try:
            urllib.request.urlopen(url, timeout=5)  # noqa: S310 - our own loopback server
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.3)
    stop(proc)
    raise RuntimeError(f"{name} did not answer {url} within {seconds:.0f} s: {log.read_text()[-1500:]}")


def stop(proc: subprocess.Popen) -> None:
    """Stop a server we started, by its PID (SIGTERM, then SIGKILL after 15 s)."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def _serve(name: str, command: list[str], env: dict[str, str], probe: str, workdir: Path,
           tiles: str, items: str) -> Iterator[RunningPeer]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = workdir / f"{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([*command, "--port", str(port)], cwd=workdir, env={**os.environ, **env},
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait(proc, base + probe, name, log)
        yield RunningPeer(name, base, tiles.replace("{base}", base), items.replace("{base}", base), proc)
    finally:
        stop(proc)


# -- TiPG ----------------------------------------------------------------------------------------
@contextmanager
def tipg(db_url: str, *, workdir: Path | None = None, workers: int = 1,
         pool: int | None = None) -> Iterator[RunningPeer]:
    """TiPG 1.6 (``tipg.main:app``) over schema ``pingan``: its defaults, so its 10,000-feature
    tile cap (``TIPG_MAX_FEATURES_PER_TILE``) and all columns as properties; ``workers`` uvicorn
    workers and, when given, at most ``pool`` database connections per worker (its default: 10),
    as ours, for an even comparison.

    ``TIPG_MAX_FEATURES_PER_QUERY`` is raised to 10,000 only so that a 1,000-feature page is
    allowed at all (its default is 10,000 in 1.6 as well; set explicitly, as bench_features did).
    """
    env = {"DATABASE_URL": db_url, "TIPG_DB_SCHEMAS": '["pingan"]',
           "TIPG_MAX_FEATURES_PER_QUERY": "10000", "PYTHONPATH": str(ROOT)}
    if pool is not None:
        env |= {"DB_MIN_CONN_SIZE": "1", "DB_MAX_CONN_SIZE": str(pool)}  # tipg.settings.PostgresSettings
    with _tmp(workdir) as wd, _serve(
        "tipg", [*UVICORN, "--workers", str(workers), "tipg.main:app"], env, "/collections", wd,
        "{base}/collections/{table}/tiles/WebMercatorQuad/{z}/{x}/{y}",
        "{base}/collections/{table}/items?limit={limit}&bbox={bbox}",
    ) as peer:
        yield peer


# -- pygeoapi, stock providers -------------------------------------------------------------------
def pygeoapi_config(db_url: str, port: int, *, statement_timeout_ms: int = 20_000) -> dict:
    """A minimal pygeoapi config: one collection per layer with the stock ``PostgreSQL`` feature
    provider and the stock ``MVT-postgresql`` tile provider, storage CRS EPSG:4490 (the truth:
    with the default CRS84 the bbox filter mixes SRIDs 4326 and 4490 and fails)."""
    u = urlsplit(db_url)
    data = {"host": u.hostname, "port": u.port or 5432, "dbname": u.path.lstrip("/"),
            "user": unquote(u.username or ""), "password": unquote(u.password or ""),
            "search_path": ["pingan"]}
    # Safety only: a statement is cut off after the timeout, and abandoned when its client is gone.
    options = {"options": f"-c statement_timeout={statement_timeout_ms}"
                          " -c client_connection_check_interval=2000"}
    resources = {}
    for layer, (table, id_field) in LAYERS.items():
        common = {"data": data, "id_field": id_field, "table": table, "geom_field": "geom",
                  "storage_crs": CGCS2000}
        resources[layer] = {
            "type": "collection", "title": layer, "description": f"pingan.{table}", "keywords": [layer],
            "extents": {"spatial": {"bbox": [120.3, 27.8, 120.9, 28.3],
                                    "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}},
            "providers": [
                {"type": "feature", "name": "PostgreSQL", **common, "options": options,
                 "crs": [CRS84, CGCS2000]},
                {"type": "tile", "name": "MVT-postgresql", **common,
                 "options": {**options, "zoom": {"min": 0, "max": 22}},
                 "format": {"name": "pbf", "mimetype": "application/vnd.mapbox-vector-tile"}},
            ],
        }
    return {
        "server": {
            "bind": {"host": "127.0.0.1", "port": port}, "url": f"http://127.0.0.1:{port}",
            "mimetype": "application/json; charset=UTF-8", "encoding": "utf-8", "language": "en-US",
            "cors": False, "pretty_print": False, "limits": {"default_items": 10, "max_items": 10000},
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": "OSM"},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {"title": "bench", "description": "bench", "keywords": ["bench"],
                               "keywords_type": "theme", "terms_of_service": "none", "url": "http://localhost"},
            "license": {"name": "none", "url": "http://localhost"},
            "provider": {"name": "bench", "url": "http://localhost"}, "contact": {"name": "bench"},
        },
        "resources": resources,
    }


@contextmanager
def pygeoapi_stock(db_url: str, *, workdir: Path | None = None,
                   statement_timeout_ms: int = 20_000) -> Iterator[RunningPeer]:
    """pygeoapi 0.21's Starlette app with the generated config and its generated OpenAPI."""
    import yaml

    with _tmp(workdir) as wd:
        port = free_port()  # pygeoapi writes absolute links from server.url: pick the port first
        config, openapi = wd / "pygeoapi-config.yml", wd / "pygeoapi-openapi.yml"
        cfg = pygeoapi_config(db_url, port, statement_timeout_ms=statement_timeout_ms)
        config.write_text(yaml.safe_dump(cfg, allow_unicode=True))
        env = {"PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)}
        done = subprocess.run([str(Path(PY).parent / "pygeoapi"), "openapi", "generate", str(config),
                               "--output-file", str(openapi)], env={**os.environ, **env},
                              capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"pygeoapi openapi generate failed: {done.stderr[-1500:]}")
        log = wd / "pygeoapi.log"
        base = f"http://127.0.0.1:{port}"
        with open(log, "wb") as out:
            proc = subprocess.Popen([*UVICORN, "pygeoapi.starlette_app:APP", "--port", str(port)], cwd=wd,
                                    env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait(proc, base + "/collections?f=json", "pygeoapi", log)
            yield RunningPeer(
                "pygeoapi", base,
                base + "/collections/{layer}/tiles/WebMercatorQuad/{z}/{y}/{x}?f=mvt",
                base + "/collections/{layer}/items?f=json&limit={limit}&bbox={bbox}", proc)
        finally:
            stop(proc)


@contextmanager
def _tmp(workdir: Path | None) -> Iterator[Path]:
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        yield workdir
        return
    with tempfile.TemporaryDirectory(prefix="pingan-peer-") as d:
        yield Path(d)


STARTERS = {"tipg": tipg, "pygeoapi": pygeoapi_stock}
