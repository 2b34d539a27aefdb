"""Dependencies shared by route handlers.

They are ``async def`` although they do not await: FastAPI runs a plain ``def`` dependency in
its thread pool, one thread hop per dependency per request, which halved the rate of cached
tiles.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated
from urllib.parse import unquote

from fastapi import Depends, Request
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine

from api.auth import ANONYMOUS, AuthRequired, anonymous_allowed, optional_principal
from api.auth.deps import client_address
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
    # Header values are Latin-1 on the wire: a reason in Chinese comes percent-encoded (UTF-8).
    reason = unquote(request.headers.get(REASON_HEADER, ""), errors="replace").strip()
    return replace(principal, client=client_address(request), reason=reason[:500] or None)


EngineDep = Annotated[Engine, Depends(get_engine)]
PoolDep = Annotated[AsyncConnectionPool, Depends(get_pool)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
