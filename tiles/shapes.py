"""Tile shapes: polygon geometry prepared once per zoom, so a polygon tile costs little to render.

A polygon tile used to transform, simplify, snap, validate (wagyu) and clip every polygon on
every request; at demo scale 10 the densest z13 grid tile (4,047 grids) took 70 ms, of which
~50 ms was that preparation. None of it depends on the tile: only on the polygon and the zoom.
So for each polygon layer and each zoom ``minzoom..min(maxzoom, SHAPES_MAXZOOM)``,
``pingan.tile_shapes`` keeps each feature's geometry exactly as ``ST_AsMVTGeom`` would draw it,
but in the MVT units of the *whole zoom level* (4,096 per tile, y down from the north edge,
SRID 0): simplified to ``simplify_px``, snapped, valid and oriented. A tile is then a
translation of the shapes inside it (plus a real clip for the few crossing its buffered edge),
and byte for byte the same features as before.

The store is derived data of the *owner* side: the service role may only read it. It is rebuilt
per layer by :func:`rebuild` (after an ETL refresh, ``pingan tiles build``, or a benchmark),
which stamps it with the layer's data version in ``pingan.tile_shape_versions``. The service
uses a layer's shapes only when that stamp equals the version the tile is keyed on; otherwise
(never built, stale after a refresh, table absent) it renders from the base table as before. So
a stale store costs speed, never correctness.

Each shape also lists the tiles of its zoom that its *source* geometry intersects
(``tiles``, ids ``x << 20 | y``: :func:`tile_id`). A tile holds exactly the features
intersecting it; a shape near the tile's edge may not (simplified and snapped, it can reach
over an edge its source does not cross), and a tile used to look each such shape up in the
layer's table for an exact test (0.5-0.7 of 3.3-4.0 ms of a mean z13 grid tile at demo scale 10).
The same test, run once per shape and tile when the store is built, makes it a membership test.

The tables and their grants are migrations 0008 and 0023 (layers/migrations/sql/).
"""

from __future__ import annotations

from collections.abc import Iterable

from psycopg import sql
from sqlalchemy import Connection, text

from layers.models import SRID
from layers.registry import Layer, Registry
from tiles.tms import HALF_WORLD, MVT_EXTENT, TILE_SIZE

SHAPES_MAXZOOM = 14  # above it polygon tiles hold few features and render cheaply from the table
TABLE = "pingan.tile_shapes"
VERSIONS_TABLE = "pingan.tile_shape_versions"
TILE_ID_SHIFT = 20  # a tile's id in ``tiles``: x << 20 | y (zooms up to 18 hold x, y < 2^18)


def tile_id(x: int, y: int) -> int:
    """The id of tile (x, y) in ``pingan.tile_shapes.tiles`` (the tile SQL computes it the same way)."""
    return (x << TILE_ID_SHIFT) | y


def eligible(layer: Layer) -> bool:
    """Polygon layers of the administrative kind get shapes (points and lines are cheap to draw
    from the table; a personal layer's rows depend on the caller, which one shared store cannot)."""
    return (layer.dimension == 2 and layer.sensitivity != "personal"
            and layer.tiles.minzoom <= SHAPES_MAXZOOM)


def stored_zooms(layer: Layer) -> range:
    """The zooms whose tiles of ``layer`` are drawn from shapes."""
    if not eligible(layer):
        return range(0)
    return range(layer.tiles.minzoom, min(layer.tiles.maxzoom, SHAPES_MAXZOOM) + 1)


def _props(layer: Layer) -> sql.Composable:
    from tiles.sql import property_expr  # noqa: PLC0415 - tiles.sql imports this module

    pairs = [sql.SQL("{}, {}").format(sql.Literal(name), property_expr(layer.get_property(name)))
             for name in layer.tiles.properties]
    if not pairs:
        return sql.SQL("'{}'::jsonb")
    return sql.SQL("jsonb_strip_nulls(jsonb_build_object({}))").format(sql.SQL(", ").join(pairs))


def build_statement(layer: Layer) -> str:
    """INSERT the shapes of ``layer`` at every stored zoom (SQLAlchemy text; binds ``:zooms``, int[]).

    The geometry is what ``tiles.sql`` draws for a detailed polygon, with the whole world as
    one tile of ``4096 * 2^z`` units: ``ST_Simplify`` to ``simplify_px`` tile pixels, then
    ``ST_AsMVTGeom`` without a clip, which snaps, validates and orients. Polygons under one
    pixel are left out, as the tile SQL leaves them out.

    ``tiles``: every tile of the zoom whose envelope the source geometry intersects, by the very
    test the tile SQL makes on the table (``ST_Intersects`` with ``ST_Transform(ST_TileEnvelope(z,
    x, y), SRID)``), tried on the tiles under the source's Mercator box widened by a metre (the
    transforms agree to ~1e-9 m, so no tile the source touches is missed).

    Rows go in by zoom and first tile, so the shapes of one tile lie together in the table: a
    tile reads a few pages rather than one row from each (rows of all zooms of a feature used
    to be written side by side).
    """
    schema, _, table = layer.table.partition(".")
    return sql.SQL(
        "INSERT INTO pingan.tile_shapes (layer_id, zoom, key, geom, props, tiles)"
        " SELECT {layer_id}, z, t.{id}::text, ST_SetSRID(s.g, 0), {props}, k.tiles"
        " FROM {table} t CROSS JOIN unnest(CAST(:zooms AS int[])) z"
        " CROSS JOIN LATERAL (SELECT ST_Transform(t.{geom}, 3857) AS g) m"
        " CROSS JOIN LATERAL (SELECT {world_width} / 2 ^ z / {size} AS px) p"
        " CROSS JOIN LATERAL (SELECT ST_AsMVTGeom(ST_Simplify(m.g, p.px * {simplify}, true), {world},"
        " {extent} << z, 0, false) AS g) s"
        " CROSS JOIN LATERAL (SELECT ST_Expand(m.g::box2d, 1.0) AS b, {world_width} / 2 ^ z AS w,"
        " (1 << z) - 1 AS last) e"
        " CROSS JOIN LATERAL (SELECT coalesce(array_agg((tx::int8 << {shift}) | ty ORDER BY tx, ty),"
        " '{{}}') AS tiles"
        " FROM generate_series(greatest(0, floor((ST_XMin(e.b) + {half}) / e.w)::int),"
        " least(e.last, floor((ST_XMax(e.b) + {half}) / e.w)::int)) tx,"
        " generate_series(greatest(0, floor(({half} - ST_YMax(e.b)) / e.w)::int),"
        " least(e.last, floor(({half} - ST_YMin(e.b)) / e.w)::int)) ty"
        " WHERE ST_Intersects(t.{geom}, ST_Transform(ST_TileEnvelope(z, tx, ty), {srid}))) k"
        " WHERE ST_Area(m.g) >= p.px * p.px AND s.g IS NOT NULL"
        " ORDER BY z, k.tiles[1], t.{id}"
    ).format(
        layer_id=sql.Literal(layer.id), id=sql.Identifier(layer.id_column),
        geom=sql.Identifier(layer.geometry_column), table=sql.Identifier(schema, table),
        simplify=sql.Literal(float(layer.tiles.simplify_px)), extent=sql.Literal(MVT_EXTENT),
        world=sql.SQL("ST_MakeEnvelope({0}, {0}, {1}, {1}, 3857)::box2d").format(
            sql.Literal(-HALF_WORLD), sql.Literal(HALF_WORLD)),
        world_width=sql.Literal(2 * HALF_WORLD), size=sql.Literal(float(TILE_SIZE)), props=_props(layer),
        half=sql.Literal(HALF_WORLD), shift=sql.Literal(TILE_ID_SHIFT), srid=sql.Literal(SRID),
    ).as_string(None)


_PLAIN_TABLE = text("SELECT c.relkind = 'r' AND NOT c.relrowsecurity FROM pg_class c"
                    " WHERE c.oid = to_regclass(:t)")


def table_exists(conn: Connection) -> bool:
    return conn.execute(text("SELECT to_regclass('pingan.tile_shape_versions') IS NOT NULL")).scalar_one()


def rebuild(conn: Connection, registry: Registry, layer_ids: Iterable[str] | None = None) -> dict[str, int]:
    """Rebuild the shapes of ``layer_ids`` (default: every eligible layer) in ``conn``'s transaction.

    Run it as the owner, after the refresh that bumped the layers' versions (in the same
    transaction, or after it). Returns the rows written per layer. Skipped: layers without
    shapes (points, personal layers), and layers whose source is a view or a table under
    row-level security (what they hold depends on the caller). Nothing happens when the tables
    do not exist.
    """
    if not table_exists(conn):
        return {}
    ids = list(layer_ids) if layer_ids is not None else list(registry)
    written: dict[str, int] = {}
    for layer_id in ids:
        layer = registry.get(layer_id)
        if layer is None or not eligible(layer):
            continue
        if not conn.execute(_PLAIN_TABLE, {"t": layer.table}).scalar():
            # A view (e.g. counts per area, filtered for the caller) or a table under row-level
            # security: its rows depend on who asks, so one shared store cannot hold them.
            conn.execute(text("DELETE FROM pingan.tile_shape_versions WHERE layer_id = :id"),
                         {"id": layer.id})
            continue
        # One builder per layer at a time; the version read after the lock is the one stamped,
        # and the shapes are built from data at least that new.
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('pingan.tile_shapes'), hashtext(:id))"),
                     {"id": layer.id})
        version = conn.execute(text("SELECT coalesce((SELECT version FROM pingan.layer_versions"
                                    " WHERE layer_id = :id), 0)"), {"id": layer.id}).scalar_one()
        conn.execute(text("DELETE FROM pingan.tile_shapes WHERE layer_id = :id"), {"id": layer.id})
        result = conn.execute(text(build_statement(layer)), {"zooms": list(stored_zooms(layer))})
        written[layer.id] = result.rowcount
        conn.execute(text(
            "INSERT INTO pingan.tile_shape_versions (layer_id, version) VALUES (:id, :v)"
            " ON CONFLICT (layer_id) DO UPDATE SET version = EXCLUDED.version, built_at = now()"),
            {"id": layer.id, "v": version})
    return written
