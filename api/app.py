"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.exc import OperationalError

from api import ogc
from api.routes import health, tiles
from api.settings import ApiSettings
from layers.catalog import default_registry
from layers.db import InsecureRoleError, check_service_role, make_async_pool, make_engine
from layers.registry import Registry
from layers.settings import DatabaseSettings
from tiles.service import TileService
from tiles.settings import TileSettings

log = logging.getLogger(__name__)


def create_app(
    settings: ApiSettings,
    db: DatabaseSettings,
    registry: Registry | None = None,
    tile_settings: TileSettings | None = None,
) -> FastAPI:
    """Build the service. The lifespan owns the database pools (a SQLAlchemy engine for
    ordinary work, an asyncio psycopg pool for hot paths): created at startup, closed at
    shutdown; nothing is built at import time."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Connected as a role that row-level security binds, or not at all: every new connection
        # is checked; at startup too, so a misconfiguration says so at once (unless the database
        # is down, which /healthz reports).
        app.state.engine = make_engine(db, service=True)
        try:
            check_service_role(app.state.engine)
        except InsecureRoleError:
            app.state.engine.dispose()
            raise
        except OperationalError as exc:
            log.warning("database unreachable at startup: %s", type(exc).__name__)
        app.state.pool = make_async_pool(db, service=True)
        await app.state.pool.open(wait=False)
        # The tile cache lives as long as the process serves (a new lifespan starts it empty).
        app.state.tiles = TileService(app.state.registry, tile_settings or TileSettings())
        try:
            async with ogc.open_service(app.state):  # pygeoapi API objects, OGC collection info
                yield
        finally:
            await app.state.pool.close()
            app.state.engine.dispose()

    app = FastAPI(
        title="Pingan Map",
        summary="平安一张图 — social governance one map",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.registry = registry or default_registry()
    app.include_router(health.router)
    app.include_router(ogc.router)
    app.include_router(tiles.router)
    return app
