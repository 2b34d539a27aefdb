"""The app factory and /healthz against the real database."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from layers import migrate
from layers.settings import DatabaseSettings


def client_for(url: str) -> TestClient:
    return TestClient(create_app(ApiSettings(environment="test"), DatabaseSettings(database_url=url)))


def test_healthz_ok(service_url: str) -> None:
    with client_for(service_url) as client:
        r = client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["schema"] == migrate.head_revision()
    assert body["postgis"].startswith("3.")


def test_healthz_database_unreachable_leaks_nothing() -> None:
    url = "postgresql://secretuser:secretpw@127.0.0.1:1/nowhere"
    with client_for(url) as client:
        r = client.get("/healthz")
    assert r.status_code == 503
    assert r.json() == {"status": "error", "database": "unreachable"}
    assert "secret" not in r.text and "127.0.0.1" not in r.text


def test_healthz_unmigrated_database(databases) -> None:
    with client_for(databases.service_url(databases.create())) as client:
        r = client.get("/healthz")
    assert r.status_code == 503
    assert "expected" in r.json()["database"]


def test_service_refuses_a_role_that_bypasses_row_level_security(db_url: str) -> None:
    """Connected as the tables' owner, RLS would not bind the service: it must not start."""
    import pytest

    from layers.db import InsecureRoleError

    with pytest.raises(InsecureRoleError, match="owner of the tables"), client_for(db_url):
        pass
