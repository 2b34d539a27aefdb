"""ASGI entry for uvicorn (``api.asgi:app`` with ``factory=True``): settings come from the
environment when the server starts, never at import time."""

from __future__ import annotations

from fastapi import FastAPI

from api.app import create_app
from api.settings import ApiSettings
from layers.settings import ServiceDatabaseSettings


def app() -> FastAPI:
    return create_app(ApiSettings(), ServiceDatabaseSettings())
