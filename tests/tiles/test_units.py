"""Parts of tiles/ that need no HTTP: tile matrix set, cache, SQL, keys, version reads, coalescing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from layers.catalog import GRIDS, HAZARDS, default_registry
from layers.db import SYSTEM
from layers.registry import Registry
from tiles.cache import TileCache
from tiles.errors import InvalidTileError
from tiles.service import TileKey, TileService
from tiles.settings import TileSettings
from tiles.sql import query_for
from tiles.tms import HALF_WORLD
from tiles.tms import WEB_MERCATOR_QUAD as WMQ
from tiles.versions import VersionClock

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("tile", [(0, 0, 0), (14, 13683, 6866), (22, 4194303, 0), (1, 1, 1)])
def test_bounds_agree_with_st_tileenvelope(demo_engine, tile) -> None:
    with demo_engine.connect() as conn:
        env = conn.execute(text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
                                "FROM ST_TileEnvelope(:z, :x, :y) e"),
                           dict(zip("zxy", tile, strict=True))).one()
    assert WMQ.bounds(*tile) == pytest.approx(tuple(env), abs=1e-6)


@pytest.mark.parametrize("tile", [(-1, 0, 0), (23, 0, 0), (0, 1, 0), (0, 0, 1), (3, -1, 0), (3, 0, 8)])
def test_tile_outside_the_matrix_is_refused(tile) -> None:
    with pytest.raises(InvalidTileError):
        WMQ.validate(*tile)


def test_tile_range_covers_a_lonlat_box() -> None:
    assert WMQ.tile_range(0, (-180, -85, 180, 85)) == (0, 0, 0, 0)
    col0, row0, col1, row1 = WMQ.tile_range(14, (120.652, 27.937, 120.673, 27.955))
    assert (col0, row0, col1, row1) == (13683, 6866, 13683, 6866)
    assert WMQ.tile_width(0) == 2 * HALF_WORLD


def test_cache_is_bounded_by_bytes_and_evicts_least_recently_used() -> None:
    cache = TileCache(max_bytes=10)
    cache.put("a", b"1234")
    cache.put("b", b"1234")
    assert cache.get("a") == b"1234"  # "a" is now the most recent
    cache.put("c", b"1234")  # 12 bytes > 10: "b" goes
    assert cache.get("b") is None and cache.get("a") and cache.get("c")
    assert cache.stats.bytes == 8 and cache.stats.entries == 2 and cache.stats.evictions == 1
    cache.put("huge", b"x" * 11)  # larger than the cache: not kept, evicts nothing
    assert cache.get("huge") is None and cache.stats.entries == 2
    cache.put("a", b"12")  # replacing accounts for the old size
    assert cache.stats.bytes == 6


def test_disabled_cache_keeps_nothing() -> None:
    cache = TileCache(max_bytes=0)
    cache.put("a", b"1")
    assert cache.get("a") is None and not cache.stats.enabled


@pytest.mark.parametrize("layer_id", [lid for lid in default_registry() if lid != "persons"])
@pytest.mark.parametrize("kind", ["detail", "aggregate"])
def test_sql_binds_only_the_tile_and_filters(layer_id, kind) -> None:
    layer = default_registry()[layer_id]
    q = query_for(layer, kind, ["state"] if any(p.name == "state" for p in layer.properties) else [])
    placeholders = set(re.findall(r"%\((\w+)\)s", q.text))
    assert placeholders <= {"z", "x", "y", "f_state"} and {"z", "x", "y"} <= placeholders
    assert "%s" not in q.text
    schema, table = layer.table.split(".")
    assert f'"{schema}"."{table}"' in q.text  # identifiers quoted
    assert "ST_Transform(e.env, 4490)" in q.text  # the envelope is transformed, integer SRID
    assert f't."{layer.geometry_column}" && tile.env_g' in q.text  # the column is never transformed
    assert query_for(layer, kind, ["state"] if "f_state" in placeholders else []) is q  # built once


def test_filter_on_unknown_property_is_refused_by_the_builder() -> None:
    with pytest.raises(KeyError):
        query_for(HAZARDS, "detail", ["nope"])


def test_polygon_detail_sql_simplifies_before_mvtgeom() -> None:
    sql = query_for(GRIDS, "detail").text
    assert "ST_AsMVTGeom(ST_Simplify(" in sql
    assert f"LIMIT {GRIDS.tiles.max_features + 1}" in sql


def _key(**over) -> TileKey:
    base = dict(layers=("hazards",), versions=(1,), fingerprints=("f",), z=14, x=1, y=2, role="command",
                areas=(), filters=(), multi=False)
    return TileKey(**(base | over))


@pytest.mark.parametrize("change", [
    {"versions": (2,)}, {"role": "town", "areas": ("330304001",)}, {"areas": ("330304002",)},
    {"filters": (("state", ("closed",)),)}, {"x": 2}, {"fingerprints": ("g",)}, {"multi": True},
])
def test_etag_changes_with_everything_the_tile_depends_on(change) -> None:
    assert _key().etag == _key().etag
    assert _key(**change).etag != _key().etag
    assert hash(_key(**change)) != hash(_key()) or _key(**change) != _key()


def test_etags_are_the_same_in_every_process() -> None:
    """Two workers (or a restart) give a tile the same ETag: a layer's fingerprint may not follow
    the process's string hashing (its roles are a frozenset)."""
    code = ("from layers.catalog import default_registry; from tiles.service import TileService;"
            "from tiles.settings import TileSettings;"
            "s = TileService(default_registry(), TileSettings());"
            "print(sorted(s._fingerprints.items()))")
    outputs = {subprocess.run([sys.executable, "-c", code], env=os.environ | {"PYTHONHASHSEED": seed},
                              capture_output=True, text=True, check=True, cwd=ROOT).stdout
               for seed in ("1", "2", "3", "4")}
    assert len(outputs) == 1, outputs
    assert "hazards" in outputs.pop()


class _FakeCursor:
    def __init__(self, rows: list[tuple]) -> None:
        self.rows = rows

    async def fetchall(self) -> list[tuple]:
        return self.rows

    async def fetchone(self) -> tuple | None:
        return self.rows[0] if self.rows else None


class _FakePool:
    """Enough of AsyncConnectionPool for VersionClock: counts the reads of layer_versions."""

    def __init__(self) -> None:
        self.reads = 0
        self.version = 1

    @contextlib.asynccontextmanager
    async def connection(self):
        yield self

    async def execute(self, query: str) -> _FakeCursor:
        if "to_regclass" in query:  # is there a table of prepared shapes? (tiles.shapes)
            return _FakeCursor([(False,)])
        self.reads += 1
        await asyncio.sleep(0.01)
        return _FakeCursor([("hazards", self.version)])


def test_version_clock_reads_once_per_ttl_and_shares_a_read() -> None:
    async def scenario() -> None:
        pool = _FakePool()
        clock = VersionClock(ttl=0.2)
        seen = await asyncio.gather(*(clock.current(pool) for _ in range(10)))  # type: ignore[arg-type]
        assert pool.reads == 1 and all(s == {"hazards": 1} for s in seen)
        pool.version = 2
        assert await clock.current(pool) == {"hazards": 1}  # type: ignore[arg-type]  # still trusted
        await asyncio.sleep(0.25)
        assert await clock.current(pool) == {"hazards": 2}  # type: ignore[arg-type]
        assert pool.reads == 2

    asyncio.run(scenario())


class _CountingService(TileService):
    def __init__(self, fail: bool = False) -> None:
        super().__init__(Registry().register(HAZARDS), TileSettings(cache_bytes=1_000_000))
        self.renders = 0
        self.fail = fail

    async def _render(self, pool, principal, key) -> bytes:  # type: ignore[override]
        self.renders += 1
        await asyncio.sleep(0.05)
        if self.fail:
            raise RuntimeError("database gone")
        return b"tile"


def test_concurrent_misses_share_one_render() -> None:
    async def scenario() -> None:
        service = _CountingService()
        results = await asyncio.gather(*(service.tile(None, SYSTEM, _key()) for _ in range(10)))  # type: ignore[arg-type]
        assert service.renders == 1 and service.stats.coalesced == 9
        assert results == [(b"tile", False)] * 10
        assert await service.tile(None, SYSTEM, _key()) == (b"tile", True)  # type: ignore[arg-type]

    asyncio.run(scenario())


def test_a_failed_render_fails_its_waiters_and_is_not_kept() -> None:
    async def scenario() -> None:
        service = _CountingService(fail=True)
        results = await asyncio.gather(*(service.tile(None, SYSTEM, _key()) for _ in range(3)),  # type: ignore[arg-type]
                                       return_exceptions=True)
        assert all(isinstance(r, RuntimeError) for r in results) and service.renders == 1
        with pytest.raises(RuntimeError):
            await service.tile(None, SYSTEM, _key())  # type: ignore[arg-type]
        assert service.renders == 2 and service.stats.entries == 0

    asyncio.run(scenario())
