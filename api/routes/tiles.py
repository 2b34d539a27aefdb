"""OGC API - Tiles (Mapbox Vector Tiles) at /ogc/.../tiles.

Thin handlers: validate, call ``tiles.service``/``tiles.metadata``, respond. Errors of this
router (tile errors and request validation) answer with the OGC exception body
``{"code", "description"}``; the table below maps each to its status.

URLs put the tile as ``{tileMatrix}/{tileRow}/{tileCol}`` = ``{z}/{y}/{x}`` (OGC order);
``tiles`` takes (z, x, y), and the swap happens here, in the call.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Coroutine
from functools import lru_cache
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from starlette.datastructures import QueryParams, URLPath
from starlette.routing import BaseRoute, Match, NoMatchFound, get_route_path
from starlette.types import Receive, Scope, Send

from api.deps import PoolDep, PrincipalDep, RegistryDep, bearer_caller, get_principal
from api.hardening import harden, within_limits
from layers import audit
from layers.db import Principal, atransaction
from layers.registry import Layer
from tiles import metadata
from tiles.errors import (
    ForbiddenLayerError,
    InvalidFilterError,
    InvalidTileError,
    TileError,
    UnknownCollectionError,
    UnknownTileMatrixSetError,
    ZoomOutOfRangeError,
)
from tiles.render import served_layer
from tiles.service import TileKey, TileService
from tiles.tms import TILE_MATRIX_SETS, get_tms

# Unknown things are 404; malformed values 400. A zoom outside the layer's range is outside
# the tileset's limits, which OGC API - Tiles answers with 404.
_STATUS: dict[type[TileError], int] = {
    UnknownCollectionError: 404, UnknownTileMatrixSetError: 404, ZoomOutOfRangeError: 404,
    InvalidTileError: 400, InvalidFilterError: 400, ForbiddenLayerError: 403,
}


def ogc_error(status: int, code: str, description: str) -> JSONResponse:
    return JSONResponse({"code": code, "description": description}, status_code=status)


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class OGCRoute(APIRoute):
    """A route whose tile and validation errors become OGC exception bodies (never a 500)."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except _ROUTE_ERRORS as exc:
                return _error_response(exc)

        return guarded


# What a tile route answers with an OGC exception body (_error_response), routed or at the front door
_ROUTE_ERRORS = (TileError, RequestValidationError, psycopg.OperationalError, PoolTimeout)


def _error_response(exc: Exception) -> Response:
    """The OGC exception body for an error of a tile route."""
    if isinstance(exc, TileError):
        return ogc_error(_STATUS.get(type(exc), 400), exc.code, str(exc))
    if isinstance(exc, RequestValidationError):
        described = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return ogc_error(400, "InvalidParameterValue", described)
    # The database is down or saturated: say so, and nothing about where it is.
    return ogc_error(503, "ServiceUnavailable", "the database is unavailable; retry later")


router = APIRouter(prefix="/ogc", route_class=OGCRoute, tags=["OGC API - Tiles"])

# Every path of this router: /ogc/tileMatrixSets..., /ogc/collections/{id}/tiles..., /ogc/tiles...
_TILE_PATHS = re.compile(r"/ogc/(?:tileMatrixSets|tiles|collections/[^/]+/tiles)(?:/|$)")


class TilesFirst(BaseRoute):
    """Placed before the app's other routes (``route_tiles_first``): a request under the tile
    paths is matched against this router's routes alone, not against every route included
    before it (~60-100 us a tile on the bench machine; docs/performance.md, "Tiles, sixth
    run"). Only a full match is taken here; anything else (a 405, a trailing slash to redirect,
    another path) goes on to the app's routes in their order, as before. No other route of the
    app matches a tile path, so no route is shadowed. Not a route of its own: the OpenAPI
    document and the routes' order stay as included."""

    def __init__(self, included: BaseRoute) -> None:
        self.included = included

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or not _TILE_PATHS.match(get_route_path(scope)):
            return Match.NONE, {}
        match, child_scope = self.included.matches(scope)
        return (match, child_scope) if match == Match.FULL else (Match.NONE, {})

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.included.handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)  # URLs are built by the routes in their order


def route_tiles_first(app: FastAPI) -> None:
    """Put a ``TilesFirst`` for this router (already included in ``app``) in front of the
    app's routes."""
    included = next(r for r in app.router.routes if getattr(r, "original_router", None) is router)
    app.router.routes.insert(0, TilesFirst(included))


async def get_tile_service(request: Request) -> TileService:
    return request.app.state.tiles


TileServiceDep = Annotated[TileService, Depends(get_tile_service)]
CollectionId = Annotated[str, Path(alias="collectionId", description="a served layer id")]
TmsId = Annotated[str, Path(alias="tileMatrixSetId", description="only WebMercatorQuad")]
TileMatrix = Annotated[int, Path(alias="tileMatrix", description="zoom level z")]
TileRow = Annotated[int, Path(alias="tileRow", description="row y, from the north")]
TileCol = Annotated[int, Path(alias="tileCol", description="column x, from the west")]
TileFormat = Annotated[Literal["mvt"], Query(description="tile format (Mapbox Vector Tiles only)")]
Collections = Annotated[str | None, Query(description="comma-separated collection ids (default: all)")]
_RESERVED = frozenset({"f", "collections"})


def _base(request: Request) -> str:
    public = request.app.state.settings.public_url
    return (public or str(request.base_url)).rstrip("/")


def _filters(query: QueryParams | None) -> dict[str, list[str]]:
    """Query parameters other than the reserved ones filter on properties.

    ``state=found,closed`` and ``state=found&state=closed`` both mean "found or closed".
    """
    filters: dict[str, list[str]] = {}
    for name, value in query.multi_items() if query is not None else ():
        if name not in _RESERVED:
            filters.setdefault(name, []).extend(value.split(","))
    return filters


def _collection_ids(collections: str | None) -> list[str] | None:
    return [c for c in collections.split(",") if c] if collections is not None else None


def _not_modified(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags


Reply = tuple[int, list[tuple[bytes, bytes]], bytes]  # status, raw headers, body


async def _tile_reply(state: Any, if_none_match: str | None, principal: Principal, key: TileKey) -> Reply:
    """A tile's answer: 200 with the MVT, or 304 when ``If-None-Match`` holds its ETag."""
    service: TileService = state.tiles
    layers = [state.registry[layer_id] for layer_id in key.layers]
    etag = key.etag
    tag = etag.encode()
    personal = [layer.id for layer in layers if layer.sensitivity == "personal"]
    if personal:  # every read of person-level data is audited, cached or not
        await _audit_tile(state.pool, principal, personal, key)
    caching = _caching(service.settings.cache_control, any(layer.sensitivity != "public" for layer in layers))
    if _not_modified(if_none_match, etag):
        return 304, [(b"etag", tag), *caching], b""
    body, hit = await service.tile(state.pool, principal, key)
    # An empty tile is 200 with an empty body rather than 204: QGIS and MapLibre draw nothing
    # for it, as they should, while some clients treat 204 as an error. Uncompressed on
    # purpose: QGIS 3.22 renders nothing for gzip bytes without Content-Encoding.
    return 200, [(b"etag", tag), *caching, (b"x-cache", b"HIT" if hit else b"MISS"),
                 (b"content-length", str(len(body)).encode()), (b"content-type", _MVT)], body


_MVT = metadata.MVT_MEDIA_TYPE.encode()


@lru_cache(maxsize=16)
def _caching(cache_control: str, private: bool) -> tuple[tuple[bytes, bytes], ...]:
    """Cache-Control (and Vary) of a tile: a tile of anything but public layers depends on who
    asks, and no shared cache may keep it."""
    if not private:
        return ((b"cache-control", cache_control.encode()),)
    return ((b"cache-control", ("private, " + cache_control.removeprefix("public, ")).encode()),
            (b"vary", b"Authorization, Cookie"))


def _response(reply: Reply) -> Response:
    status, headers, body = reply
    response = Response(status_code=status)
    response.body, response.raw_headers = body, headers
    return response


async def _tile_response(request: Request, principal: Principal, key: TileKey) -> Response:
    reply = await _tile_reply(request.app.state, request.headers.get("if-none-match"), principal, key)
    return _response(reply)


async def _audit_tile(pool: AsyncConnectionPool, principal: Principal, layer_ids: list[str],
                      key: TileKey) -> None:
    async with atransaction(pool, principal) as conn:
        for layer_id in layer_ids:
            await audit.arecord(conn, principal, "read", layer_id, (),
                                {"via": "tile", "tile": f"{key.z}/{key.x}/{key.y}"})


async def _bounds(pool: PoolDep, principal: PrincipalDep, layers: list[Layer]) -> metadata.Bounds | None:
    async with atransaction(pool, principal) as conn:
        return await metadata.layers_bounds(conn, layers)


def _dataset_layers(registry: RegistryDep, collections: str | None, principal: Principal) -> list[Layer]:
    ids = _collection_ids(collections)
    if ids is None:
        return [layer for layer in registry.served() if layer.readable_by(principal.role)]
    if not ids:
        raise UnknownCollectionError("no collections requested")
    return [served_layer(registry, layer_id, principal.role) for layer_id in dict.fromkeys(ids)]


def _selection(collections: str | None, layers: list[Layer]) -> str:
    """The ``?collections=`` of links, rebuilt from the validated ids (never echoed raw)."""
    return f"?collections={','.join(layer.id for layer in layers)}" if collections is not None else ""


# -- the plain tile request ----------------------------------------------------------------------
# Tiles are the hot path (a map view asks dozens at once). A request in the plain form -- GET, no
# body, the tile's numbers in decimal digits, ``f`` absent or ``mvt``, ``collections`` at most
# once, no dependency overridden -- is served at the app's front door (``serve_at_front``) with
# the same calls the routes make; any other request goes through the app, so validation and its
# error bodies stay exactly FastAPI's.
_DIGITS = re.compile(r"[0-9]{1,9}")

# Tile URLs, matched as Starlette matches the two tile routes ({param} is [^/]+).
_FRONT = re.compile(r"/ogc/(?:collections/(?P<collectionId>[^/]+)/tiles|tiles)"
                    r"/(?P<tileMatrixSetId>[^/]+)/(?P<tileMatrix>[^/]+)/(?P<tileRow>[^/]+)/(?P<tileCol>[^/]+)")


async def serve_at_front(app: FastAPI, scope: Scope, receive: Receive, send: Send) -> bool:
    """Serve a plain tile request before the app's middleware and routing; False (having sent
    nothing) for anything else, which the app then serves as usual.

    Under 20 clients the middleware stack, the routing and FastAPI's request handling cost a
    third of the worker's CPU per tile (docs/performance.md, "Tiles, eighth run"), and
    Starlette's request and response objects another tenth ("Tiles, eleventh run"). What a tile
    response gets from them is done here with the same functions: the route's own code
    (``_tile_reply``), its error bodies (``_error_response``), ``get_principal`` (a bearer token
    is resolved straight from the headers, by the same functions), the app's exception handlers
    (401 and its challenges), and the hardening middleware's headers and limits
    (``api.hardening``: a request with a body or an over-long query string is left to it). An
    exception with no handler propagates as it would through the app (a 500).
    """
    if scope["method"] != "GET" or app.dependency_overrides:
        return False
    found = _FRONT.fullmatch(get_route_path(scope))  # under a root path too, as the router matches
    if found is None or not within_limits(scope, app.state.settings.max_query_bytes):
        return False
    collection, tms_id, *numbers = found.groups()
    if not all(_DIGITS.fullmatch(n) for n in numbers):
        return False
    z, y, x = map(int, numbers)
    query = QueryParams(scope["query_string"]) if scope["query_string"] else None
    collections = query.getlist("collections") if query is not None else []
    if query is not None and (query.getlist("f") not in ([], ["mvt"])
                              or collection is None and len(collections) > 1):
        return False
    authorization = if_none_match = reason = None
    for name, value in scope["headers"]:  # the first of each, as Starlette's Headers.get
        if name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
        elif name == b"if-none-match" and if_none_match is None:
            if_none_match = value.decode("latin-1")
        elif name == b"x-pingan-reason" and reason is None:
            reason = value.decode("latin-1")
    state = app.state
    request: Request | None = None
    try:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() == "bearer":
            client = scope.get("client")
            principal = await bearer_caller(app, token, client[0] if client else None, reason)
        else:  # a cookie, Basic, anonymous, or refused: resolved as the routes resolve it
            request = _front_request(app, scope, receive, found)
            principal = await get_principal(request)
        if collection is not None:
            key = await state.tiles.collection_key(state.pool, principal, collection, tms_id, z, x, y,
                                                   _filters(query))
        else:
            ids = _collection_ids(next(iter(collections), None))
            key = await state.tiles.dataset_key(state.pool, principal, ids, tms_id, z, x, y)
        status, headers, body = await _tile_reply(state, if_none_match, principal, key)
    except _ROUTE_ERRORS as exc:
        status, headers, body = _parts(_error_response(exc))
    except Exception as exc:
        handler = _handler_for(app, exc)
        if handler is None:
            raise
        response = handler(request or _front_request(app, scope, receive, found), exc)
        if inspect.isawaitable(response):
            response = await response
        status, headers, body = _parts(response)
    await send({"type": "http.response.start", "status": status,
                "headers": harden(headers, scope.get("scheme") == "https")})
    await send({"type": "http.response.body", "body": body})
    return True


def _front_request(app: FastAPI, scope: Scope, receive: Receive, found: re.Match[str]) -> Request:
    """The request as the routed tile route sees it (its path parameters)."""
    scope["app"] = app
    scope["path_params"] = {name: value for name, value in found.groupdict().items() if value is not None}
    return Request(scope, receive)


def _parts(response: Response) -> Reply:
    return response.status_code, response.raw_headers, response.body


def _handler_for(app: FastAPI, exc: Exception) -> Callable[..., Any] | None:
    """The app's handler for ``exc`` (the nearest class in its MRO), as Starlette looks it up."""
    for cls in type(exc).__mro__:
        if cls in app.exception_handlers:
            return app.exception_handlers[cls]
    return None


@router.get("/tileMatrixSets", summary="Tile matrix sets")
async def tile_matrix_sets(request: Request) -> dict[str, Any]:
    return metadata.tile_matrix_sets(_base(request), list(TILE_MATRIX_SETS.values()))


@router.get("/tileMatrixSets/{tileMatrixSetId}", summary="A tile matrix set's definition")
async def tile_matrix_set(request: Request, tms_id: TmsId) -> dict[str, Any]:
    return metadata.tile_matrix_set(_base(request), get_tms(tms_id))


@router.get("/collections/{collectionId}/tiles", summary="A collection's tilesets")
async def collection_tilesets(request: Request, registry: RegistryDep, principal: PrincipalDep,
                              collection_id: CollectionId) -> dict:
    layer = served_layer(registry, collection_id, principal.role)
    base = _base(request)
    return {
        "links": [{"rel": "self", "type": "application/json",
                   "href": f"{base}/ogc/collections/{layer.id}/tiles"}],
        "tilesets": [metadata.tileset_summary(base, metadata.collection_tiles_path(layer, tms),
                                              layer.title_en, tms) for tms in TILE_MATRIX_SETS.values()],
    }


@router.get("/collections/{collectionId}/tiles/{tileMatrixSetId}", summary="A collection's tileset")
async def collection_tileset(request: Request, pool: PoolDep, registry: RegistryDep,
                             principal: PrincipalDep, collection_id: CollectionId, tms_id: TmsId) -> dict:
    layer, tms = served_layer(registry, collection_id, principal.role), get_tms(tms_id)
    bounds = await _bounds(pool, principal, [layer])
    return metadata.tileset(_base(request), metadata.collection_tiles_path(layer, tms), layer.title_en,
                            [layer], tms, bounds)


@router.get("/collections/{collectionId}/tiles/{tileMatrixSetId}/tilejson.json", summary="TileJSON")
async def collection_tilejson(request: Request, pool: PoolDep, registry: RegistryDep,
                              principal: PrincipalDep, collection_id: CollectionId, tms_id: TmsId) -> dict:
    layer, tms = served_layer(registry, collection_id, principal.role), get_tms(tms_id)
    bounds = await _bounds(pool, principal, [layer])
    return metadata.tilejson(_base(request), metadata.collection_tiles_path(layer, tms), layer.id,
                             [layer], bounds)


@router.get(
    "/collections/{collectionId}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}",
    summary="A vector tile of one collection",
    response_class=Response,
    responses={200: {"content": {metadata.MVT_MEDIA_TYPE: {}}}, 304: {"description": "not modified"}},
)
async def collection_tile(request: Request, pool: PoolDep, principal: PrincipalDep, service: TileServiceDep,
                          collection_id: CollectionId, tms_id: TmsId, z: TileMatrix, y: TileRow,
                          x: TileCol, f: TileFormat = "mvt") -> Response:
    key = await service.collection_key(pool, principal, collection_id, tms_id, z, x, y,
                                       _filters(request.query_params))
    return await _tile_response(request, principal, key)


@router.get("/tiles", summary="The dataset's tilesets (several collections in one tile)")
async def dataset_tilesets(request: Request, registry: RegistryDep, principal: PrincipalDep,
                           collections: Collections = None) -> dict:
    query = _selection(collections, _dataset_layers(registry, collections, principal))  # unknown: 404
    base = _base(request)
    return {
        "links": [{"rel": "self", "type": "application/json", "href": f"{base}/ogc/tiles{query}"}],
        "tilesets": [
            metadata.tileset_summary(base, metadata.dataset_tiles_path(tms), "Pingan Map", tms, query)
            for tms in TILE_MATRIX_SETS.values()
        ],
    }


@router.get("/tiles/{tileMatrixSetId}", summary="The dataset's tileset")
async def dataset_tileset(request: Request, pool: PoolDep, registry: RegistryDep, principal: PrincipalDep,
                          tms_id: TmsId, collections: Collections = None) -> dict:
    tms, layers = get_tms(tms_id), _dataset_layers(registry, collections, principal)
    query = _selection(collections, layers)
    return metadata.tileset(_base(request), metadata.dataset_tiles_path(tms), "Pingan Map", layers, tms,
                            await _bounds(pool, principal, layers), query)


@router.get("/tiles/{tileMatrixSetId}/tilejson.json", summary="TileJSON of the dataset's tiles")
async def dataset_tilejson(request: Request, pool: PoolDep, registry: RegistryDep, principal: PrincipalDep,
                           tms_id: TmsId, collections: Collections = None) -> dict:
    tms, layers = get_tms(tms_id), _dataset_layers(registry, collections, principal)
    query = _selection(collections, layers)
    return metadata.tilejson(_base(request), metadata.dataset_tiles_path(tms), "pingan", layers,
                             await _bounds(pool, principal, layers), query)


@router.get(
    "/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}",
    summary="A vector tile holding several collections (one MVT layer each)",
    response_class=Response,
    responses={200: {"content": {metadata.MVT_MEDIA_TYPE: {}}}, 304: {"description": "not modified"}},
)
async def dataset_tile(request: Request, pool: PoolDep, principal: PrincipalDep, service: TileServiceDep,
                       tms_id: TmsId, z: TileMatrix, y: TileRow, x: TileCol,
                       collections: Collections = None, f: TileFormat = "mvt") -> Response:
    key = await service.dataset_key(pool, principal, _collection_ids(collections), tms_id, z, x, y)
    return await _tile_response(request, principal, key)
