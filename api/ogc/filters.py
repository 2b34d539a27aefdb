"""pygeofilter's AST → a parameterised SQL condition on one layer.

Names resolve only through the layer registry (an unknown property is a 400); every literal is
a bound value, cast to the type of the property it is compared with so the planner can use the
column's index. Geometry literals are checked with shapely, sent as WKB and transformed to the
storage SRID — the literal is transformed, never the column (the GiST index stays usable).
Temporal predicates follow CQL2's definitions over intervals: a property or an instant is the
interval [t, t], a DATE the whole day, an open end is ±infinity.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import shapely
import shapely.errors
import shapely.geometry
from pygeofilter import ast, values

from api.ogc.crs import STORAGE_SRID, Crs
from api.ogc.crs import lookup as lookup_crs
from api.ogc.errors import InvalidParameterError
from api.ogc.fragments import FALSE, TRUE, Fragment, fmt, ident, join, raw, value
from layers.registry import Layer

GEOMETRY_NAMES = ("geometry",)
MAX_DEPTH = 200  # AND chains nest one level per AND; far beyond any real filter
_CASTS = {
    "string": "text",
    "integer": "bigint",
    "number": "double precision",
    "boolean": "boolean",
    "datetime": "timestamptz",
    "date": "date",
}
_COMPARISONS = {
    ast.Equal: "=",
    ast.NotEqual: "<>",
    ast.LessThan: "<",
    ast.LessEqual: "<=",
    ast.GreaterThan: ">",
    ast.GreaterEqual: ">=",
}
_SPATIAL = {
    ast.GeometryIntersects: "ST_Intersects",
    ast.GeometryDisjoint: "ST_Disjoint",
    ast.GeometryContains: "ST_Contains",
    ast.GeometryWithin: "ST_Within",
    ast.GeometryTouches: "ST_Touches",
    ast.GeometryCrosses: "ST_Crosses",
    ast.GeometryOverlaps: "ST_Overlaps",
    ast.GeometryEquals: "ST_Equals",
}
# Allen's relations on intervals a = [as, ae] and b = [bs, be], as CQL2 defines T_*.
_TEMPORAL: dict[type, str] = {
    ast.TimeAfter: "{as} > {be}",
    ast.TimeBefore: "{ae} < {bs}",
    ast.TimeBegins: "{as} = {bs} AND {ae} < {be}",
    ast.TimeBegunBy: "{as} = {bs} AND {ae} > {be}",
    ast.TimeContains: "{as} < {bs} AND {ae} > {be}",
    ast.TimeDuring: "{as} > {bs} AND {ae} < {be}",
    ast.TimeEndedBy: "{as} < {bs} AND {ae} = {be}",
    ast.TimeEnds: "{as} > {bs} AND {ae} = {be}",
    ast.TimeEquals: "{as} = {bs} AND {ae} = {be}",
    ast.TimeMeets: "{ae} = {bs}",
    ast.TimeMetBy: "{as} = {be}",
    ast.TimeOverlappedBy: "{as} > {bs} AND {as} < {be} AND {ae} > {be}",
    ast.TimeOverlaps: "{as} < {bs} AND {ae} > {bs} AND {ae} < {be}",
}
Operand = tuple[Fragment, str]  # SQL and its registry type ("geometry" for geometries)


def bad(message: str) -> InvalidParameterError:
    return InvalidParameterError(f"filter: {message}")


class Translator:
    """Translates filters for one layer; geometry literals are in ``filter_crs``."""

    def __init__(self, layer: Layer, filter_crs: Crs) -> None:
        self.layer = layer
        self.filter_crs = filter_crs
        self._depth = 0

    def condition(self, node: Any) -> Fragment:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise bad(f"nested deeper than {MAX_DEPTH}")
            handler = self._handler(node)
            return handler(node)
        finally:
            self._depth -= 1

    def _handler(self, node: Any) -> Callable[[Any], Fragment]:
        for kind, handler in (
            (ast.And, lambda n: join(" AND ", (self.condition(n.lhs), self.condition(n.rhs)), wrap=True)),
            (ast.Or, lambda n: join(" OR ", (self.condition(n.lhs), self.condition(n.rhs)), wrap=True)),
            (ast.Not, lambda n: fmt("NOT ({})", self.condition(n.sub_node))),
            (ast.Include, lambda n: FALSE if n.not_ else TRUE),
            (ast.Comparison, self._comparison),
            (ast.Between, self._between),
            (ast.Like, self._like),
            (ast.In, self._in),
            (ast.IsNull, self._is_null),
            (ast.SpatialComparisonPredicate, self._spatial),
            (ast.BBox, self._bbox),
            (ast.TemporalPredicate, self._temporal),
        ):
            if isinstance(node, kind):
                return handler
        raise bad(f"{type(node).__name__} is not supported")

    # -- operands ---------------------------------------------------------------------------
    def operand(self, node: Any, want: str | None = None) -> Operand:
        """SQL for an attribute, a literal (cast to ``want`` when given) or CASEI(...)."""
        if isinstance(node, ast.Attribute):
            return self.attribute(node.name)
        if isinstance(node, ast.Function):
            if node.name.lower() != "lower" or len(node.arguments) != 1:
                raise bad(f"function {node.name!r} is not supported (CASEI is)")
            inner, kind = self.operand(node.arguments[0], "string")
            if kind != "string":
                raise bad("CASEI takes a string")
            return fmt("lower({})", inner), "string"
        if isinstance(node, ast.Node):
            raise bad(f"{type(node).__name__} is not supported here")
        kind = want or literal_type(node)
        return value(coerce(node, kind), _CASTS[kind]), kind

    def attribute(self, name: str) -> Operand:
        layer = self.layer
        if name in GEOMETRY_NAMES or name == layer.geometry_column:
            return ident(layer.geometry_column), "geometry"
        try:
            prop = layer.get_property(name)
        except KeyError:
            known = ", ".join(["geometry", *(p.name for p in layer.properties)])
            raise bad(f"unknown property {name[:100]!r}; the queryables are {known}") from None
        return ident(prop.column or prop.name), prop.type

    def _pair(self, lhs: Any, rhs: Any) -> tuple[Fragment, Fragment, str]:
        """Both sides of a comparison, literals cast to the other side's type."""
        left_is_value = not isinstance(lhs, ast.Node)
        if left_is_value and isinstance(rhs, ast.Node):
            b, kind = self.operand(rhs)
            a, _ = self.operand(lhs, kind)
        else:
            a, kind = self.operand(lhs)
            b, other = self.operand(rhs, None if isinstance(rhs, ast.Node) else kind)
            if not compatible(kind, other):
                raise bad(f"cannot compare {kind} with {other}")
        if kind in ("geometry", "array"):
            raise bad(f"{kind} values cannot be compared with =, <, >")
        return a, b, kind

    # -- predicates -------------------------------------------------------------------------
    def _comparison(self, node: Any) -> Fragment:
        a, b, _ = self._pair(node.lhs, node.rhs)
        return fmt("{} " + _COMPARISONS[type(node)] + " {}", a, b)

    def _between(self, node: Any) -> Fragment:
        a, kind = self.operand(node.lhs)
        if kind not in ("integer", "number", "datetime", "date", "string"):
            raise bad(f"BETWEEN does not apply to {kind}")
        low, _ = self.operand(node.low, kind)
        high, _ = self.operand(node.high, kind)
        return fmt("{} " + ("NOT " if node.not_ else "") + "BETWEEN {} AND {}", a, low, high)

    def _like(self, node: Any) -> Fragment:
        a, kind = self.operand(node.lhs)
        if kind != "string" or not isinstance(node.pattern, str):
            raise bad("LIKE compares a string property with a string pattern")
        op = ("NOT " if node.not_ else "") + ("ILIKE" if node.nocase else "LIKE")
        return fmt("{} " + op + " {}", a, value(node.pattern, "text"))

    def _in(self, node: Any) -> Fragment:
        a, kind = self.operand(node.lhs)
        if kind not in _CASTS or not node.sub_nodes:
            raise bad("IN takes a non-empty list of values of a property's type")
        items = [coerce(v, kind) for v in node.sub_nodes]
        if node.not_:
            return fmt("{} <> ALL({})", a, value(items, _CASTS[kind] + "[]"))
        return fmt("{} = ANY({})", a, value(items, _CASTS[kind] + "[]"))

    def _is_null(self, node: Any) -> Fragment:
        a, _ = self.operand(node.lhs)
        return fmt("{} IS " + ("NOT " if node.not_ else "") + "NULL", a)

    def _spatial(self, node: Any) -> Fragment:
        a, b = self.spatial_operand(node.lhs), self.spatial_operand(node.rhs)
        return fmt(_SPATIAL[type(node)] + "({}, {})", a, b)

    def _bbox(self, node: Any) -> Fragment:
        crs = lookup_crs(node.crs, "filter BBOX crs") if node.crs else self.filter_crs
        box = shapely.box(node.minx, node.miny, node.maxx, node.maxy)
        return fmt("ST_Intersects({}, {})", self.spatial_operand(node.lhs), geometry_value(box, crs))

    def spatial_operand(self, node: Any) -> Fragment:
        if isinstance(node, ast.Attribute):
            sql, kind = self.attribute(node.name)
            if kind != "geometry":
                raise bad(f"{node.name!r} is not a geometry")
            return sql
        return geometry_value(to_shape(node), self.filter_crs)

    def _temporal(self, node: Any) -> Fragment:
        template = _TEMPORAL.get(type(node))
        if template is None:
            raise bad(f"{type(node).__name__} is not supported")
        a_start, a_end = self.interval(node.lhs)
        b_start, b_end = self.interval(node.rhs)
        slots = {"as": a_start, "ae": a_end, "bs": b_start, "be": b_end}
        # fmt binds values in the order their {} appear: rewrite the named slots positionally
        text, parts, rest = "", [], template
        while "{" in rest:
            head, _, tail = rest.partition("{")
            name, _, rest = tail.partition("}")
            text += head + "{}"
            parts.append(slots[name])
        return fmt(text + rest, *parts)

    def interval(self, node: Any) -> tuple[Fragment, Fragment]:
        if isinstance(node, ast.Attribute):
            sql, kind = self.attribute(node.name)
            if kind not in ("datetime", "date"):
                raise bad(f"{node.name!r} is not a temporal property")
            return sql, sql
        if isinstance(node, values.Interval):
            return bound(node.start, start=True), bound(node.end, start=False)
        if isinstance(node, datetime | date):
            return bound(node, start=True), bound(node, start=False)
        raise bad("temporal predicates compare temporal properties, instants and intervals")


# -- literals -------------------------------------------------------------------------------
def literal_type(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, datetime | date):
        return "datetime"
    raise bad(f"{type(v).__name__} values are not supported here")


def compatible(a: str, b: str) -> bool:
    numeric = {"integer", "number"}
    temporal = {"datetime", "date"}
    return a == b or {a, b} <= numeric or {a, b} <= temporal


def coerce(v: Any, kind: str) -> Any:
    """``v`` as a value of registry type ``kind``, or a 400 saying why it is not one."""
    ok = {
        "string": lambda: v if isinstance(v, str) else None,
        "integer": lambda: v if isinstance(v, int) and not isinstance(v, bool) else None,
        "number": lambda: float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None,
        "boolean": lambda: v if isinstance(v, bool) else None,
        "datetime": lambda: instant(v),
        "date": lambda: v if isinstance(v, date) and not isinstance(v, datetime) else None,
    }.get(kind, lambda: None)()
    if ok is None:
        raise bad(f"{str(v)[:50]!r} is not a {kind} value")
    return ok


def instant(v: Any, *, end_of_day: bool = False) -> datetime | None:
    if isinstance(v, datetime):
        return v if v.tzinfo is not None else v.replace(tzinfo=UTC)  # no zone given: UTC
    if isinstance(v, date):
        day = datetime.combine(v, time(0), tzinfo=UTC)
        return day + timedelta(days=1, microseconds=-1) if end_of_day else day
    if isinstance(v, str):
        try:
            return instant(datetime.fromisoformat(v.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def bound(v: Any, *, start: bool) -> Fragment:
    if v is None:
        return raw("'-infinity'::timestamptz" if start else "'infinity'::timestamptz")
    moment = instant(v, end_of_day=not start)
    if moment is None:
        raise bad(f"{str(v)[:50]!r} is not an instant")
    return value(moment, "timestamptz")


def to_shape(node: Any) -> Any:
    try:
        if isinstance(node, values.Geometry):
            return shapely.geometry.shape(node.geometry)
        if isinstance(node, values.Envelope):
            return shapely.box(node.x1, node.y1, node.x2, node.y2)
        if isinstance(node, ast.Function) and node.name.lower() == "bbox":
            nums = [float(n) for n in node.arguments]
            if len(nums) == 6:
                nums = [nums[0], nums[1], nums[3], nums[4]]
            return shapely.box(*nums)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, shapely.errors.ShapelyError) as err:
        raise bad(f"not a valid geometry: {str(err)[:100]}") from None
    raise bad("spatial predicates compare the geometry with a geometry literal")


def geometry_value(shape: Any, crs: Crs) -> Fragment:
    """A checked geometry literal in ``crs``, bound as WKB and brought to the storage SRID."""
    if shape.is_empty:
        raise bad("empty geometry")
    coords = shapely.get_coordinates(shape)
    xmin, ymin, xmax, ymax = crs.bounds
    if not (
        ((coords[:, 0] >= xmin) & (coords[:, 0] <= xmax)).all()
        and ((coords[:, 1] >= ymin) & (coords[:, 1] <= ymax)).all()
    ):
        raise bad(f"geometry coordinates outside {crs.uri}")
    if crs.lat_first:  # EPSG:4326/4490 literals are lat, lon; PostGIS wants x = longitude
        shape = shapely.transform(shape, lambda xy: xy[:, ::-1])
    srid = STORAGE_SRID if crs.same_datum else crs.srid  # see crs.py: no transform between datums
    literal = fmt("ST_GeomFromWKB({}, " + str(srid) + ")", value(shapely.to_wkb(shape), "bytea"))
    if srid == STORAGE_SRID:
        return literal
    return fmt("ST_Transform({}, " + str(STORAGE_SRID) + ")", literal)
