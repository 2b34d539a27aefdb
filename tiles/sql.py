"""Tile SQL, built once per layer, kind and filter shape from the layer registry.

Identifiers come only from the registry and are quoted by ``psycopg.sql``; the only bound
parameters are the tile address ``%(z)s, %(x)s, %(y)s`` and the filter values ``%(f_<name>)s``.
Every statement returns one ``bytea``: the layer's MVT (an empty ``bytea`` for an empty tile).

Why the statements look the way they do:

- The spatial filter is ``geom && ST_Transform(envelope, 4490)``: the envelope is transformed
  once, the column never, so the GiST index on ``geom`` answers it. Mercator is cylindrical, so
  the 3857 tile rectangle maps to an exact lon/lat rectangle. SRIDs are integers: a text CRS in
  ST_Transform costs ~55 ms per call on this PostGIS/PROJ.
- Points are taken from the tile itself, without the MVT buffer: every point then lies in exactly
  one tile, so counts in tiles add up to counts in the database.
- Polygons must intersect the tile (``ST_Intersects`` after ``&&``); they are simplified in 3857
  to ``simplify_px`` tile pixels before ``ST_AsMVTGeom`` (which snaps to the 4096 grid and clips
  with a 64-unit buffer), and dropped only if their whole area is below one pixel.
- Lines are drawn like polygons (intersect, simplify by zoom, snap and clip), without the area
  test, and never aggregated: a line tile is the detailed statement alone, every line crossing
  the tile (a line has no single place where a cell could count it).
- A detailed tile is first counted with ``LIMIT max_features + 1`` (the cheapest bounded
  count); the same statement then runs either the detailed branch or the aggregated one, so the
  decision costs no extra round trip. The branches are gated by an uncorrelated sub-select,
  which PostgreSQL evaluates once as an InitPlan and turns into a one-time filter: the branch not
  taken scans nothing.
- Aggregated cells are square, ``cell_px`` tile pixels wide, counted from the tile's corner, so
  cells of neighbouring tiles never overlap. A cell is drawn at the mean of its points (where the
  points are, rather than at an arbitrary cell centre) and carries ``count``, ``aggregated`` and
  ``count_<value>`` per ``group_by`` value; the per-value counts travel as a ``jsonb`` column,
  which ST_AsMVT expands into properties, so values need not be known in advance.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Literal

from psycopg import sql

from layers.models import SRID
from layers.registry import Layer, Property
from tiles.shapes import TILE_ID_SHIFT, eligible
from tiles.tms import MVT_BUFFER, MVT_EXTENT, TILE_SIZE

log = logging.getLogger(__name__)

Kind = Literal["detail", "aggregate"]

_TILE_CTE = sql.SQL(
    "tile AS (SELECT e.env, g.env_g, ST_XMin(g.env_g) AS gx0, ST_XMax(g.env_g) AS gx1,"
    " ST_YMin(g.env_g) AS gy0, ST_YMax(g.env_g) AS gy1, ST_XMin(e.env) AS mx0, ST_YMin(e.env) AS my0,"
    " (ST_XMax(e.env) - ST_XMin(e.env)) / {size} AS px"
    " FROM (SELECT ST_TileEnvelope(%(z)s::int, %(x)s::int, %(y)s::int) AS env) e"
    " CROSS JOIN LATERAL (SELECT ST_Transform(e.env, {srid}) AS env_g) g)"
)
# Spherical Mercator of a lon/lat point in closed form. PROJ takes EPSG:4490 to 3857 with a
# ballpark (null) datum step and this same formula, so the metres agree to ~1e-9 m on the demo,
# while ST_Transform costs ~4 us per point against ~1 us here: most of an aggregated tile's time.
_MERC_X = "(6378137.0 * radians(ST_X({})))"
_MERC_Y = "(6378137.0 * ln(tan(pi() / 4 + radians(ST_Y({})) / 2)))"


def _merc(point: sql.Composable) -> tuple[sql.Composable, sql.Composable]:
    return sql.SQL(_MERC_X).format(point), sql.SQL(_MERC_Y).format(point)


def _in_tile(point: sql.Composable) -> sql.Composable:
    """Half-open test of a 4490 point against the tile: each point belongs to exactly one tile.

    ``&&`` alone is not enough: the index compares float4 boxes rounded outwards, which lets
    points a few centimetres outside the tile in.
    """
    return sql.SQL(
        "ST_X({p}) >= tile.gx0 AND ST_X({p}) < tile.gx1 AND ST_Y({p}) >= tile.gy0 AND ST_Y({p}) < tile.gy1"
    ).format(p=point)


def _mvt_geom(geom_3857: sql.Composable) -> sql.Composable:
    return sql.SQL("ST_AsMVTGeom({}, tile.env, {}, {})").format(
        geom_3857, sql.Literal(MVT_EXTENT), sql.Literal(MVT_BUFFER))


@dataclass(frozen=True)
class TileQuery:
    """A compiled tile statement: run it with ``{"z", "x", "y", "f_<name>"...}``."""

    layer_id: str
    kind: Kind
    filter_names: tuple[str, ...]
    text: str
    shapes: bool = False  # drawn from ``pingan.tile_shapes`` (see ``tiles.shapes``)

    @property
    def param_names(self) -> tuple[str, ...]:
        return ("z", "x", "y", *(f"f_{name}" for name in self.filter_names))

    @cached_property
    def name(self) -> str:
        """A server-side name for the prepared statement, fixed by its text."""
        return "pingan_tile_" + hashlib.blake2b(self.text.encode(), digest_size=10).hexdigest()

    @cached_property
    def prepare(self) -> str:
        """``PREPARE`` of the statement with ``$n`` parameters (the tile ints, the filter arrays)."""
        text = self.text
        for i, param in enumerate(self.param_names, start=1):
            text = text.replace(f"%({param})s", f"${i}")
        types = ", ".join(["int", "int", "int", *(["text[]"] * len(self.filter_names))])
        return f"PREPARE {self.name} ({types}) AS {text}"


def query_for(layer: Layer, kind: Kind, filter_names: Iterable[str] = (), *,
              shapes: bool = False) -> TileQuery:
    """The statement for ``layer`` in ``kind`` mode with equality filters on ``filter_names``.

    ``shapes``: draw a detailed polygon tile from the prepared shapes of ``tiles.shapes`` (the
    caller checks that they are current for the tile's zoom; without filters only).
    Cached: a layer, kind, filter shape and source compile once per process.
    """
    return _compile(layer, kind, tuple(sorted(set(filter_names))), shapes)


@lru_cache(maxsize=512)
def _compile(layer: Layer, kind: Kind, filter_names: tuple[str, ...], shapes: bool = False) -> TileQuery:
    for name in filter_names:
        layer.get_property(name)  # KeyError for an unknown name: callers check first
    if shapes and (kind != "detail" or filter_names or not eligible(layer)):
        raise ValueError(f"no shapes statement for {layer.id} ({kind}, filters {filter_names})")
    where = _where(layer, filter_names)
    if layer.dimension == 1:  # lines are never aggregated: one statement whatever the kind
        body = _lines_only(layer, where)
    elif kind == "aggregate":
        body = _aggregate_only(layer, where)
    elif shapes:
        body = _shapes_with_fallback(layer, where)
    else:
        body = _detail_with_fallback(layer, where)
    text = body.as_string(None)
    log.debug("tile SQL for %s (%s, filters %s, shapes %s): %s", layer.id, kind, filter_names, shapes, text)
    return TileQuery(layer.id, kind, filter_names, text, shapes)


def _where(layer: Layer, filter_names: tuple[str, ...]) -> sql.Composable:
    """The index test ``t.geom && tile.env_g``, the exact test for points, and the filters.

    Filter values are compared as text (``= ANY``), so one bound ``text[]`` serves any type.
    """
    geom = sql.SQL("t.{}").format(sql.Identifier(layer.geometry_column))
    parts: list[sql.Composable] = [sql.SQL("{} && tile.env_g").format(geom)]
    if layer.geometry_type == "Point":
        parts.append(_in_tile(geom))
    for name in filter_names:
        column = sql.Identifier(layer.get_property(name).column or name)
        parts.append(sql.SQL("t.{}::text = ANY({})").format(column, sql.Placeholder(f"f_{name}")))
    return sql.SQL(" AND ").join(parts)


def _tile_cte() -> sql.Composable:
    return _TILE_CTE.format(srid=sql.Literal(SRID), size=sql.Literal(float(TILE_SIZE)))


def _table(layer: Layer) -> sql.Composable:
    schema, _, table = layer.table.partition(".")
    return sql.Identifier(schema, table)


def property_expr(prop: Property) -> sql.Composable:
    """A property as MVT can carry it: timestamps as ISO 8601 UTC text, arrays joined."""
    column = sql.SQL("t.{}").format(sql.Identifier(prop.column or prop.name))
    if prop.type == "datetime":
        # Not ::text, whose format follows the session's DateStyle and TimeZone.
        return sql.SQL("to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')").format(column)
    if prop.type == "date":
        return sql.SQL("to_char({}, 'YYYY-MM-DD')").format(column)
    if prop.type == "array":
        return sql.SQL("array_to_string({}, ',')").format(column)
    return column


def _properties(layer: Layer) -> sql.Composable:
    cols = [sql.SQL("{} AS {}").format(property_expr(layer.get_property(name)), sql.Identifier(name))
            for name in layer.tiles.properties]
    return sql.SQL("").join(sql.SQL(", {}").format(c) for c in cols)


def _asmvt(cte: str, layer: Layer, *, where: bool = True) -> sql.Composable:
    """The MVT of the rows of ``cte``. ST_AsMVT skips rows without a geometry by itself;
    ``where=False`` leaves out the explicit test, which the planner would push into the scan
    and so compute each drawn geometry twice."""
    test = sql.SQL(" WHERE r.geom IS NOT NULL") if where else sql.SQL("")
    return sql.SQL("coalesce((SELECT ST_AsMVT(r, {name}, {extent}, 'geom') FROM {cte} r{test}),"
                   " ''::bytea)").format(
        name=sql.Literal(layer.id), extent=sql.Literal(MVT_EXTENT), cte=sql.Identifier(cte), test=test)


def _points_cte(layer: Layer, where: sql.Composable, gate: sql.Composable) -> sql.Composable:
    """``pts``: the Mercator x, y of one point per feature in the tile, and its group value."""
    if layer.geometry_type == "Point":
        point = sql.SQL("t.{}").format(sql.Identifier(layer.geometry_column))
        lateral, inside = sql.SQL(""), sql.SQL("")
    else:
        # A polygon is counted once, in the tile holding its point on surface.
        point = sql.SQL("q.p")
        lateral = sql.SQL(" CROSS JOIN LATERAL (SELECT ST_PointOnSurface(t.{}) AS p) q").format(
            sql.Identifier(layer.geometry_column))
        inside = sql.SQL(" AND {}").format(_in_tile(point))
    group_by = layer.tiles.group_by
    group = (sql.SQL("t.{}::text").format(sql.Identifier(layer.get_property(group_by).column or group_by))
             if group_by else sql.SQL("NULL::text"))
    mx, my = _merc(point)
    return sql.SQL(
        "pts AS (SELECT {mx} AS mx, {my} AS my, {group} AS grp"
        " FROM {table} t CROSS JOIN tile{lateral} WHERE {where}{inside}{gate})"
    ).format(mx=mx, my=my, group=group, table=_table(layer), lateral=lateral, where=where,
             inside=inside, gate=gate)


def _cells_ctes(layer: Layer) -> sql.Composable:
    """``cells`` (counts per cell and group) and ``agg`` (one MVT point per cell)."""
    return sql.SQL(
        "cells AS (SELECT floor((mx - tile.mx0) / (tile.px * {cell}))::int AS i,"
        " floor((my - tile.my0) / (tile.px * {cell}))::int AS j,"
        " grp, count(*) AS n, sum(mx) AS sx, sum(my) AS sy"
        " FROM pts CROSS JOIN tile GROUP BY 1, 2, 3),"
        " agg AS (SELECT {mvt_geom} AS geom, sum(c.n)::int AS count, true AS aggregated,"
        " coalesce(jsonb_object_agg('count_' || c.grp, c.n) FILTER (WHERE c.grp IS NOT NULL),"
        " '{{}}'::jsonb) AS counts"
        " FROM cells c CROSS JOIN tile GROUP BY c.i, c.j, tile.env)"
    ).format(
        cell=sql.Literal(float(layer.tiles.cell_px)),
        mvt_geom=_mvt_geom(sql.SQL("ST_Point(sum(c.sx) / sum(c.n), sum(c.sy) / sum(c.n), 3857)")),
    )


def _aggregate_only(layer: Layer, where: sql.Composable) -> sql.Composable:
    return sql.SQL("WITH {tile}, {pts}, {cells} SELECT {mvt}").format(
        tile=_tile_cte(), pts=_points_cte(layer, where, sql.SQL("")), cells=_cells_ctes(layer),
        mvt=_asmvt("agg", layer),
    )


def _detail_cte(layer: Layer, where: sql.Composable, gate: sql.Composable) -> sql.Composable:
    """``detail``: every feature of the tile with the registry's tile properties."""
    geom = sql.Identifier(layer.geometry_column)
    if layer.geometry_type == "Point":
        point = sql.SQL("ST_Point({}, {}, 3857)").format(*_merc(sql.SQL("t.{}").format(geom)))
        return sql.SQL(
            "detail AS (SELECT {mvt_geom} AS geom{props} FROM {table} t, tile WHERE {where}{gate})"
        ).format(mvt_geom=_mvt_geom(point), props=_properties(layer), table=_table(layer), where=where,
                 gate=gate)
    # Polygons under one pixel are dropped; lines keep their collapsed ends (ST_Simplify with
    # preserveCollapsed), and ST_AsMVTGeom drops what snaps to a single point.
    small = sql.SQL(" AND ST_Area(m.g) >= tile.px * tile.px") if layer.dimension == 2 else sql.SQL("")
    return sql.SQL(
        "detail AS (SELECT {mvt_geom} AS geom{props}"
        " FROM {table} t CROSS JOIN tile CROSS JOIN LATERAL (SELECT ST_Transform(t.{geom}, 3857) AS g) m"
        " WHERE {where} AND ST_Intersects(t.{geom}, tile.env_g){small}{gate})"
    ).format(small=small,
        mvt_geom=_mvt_geom(
            sql.SQL("ST_Simplify(m.g, tile.px * {}, true)").format(sql.Literal(layer.tiles.simplify_px))),
        props=_properties(layer), table=_table(layer), geom=geom, where=where, gate=gate,
    )


def _lines_only(layer: Layer, where: sql.Composable) -> sql.Composable:
    """Every line of the tile, simplified to the zoom: no cap, no aggregated fallback."""
    return sql.SQL("WITH {tile}, {detail} SELECT {mvt}").format(
        tile=_tile_cte(), detail=_detail_cte(layer, where, sql.SQL("")), mvt=_asmvt("detail", layer))


def _detail_with_fallback(layer: Layer, where: sql.Composable) -> sql.Composable:
    cap = layer.tiles.max_features
    return sql.SQL(
        "WITH {tile},"
        " gate AS (SELECT count(*) AS n FROM (SELECT 1 FROM {table} t, tile WHERE {where} LIMIT {probe}) s),"
        " {detail}, {pts}, {cells}"
        " SELECT {detail_mvt} || {agg_mvt}"
    ).format(
        tile=_tile_cte(), table=_table(layer), where=where, probe=sql.Literal(cap + 1),
        detail=_detail_cte(layer, where, sql.SQL(" AND (SELECT n FROM gate) <= {}").format(sql.Literal(cap))),
        pts=_points_cte(layer, where, sql.SQL(" AND (SELECT n FROM gate) > {}").format(sql.Literal(cap))),
        cells=_cells_ctes(layer), detail_mvt=_asmvt("detail", layer), agg_mvt=_asmvt("agg", layer),
    )


# The tile in the MVT units of its whole zoom level (what ``pingan.tile_shapes`` stores): its
# origin, the box one unit beyond it (the index test: snapping moves a vertex by at most half a
# unit), the buffered box (a shape within it needs no clip), and its id in the shapes' ``tiles``.
# MATERIALIZED: inlined, the envelopes were built again for every shape tested against them (0.4
# of 3.4 ms on a mean z13 grid tile, demo scale 10).
_SHAPE_TILE_CTE = sql.SQL(
    "st AS MATERIALIZED (SELECT o.ox, o.oy,"
    " ST_MakeEnvelope(o.ox - 1, o.oy - 1, o.ox + {e} + 1, o.oy + {e} + 1) AS near,"
    " ST_MakeEnvelope(o.ox - {b}, o.oy - {b}, o.ox + {e} + {b}, o.oy + {e} + {b}) AS buffered,"
    " (%(x)s::int8 << {shift}) | %(y)s::int8 AS id"
    " FROM (SELECT %(x)s::float8 * {e} AS ox, %(y)s::float8 * {e} AS oy) o)"
)


def _shapes_detail_cte(layer: Layer, limit: sql.Composable) -> sql.Composable:
    """``detail`` from prepared shapes: a shape inside the buffered tile is only translated (it
    is already simplified, snapped, valid and oriented); one crossing the buffer edge is clipped
    by ``ST_AsMVTGeom`` (flipped first: it expects y up). The tile holds exactly the features
    whose source geometry intersects it, as from the table: a shape near the tile counts only if
    the tile is among its ``tiles``, which the build computed with the same ``ST_Intersects`` this
    statement made against the table before (a lookup by id per shape on the tile's edge, 0.5-0.7
    of 3.3-4.0 ms of a mean z13 grid tile at demo scale 10). The statement still names the layer's
    table (the aggregated branch), so a role that may not read the table is refused as before."""
    return sql.SQL(
        "detail AS MATERIALIZED (SELECT CASE WHEN s.geom @ st.buffered"
        " THEN ST_Translate(s.geom, -st.ox, -st.oy)"
        " ELSE ST_AsMVTGeom(ST_Affine(s.geom, 1, 0, 0, -1, -st.ox, st.oy + {e}),"
        " ST_MakeEnvelope(0, 0, {e}, {e}), {e}, {b}, true) END AS geom, s.props"
        " FROM pingan.tile_shapes s CROSS JOIN st"
        " WHERE s.layer_id = {layer_id} AND s.zoom = %(z)s::int AND s.geom && st.near"
        " AND st.id = ANY(s.tiles) LIMIT {limit})"
    ).format(
        e=sql.Literal(MVT_EXTENT), b=sql.Literal(MVT_BUFFER), layer_id=sql.Literal(layer.id), limit=limit,
    )


def _shapes_with_fallback(layer: Layer, where: sql.Composable) -> sql.Composable:
    """As :func:`_detail_with_fallback`, with the detailed branch drawn from prepared shapes.

    The detailed rows are computed once, at most ``max_features + 1`` of them, and counted: the
    count is the gate (no second scan of the index), and past the cap the tile is aggregated
    from the table as before.
    """
    cap = layer.tiles.max_features
    return sql.SQL(
        "WITH {tile}, {st}, {detail}, gate AS (SELECT count(*) AS n FROM detail),"
        " {pts}, {cells}"
        " SELECT {detail_mvt} || {agg_mvt}"
    ).format(
        tile=_tile_cte(),
        st=_SHAPE_TILE_CTE.format(e=sql.Literal(float(MVT_EXTENT)), b=sql.Literal(float(MVT_BUFFER)),
                             shift=sql.Literal(TILE_ID_SHIFT)),
        detail=_shapes_detail_cte(layer, sql.Literal(cap + 1)),
        pts=_points_cte(layer, where, sql.SQL(" AND (SELECT n FROM gate) > {}").format(sql.Literal(cap))),
        cells=_cells_ctes(layer),
        detail_mvt=sql.SQL("coalesce((SELECT ST_AsMVT(r, {name}, {extent}, 'geom') FROM detail r"
                           " WHERE (SELECT n FROM gate) <= {cap}), ''::bytea)").format(
            name=sql.Literal(layer.id), extent=sql.Literal(MVT_EXTENT), cap=sql.Literal(cap)),
        agg_mvt=_asmvt("agg", layer),
    )
