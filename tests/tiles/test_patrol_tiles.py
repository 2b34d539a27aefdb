"""Line tiles: saved patrol routes drawn at every zoom, simplified by zoom, never aggregated,
within the caller's town; and the unit rules for line layers."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from layers.catalog import PATROL_ROUTES, PATROL_STOPS
from tests.layers.test_patrol_layer import saved_demo_plans
from tests.tiles.conftest import make_client
from tests.tiles.reference import decode, tile_url
from tiles.render import tile_kind
from tiles.shapes import eligible
from tiles.sql import query_for


@pytest.fixture(scope="module")
def plans(demo_engine: Engine) -> Iterator[dict[str, object]]:
    with saved_demo_plans(demo_engine) as ids:
        yield ids


@pytest.fixture(scope="module")
def client(demo_url: str, plans):  # noqa: ANN201 - a TestClient
    with make_client(demo_url) as c:
        yield c


def _tile(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


def _routes_in_tile(engine: Engine, tile: tuple[int, int, int], where: str = "true", **params) -> set:
    with engine.connect() as c:
        return set(c.execute(text(
            "SELECT r.plan_id, r.team FROM pingan.patrol_routes r"  # noqa: S608
            " JOIN pingan.patrol_plans p ON p.id = r.plan_id"
            f" WHERE {where} AND ST_Intersects(r.geom, ST_Transform(ST_TileEnvelope(:z, :x, :y), 4490))"),
            dict(zip("zxy", tile, strict=True), **params)).all())


def _midpoints(engine: Engine, plan_id: int) -> list:
    with engine.connect() as c:
        return c.execute(text(
            "SELECT team, ST_X(p), ST_Y(p), ST_NPoints(geom) FROM pingan.patrol_routes,"
            " LATERAL ST_LineInterpolatePoint(geom, 0.5) p WHERE plan_id = :p AND geom IS NOT NULL"),
            {"p": plan_id}).all()


@pytest.mark.parametrize("z", [10, 13, 16, 18])
def test_a_tile_at_a_route_holds_the_line(client, demo_engine, plans, z) -> None:
    routes = _midpoints(demo_engine, plans["a"])
    assert routes
    for team, lon, lat, _ in routes:
        tile = _tile(lon, lat, z)
        r = client.get(tile_url("patrol-routes", tile))
        assert r.status_code == 200, r.text
        features = decode(r.content)["patrol-routes"]
        assert {f["geometry"]["type"] for f in features} <= {"LineString", "MultiLineString"}
        got = {(f["properties"]["plan_id"], f["properties"]["team"]) for f in features}
        assert (plans["a"], team) in got
        assert got == _routes_in_tile(demo_engine, tile)  # every line crossing the tile, nothing else
        assert not any("count" in f["properties"] or "aggregated" in f["properties"] for f in features)
        assert set(features[0]["properties"]) <= set(PATROL_ROUTES.tiles.properties)


def test_lines_are_simplified_by_zoom(client, demo_engine, plans) -> None:
    """The whole of a route in one low-zoom tile has fewer vertices than the route itself."""
    team, lon, lat, n_points = max(_midpoints(demo_engine, plans["district"]), key=lambda r: r[3])
    features = decode(client.get(tile_url("patrol-routes", _tile(lon, lat, 10))).content)["patrol-routes"]
    mine = [f for f in features if f["properties"]["team"] == team
            and f["properties"]["plan_id"] == plans["district"]]
    coords = mine[0]["geometry"]["coordinates"]
    multi = mine[0]["geometry"]["type"] == "MultiLineString"
    drawn = sum(len(part) for part in coords) if multi else len(coords)
    assert 2 <= drawn < n_points


def test_a_town_user_gets_its_towns_lines_only(client, demo_engine, logins, plans) -> None:
    _, lon, lat, _ = _midpoints(demo_engine, plans["district"])[0]
    for z in (10, 12):
        tile = _tile(lon, lat, z)
        r = client.get(tile_url("patrol-routes", tile), headers=logins["town"].headers)
        assert r.status_code == 200 and r.headers["cache-control"].startswith("private")
        got = {(f["properties"]["plan_id"], f["properties"]["team"])
               for f in (decode(r.content).get("patrol-routes", []) if r.content else [])}
        assert got == _routes_in_tile(demo_engine, tile, "p.town_code = :t", t=plans["towns"][0])
        assert plans["district"] not in {p for p, _ in got}
    r = client.get(tile_url("patrol-routes", _tile(lon, lat, 12)), headers=logins["analyst"].headers)
    assert r.status_code == 403


def test_stops_of_plans_aggregate_below_their_detail_zoom(client, demo_engine, plans) -> None:
    with demo_engine.connect() as c:
        lon, lat = c.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM pingan.patrol_stops WHERE plan_id = :p"
                                  " ORDER BY id LIMIT 1"), {"p": plans["a"]}).one()
    low = decode(client.get(tile_url("patrol-stops", _tile(lon, lat, 10))).content)["patrol-stops"]
    high = decode(client.get(tile_url("patrol-stops", _tile(lon, lat, 16))).content)["patrol-stops"]
    assert all(f["properties"]["aggregated"] for f in low)
    assert any(f["properties"].get("plan_id") == plans["a"] for f in high)


def test_line_layer_rules() -> None:
    assert PATROL_ROUTES.dimension == 1 and PATROL_STOPS.dimension == 0
    assert tile_kind(PATROL_ROUTES, 10) == "detail" and not eligible(PATROL_ROUTES)
    text_ = query_for(PATROL_ROUTES, "detail").text
    assert query_for(PATROL_ROUTES, "aggregate").text == text_  # lines are never aggregated
    assert "ST_Simplify" in text_ and "ST_Area" not in text_ and "pts AS" not in text_
    with pytest.raises(ValueError):
        query_for(PATROL_ROUTES, "detail", shapes=True)
