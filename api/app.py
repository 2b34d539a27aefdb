"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.exc import OperationalError
from starlette.types import Receive, Scope, Send

from api import ogc
from api.auth import AuthSettings
from api.auth import install as install_auth
from api.hardening import HardeningMiddleware
from api.ogc.processes.routes import router as processes_router
from api.ogc.processes.runner import open_runner
from api.routes import dashboard, etl, health, patrol, persons, screen, tiles
from api.routes import rasters as raster_routes  # raster products (issue 7)
from api.routes import warnings as index_warnings
from api.settings import ApiSettings
from layers.catalog import default_registry
from layers.crypto import DataKeyError, KeyRing
from layers.db import InsecureRoleError, check_service_role, make_async_pool, make_engine
from layers.index_evidence import MAX_FILE_BYTES
from layers.registry import Registry
from layers.settings import DatabaseSettings, KeySettings
from tiles.service import TileService
from tiles.settings import TileSettings

log = logging.getLogger(__name__)


class PinganApp(FastAPI):
    """The service's ASGI app: plain tile requests, the hot path of the map (a view asks dozens at
    once), are served at the front door (``api.routes.tiles.serve_at_front``), before the
    middleware and the routing; every other request goes through them."""

    front_door = True  # off: every request goes the routed way (tests compare the two)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front_door and scope["type"] == "http" and self._front_door_knows_the_middleware() \
                and await tiles.serve_at_front(self, scope, receive, send):
            return
        await super().__call__(scope, receive, send)

    def _front_door_knows_the_middleware(self) -> bool:
        """The front door does what the hardening middleware does and nothing else: with any
        other middleware added, every request goes through the stack."""
        return all(m.cls is HardeningMiddleware for m in self.user_middleware)


def create_app(
    settings: ApiSettings,
    db: DatabaseSettings,
    registry: Registry | None = None,
    tile_settings: TileSettings | None = None,
    auth_settings: AuthSettings | None = None,
    keys: KeyRing | None = None,
) -> PinganApp:
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
        app.state.keys = keys if keys is not None else _keys_from_settings()
        await app.state.pool.open(wait=False)
        # The tile cache lives as long as the process serves (a new lifespan starts it empty).
        app.state.tiles = TileService(app.state.registry, tile_settings or TileSettings())
        try:
            async with ogc.open_service(app.state), open_runner(app.state):  # + OGC API - Processes jobs
                yield
        finally:
            await app.state.pool.close()
            app.state.engine.dispose()

    app = PinganApp(
        title="Pingan Map",
        summary="平安一张图 — social governance one map",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.registry = registry or default_registry()
    install_auth(app, auth_settings or AuthSettings())
    app.include_router(health.router)
    app.include_router(ogc.router)
    app.include_router(processes_router)  # OGC API - Processes (api/ogc/processes)
    app.include_router(tiles.router)
    app.include_router(persons.router)
    app.include_router(etl.router)
    app.include_router(screen.router)
    app.include_router(raster_routes.router)
    app.include_router(index_warnings.router)  # the ladder's items, evidence, documents; index exports
    app.include_router(dashboard.router)
    app.include_router(patrol.router)  # saved patrol plans and their exports (issue 9)
    tiles.route_tiles_first(app)  # tile URLs matched against the tile routes alone
    assets = settings.assets_dir or (Path.cwd() / "node_modules")
    screen.mount_static(app, assets if assets.is_dir() else None)
    app.add_middleware(HardeningMiddleware, max_body_bytes=settings.max_body_bytes,
                       max_query_bytes=settings.max_query_bytes,
                       # an evidence file (layers.index_evidence checks its own limit) with its note
                       body_limits=((r"/api/warnings/\d+/evidence", MAX_FILE_BYTES + (64 << 10)),))
    return app


def _keys_from_settings() -> KeyRing | None:
    """The person-data key ring from PINGAN_DATA_KEY(_FILE); without one, person files answer
    503 and everything else works."""
    try:
        return KeyRing.from_settings(KeySettings())
    except DataKeyError as exc:
        log.warning("person files unavailable: %s", exc)
        return None
