"""Each query acts for the caller: the principal reaches the database, across the thread pool."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.deps import get_principal
from api.ogc.context import NoCallerError
from api.ogc.provider import PinganProvider
from layers.db import Principal

TOWN = "330304001"


@pytest.fixture
def town_policy(demo_engine: Engine) -> Iterator[None]:
    """A row-level-security policy on key_sites: a town user sees its own town's rows only."""
    statements = (
        "ALTER TABLE pingan.key_sites ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE pingan.key_sites FORCE ROW LEVEL SECURITY",  # the app role owns the table
        "CREATE POLICY ogc_test_town ON pingan.key_sites USING "
        "(pingan.ctx_role() IS DISTINCT FROM 'town' OR town_code = ANY(pingan.ctx_areas()))",
    )
    with demo_engine.begin() as conn:
        for s in statements:
            conn.execute(text(s))
    try:
        yield
    finally:
        with demo_engine.begin() as conn:
            conn.execute(text("DROP POLICY ogc_test_town ON pingan.key_sites"))
            conn.execute(text("ALTER TABLE pingan.key_sites NO FORCE ROW LEVEL SECURITY"))
            conn.execute(text("ALTER TABLE pingan.key_sites DISABLE ROW LEVEL SECURITY"))


@pytest.mark.parametrize("native", [True, False])
def test_the_callers_rows_and_no_others(client: TestClient, count, town_policy: None, native: bool) -> None:
    app = client.app
    app.dependency_overrides[get_principal] = lambda: Principal("t1", "town", (TOWN,))
    app.state.ogc.native_items = native
    try:
        doc = client.get("/ogc/collections/key-sites/items?limit=10000").json()
        other = count("SELECT min(id) FROM pingan.key_sites WHERE town_code <> :t", t=TOWN)
        hidden = client.get(f"/ogc/collections/key-sites/items/{other}")
    finally:
        app.dependency_overrides.clear()
        app.state.ogc.native_items = True
    towns = {f["properties"]["town_code"] for f in doc["features"]}
    assert towns == {TOWN}
    assert doc["numberMatched"] == count("SELECT count(*) FROM pingan.key_sites WHERE town_code = :t", t=TOWN)
    assert hidden.status_code == 404
    everyone = client.get("/ogc/collections/key-sites/items?limit=1").json()["numberMatched"]
    assert everyone == count("SELECT count(*) FROM pingan.key_sites")


def test_provider_refuses_without_a_caller(client: TestClient) -> None:
    service = client.app.state.ogc
    provider = PinganProvider({"name": "x", "type": "feature", "data": service.key, "layer": "towns"})
    with pytest.raises(NoCallerError):
        provider.query(limit=1)
