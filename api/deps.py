"""Dependencies shared by route handlers.

They are ``async def`` although they do not await: FastAPI runs a plain ``def`` dependency in
its thread pool, one thread hop per dependency per request, which halved the rate of cached
tiles.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from typing import Annotated
from urllib.parse import unquote

from fastapi import Depends, Request
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine
from starlette.applications import Starlette

from api.auth import ANONYMOUS, AuthRequired, anonymous_allowed, optional_principal
from api.auth.deps import bearer_principal, client_address
from layers.db import Principal
from layers.registry import Registry


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_pool(request: Request) -> AsyncConnectionPool:
    return request.app.state.pool


async def get_registry(request: Request) -> Registry:
    return request.app.state.registry


REASON_HEADER = "X-Pingan-Reason"


async def get_principal(request: Request) -> Principal:
    """The caller (api.auth: bearer token, HTTP Basic or the session cookie), with where the
    request came from and why (for the audit log). Anonymous callers only reach collections the
    deployment publishes (``PINGAN_AUTH_ANONYMOUS_COLLECTIONS``), as role ``public``; anything
    else answers 401 with the Basic and Bearer challenges."""
    principal = await optional_principal(request)
    if principal is None:
        collection = request.path_params.get("collection_id") or request.path_params.get("collectionId")
        if collection is None or not anonymous_allowed(request, str(collection)):
            raise AuthRequired()
        principal = ANONYMOUS
    return located(principal, client_address(request), request.headers.get(REASON_HEADER))


async def bearer_caller(app: Starlette, token: str, client: str | None, reason: str | None) -> Principal:
    """:func:`get_principal` for a request whose credentials are ``Authorization: Bearer <token>``,
    from values read off the request: the tile front door (``api.routes.tiles``) needs no
    ``Request`` for it."""
    return located(await bearer_principal(app, token.strip()), client, reason)


@lru_cache(maxsize=4096)
def located(principal: Principal, client: str | None, reason: str | None) -> Principal:
    """``principal`` with where the request came from and why (the ``X-Pingan-Reason`` header's
    value). Cached: building a principal checks its areas, and a map view asks dozens of tiles
    with the same credentials from the same address. The cache's key is every field the result
    holds (a principal's equality leaves out client and reason, which ``principal`` has none of)."""
    # Header values are Latin-1 on the wire: a reason in Chinese comes percent-encoded (UTF-8).
    text = unquote(reason or "", errors="replace").strip()
    return replace(principal, client=client, reason=text[:500] or None)


EngineDep = Annotated[Engine, Depends(get_engine)]
PoolDep = Annotated[AsyncConnectionPool, Depends(get_pool)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
