"""Prepared polygon shapes (tiles.shapes): the same tiles as from the table, used only when current.

The shapes are rebuilt here in the session's demo database (as an ETL refresh would).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine, text

from layers import versions
from layers.catalog import GRIDS, TOWNS, VILLAGES, default_registry
from layers.db import Principal, atransaction
from layers.registry import Layer, Registry
from tests.tiles.conftest import make_client
from tests.tiles.reference import codes_in_tile, decode, densest_tile, district_tiles, tile_url
from tiles import shapes
from tiles.render import _PREPARE_CALLER, _stating, get_tile
from tiles.service import TileService
from tiles.settings import TileSettings
from tiles.sql import query_for

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


# -- which tiles each shape's source intersects (migration 0023) ---------------------------------
_LISTED = text("SELECT tiles FROM pingan.tile_shapes WHERE layer_id = :layer AND zoom = :z AND key = :key")
# Independently of the build: the tiles of the 3 x 3 block around the one holding a point of the
# source (grids are smaller than a z13 tile) whose EPSG:4490 envelope the source intersects.
_AROUND = text("""
    SELECT tx || ',' || ty FROM
        (SELECT ST_Transform(ST_PointOnSurface(CAST(:geom AS geometry)), 3857) AS p,
                40075016.68557849 / 2 ^ :z AS w) q,
        generate_series(floor((ST_X(p) + 20037508.342789244) / w)::int - 1,
                        floor((ST_X(p) + 20037508.342789244) / w)::int + 1) tx,
        generate_series(floor((20037508.342789244 - ST_Y(p)) / w)::int - 1,
                        floor((20037508.342789244 - ST_Y(p)) / w)::int + 1) ty
    WHERE ST_Intersects(CAST(:geom AS geometry), ST_Transform(ST_TileEnvelope(:z, tx, ty), 4490))""")


def _ids(pairs: list[str]) -> set[int]:
    return {shapes.tile_id(*map(int, pair.split(","))) for pair in pairs}


def test_each_shape_lists_the_tiles_its_source_intersects(built, demo_engine) -> None:
    """Every grid shape at z13 and z14: its ``tiles`` are exactly the tiles its grid intersects."""
    many = 0
    with demo_engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT s.zoom, s.key, s.tiles, ST_AsEWKB(t.geom) FROM pingan.tile_shapes s"
            " JOIN pingan.grids t ON t.code = s.key WHERE s.layer_id = 'grids' AND s.zoom IN (13, 14)")).all()
        assert len(rows) == 5000
        for z, key, listed, geom in rows:
            expected = _ids(conn.execute(_AROUND, {"geom": geom, "z": z}).scalars().all())
            assert set(listed) == expected and expected, (z, key)
            many += len(listed) > 1
    assert many > 100  # grids crossing tile edges are among them


def test_a_source_on_a_tile_edge_lists_every_tile_it_touches(demo_engine) -> None:
    """A grid whose west edge is its tile's west edge (as the tile SQL computes that edge) touches
    the tile to its west: the build lists every tile the exact test says it intersects, however
    the edge rounds in Mercator."""
    layer = dataclasses.replace(GRIDS, id="edge-test", table="pg_temp.edge_grids")
    z, x, y = densest_tile(demo_engine, "grids", 13)
    with demo_engine.connect() as conn:
        tx = conn.begin()
        try:
            conn.execute(text("CREATE TEMP TABLE edge_grids AS SELECT * FROM pingan.grids LIMIT 0"))
            conn.execute(text(
                "INSERT INTO edge_grids (code, village_code, name, geom)"
                " SELECT '330304999999001', '330304999999', 'edge', ST_Multi(ST_MakeEnvelope(ST_XMin(e),"
                " ST_YMin(e) + 0.3 * (ST_YMax(e) - ST_YMin(e)), ST_XMin(e) + 0.001,"
                " ST_YMin(e) + 0.6 * (ST_YMax(e) - ST_YMin(e)), 4490))"
                " FROM (SELECT ST_Transform(ST_TileEnvelope(:z, :x, :y), 4490) AS e) s"),
                {"z": z, "x": x, "y": y})
            conn.execute(text(shapes.build_statement(layer)), {"zooms": [z]})
            listed = conn.execute(_LISTED, {"layer": layer.id, "z": z, "key": "330304999999001"}).scalar_one()
            geom = conn.execute(text("SELECT ST_AsEWKB(geom) FROM edge_grids")).scalar_one()
            expected = _ids(conn.execute(_AROUND, {"geom": geom, "z": z}).scalars().all())
        finally:
            tx.rollback()
    assert set(listed) == expected
    assert {shapes.tile_id(x, y), shapes.tile_id(x - 1, y)} <= expected  # it does touch the west tile


def _plan_nodes(node: dict) -> Iterator[dict]:
    yield node
    for child in node.get("Plans", []):
        yield from _plan_nodes(child)


def test_a_shapes_tile_reads_nothing_of_the_layers_table(built, demo_url, demo_engine) -> None:
    """The densest z13 grid tile, drawn from shapes with the service's generic plan: no plan node
    on ``pingan.grids`` runs. The shapes on the tile's edge are decided by their ``tiles``; they
    used to be looked up in the table one by one (0.5-0.7 ms of a mean tile at demo scale 10)."""
    query = query_for(GRIDS, "detail", shapes=True)
    z, x, y = densest_tile(demo_engine, "grids", 13)
    with psycopg.connect(demo_url) as conn:  # as the service: the caller stated, generic plans
        conn.execute(_PREPARE_CALLER)  # type: ignore[arg-type]
        conn.execute(_stating(ADMIN))  # type: ignore[arg-type]
        conn.execute(query.prepare)  # type: ignore[arg-type]  # registry-built text
        explain = f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE {query.name}({z}, {x}, {y})"
        plan = conn.execute(explain).fetchone()[0]  # type: ignore[arg-type,index]
        conn.rollback()
    nodes = list(_plan_nodes(plan[0]["Plan"]))
    assert not [n for n in nodes if n.get("Relation Name") == "grids" and n.get("Actual Loops", 0) > 0]
    scans = [n for n in nodes if n.get("Relation Name") == "tile_shapes"]
    assert scans and scans[0]["Actual Rows"] > 100  # the tile is drawn from shapes, many of them
    assert any(n.get("Relation Name") == "grids" for n in nodes)  # still named: grants still apply
