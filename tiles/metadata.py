"""Documents describing tiles: OGC API - Tiles tilesets and tile matrix sets, and TileJSON 3.0.0.

Plain dicts built from the registry; every link is absolute, made from the ``base`` URL the
caller passes (the request's base URL). The layer's aggregated fields (``count``,
``aggregated``, ``count_<value>``) are declared beside its detailed properties, since a tile
may hold either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection, sql

from layers.registry import Layer, Property
from tiles.tms import TileMatrixSet

MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
TILING_SCHEME_REL = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
Bounds = tuple[float, float, float, float]

_JSON_TYPES = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean",
               "datetime": "string", "date": "string", "array": "string"}
# TileJSON leaves field descriptions free; tippecanoe's String/Number/Boolean is what tools read.
_TILEJSON_TYPES = {"integer": "Number", "number": "Number", "boolean": "Boolean"}


def collection_tiles_path(layer: Layer, tms: TileMatrixSet) -> str:
    return f"/ogc/collections/{layer.id}/tiles/{tms.id}"


def dataset_tiles_path(tms: TileMatrixSet) -> str:
    return f"/ogc/tiles/{tms.id}"


def _link(rel: str, href: str, media_type: str = "application/json", **extra: Any) -> dict[str, Any]:
    return {"rel": rel, "type": media_type, "href": href, **extra}


def _aggregate_values(layer: Layer) -> tuple[str, ...]:
    if layer.tiles.group_by is None:
        return ()
    return layer.get_property(layer.tiles.group_by).enum or ()


def properties_schema(layer: Layer) -> dict[str, Any]:
    """JSON Schema of the feature properties a tile of ``layer`` may carry."""
    props: dict[str, Any] = {}
    for name in layer.tiles.properties:
        p: Property = layer.get_property(name)
        entry: dict[str, Any] = {"type": _JSON_TYPES[p.type], "title": p.title_en,
                                 "description": p.title_zh}
        if p.type == "datetime":
            entry["format"] = "date-time"
        if p.enum:
            entry["enum"] = list(p.enum)
        props[name] = entry
    if layer.dimension == 1:  # lines are never aggregated
        return {"type": "object", "properties": props}
    # Points and polygons may come aggregated: points below detail_zoom, any tile past max_features.
    props["count"] = {"type": "integer", "title": "Features in the cell (aggregated tiles)"}
    props["aggregated"] = {"type": "boolean", "title": "True on aggregated cells"}
    for value in _aggregate_values(layer):
        props[f"count_{value}"] = {"type": "integer",
                                   "title": f"Features with {layer.tiles.group_by} = {value}"}
    return {"type": "object", "properties": props}


def tilejson_fields(layer: Layer) -> dict[str, str]:
    """TileJSON ``fields``: name to type (the ``String``/``Number``/``Boolean`` convention)."""
    return {name: _TILEJSON_TYPES.get(entry["type"], "String")
            for name, entry in properties_schema(layer)["properties"].items()}


def _layer_entry(layer: Layer) -> dict[str, Any]:
    return {
        "id": layer.id,
        "title": layer.title_en,
        "description": layer.description_en or layer.title_zh,
        "dataType": "vector",
        "geometryDimension": layer.dimension,
        "minTileMatrix": str(layer.tiles.minzoom),
        "maxTileMatrix": str(layer.tiles.maxzoom),
        "propertiesSchema": properties_schema(layer),
    }


def _tileset_links(base: str, path: str, tms: TileMatrixSet, query: str = "") -> list[dict[str, Any]]:
    return [
        _link("self", f"{base}{path}{query}", title="Tileset metadata"),
        _link(TILING_SCHEME_REL, f"{base}/ogc/tileMatrixSets/{tms.id}", title=tms.title),
        _link("item", f"{base}{path}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}{query}", MVT_MEDIA_TYPE,
              templated=True, title="Mapbox vector tiles"),
        _link("describedby", f"{base}{path}/tilejson.json{query}", title="TileJSON 3.0.0"),
    ]


def tileset_summary(base: str, path: str, title: str, tms: TileMatrixSet, query: str = "") -> dict[str, Any]:
    """One entry of a tileset list (OGC API - Tiles ``/tiles``)."""
    return {"title": title, "dataType": "vector", "crs": tms.crs_uri, "tileMatrixSetURI": tms.uri,
            "links": _tileset_links(base, path, tms, query)[:2]}


def tileset(base: str, path: str, title: str, layers: Sequence[Layer], tms: TileMatrixSet,
            bounds: Bounds | None, query: str = "") -> dict[str, Any]:
    """Tileset metadata (OGC API - Tiles, ``/tiles/{tileMatrixSetId}``)."""
    doc: dict[str, Any] = {
        "title": title,
        "dataType": "vector",
        "crs": tms.crs_uri,
        "tileMatrixSetURI": tms.uri,
        "links": _tileset_links(base, path, tms, query),
        "layers": [_layer_entry(layer) for layer in layers],
    }
    if bounds is not None and layers:
        doc["boundingBox"] = {"lowerLeft": list(bounds[:2]), "upperRight": list(bounds[2:]), "crs": CRS84}
        lo = min(layer.tiles.minzoom for layer in layers)
        hi = max(layer.tiles.maxzoom for layer in layers)
        limits = []
        for z in range(lo, hi + 1):
            col0, row0, col1, row1 = tms.tile_range(z, bounds)
            limits.append({"tileMatrix": str(z), "minTileRow": row0, "maxTileRow": row1,
                           "minTileCol": col0, "maxTileCol": col1})
        doc["tileMatrixSetLimits"] = limits
    return doc


def tilejson(base: str, path: str, name: str, layers: Sequence[Layer], bounds: Bounds | None,
             query: str = "") -> dict[str, Any]:
    """TileJSON 3.0.0 for ``layers`` served under ``path`` (``{z}/{y}/{x}`` is OGC order)."""
    minzoom = min((layer.tiles.minzoom for layer in layers), default=0)
    maxzoom = max((layer.tiles.maxzoom for layer in layers), default=22)
    doc: dict[str, Any] = {
        "tilejson": "3.0.0",
        "name": name,
        "scheme": "xyz",
        "tiles": [f"{base}{path}/{{z}}/{{y}}/{{x}}{query}"],
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "vector_layers": [
            {"id": layer.id, "description": f"{layer.title_zh} {layer.title_en}",
             "minzoom": layer.tiles.minzoom, "maxzoom": layer.tiles.maxzoom,
             "fields": tilejson_fields(layer)}
            for layer in layers
        ],
    }
    if bounds is not None:
        doc["bounds"] = list(bounds)
        doc["center"] = [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, max(minzoom, 10)]
    return doc


def tile_matrix_sets(base: str, sets: Sequence[TileMatrixSet]) -> dict[str, Any]:
    """The list at ``/ogc/tileMatrixSets``."""
    return {
        "links": [_link("self", f"{base}/ogc/tileMatrixSets")],
        "tileMatrixSets": [
            {"id": tms.id, "title": tms.title, "uri": tms.uri, "crs": tms.crs_uri,
             "links": [_link("self", f"{base}/ogc/tileMatrixSets/{tms.id}")]}
            for tms in sets
        ],
    }


def tile_matrix_set(base: str, tms: TileMatrixSet) -> dict[str, Any]:
    """One tile matrix set's definition with its self link."""
    return {**tms.definition(), "links": [_link("self", f"{base}/ogc/tileMatrixSets/{tms.id}")]}


async def layers_bounds(conn: AsyncConnection, layers: Sequence[Layer]) -> Bounds | None:
    """The lon/lat extent of the layers' rows the caller may see (``None`` if there are none).

    Storage is EPSG:4490 (CGCS2000), within centimetres of CRS84 and in the same lon/lat
    order, so its extent is reported as CRS84 unchanged.
    """
    found: list[Bounds] = []
    for layer in layers:
        schema, _, table = layer.table.partition(".")
        query = sql.SQL("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)"
                        " FROM (SELECT ST_Extent({}) AS e FROM {}) s").format(
            sql.Identifier(layer.geometry_column), sql.Identifier(schema, table))
        cur = await conn.execute(query)
        row = await cur.fetchone()
        if row and row[0] is not None:
            found.append(tuple(float(v) for v in row))  # type: ignore[arg-type]
    if not found:
        return None
    return (min(b[0] for b in found), min(b[1] for b in found),
            max(b[2] for b in found), max(b[3] for b in found))
