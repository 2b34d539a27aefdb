"""Calling pygeoapi's API functions from our FastAPI handlers, and turning answers into responses.

pygeoapi's functions are synchronous and reach the database through our provider, so they run
in the thread pool, inside a copy of the request's context that holds the caller (``context``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from babel.core import UnknownLocaleError
from fastapi import Request
from fastapi.responses import Response
from pygeoapi.api import API, APIRequest
from starlette.concurrency import run_in_threadpool

from api.ogc.context import RequestContext, bind
from api.ogc.errors import InvalidParameterError, OgcError
from api.ogc.params import HIDDEN_FROM_PYGEOAPI

log = logging.getLogger(__name__)
Answer = tuple[dict[str, str], int, Any]
_LANG = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8}){0,3}$")


class PygeoapiParams(dict):
    """The query parameters as pygeoapi sees them.

    ``filter``, ``filter-lang``, ``filter-crs`` and ``datetime`` are parsed by our route (see
    ``params.py``), so lookups (``get``) do not find them and pygeoapi does not parse them
    again; they stay in ``items()``, from which pygeoapi writes its next/prev links, so paging a
    filtered collection keeps its filter. ``sortby`` arrives with ``+`` decoded as a space when
    a client did not percent-encode it; it is given back its ``+``.
    """

    def __init__(self, query: Mapping[str, str]) -> None:
        items = dict(query.items())
        if "sortby" in items:
            items["sortby"] = ",".join(
                "+" + s.strip() if s[:1] == " " else s.strip() for s in items["sortby"].split(",")
            )
        super().__init__(items)

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return default if key in HIDDEN_FROM_PYGEOAPI else super().get(key, default)


async def api_request(request: Request, api: API) -> APIRequest:
    """pygeoapi's request object; a language it cannot parse is a 400 (babel raises on some
    malformed tags, which pygeoapi lets through as a 500)."""
    lang = request.query_params.get("lang")
    if lang is not None and not _LANG.match(lang):
        raise InvalidParameterError("lang: a language tag such as zh-CN or en is expected")
    try:
        req = await APIRequest.from_starlette(request, api.locales)
    except (UnknownLocaleError, ValueError):
        raise InvalidParameterError("unsupported language (lang or Accept-Language): use zh-CN or en") \
            from None
    req._args = PygeoapiParams(request.query_params)  # noqa: SLF001 - the hook pygeoapi reads
    return req


async def call(
    fn: Callable[..., Answer],
    api: API,
    req: APIRequest,
    *args: Any,
    ctx: RequestContext,
    geojson: bool = False,
) -> Response:
    headers, status, content = await run_in_threadpool(bind(ctx, fn), api, req, *args)
    return to_response(headers, status, content, geojson=geojson)


def to_response(headers: Mapping[str, str], status: int, content: Any, *, geojson: bool = False) -> Response:
    out = {k: v for k, v in headers.items() if k.lower() != "x-powered-by"}  # no version banner
    if geojson and status == 200 and out.get("Content-Type", "").startswith("application/json"):
        out["Content-Type"] = "application/geo+json"
    return Response(content, status_code=int(status), headers=out)


def error_response(err: OgcError) -> Response:
    return Response(orjson.dumps(err.body()), status_code=int(err.status), media_type="application/json")


def reshape_json(response: Response, change: Callable[[dict[str, Any]], None]) -> Response:
    """Apply ``change`` to a JSON answer of pygeoapi (small documents only)."""
    if response.status_code != 200 or not response.headers.get("content-type", "").startswith(
        ("application/json", "application/schema+json")
    ):
        return response
    doc = orjson.loads(response.body)
    change(doc)
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return Response(orjson.dumps(doc), status_code=200, headers=headers)
