"""Prepared polygon shapes (tiles.shapes): the same tiles as from the table, used only when current.

The shapes are rebuilt here in the session's demo database (as an ETL refresh would).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from layers import versions
from layers.catalog import GRIDS, TOWNS, VILLAGES, default_registry
from layers.db import Principal, atransaction
from layers.registry import Layer, Registry
from tests.tiles.conftest import make_client
from tests.tiles.reference import codes_in_tile, decode, densest_tile, district_tiles, tile_url
from tiles import shapes
from tiles.render import get_tile
from tiles.service import TileService
from tiles.settings import TileSettings

ADMIN = Principal(user="test", role="admin")


@pytest.fixture(scope="module")
def built(demo_engine: Engine) -> Iterator[dict[str, int]]:
    """The shapes of the demo database, rebuilt (the tables come with migration 0008)."""
    with demo_engine.begin() as conn:
        written = shapes.rebuild(conn, default_registry())
    yield written


def _render_all(url: str, layer: Layer, tiles: list[tuple[int, int, int]], *, use: bool) -> list[bytes]:
    """Each tile of ``layer`` rendered directly (no cache), as an admin, from shapes or the table."""
    async def run() -> list[bytes]:
        pool = psycopg_pool(url)
        await pool.open()
        try:
            out = []
            for z, x, y in tiles:
                async with atransaction(pool, ADMIN) as conn:
                    out.append(await get_tile(conn, layer, z, x, y, shapes=use))
            return out
        finally:
            await pool.close()

    return asyncio.run(run())


def _render(url: str, layer: Layer, tile: tuple[int, int, int], *, use: bool) -> bytes:
    return _render_all(url, layer, [tile], use=use)[0]


def _features(content: bytes, layer_id: str) -> dict[str, tuple]:
    """code -> (geometry, properties); a code twice would be a bug, so it is checked."""
    features = decode(content).get(layer_id, []) if content else []
    out = {f["properties"]["code"]: (f["geometry"], f["properties"]) for f in features}
    assert len(out) == len(features)
    return out


def test_rebuild_writes_each_stored_zoom(built, demo_engine) -> None:
    assert set(built) == {"towns", "villages", "grids"}
    with demo_engine.connect() as conn:
        rows = dict(conn.execute(text(
            "SELECT zoom, count(*) FROM pingan.tile_shapes WHERE layer_id = 'grids' GROUP BY zoom")).all())
        stamped = conn.execute(text("SELECT version FROM pingan.tile_shape_versions"
                                    " WHERE layer_id = 'grids'")).scalar_one()
        current = versions.versions(conn).get("grids", 0)
    assert sorted(rows) == list(shapes.stored_zooms(GRIDS)) == list(range(10, shapes.SHAPES_MAXZOOM + 1))
    assert rows[13] == 2500 and rows[10] < 2500  # sub-pixel grids are left out at z10, as in tiles
    assert stamped == current


@pytest.mark.parametrize("layer", [GRIDS, VILLAGES, TOWNS], ids=lambda layer: layer.id)
def test_shapes_draw_the_same_features_as_the_table(built, demo_url, demo_engine, layer) -> None:
    """Same features, same geometry vertex for vertex, same properties: on the densest tile of
    every stored zoom and on every z13 tile of the district (edges, clips, empty tiles)."""
    tiles = [densest_tile(demo_engine, layer.table.split(".")[1], z) for z in shapes.stored_zooms(layer)]
    tiles += district_tiles(demo_engine, 13)
    prepared = _render_all(demo_url, layer, tiles, use=True)
    table = _render_all(demo_url, layer, tiles, use=False)
    for tile, a, b in zip(tiles, prepared, table, strict=True):
        assert _features(a, layer.id) == _features(b, layer.id), tile
    # the comparison is not vacuous: the densest z13 grid tile holds hundreds of grids
    if layer is GRIDS:
        dense = densest_tile(demo_engine, "grids", 13)
        assert len(_features(_render(demo_url, layer, dense, use=True), "grids")) > 100


def test_shapes_tile_holds_exactly_the_intersecting_polygons(built, demo_url, demo_engine) -> None:
    tiles = district_tiles(demo_engine, 13)
    for tile, content in zip(tiles, _render_all(demo_url, GRIDS, tiles, use=True), strict=True):
        assert set(_features(content, "grids")) == codes_in_tile(demo_engine, "grids", tile), tile


def test_service_uses_shapes_only_while_current(built, demo_url, demo_engine) -> None:
    async def key_uses_shapes(service: TileService, z: int) -> bool:
        pool = psycopg_pool(demo_url)
        await pool.open()
        try:
            service.clock.expire()
            _, x, y = densest_tile(demo_engine, "grids", z)
            key = await service.collection_key(pool, ADMIN, "grids", "WebMercatorQuad", z, x, y)
            return key.shapes == (True,)
        finally:
            await pool.close()

    service = TileService(default_registry(), TileSettings())
    assert asyncio.run(key_uses_shapes(service, 13))
    assert not asyncio.run(key_uses_shapes(service, shapes.SHAPES_MAXZOOM + 1))  # not stored: table
    with demo_engine.begin() as conn:  # a refresh without a rebuild: the shapes are stale
        versions.bump(conn, ["grids"])
    try:
        assert not asyncio.run(key_uses_shapes(service, 13))
        tile = densest_tile(demo_engine, "grids", 13)
        with make_client(demo_url) as c:  # and the tile is still right, from the table
            features = decode(c.get(tile_url("grids", tile)).content)["grids"]
            assert {f["properties"]["code"] for f in features} == codes_in_tile(demo_engine, "grids", tile)
    finally:
        with demo_engine.begin() as conn:
            shapes.rebuild(conn, default_registry(), ["grids"])
    assert asyncio.run(key_uses_shapes(service, 13))


def test_max_features_still_aggregates_with_shapes(built, demo_url, demo_engine) -> None:
    capped = dataclasses.replace(GRIDS, tiles=dataclasses.replace(GRIDS.tiles, max_features=10))
    tile = densest_tile(demo_engine, "grids", 13)
    features = decode(_render(demo_url, capped, tile, use=True))["grids"]
    assert features and all(f["properties"]["aggregated"] for f in features)
    sparse = next(t for t in district_tiles(demo_engine, 13)
                  if 0 < len(codes_in_tile(demo_engine, "grids", t)) <= 10)
    detailed = decode(_render(demo_url, capped, sparse, use=True))["grids"]
    assert not any(f["properties"].get("aggregated") for f in detailed)
    assert {f["properties"]["code"] for f in detailed} == codes_in_tile(demo_engine, "grids", sparse)


def test_rebuild_without_the_table_does_nothing(demo_engine) -> None:
    with demo_engine.connect() as conn:
        tx = conn.begin()
        try:  # DDL is transactional: the tables come back with the rollback
            conn.execute(text("DROP TABLE pingan.tile_shapes, pingan.tile_shape_versions"))
            assert shapes.rebuild(conn, Registry().register(GRIDS)) == {}
        finally:
            tx.rollback()


def psycopg_pool(url: str):  # noqa: ANN201 - a small local helper
    from psycopg_pool import AsyncConnectionPool

    return AsyncConnectionPool(url, min_size=1, max_size=2, open=False)
