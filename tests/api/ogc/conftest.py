"""OGC API fixtures: the demo district, the app in a TestClient, and a real uvicorn server.

The demo database comes from ``tests/conftest.py`` (scale 1, seed 42), analysed once so that
the planner's estimates (numberMatched above the exact-count limit) are what production gets
after autovacuum.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.settings import ApiSettings
from layers.settings import DatabaseSettings
from tests.serve import uvicorn_app

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def demo_url(demo_engine: Engine) -> str:
    with demo_engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    return demo_engine.url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def client(demo_url: str, demo_service_url: str, logins) -> Iterator[TestClient]:
    """The app, called as the command centre (district-wide staff) unless a test says otherwise."""
    app = create_app(ApiSettings(environment="test"), DatabaseSettings(database_url=demo_service_url))
    with TestClient(app, headers=logins["command"].headers) as c:
        yield c


@pytest.fixture(scope="session")
def count(demo_engine: Engine):
    """``count(sql, **params)``: the database's own answer, to compare the API with."""

    def run(sql: str, **params: object) -> int:
        with demo_engine.connect() as conn:
            return conn.execute(text(sql), params).scalar_one()

    return run


@pytest.fixture
def exact_counts(client: TestClient) -> Iterator[None]:
    """numberMatched always exact (no estimates), for tests that compare it with the database."""
    service = client.app.state.ogc
    before, service.exact_count_limit = service.exact_count_limit, 10**12
    try:
        yield
    finally:
        service.exact_count_limit = before


@pytest.fixture(scope="session")
def server(demo_url: str, demo_service_url: str) -> Iterator[str]:
    """The app served by uvicorn on 127.0.0.1 (for GDAL, OWSLib, schemathesis); its base URL."""
    with uvicorn_app(demo_service_url) as base:
        yield base
