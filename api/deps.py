"""Dependencies shared by route handlers.

They are ``async def`` although they do not await: FastAPI runs a plain ``def`` dependency in
its thread pool, one thread hop per dependency per request, which halved the rate of cached
tiles.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine

from layers.db import Principal
from layers.registry import Registry


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_pool(request: Request) -> AsyncConnectionPool:
    return request.app.state.pool


async def get_registry(request: Request) -> Registry:
    return request.app.state.registry


# Until authentication lands (issue 4), every request acts as this one district-wide staff
# principal; the persons layer is not served at all meanwhile. Issue 4 replaces this dependency
# with the authenticated caller, so every handler already takes its principal from here.
_UNAUTHENTICATED = Principal(user="anonymous", role="command")


async def get_principal(request: Request) -> Principal:
    return _UNAUTHENTICATED


EngineDep = Annotated[Engine, Depends(get_engine)]
PoolDep = Annotated[AsyncConnectionPool, Depends(get_pool)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
