"""Saved patrol routes and stops as OGC API collections: every saved route with the database's
length, within the caller's town, extents and queryables, and GDAL's OAPIF driver reading them."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.settings import ApiSettings
from layers.settings import DatabaseSettings
from tests.api.ogc.test_clients import _credentials, feature_count, gdal  # noqa: F401 - a fixture
from tests.layers.test_patrol_layer import saved_demo_plans

ROUTES = "/ogc/collections/patrol-routes"


@pytest.fixture(scope="module")
def plans(demo_engine: Engine) -> Iterator[dict[str, object]]:
    with saved_demo_plans(demo_engine) as ids:
        yield ids


@pytest.fixture(scope="module")
def fresh(demo_service_url: str, logins, plans) -> Iterator[TestClient]:
    """An app started after the plans were saved (collection extents are read once per app)."""
    app = create_app(ApiSettings(environment="test"), DatabaseSettings(database_url=demo_service_url))
    with TestClient(app, headers=logins["command"].headers) as c:
        yield c


def _db_routes(engine: Engine, where: str = "true", **params: object) -> dict[int, tuple]:
    with engine.connect() as c:
        rows = c.execute(text(
            "SELECT r.id, r.length_m, GeometryType(r.geom), r.plan_id FROM pingan.patrol_routes r"  # noqa: S608
            f" JOIN pingan.patrol_plans p ON p.id = r.plan_id WHERE {where}"), params).all()
    return {r[0]: tuple(r[1:]) for r in rows}


def test_every_saved_route_with_the_databases_length(fresh: TestClient, demo_engine: Engine, plans) -> None:
    expected = _db_routes(demo_engine)
    body = fresh.get(f"{ROUTES}/items", params={"limit": 1000}).json()
    assert body["numberMatched"] == len(body["features"]) == len(expected) > 0
    for f in body["features"]:
        length, kind, plan_id = expected[f["id"]]
        assert f["properties"]["length_m"] == pytest.approx(length, abs=1e-6)
        assert f["properties"]["plan_id"] == plan_id
        assert (f["geometry"] or {}).get("type") == (None if kind is None else "LineString")
    moving = [f for f in body["features"] if f["geometry"]]
    assert moving and all(len(f["geometry"]["coordinates"]) >= 2 for f in moving)


def test_a_town_user_sees_its_towns_routes_only(fresh: TestClient, demo_engine: Engine, logins,
                                                plans) -> None:
    town = plans["towns"][0]
    body = fresh.get(f"{ROUTES}/items", params={"limit": 1000}, headers=logins["town"].headers).json()
    expected = _db_routes(demo_engine, "p.town_code = :t", t=town)
    assert {f["id"] for f in body["features"]} == set(expected) and expected
    assert {f["properties"]["town_code"] for f in body["features"]} == {town}
    one_of_b = next(iter(_db_routes(demo_engine, "p.id = :p", p=plans["b"])))
    assert fresh.get(f"{ROUTES}/items/{one_of_b}", headers=logins["town"].headers).status_code == 404
    assert fresh.get(f"{ROUTES}/items/{one_of_b}").status_code == 200
    assert fresh.get(f"{ROUTES}/items", headers=logins["analyst"].headers).status_code == 403


def test_filters_by_plan_and_date(fresh: TestClient, demo_engine: Engine, plans) -> None:
    one = fresh.get(f"{ROUTES}/items", params={"plan_id": plans["a"]}).json()
    assert {f["id"] for f in one["features"]} == set(_db_routes(demo_engine, "p.id = :p", p=plans["a"]))
    same_day = fresh.get(f"{ROUTES}/items", params={"datetime": "2026-11-24T00:00:00Z", "limit": 1000}).json()
    other_day = fresh.get(f"{ROUTES}/items", params={"datetime": "2026-11-23T00:00:00Z"}).json()
    assert same_day["numberMatched"] == len(_db_routes(demo_engine, "p.plan_date = '2026-11-24'"))
    assert other_day["numberMatched"] == len(_db_routes(demo_engine, "p.plan_date = '2026-11-23'"))
    stops = fresh.get("/ogc/collections/patrol-stops/items",
                      params={"limit": 1000, "status": "visited"}).json()
    with demo_engine.connect() as c:
        visited = c.execute(text("SELECT count(*) FROM pingan.patrol_stops WHERE status = 'visited'")
                            ).scalar_one()
    assert stops["numberMatched"] == visited > 0


def test_extent_and_queryables(fresh: TestClient, demo_engine: Engine, plans) -> None:
    ext = fresh.get(ROUTES).json()["extent"]
    ((x0, y0, x1, y1),) = ext["spatial"]["bbox"]
    with demo_engine.connect() as c:
        outside = c.execute(text(
            "SELECT count(*) FROM pingan.patrol_routes WHERE NOT ST_Within(geom,"
            " ST_Expand(ST_MakeEnvelope(:a, :b, :c, :d, 4490), 1e-6))"), {"a": x0, "b": y0, "c": x1, "d": y1}
        ).scalar_one()
    assert outside == 0 and 120 < x0 < x1 < 121
    assert ext["temporal"]["interval"][0][0].startswith("2026-11-24")
    props = fresh.get(f"{ROUTES}/queryables").json()["properties"]
    assert {"plan_id", "plan_date", "team", "travel_mode", "length_m"} <= set(props)
    assert props["travel_mode"]["enum"] == ["foot", "bicycle", "car"]
    tiles = fresh.get(f"{ROUTES}/tiles/WebMercatorQuad").json()
    assert tiles["layers"][0]["geometryDimension"] == 1
    assert "count" not in tiles["layers"][0]["propertiesSchema"]["properties"]  # lines are never aggregated


@pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="GDAL command-line tools missing")
def test_gdal_reads_the_routes(server: str, demo_engine: Engine, plans) -> None:
    out = gdal("ogrinfo", "-ro", "-so", f"OAPIF:{server}{ROUTES}", "patrol-routes")
    assert feature_count(out) == len(_db_routes(demo_engine))
    assert "Geometry: Line String" in out and "TITLE=巡逻路线" in out
    full = gdal("ogrinfo", "-ro", "-q", f"OAPIF:{server}{ROUTES}", "patrol-routes", "-where",
                f"plan_id = {plans['a']}")
    lengths = sorted(float(v) for v in re.findall(r"^\s+length_m \(Real\) = ([\d.]+)$", full, re.M))
    expected = sorted(v[0] for v in _db_routes(demo_engine, "p.id = :p", p=plans["a"]).values())
    assert lengths == pytest.approx(expected) and full.count("LINESTRING") == sum(
        1 for v in _db_routes(demo_engine, "p.id = :p", p=plans["a"]).values() if v[1])
