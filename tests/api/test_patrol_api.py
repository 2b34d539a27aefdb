"""The patrol plan API over HTTP on the demo district: lists, summaries and device exports under
the caller's role (row-level security decides), GPX against the GPX 1.1 schema, KML that parses,
GCJ-02 when asked, and 400 for bad parameters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy import Engine, text

from api.app import create_app
from api.settings import ApiSettings
from gis.datum import wgs84_to_gcj02
from layers.settings import DatabaseSettings
from tests.layers.test_patrol_layer import saved_demo_plans

XSD = Path(__file__).resolve().parents[1] / "data" / "gpx.xsd"
KML = {"k": "http://www.opengis.net/kml/2.2"}
GPX = {"g": "http://www.topografix.com/GPX/1/1"}


@pytest.fixture(scope="module")
def plans(demo_engine: Engine) -> Iterator[dict[str, object]]:
    with saved_demo_plans(demo_engine) as ids:
        yield ids


@pytest.fixture(scope="module")
def app(demo_service_url: str, logins, plans) -> Iterator[TestClient]:
    application = create_app(ApiSettings(environment="test"), DatabaseSettings(database_url=demo_service_url))
    with TestClient(application) as c:
        yield c


def get(app: TestClient, login, path: str, **params: object):  # noqa: ANN001, ANN201
    return app.get(path, params=params, headers=login.headers if login else {})


def _visited_stops(engine: Engine, plan_id: int) -> np.ndarray:
    with engine.connect() as c:
        return np.array(c.execute(text(
            "SELECT ST_X(s.geom), ST_Y(s.geom) FROM pingan.patrol_stops s JOIN pingan.patrol_routes r"
            " ON r.id = s.route_id WHERE s.plan_id = :p ORDER BY r.id, s.seq"), {"p": plan_id}).all())


def test_lists_follow_the_role(app, logins, plans) -> None:
    ours = {plans["a"], plans["b"], plans["district"]}
    seen = {role: {p["id"] for p in get(app, logins[role], "/api/patrol/plans", limit=1000).json()["plans"]}
            for role in ("admin", "command", "town", "grid")}
    assert seen["admin"] & ours == ours and seen["command"] & ours == ours
    assert seen["town"] & ours == {plans["a"]} and seen["grid"] & ours == {plans["a"]}
    only_b = get(app, logins["command"], "/api/patrol/plans", town=plans["towns"][1], limit=1000).json()
    assert {p["id"] for p in only_b["plans"]} & ours == {plans["b"]}
    for role in ("analyst", "public"):
        assert get(app, logins[role], "/api/patrol/plans").status_code == 403
    assert get(app, None, "/api/patrol/plans").status_code == 401


def test_summary_of_a_plan(app, logins, plans) -> None:
    r = get(app, logins["town"], f"/api/patrol/plans/{plans['a']}")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    planned = plans["a_planned"]
    assert body["id"] == plans["a"] and body["town_code"] == plans["towns"][0]
    assert body["stops_visited"] == planned.plan.visited
    assert [x["team"] for x in body["routes"]] == [x.team.id for x in planned.plan.routes]
    assert body["coverage"]["hotspots"]["total"] >= 1
    hrefs = {x["href"] for x in body["links"]}
    assert f"/api/patrol/plans/{plans['a']}/export?format=gpx&datum=gcj02" in hrefs


def test_a_town_user_cannot_fetch_another_towns_plan(app, logins, plans) -> None:
    for path in (f"/api/patrol/plans/{plans['b']}", f"/api/patrol/plans/{plans['b']}/export",
                 f"/api/patrol/plans/{plans['district']}"):
        r = get(app, logins["town"], path)
        assert r.status_code == 404, path
        assert "no patrol plan" in r.json()["detail"]
    assert get(app, logins["command"], f"/api/patrol/plans/{plans['b']}").status_code == 200
    assert get(app, logins["analyst"], f"/api/patrol/plans/{plans['a']}/export").status_code == 403


@pytest.mark.parametrize("datum", ["wgs84", "gcj02"])
def test_gpx_export_validates_and_is_in_the_asked_datum(app, logins, plans, demo_engine, datum) -> None:
    r = get(app, logins["town"], f"/api/patrol/plans/{plans['a']}/export", format="gpx", datum=datum)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/gpx+xml"
    assert r.headers["content-disposition"] == f'attachment; filename="patrol-plan-{plans["a"]}-{datum}.gpx"'
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    doc = etree.fromstring(r.content)
    assert schema.validate(doc), schema.error_log
    got = np.array([[float(w.get("lon")), float(w.get("lat"))] for w in doc.findall("g:wpt", GPX)])
    stops = _visited_stops(demo_engine, plans["a"])
    expected = np.column_stack(wgs84_to_gcj02(stops[:, 0], stops[:, 1])) if datum == "gcj02" else stops
    assert len(got) == len(stops) > 0
    np.testing.assert_allclose(got, expected, atol=2e-7)
    if datum == "gcj02":  # and really shifted: hundreds of metres
        assert np.abs(got - stops).max() > 1e-3


def test_kml_export_parses_in_gcj02(app, logins, plans, demo_engine) -> None:
    r = get(app, logins["command"], f"/api/patrol/plans/{plans['district']}/export", format="KML",
            datum="gcj-02")
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.google-earth.kml+xml"
    doc = etree.fromstring(r.content)
    found = doc.findall(".//k:Placemark/k:Point/k:coordinates", KML)
    points = [tuple(map(float, p.text.split(","))) for p in found]
    stops = _visited_stops(demo_engine, plans["district"])
    np.testing.assert_allclose(np.array(points), np.column_stack(wgs84_to_gcj02(stops[:, 0], stops[:, 1])),
                               atol=2e-7)
    lines = doc.findall(".//k:Placemark/k:LineString", KML)
    assert len(lines) == sum(1 for x in plans["district_planned"].plan.routes if x.stops)
    assert "datum: gcj02" in doc.find("k:Document/k:description", KML).text


def test_geojson_and_csv_exports(app, logins, plans) -> None:
    r = get(app, logins["grid"], f"/api/patrol/plans/{plans['a']}/export", format="geojson")
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    doc = json.loads(r.content)
    assert doc["datum"] == "wgs84" and {f["properties"]["kind"] for f in doc["features"]} == {"route", "stop"}
    r = get(app, logins["grid"], f"/api/patrol/plans/{plans['a']}/export", format="csv", datum="wgs84")
    assert r.status_code == 200 and r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.text.splitlines()[0].startswith("team,team_name,mode,seq,kind")
    assert r.headers["content-disposition"].endswith('.csv"')


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/export", {"format": "shp"}, "format must be one of gpx, kml, geojson, csv"),
        ("/export", {"datum": "bd09"}, "datum must be one of wgs84, gcj02"),
        ("/export", {"format": ""}, "format must be one of"),
        ("", {}, None),
    ],
)
def test_bad_parameters_are_400(app, logins, plans, path, params, message) -> None:
    r = get(app, logins["command"], f"/api/patrol/plans/{plans['a']}{path}", **params)
    if message is None:  # the control: the same request without a bad parameter
        assert r.status_code == 200
        return
    assert r.status_code == 400 and message in r.json()["detail"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/patrol/plans/abc", 400), ("/api/patrol/plans/0", 400), ("/api/patrol/plans/-1/export", 400),
        ("/api/patrol/plans/99999999999", 404), ("/api/patrol/plans?limit=0", 400),
        ("/api/patrol/plans?limit=x", 400), ("/api/patrol/plans?town=33030", 400),
        ("/api/patrol/plans?offset=-3", 400),
    ],
)
def test_bad_ids_and_list_parameters(app, logins, path, status) -> None:
    r = app.get(path, headers=logins["command"].headers)
    assert r.status_code == status, r.text
