"""Fixtures of the tile tests: the demo district database (shared with tests/etl) and apps on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.settings import ApiSettings
from layers.db import libpq_url
from layers.registry import Registry
from layers.settings import DatabaseSettings
from tiles.settings import TileSettings


@pytest.fixture(scope="session")
def demo_url(demo_engine: Engine) -> str:
    return libpq_url(demo_engine.url.render_as_string(hide_password=False))


def make_client(url: str, registry: Registry | None = None, **tile_settings: object) -> TestClient:
    """A client of a fresh app (its own pool and tile cache); use it in ``with``."""
    app = create_app(ApiSettings(environment="test"), DatabaseSettings(database_url=url),
                     registry=registry, tile_settings=TileSettings(**tile_settings))
    return TestClient(app)


@pytest.fixture(scope="module")
def client(demo_url: str) -> Iterator[TestClient]:
    with make_client(demo_url) as c:
        yield c
