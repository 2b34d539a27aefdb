"""The /ogc routes: thin handlers that check the request and call pygeoapi (or the native path).

Every handler resolves the collection against the registry first (404), parses item
parameters with ``params`` (400) and acts for the caller from ``get_principal``. Errors leave
as OGC exception JSON; nothing unexpected leaks a traceback (``OgcRoute``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pygeoapi.api import F_HTML, describe_collections, landing_page, openapi_
from pygeoapi.api.itemtypes import get_collection_item, get_collection_items, get_collection_queryables
from pygeoapi.util import render_j2_template, to_json

from api.deps import PrincipalDep
from api.ogc import bridge, native, params
from api.ogc.conformance import CONFORMANCE
from api.ogc.context import RequestContext
from api.ogc.crs import lookup as lookup_crs
from api.ogc.errors import OgcError
from api.ogc.service import OgcService
from layers.db import Principal

log = logging.getLogger(__name__)


class OgcRoute(APIRoute):
    """Turns OgcError into its OGC exception response, and anything unexpected into a bare 500."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except OgcError as err:
                return bridge.error_response(err)
            except HTTPException:
                raise  # authentication and the like: the app's handlers answer those
            except Exception:
                log.exception("OGC request failed: %s", request.url.path)
                return bridge.error_response(OgcError("internal error"))

        return guarded


router = APIRouter(prefix="/ogc", route_class=OgcRoute, tags=["OGC API"])


def _service(request: Request) -> OgcService:
    return request.app.state.ogc


async def _prepare(request: Request, principal: Principal) -> tuple[OgcService, Any, Any]:
    service = _service(request)
    api = await service.api(str(request.base_url), principal)
    return service, api, await bridge.api_request(request, api)


@router.get("", summary="Landing page")
async def landing(request: Request, principal: PrincipalDep) -> Response:
    _, api, req = await _prepare(request, principal)
    response = await bridge.call(landing_page, api, req, ctx=RequestContext(principal))
    return bridge.reshape_json(response, lambda doc: _landing_links(doc, api.base_url))


def _landing_links(doc: dict[str, Any], base: str) -> None:
    """pygeoapi links /TileMatrixSets (ours is /tileMatrixSets). Its processes and job-list
    links stay: api/ogc/processes serves them."""
    links = list(doc.get("links", []))
    for link in links:
        if link.get("rel", "").endswith("/tiling-schemes"):
            link["href"] = link["href"].replace(f"{base}/TileMatrixSets", f"{base}/tileMatrixSets")
    doc["links"] = links


@router.get("/conformance", summary="Conformance classes")
async def conformance_(request: Request, principal: PrincipalDep) -> Response:
    # ours, not pygeoapi's: its list claims Features Parts 4 and 5, which we do not serve, and
    # lacks the Filter, CQL2, sorting and tiles classes, which we do
    _, api, req = await _prepare(request, principal)
    body = {"conformsTo": list(CONFORMANCE)}
    headers = req.get_response_headers(**api.api_headers)
    if req.format == F_HTML:
        content = render_j2_template(
            api.tpl_config, api.config["server"]["templates"], "conformance.html", body, req.locale
        )
        return bridge.to_response(headers, 200, content)
    return bridge.to_response(headers, 200, to_json(body, api.pretty_print))


@router.get("/openapi", summary="OpenAPI document")
async def openapi(request: Request, principal: PrincipalDep) -> Response:
    _, api, req = await _prepare(request, principal)
    return await bridge.call(openapi_, api, req, ctx=RequestContext(principal))


@router.get("/collections", summary="Collections")
async def collections(request: Request, principal: PrincipalDep) -> Response:
    _, api, req = await _prepare(request, principal)
    return await bridge.call(describe_collections, api, req, ctx=RequestContext(principal))


@router.get("/collections/{collection_id}", summary="A collection")
async def collection(request: Request, collection_id: str, principal: PrincipalDep) -> Response:
    service, api, req = await _prepare(request, principal)
    service.layer(collection_id, principal)
    return await bridge.call(describe_collections, api, req, collection_id, ctx=RequestContext(principal))


@router.get("/collections/{collection_id}/queryables", summary="Queryables of a collection")
async def queryables(request: Request, collection_id: str, principal: PrincipalDep) -> Response:
    service, api, req = await _prepare(request, principal)
    layer = service.layer(collection_id, principal)
    response = await bridge.call(
        get_collection_queryables, api, req, collection_id, ctx=RequestContext(principal)
    )
    english = req.locale.language == "en"
    titles = {p.name: p.title_en if english else p.title_zh for p in layer.properties}
    return bridge.reshape_json(response, lambda doc: _titles(doc, titles))


def _titles(doc: dict[str, Any], titles: dict[str, str]) -> None:
    """pygeoapi titles each queryable with its name; the registry has real titles."""
    for name, schema in doc.get("properties", {}).items():
        if name in titles:
            schema["title"] = titles[name]


@router.get("/collections/{collection_id}/items", summary="Features of a collection")
async def items(request: Request, collection_id: str, principal: PrincipalDep) -> Response:
    service, api, req = await _prepare(request, principal)
    layer = service.layer(collection_id, principal)
    where = params.route_where(request.query_params, layer)
    query = params.items_query(request.query_params, layer, where)
    if service.native_items and native.serves(req):
        return await native.items(service, api, req, query, principal)
    return await bridge.call(
        get_collection_items, api, req, collection_id, ctx=RequestContext(principal, where), geojson=True
    )


@router.get("/collections/{collection_id}/items/{feature_id}", summary="One feature")
async def item(request: Request, collection_id: str, feature_id: str, principal: PrincipalDep) -> Response:
    service, api, req = await _prepare(request, principal)
    service.layer(collection_id, principal)
    lookup_crs(request.query_params.get("crs"), "crs")
    return await bridge.call(
        get_collection_item, api, req, collection_id, feature_id, ctx=RequestContext(principal), geojson=True
    )
