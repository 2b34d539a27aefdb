"""The OpenAPI 3.0 document of /ogc, generated from the layer registry.

Ours rather than pygeoapi's ``get_oas``: that one ``$ref``s schemas on remote sites (unusable
offline and by schemathesis), inlines ``limit`` per path, and leaves out the Part 3 parameters.
QGIS sizes its pages from ``components.parameters.limit.schema.{default, maximum}``, so those
two are the values the server enforces.
"""

from __future__ import annotations

from typing import Any

from api.ogc.crs import URIS
from api.ogc.extents import CollectionInfo
from api.ogc.params import DEFAULT_LIMIT, FILTER_LANGS, MAX_LIMIT, RESERVED
from api.ogc.processes.openapi import process_paths
from layers.registry import Layer, Property

_REF = "#/components/parameters/"
_JSON_TYPES = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "datetime": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
    "array": {"type": "array"},
}


def _q(name: str, schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "style": "form",
        "explode": False,
        "schema": schema,
        "description": description,
        **extra,
    }


def parameters() -> dict[str, dict[str, Any]]:
    crs = {"type": "string", "enum": list(URIS)}
    return {
        "f": _q("f", {"type": "string", "enum": ["json", "html"]}, "Response format (default by Accept)"),
        "limit": _q(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            f"Items per page (default {DEFAULT_LIMIT}, maximum {MAX_LIMIT}; more is a 400)",
        ),
        "offset": _q("offset", {"type": "integer", "minimum": 0, "default": 0}, "Items to skip"),
        "bbox": _q(
            "bbox",
            {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
            "minx,miny,maxx,maxy in bbox-crs (CRS84 by default; EPSG:4326/4490 are lat,lon)",
        ),
        "bbox-crs": _q("bbox-crs", crs, "CRS of bbox"),
        "crs": _q("crs", crs, "CRS of the returned geometries (Content-Crs tells which)"),
        "datetime": _q(
            "datetime", {"type": "string"}, "RFC 3339 instant or interval start/end ('..' for an open end)"
        ),
        "filter": _q("filter", {"type": "string"}, "A CQL2 filter (see the queryables)"),
        "filter-lang": _q(
            "filter-lang",
            {"type": "string", "enum": list(FILTER_LANGS), "default": "cql2-text"},
            "Language of filter",
        ),
        "filter-crs": _q("filter-crs", crs, "CRS of geometries in filter"),
        "skipGeometry": _q("skipGeometry", {"type": "boolean", "default": False}, "Leave geometries out"),
    }


def _json(description: str, media: str = "application/json") -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": {"type": "object"}}}}


def _get(
    op_id: str,
    summary: str,
    params: list[dict[str, Any]],
    ok: dict[str, Any],
    *,
    tag: str,
    not_found: bool = True,
) -> dict[str, Any]:
    responses = {"200": ok, "400": {"$ref": "#/components/responses/BadRequest"}}
    if not_found:
        responses["404"] = {"$ref": "#/components/responses/NotFound"}
    return {
        "get": {
            "operationId": op_id,
            "summary": summary,
            "tags": [tag],
            "parameters": params,
            "responses": responses,
        }
    }


def _collection_paths(layer: Layer) -> dict[str, Any]:
    cid, tag, f = layer.id, layer.id, {"$ref": _REF + "f"}
    op = "".join(part.capitalize() for part in cid.split("-"))
    names = [p.name for p in layer.properties]
    sort = _q(
        "sortby",
        {"type": "array", "items": {"type": "string", "enum": [*names, *(f"-{n}" for n in names)]}},
        "Properties to sort by ('-' for descending)",
    )
    props = _q(
        "properties",
        {"type": "array", "minItems": 1, "items": {"type": "string", "enum": names}},
        "Properties to return",
    )
    items_params = [
        f,
        *(
            {"$ref": _REF + n}
            for n in (
                "limit",
                "offset",
                "bbox",
                "bbox-crs",
                "crs",
                "filter",
                "filter-lang",
                "filter-crs",
                "skipGeometry",
            )
        ),
        sort,
        props,
    ]
    if layer.datetime_property is not None:
        items_params.append({"$ref": _REF + "datetime"})
    items_params += [
        _queryable_param(p) for p in layer.properties if p.name not in RESERVED and p.type != "array"
    ]
    base = f"/collections/{cid}"
    return {
        base: _get(
            f"describe{op}", f"{layer.title_en} ({layer.title_zh})", [f], _json("The collection"), tag=tag
        ),
        f"{base}/queryables": _get(
            f"queryables{op}",
            f"Queryables of {layer.title_en}",
            [f],
            _json("JSON Schema of the queryables", "application/schema+json"),
            tag=tag,
        ),
        f"{base}/items": _get(
            f"items{op}",
            f"Features of {layer.title_en}",
            items_params,
            _json("A page of features", "application/geo+json"),
            tag=tag,
        ),
        f"{base}/items/{{featureId}}": _get(
            f"item{op}",
            f"One feature of {layer.title_en}",
            [
                {"name": "featureId", "in": "path", "required": True, "schema": {"type": "string"}},
                f,
                {"$ref": _REF + "crs"},
            ],
            _json("A feature", "application/geo+json"),
            tag=tag,
        ),
    }


def _queryable_param(p: Property) -> dict[str, Any]:
    schema = dict(_JSON_TYPES[p.type])
    if p.enum:
        schema["enum"] = list(p.enum)
    return _q(p.name, schema, f"{p.title_en} ({p.title_zh}) equals this value")


# -- OGC API - Tiles (served by api/routes/tiles.py under the same /ogc) ---------------------
_MVT = "application/vnd.mapbox-vector-tile"
_TMS_IDS = ["WebMercatorQuad"]  # tiles.tms.TILE_MATRIX_SETS (api may not be imported by tiles)


def _path(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


def _tile_params(minzoom: int, maxzoom: int) -> list[dict[str, Any]]:
    return [
        _path("tileMatrixSetId", {"type": "string", "enum": _TMS_IDS}, "Tile matrix set"),
        _path("tileMatrix", {"type": "integer", "minimum": minzoom, "maximum": maxzoom},
              f"Zoom level z ({minzoom}..{maxzoom}; outside is a 404)"),
        _path("tileRow", {"type": "integer", "minimum": 0}, "Row y from the north (outside the matrix: 400)"),
        _path("tileCol", {"type": "integer", "minimum": 0}, "Column x from the west (outside: 400)"),
        _q("f", {"type": "string", "enum": ["mvt"]}, "Tile format (Mapbox Vector Tiles only)"),
    ]


def _tile_ok() -> dict[str, Any]:
    return {
        "description": "A Mapbox vector tile (empty body: nothing in the tile)",
        "headers": {"ETag": {"schema": {"type": "string"}}, "Cache-Control": {"schema": {"type": "string"}}},
        "content": {_MVT: {"schema": {"type": "string", "format": "binary"}}},
    }


def _tile_get(op_id: str, summary: str, params: list[dict[str, Any]], tag: str) -> dict[str, Any]:
    doc = _get(op_id, summary, params, _tile_ok(), tag=tag)
    doc["get"]["responses"]["304"] = {"description": "Not modified (If-None-Match)"}
    return doc


def _collection_tile_paths(layer: Layer) -> dict[str, Any]:
    cid, tag = layer.id, layer.id
    op = "".join(part.capitalize() for part in cid.split("-"))
    base = f"/collections/{cid}/tiles"
    tms = _path("tileMatrixSetId", {"type": "string", "enum": _TMS_IDS}, "Tile matrix set")
    # Any property filters a tile by equality (several values: comma-separated, any matches).
    filters = [_q(p.name, {"type": "string"}, f"{p.title_en} ({p.title_zh}) equals one of these values")
               for p in layer.properties if p.name not in ("f", "collections")]
    zooms = (layer.tiles.minzoom, layer.tiles.maxzoom)
    return {
        base: _get(f"tilesets{op}", f"Tilesets of {layer.title_en}", [], _json("The tilesets"), tag=tag),
        f"{base}/{{tileMatrixSetId}}": _get(
            f"tileset{op}", f"Tileset of {layer.title_en}", [tms], _json("Tileset metadata"), tag=tag),
        f"{base}/{{tileMatrixSetId}}/tilejson.json": _get(
            f"tilejson{op}", f"TileJSON of {layer.title_en}", [tms], _json("TileJSON 3.0.0"), tag=tag),
        f"{base}/{{tileMatrixSetId}}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}": _tile_get(
            f"tile{op}", f"A vector tile of {layer.title_en}", [*_tile_params(*zooms), *filters], tag),
    }


def _dataset_tile_paths(layers: list[Layer]) -> dict[str, Any]:
    ids = [layer.id for layer in layers]
    collections = _q("collections", {"type": "array", "items": {"type": "string", "enum": ids}},
                     "Collections in the tile, one MVT layer each (default: all)")
    tms = _path("tileMatrixSetId", {"type": "string", "enum": _TMS_IDS}, "Tile matrix set")
    zooms = (min((lyr.tiles.minzoom for lyr in layers), default=0),
             max((lyr.tiles.maxzoom for lyr in layers), default=22))
    return {
        "/tileMatrixSets": _get("tileMatrixSets", "Tile matrix sets", [], _json("The tile matrix sets"),
                                tag="tiles", not_found=False),
        "/tileMatrixSets/{tileMatrixSetId}": _get(
            "tileMatrixSet", "A tile matrix set", [tms], _json("Its definition"), tag="tiles"),
        "/tiles": _get("datasetTilesets", "Tilesets of several collections", [collections],
                       _json("The tilesets"), tag="tiles"),
        "/tiles/{tileMatrixSetId}": _get("datasetTileset", "Tileset of several collections",
                                         [tms, collections], _json("Tileset metadata"), tag="tiles"),
        "/tiles/{tileMatrixSetId}/tilejson.json": _get(
            "datasetTilejson", "TileJSON of several collections", [tms, collections],
            _json("TileJSON 3.0.0"), tag="tiles"),
        "/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}": _tile_get(
            "datasetTile", "A vector tile of several collections (one MVT layer each)",
            [*_tile_params(*zooms), collections], "tiles"),
    }


def openapi_document(infos: dict[str, CollectionInfo], base_url: str) -> dict[str, Any]:
    f = {"$ref": _REF + "f"}
    paths: dict[str, Any] = {
        "/": _get(
            "landingPage", "Landing page", [f], _json("Links to the API"), tag="server", not_found=False
        ),
        "/conformance": _get(
            "conformance", "Conformance classes", [f], _json("conformsTo"), tag="server", not_found=False
        ),
        "/openapi": _get(
            "openapi",
            "This document",
            [f],
            _json("OpenAPI 3.0", "application/vnd.oai.openapi+json;version=3.0"),
            tag="server",
            not_found=False,
        ),
        "/collections": _get(
            "collections", "Collections", [f], _json("The collections"), tag="server", not_found=False
        ),
    }
    for info in infos.values():
        paths.update(_collection_paths(info.layer))
    for info in infos.values():
        paths.update(_collection_tile_paths(info.layer))
    paths.update(_dataset_tile_paths([info.layer for info in infos.values()]))
    paths.update(process_paths())  # OGC API - Processes (api/ogc/processes)
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}}}
    exception = {
        "type": "object",
        "required": ["code"],
        "properties": {"code": {"type": "string"}, "description": {"type": "string"}},
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Pingan Map OGC API (平安一张图)",
            "version": "0.1.0",
            "description": "OGC API - Features Parts 1-3 and OGC API - Tiles (Mapbox vector tiles)"
            " over the layer registry",
        },
        "servers": [{"url": base_url}],
        "tags": [
            {"name": "server"},
            {"name": "tiles", "description": "Tiles of several collections"},
            {"name": "processes", "description": "OGC API - Processes: analyses, the index, patrol plans"},
            *({"name": i.layer.id, "description": i.layer.title_zh} for i in infos.values()),
        ],
        "paths": paths,
        "components": {
            "parameters": parameters(),
            "schemas": {"exception": exception},
            "responses": {
                "BadRequest": {"description": "Invalid parameter (OGC exception)", **error},
                "NotFound": {"description": "No such collection or feature (OGC exception)", **error},
            },
        },
    }
