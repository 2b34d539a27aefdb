"""numberMatched: exact below the limit, the planner's estimate above it (docs/ogc-api.md)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.ogc.params import items_query
from api.ogc.queries import EXACT_COUNT_LIMIT, Page, page_steps
from layers.catalog import default_registry


def drive(steps, rows: list[tuple]) -> tuple[list[str], Page]:
    """Run ``page_steps`` against canned first rows; returns the statements it asked for."""
    asked = [next(steps).sql.as_string(None)]
    try:
        for row in rows:
            asked.append(steps.send(row).sql.as_string(None))
    except StopIteration as done:
        return asked, done.value
    raise AssertionError("more statements than rows")


def test_a_short_page_needs_no_count() -> None:
    q = items_query({"limit": "10"}, default_registry()["towns"])
    asked, page = drive(page_steps(q), [(None,), ("[]", 7)])
    assert len(asked) == 2 and page.matched == 7 and not page.estimated


def test_estimate_above_the_limit_and_exact_below() -> None:
    q = items_query({"limit": "10"}, default_registry()["hazards"])
    plan = [{"Plan": {"Plan Rows": 50_000}}]
    asked, page = drive(page_steps(q, exact_count_limit=20_000), [(None,), ("[]", 10), (plan,)])
    assert asked[-1].startswith("EXPLAIN") and page.matched == 50_000 and page.estimated
    asked, page = drive(page_steps(q, exact_count_limit=100_000), [(None,), ("[]", 10), (plan,), (30_000,)])
    assert "count(*)" in asked[-1] and page.matched == 30_000 and not page.estimated


def test_estimate_never_contradicts_the_page() -> None:
    q = items_query({"limit": "10", "offset": "100"}, default_registry()["hazards"])
    plan = [{"Plan": {"Plan Rows": 5}}]
    _, page = drive(page_steps(q, exact_count_limit=1), [(None,), ("[]", 10), (plan,)])
    assert page.matched == 111  # at least what was paged through, and one more for the next link


def test_estimates_in_the_api(client: TestClient, count, demo_engine) -> None:
    where = "ST_Intersects(geom, ST_MakeEnvelope(120.55, 27.95, 120.70, 28.10, 4490))"
    url = "/ogc/collections/hazards/items?limit=5&bbox=120.55,27.95,120.70,28.10"
    with demo_engine.connect() as conn:
        plan = conn.exec_driver_sql(
            f"EXPLAIN (FORMAT JSON) SELECT 1 FROM pingan.hazards WHERE {where}"
        ).scalar()
    service = client.app.state.ogc
    service.exact_count_limit = 10
    try:
        doc = client.get(url).json()
    finally:
        service.exact_count_limit = EXACT_COUNT_LIMIT
    assert doc["numberMatched"] == plan[0]["Plan"]["Plan Rows"]
    assert any(x["rel"] == "next" for x in doc["links"])
    exact = count(f"SELECT count(*) FROM pingan.hazards WHERE {where}")  # noqa: S608 - literal test SQL
    service.exact_count_limit = 10**12
    try:
        assert client.get(url).json()["numberMatched"] == exact
    finally:
        service.exact_count_limit = EXACT_COUNT_LIMIT
