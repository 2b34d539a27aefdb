"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.routes import health
from api.settings import ApiSettings
from layers.db import make_engine
from layers.settings import DatabaseSettings


def create_app(settings: ApiSettings, db: DatabaseSettings) -> FastAPI:
    """Build the service. The lifespan owns the engine (pool): created at startup, disposed at
    shutdown; nothing is built at import time."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = make_engine(db)
        try:
            yield
        finally:
            app.state.engine.dispose()

    app = FastAPI(
        title="Pingan Map",
        summary="平安一张图 — social governance one map",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.include_router(health.router)
    return app
