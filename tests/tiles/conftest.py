"""Fixtures of the tile tests: the demo district database (shared with tests/etl) and apps on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from layers.registry import Registry
from layers.settings import DatabaseSettings
from tiles.settings import TileSettings


@pytest.fixture(scope="session")
def demo_url(demo_service_url: str, logins) -> str:
    """The demo database as the service connects to it (role pingan_service); clients made by
    ``make_client`` call as the command centre unless given other headers."""
    _COMMAND.update(logins["command"].headers)
    return demo_service_url


_COMMAND: dict[str, str] = {}


def make_client(url: str, registry: Registry | None = None, headers: dict[str, str] | None = None,
                **tile_settings: object) -> TestClient:
    """A client of a fresh app (its own pool and tile cache); use it in ``with``."""
    app = create_app(ApiSettings(environment="test"), DatabaseSettings(database_url=url),
                     registry=registry, tile_settings=TileSettings(**tile_settings))
    return TestClient(app, headers=headers if headers is not None else dict(_COMMAND))


@pytest.fixture(scope="module")
def client(demo_url: str) -> Iterator[TestClient]:
    with make_client(demo_url) as c:
        yield c


@pytest.fixture(scope="module")
def cold(demo_url: str) -> Iterator[TestClient]:
    """A client of an app without the tile cache (every answer says MISS)."""
    with make_client(demo_url, cache_enabled=False) as c:
        yield c
