"""Query parameters of ``/collections/{id}/items``, checked against the layer registry.

Every item request is parsed here first, whichever path then serves it, so a bad parameter is
the same 400 on both. ``filter``/``filter-lang``/``filter-crs`` and ``datetime`` become one SQL
condition (``route_where``) that the route hands to the provider, because pygeoapi 0.21 cannot
parse CQL2 (see ``cql.py``) and answers 400 to a ``datetime`` outside the collection's extent,
where OGC API - Features expects an empty page.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta

from api.ogc.cql import FilterSyntaxError, parse_filter
from api.ogc.crs import STORAGE_SRID, Crs, envelope_xy, lookup
from api.ogc.errors import InvalidParameterError
from api.ogc.filters import Translator, instant
from api.ogc.fragments import TRUE, Fragment, all_of, fmt, ident, value
from api.ogc.queries import ItemsQuery
from layers.registry import Layer, Property

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
HIDDEN_FROM_PYGEOAPI = frozenset({"filter", "filter-lang", "filter-crs", "datetime"})
RESERVED = frozenset(
    {
        "f",
        "lang",
        "limit",
        "offset",
        "bbox",
        "bbox-crs",
        "crs",
        "datetime",
        "sortby",
        "properties",
        "skipGeometry",
        "filter",
        "filter-lang",
        "filter-crs",
        "resulttype",
        "q",
        "profile",
    }
)
FILTER_LANGS = ("cql2-text", "cql2-json")


def items_query(
    params: Mapping[str, str],
    layer: Layer,
    where: Fragment | None = None,
    *,
    max_limit: int = MAX_LIMIT,
    default_limit: int = DEFAULT_LIMIT,
) -> ItemsQuery:
    """The whole item request as an ``ItemsQuery``; InvalidParameterError (400) when it is wrong.

    ``where`` is ``route_where(params, layer)`` when the caller has it already."""
    out = lookup(params.get("crs"), "crs")
    skip = parse_bool(params.get("skipGeometry"), "skipGeometry")
    where = all_of(
        [
            bbox_condition(params, layer),
            *(equality(layer, k, v) for k, v in params.items() if is_queryable_param(layer, k)),
            route_where(params, layer) if where is None else where,
        ]
    )
    return ItemsQuery(
        layer=layer,
        where=where,
        sortby=parse_sortby(params.get("sortby"), layer),
        properties=parse_properties(params.get("properties"), layer),
        out_crs=None if skip else out,
        limit=parse_limit(params.get("limit"), default_limit, max_limit),
        offset=parse_int(params.get("offset"), "offset", 0, minimum=0),
    )


def is_queryable_param(layer: Layer, name: str) -> bool:
    return name not in RESERVED and any(p.name == name for p in layer.properties)


def route_where(params: Mapping[str, str], layer: Layer) -> Fragment:
    """``filter`` and ``datetime`` as one condition."""
    return all_of([filter_condition(params, layer), datetime_condition(params.get("datetime"), layer)])


def filter_condition(params: Mapping[str, str], layer: Layer) -> Fragment:
    lang = params.get("filter-lang") or "cql2-text"
    if lang not in FILTER_LANGS:
        raise InvalidParameterError(f"filter-lang must be one of {', '.join(FILTER_LANGS)}")
    filter_crs = lookup(params.get("filter-crs"), "filter-crs")
    text = params.get("filter")
    if text is None:
        return TRUE
    try:
        node = parse_filter(text, lang)
    except FilterSyntaxError as err:
        raise InvalidParameterError(f"filter: {err}") from None
    return Translator(layer, filter_crs).condition(node)


def parse_int(raw: str | None, name: str, default: int, *, minimum: int) -> int:
    if raw is None:
        return default
    try:
        number = int(raw.strip())
    except ValueError:
        raise InvalidParameterError(f"{name} must be an integer") from None
    if number < minimum:
        raise InvalidParameterError(f"{name} must be at least {minimum}")
    if number > 2**62:
        raise InvalidParameterError(f"{name} is too large")
    return number


def parse_limit(raw: str | None, default: int, maximum: int) -> int:
    limit = parse_int(raw, "limit", default, minimum=1)
    if limit > maximum:
        raise InvalidParameterError(f"limit must be at most {maximum}")
    return limit


def parse_bool(raw: str | None, name: str) -> bool:
    if raw is None:
        return False
    text = raw.strip().lower()
    if text not in ("true", "false", "1", "0", "yes", "no"):
        raise InvalidParameterError(f"{name} must be true or false")
    return text in ("true", "1", "yes")


def parse_bbox(raw: str, crs: Crs) -> tuple[float, float, float, float]:
    """``bbox`` as xmin, ymin, xmax, ymax (x = easting/longitude) after checking its range."""
    try:
        nums = [float(n) for n in raw.split(",")]
    except ValueError:
        raise InvalidParameterError("bbox must be 4 or 6 comma-separated numbers") from None
    if len(nums) not in (4, 6) or not all(math.isfinite(n) for n in nums):
        raise InvalidParameterError("bbox must be 4 or 6 comma-separated numbers")
    box = (nums[0], nums[1], nums[2], nums[3]) if len(nums) == 4 else (nums[0], nums[1], nums[3], nums[4])
    lo0, lo1, hi0, hi1 = crs.bounds
    if not (lo0 <= box[0] <= hi0 and lo0 <= box[2] <= hi0 and lo1 <= box[1] <= hi1 and lo1 <= box[3] <= hi1):
        raise InvalidParameterError(f"bbox is outside the range of {crs.uri}")
    xmin, ymin, xmax, ymax = envelope_xy(box, crs)
    if ymin > ymax:
        raise InvalidParameterError("bbox: the lower corner is north of the upper corner")
    if xmin > xmax:  # an extent across the antimeridian: none of our layers is there
        raise InvalidParameterError("bbox: boxes across the antimeridian are not supported")
    return xmin, ymin, xmax, ymax


def bbox_condition(params: Mapping[str, str], layer: Layer) -> Fragment:
    crs = lookup(params.get("bbox-crs"), "bbox-crs")
    raw = params.get("bbox")
    if raw is None:
        if params.get("bbox-crs"):
            raise InvalidParameterError("bbox-crs given without bbox")
        return TRUE
    return envelope_condition(layer, parse_bbox(raw, crs), crs)


def envelope_condition(layer: Layer, xy: tuple[float, float, float, float], crs: Crs) -> Fragment:
    """Rows whose geometry intersects the box; the box is transformed, never the column."""
    srid = STORAGE_SRID if crs.same_datum else crs.srid
    box = fmt("ST_MakeEnvelope({}, {}, {}, {}, " + str(srid) + ")", *(value(float(n)) for n in xy))
    if srid != STORAGE_SRID:
        box = fmt("ST_Transform({}, " + str(STORAGE_SRID) + ")", box)
    return fmt("ST_Intersects({}, {})", ident(layer.geometry_column), box)


def equality(layer: Layer, name: str, raw: str) -> Fragment:
    """``?name=value``: a queryable used as a query parameter (Features Part 1)."""
    prop = layer.get_property(name)
    parsed: object = raw
    try:
        if prop.type == "integer":
            parsed = int(raw)
        elif prop.type == "number":
            parsed = float(raw)
        elif prop.type == "boolean":
            parsed = parse_bool(raw, name)
    except ValueError:
        raise InvalidParameterError(f"{name} must be a {prop.type}") from None
    if prop.type == "array":
        raise InvalidParameterError(f"{name} cannot be used as a query parameter")
    cast = {
        "integer": "bigint",
        "number": "double precision",
        "boolean": "boolean",
        "datetime": "timestamptz",
        "date": "date",
    }.get(prop.type, "text")
    if prop.type == "datetime":
        parsed = instant(raw)
        if parsed is None:
            raise InvalidParameterError(f"{name} must be an RFC 3339 date-time")
    elif prop.type == "date":
        parsed = _day(raw, name)
    return fmt("{} = {}", ident(prop.column or prop.name), value(parsed, cast))


def _day(raw: str, name: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidParameterError(f"{name} must be a date") from None


def datetime_condition(raw: str | None, layer: Layer) -> Fragment:
    """``datetime``: an RFC 3339 instant, or an interval ``start/end`` with ``..`` open ends."""
    if raw is None:
        return TRUE
    if layer.datetime_property is None:
        raise InvalidParameterError(f"collection {layer.id} has no temporal property to match datetime")
    prop = layer.get_property(layer.datetime_property)
    col = ident(prop.column or prop.name)
    parts = raw.split("/")
    if len(parts) == 1:
        start, end = _moment(parts[0], end=False), _moment(parts[0], end=True)
    elif len(parts) == 2:
        start, end = _moment(parts[0], end=False, open_ok=True), _moment(parts[1], end=True, open_ok=True)
    else:
        raise InvalidParameterError("datetime must be an instant or an interval start/end")
    if start is not None and end is not None and start > end:
        raise InvalidParameterError("datetime: the interval ends before it starts")
    conds = []
    if start is not None:
        conds.append(fmt("{} >= {}", col, value(start, "timestamptz")))
    if end is not None:
        conds.append(fmt("{} <= {}", col, value(end, "timestamptz")))
    return all_of(conds)


def _moment(text: str, *, end: bool, open_ok: bool = False) -> datetime | None:
    text = text.strip()
    if text in ("..", "") and open_ok:
        return None
    try:
        if "T" not in text.upper() and len(text) == 10:  # a whole day
            day = datetime.combine(date.fromisoformat(text), time(0), tzinfo=UTC)
            return day + timedelta(days=1, microseconds=-1) if end else day
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidParameterError(f"datetime: {text[:40]!r} is not an RFC 3339 date-time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_sortby(raw: str | None, layer: Layer) -> tuple[tuple[Property, bool], ...]:
    if raw is None:
        return ()
    out = []
    for item in raw.split(","):
        # '+' in a URL that was not percent-encoded arrives as a space
        name = item.strip()
        ascending = not name.startswith("-")
        name = name.lstrip("+-").strip()
        try:
            out.append((layer.get_property(name), ascending))
        except KeyError:
            raise InvalidParameterError(f"sortby: unknown property {name[:100]!r}") from None
    return tuple(out)


def parse_properties(raw: str | None, layer: Layer) -> tuple[Property, ...] | None:
    if raw is None:
        return None
    names = list(dict.fromkeys(n.strip() for n in raw.split(",")))  # once each, in order
    try:
        return tuple(layer.get_property(n) for n in names)
    except KeyError as err:
        raise InvalidParameterError(f"properties: unknown property {str(err.args[0])[:100]!r}") from None
