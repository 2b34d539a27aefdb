"""The OGC service of one app: its pygeoapi ``API`` objects, collection info and database pool.

Built by the app's lifespan (``open_service``), never at import. pygeoapi instantiates our
provider anew for each request, passing only its config entry; the provider finds the service
(and through it the app's engine, one connection pool per database URL) by the key in ``data``.

pygeoapi writes absolute links from its configured URL, so an ``API`` is built per public base
URL: ``ApiSettings.public_url`` when set (production, behind a proxy), else the URL the request
came to. That URL comes from the Host header, so at most a few are kept (LRU).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from psycopg_pool import AsyncConnectionPool
from pygeoapi.api import API
from sqlalchemy import Engine

from api.ogc.config import pygeoapi_config
from api.ogc.errors import ForbiddenError, NotFoundError
from api.ogc.extents import CollectionInfo, collection_info
from api.ogc.openapi import openapi_document
from api.ogc.queries import EXACT_COUNT_LIMIT
from api.ogc.store import database_errors
from layers.db import SYSTEM, Principal, atransaction
from layers.registry import Layer, Registry

MAX_BASE_URLS = 8
_SERVICES: dict[str, OgcService] = {}


@dataclass
class OgcService:
    registry: Registry
    engine: Engine  # the provider's pool (sync: pygeoapi runs in worker threads)
    pool: AsyncConnectionPool  # the native path's pool
    public_url: str | None = None
    exact_count_limit: int = EXACT_COUNT_LIMIT
    native_items: bool = True  # GeoJSON item pages without pygeoapi (see native.py); False: all pygeoapi
    key: str = field(default_factory=lambda: secrets.token_hex(8))
    _infos: dict[str, CollectionInfo] | None = None
    _apis: OrderedDict[tuple[str, frozenset[str]], API] = field(default_factory=OrderedDict)
    _load_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _api_lock: threading.Lock = field(default_factory=threading.Lock)

    def layer(self, collection_id: str, principal: Principal) -> Layer:
        """The served layer ``collection_id`` if ``principal``'s role may read it: 404 for an
        unknown collection, 403 (naming the aggregate layer to use instead) for one the role may
        not read. The database enforces the same again (privileges and row-level security)."""
        layer = self.registry.get(collection_id)
        if layer is None or not layer.served:
            raise NotFoundError(f"collection {collection_id[:100]!r} not found")
        if not layer.readable_by(principal.role):
            hint = f"; use {layer.instead!r}" if layer.instead else ""
            raise ForbiddenError(f"collection {layer.id!r} is not available to role {principal.role!r}{hint}")
        return layer

    async def infos(self) -> dict[str, CollectionInfo]:
        if self._infos is None:
            async with self._load_lock:
                if self._infos is None:
                    loaded = {}
                    with database_errors():  # down at the first request: 503, tried again next time
                        async with atransaction(self.pool, SYSTEM) as conn:
                            for layer in self.registry.served():
                                loaded[layer.id] = await collection_info(conn, layer)
                    self._infos = loaded
        return self._infos

    def info(self, layer_id: str) -> CollectionInfo:
        assert self._infos is not None, "infos() first"
        return self._infos[layer_id]

    async def api(self, request_base: str, principal: Principal) -> API:
        """pygeoapi's API for this base URL, configured with the collections ``principal`` may
        read (so listings, HTML pages and the OpenAPI document show no others)."""
        base = (self.public_url or request_base).rstrip("/") + "/ogc"
        infos = await self.infos()
        mine = {lid: info for lid, info in infos.items() if info.layer.readable_by(principal.role)}
        key = (base, frozenset(mine))
        with self._api_lock:
            api = self._apis.get(key)
            if api is None:
                api = API(pygeoapi_config(self.key, mine, base), openapi_document(mine, base))
                self._apis[key] = api
                while len(self._apis) > MAX_BASE_URLS * 8:  # a few base URLs x the access levels
                    self._apis.popitem(last=False)
            self._apis.move_to_end(key)
        return api



def get_service(key: str) -> OgcService:
    try:
        return _SERVICES[key]
    except KeyError:
        raise LookupError(f"no OGC service {key!r} is open in this process") from None


@asynccontextmanager
async def open_service(state: Any) -> AsyncIterator[OgcService]:
    """The lifespan part of the OGC API: register the service on ``state`` for its duration."""
    service = OgcService(
        registry=state.registry,
        engine=state.engine,
        pool=state.pool,
        public_url=getattr(state.settings, "public_url", None),
    )
    # pygeoapi logs a WARNING for each config key it tries as a locale on every HTML page, and
    # each client error at ERROR; keep only its errors (ours are logged by the routes)
    logging.getLogger("pygeoapi").setLevel(logging.ERROR)
    _SERVICES[service.key] = service
    state.ogc = service
    try:
        yield service
    finally:
        _SERVICES.pop(service.key, None)
