"""Saved patrol plans as a layer: hot spots as stops, coverage from the stored hot spots, who
reads which plan (migration 0013), and saved plans rebuilt for the exports.

``saved_demo_plans`` stores three plans on the demo district (the logins' town, a second town,
and a district-wide one) and removes them afterwards; the API, OGC and tile tests use it too.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import gpxpy
import numpy as np
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import ProgrammingError

from gis.patrol import Options, PatrolError, export
from layers.db import Principal, set_principal, transaction
from layers.patrol import (
    LAYERS,
    Candidate,
    Priorities,
    TeamSpec,
    candidate_stops,
    coverage,
    list_plans,
    load_plan,
    plan_patrol,
    plan_summary,
    save_plan,
)
from layers.registry import Layer, RegistryError
from layers.versions import bump
from tests.layers.test_patrol import DX, DY, FAST, NIGHT, X0, Y0, net, xy  # noqa: F401 - net: a fixture

DAY = date(2026, 11, 24)
HOT_PERIOD = date(2099, 1, 1)


@contextmanager
def saved_demo_plans(engine: Engine) -> Iterator[dict[str, object]]:
    """Plans ``a`` (the town with most hazards: the ``town`` login's), ``b`` (the next town) and
    ``district`` (no town) on the demo streets, with hot spots among the stops; deleted after.

    The demo load computes no hot spots, so hot cells of a month far ahead (the latest, whatever
    else is stored) are placed round open hazards of both towns: bins 3, 2, 1 and -2 in turn."""
    with engine.begin() as c:
        towns = list(c.execute(text(
            "SELECT town_code FROM pingan.hazards GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 2")).scalars())
        c.execute(text(
            "INSERT INTO pingan.hotspot_runs (layer, period, method, window_months, cell_side_m, n_cells,"
            " n_events, n_hot, n_cold) VALUES ('hazards', :p, 'test', 3, 150, 16, 16, 12, 4)"),
            {"p": HOT_PERIOD})
        c.execute(text(
            "INSERT INTO pingan.hotspot_cells (layer, period, cell, events, z, p, p_fdr, bin, geom)"
            " SELECT 'hazards', :p, '900,' || k, 3, 3.0, 0.001, 0.01, (ARRAY[3, 2, 1, -2])[1 + k % 4],"
            " ST_Multi(ST_Buffer(geom, 0.0012, 3)) FROM (SELECT row_number() OVER (ORDER BY town_code, id)"
            " AS k, geom FROM (SELECT town_code, id, geom, row_number() OVER (PARTITION BY town_code"
            " ORDER BY id) AS n FROM pingan.hazards WHERE town_code = ANY (:t)) h WHERE n <= 8) s"),
            {"p": HOT_PERIOD, "t": towns})
        ids: dict[str, object] = {"towns": towns}
        for key, town in (("a", towns[0]), ("b", towns[1]), ("district", None)):
            found, _ = candidate_stops(c, town=town, sources=["key_sites", "hazards", "hotspots"])
            hot = [s for s in found if s.kind == "hotspot"][:3]
            stops = hot + [s for s in found if s.kind != "hotspot"][: 8 - len(hot)]
            depots = c.execute(text(
                "SELECT ST_X(depot), ST_Y(depot) FROM pingan.patrol_teams"
                " WHERE CAST(:t AS text) IS NULL OR town_code = :t ORDER BY code LIMIT 2"), {"t": town}).all()
            teams = [TeamSpec(f"team-{k + 1}", tuple(d), NIGHT, "foot", name=f"{k + 1}队")
                     for k, d in enumerate(depots)]
            planned = plan_patrol(c, "demo", stops, teams, plan_date=DAY, town=town,
                                  options=Options(service_s=300, time_limit_s=0.3))
            ids[key] = save_plan(c, planned, f"test plan {key}")
            ids[f"{key}_planned"] = planned
    try:
        yield ids
    finally:
        with engine.begin() as c:
            c.execute(text("DELETE FROM pingan.patrol_plans WHERE id = ANY (:ids)"),
                      {"ids": [ids.get("a"), ids.get("b"), ids.get("district")]})
            c.execute(text("DELETE FROM pingan.hotspot_runs WHERE period = :p"), {"p": HOT_PERIOD})
            bump(c, [*LAYERS, "hotspots"])


@pytest.fixture(scope="module")
def demo_plans(demo_engine: Engine) -> Iterator[dict[str, object]]:
    with saved_demo_plans(demo_engine) as ids:
        yield ids


# -- hot spots as stops -----------------------------------------------------------------------
def _hot_cell(conn, layer: str, period: str, cell: str, bin_: int, x: float, y: float,
              events: int = 5) -> None:
    conn.execute(text(
        "INSERT INTO pingan.hotspot_runs (layer, period, method, window_months, cell_side_m, n_cells,"
        " n_events, n_hot, n_cold) VALUES (:l, :p, 'gi*', 3, 150, 0, 0, 0, 0) ON CONFLICT DO NOTHING"),
        {"l": layer, "p": period})
    conn.execute(text(
        "INSERT INTO pingan.hotspot_cells (layer, period, cell, events, z, p, p_fdr, bin, geom) VALUES"
        " (:l, :p, :c, :e, 3.1, 0.001, 0.01, :b,"
        " ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(:x, :y), 4490), 0.0008, 3)))"),
        {"l": layer, "p": period, "c": cell, "e": events, "b": bin_, "x": x, "y": y})


def test_hot_spot_cells_become_stops_with_the_configured_priority(conn) -> None:
    _hot_cell(conn, "hazards", "2026-10-01", "0,0", 3, *xy(0, 0))
    _hot_cell(conn, "cases", "2026-10-01", "0,0", 2, *xy(0, 0))  # the same cell, hot in both layers
    _hot_cell(conn, "cases", "2026-10-01", "1,0", 2, *xy(1, 0), events=7)
    _hot_cell(conn, "hazards", "2026-10-01", "2,0", 1, *xy(2, 0))  # 90 %: no stop by default
    _hot_cell(conn, "hazards", "2026-10-01", "2,1", -3, *xy(2, 1))  # a cold spot: never a stop
    _hot_cell(conn, "hazards", "2026-09-01", "2,2", 3, *xy(2, 2))  # an older month: not current
    got, notes = candidate_stops(conn, sources=["hotspots"])
    assert notes == []
    assert [(c.id, c.kind, c.priority, c.ref) for c in got] == [
        ("hs-cases+hazards-0,0", "hotspot", 3.0, "0,0"),  # at the higher bin of the two
        ("hs-cases-1,0", "hotspot", 2.0, "1,0"),
    ]
    assert np.hypot(got[0].lon - X0, got[0].lat - Y0) < 0.0008  # a point inside the cell
    assert "7 events" in got[1].name
    custom, _ = candidate_stops(conn, sources=["hotspots"], priorities=Priorities(hotspots={1: 0.5, 3: 9.0}))
    assert [(c.ref, c.priority) for c in custom] == [("0,0", 9.0), ("2,0", 0.5)]
    with pytest.raises(PatrolError, match="per confidence bin"):
        candidate_stops(conn, sources=["hotspots"], priorities=Priorities(hotspots={-2: 1.0}))


def test_no_stored_hot_spots_is_a_note(conn) -> None:
    conn.execute(text("DELETE FROM pingan.hotspot_runs"))
    got, notes = candidate_stops(conn, sources=["hotspots"])
    assert got == [] and "no hot spots stored" in notes[0]


def test_hot_spots_of_the_demo_district(demo_engine: Engine, demo_plans) -> None:
    with demo_engine.connect() as c:
        got, _ = candidate_stops(c, sources=["hotspots"])
        cells = c.execute(text(
            "SELECT c.cell, max(bin) FROM pingan.hotspots_latest c WHERE bin >= 2"
            " GROUP BY c.cell, c.geom")).all()
        town = demo_plans["towns"][0]
        in_town, _ = candidate_stops(c, town=town, sources=["hotspots"])
        outside = c.execute(text(
            "SELECT count(*) FROM unnest(CAST(:x AS float8[]), CAST(:y AS float8[])) u(x, y), pingan.towns t"
            " WHERE t.code = :t AND NOT ST_Intersects(t.geom, ST_SetSRID(ST_MakePoint(x, y), 4490))"),
            {"x": [s.lon for s in in_town], "y": [s.lat for s in in_town], "t": town}).scalar_one()
    assert len(cells) > 0 and len(got) == len(cells)
    assert sorted(s.priority for s in got) == sorted({3: 3.0, 2: 2.0}[b] for _, b in cells)
    assert len(in_town) < len(got) and outside == 0


# -- coverage ---------------------------------------------------------------------------------
def test_coverage_counts_the_stored_hot_spot_cells_near_a_route(conn, net) -> None:  # noqa: F811
    """Stops at three corners: the route is the block's perimeter. A hot cell on the perimeter is
    covered, one at the centre crossing (~490 m away) is not; with none stored, None."""
    stops = [Candidate(n, "given", *xy(i, j), 1.0) for n, i, j in (("ne", 2, 2), ("se", 2, 0), ("nw", 0, 2))]
    planned = plan_patrol(conn, net, stops, [TeamSpec("t1", xy(0, 0), NIGHT)], plan_date=DAY, options=FAST)
    _hot_cell(conn, "hazards", "2026-10-01", "5,5", 3, *xy(2, 1))
    _hot_cell(conn, "cases", "2026-10-01", "5,5", 2, *xy(2, 1))  # the same cell: counted once
    _hot_cell(conn, "hazards", "2026-10-01", "6,6", 2, *xy(1, 1))
    _hot_cell(conn, "hazards", "2026-10-01", "7,7", 1, X0 + DX, Y0 + DY * 0.5)  # bin 1: not a hot spot
    _hot_cell(conn, "hazards", "2026-10-01", "8,8", 3, X0 + 0.2, Y0)  # far outside the routes' area
    got = coverage(conn, planned.geometry)
    assert got["hotspots"] == {"covered": 1, "total": 2, "share": 0.5}
    assert got["key_sites"] == {"covered": 0, "total": 0, "share": None}
    conn.execute(text("DELETE FROM pingan.hotspot_runs"))
    assert coverage(conn, planned.geometry)["hotspots"] is None


def test_saving_a_plan_renews_the_layer_versions(conn, net) -> None:  # noqa: F811
    """Tiles are cached by layer version: a saved plan must show on the map at once."""
    from layers.versions import versions

    before = versions(conn)
    planned = plan_patrol(conn, net, [Candidate("x", "given", *xy(1, 1), 1.0)],
                          [TeamSpec("t1", xy(0, 0), NIGHT)], plan_date=DAY, options=FAST)
    plan_id = save_plan(conn, planned, "versions")
    after = versions(conn)
    assert all(after[layer] == before.get(layer, 0) + 1 for layer in LAYERS)
    conn.execute(text("DELETE FROM pingan.patrol_plans WHERE id = :i"), {"i": plan_id})
    assert all(versions(conn)[layer] == after[layer] + 1 for layer in LAYERS)


def test_saved_plans_carry_their_coverage_of_demo_hot_spots(demo_engine: Engine, demo_plans) -> None:
    planned = demo_plans["district_planned"]
    with demo_engine.connect() as c:
        geo = planned.geometry
        lines = [geo.track(r) for r in geo.moving]
        wkt = "MULTILINESTRING(" + ",".join(
            "(" + ",".join(f"{x} {y}" for x, y in line) + ")" for line in lines) + ")"
        near, n = c.execute(text(
            "WITH r AS (SELECT ST_GeomFromText(:w, 4490) g), cells AS (SELECT DISTINCT ON (cell, geom)"
            " ST_PointOnSurface(geom) pt FROM pingan.hotspots_latest WHERE bin >= 2)"
            " SELECT count(*) FILTER (WHERE ST_DWithin(pt::geography, r.g::geography, 200)), count(*)"
            " FROM cells, r WHERE pt && ST_Expand(r.g, 200 / 111320.0 * 1.2)"), {"w": wkt}).one()
        stored = c.execute(text("SELECT coverage FROM pingan.patrol_plans WHERE id = :i"),
                           {"i": demo_plans["district"]}).scalar_one()
    assert n > 0 and near > 0  # the plan visits hot spots, so some cells are covered
    assert stored["hotspots"] == {"covered": near, "total": n, "share": round(near / n, 4)}
    assert stored["area"] == "routes" and stored["key_sites"]["total"] > 0


# -- who reads which plan ---------------------------------------------------------------------
def test_plans_belong_to_their_town(demo_engine: Engine, demo_plans) -> None:
    with demo_engine.connect() as c:
        towns = dict(c.execute(text("SELECT id, town_code FROM pingan.patrol_plans WHERE id = ANY (:i)"),
                               {"i": [demo_plans[k] for k in ("a", "b", "district")]}).all())
    assert towns == {demo_plans["a"]: demo_plans["towns"][0], demo_plans["b"]: demo_plans["towns"][1],
                     demo_plans["district"]: None}


def _seen(svc: Engine, principal: Principal, ids: list[int]) -> dict[str, set[int]]:
    with transaction(svc, principal) as c:
        return {
            rel: set(c.execute(text(f"SELECT DISTINCT {col} FROM pingan.{rel} WHERE {col} = ANY (:i)"),  # noqa: S608
                               {"i": ids}).scalars())
            for rel, col in (("patrol_plans", "id"), ("patrol_routes", "plan_id"),
                             ("patrol_stops", "plan_id"), ("patrol_routes_served", "plan_id"),
                             ("patrol_stops_served", "plan_id"))
        }


def test_row_level_security_on_plans(svc: Engine, demo_engine: Engine, demo_plans) -> None:
    a, b, district = demo_plans["a"], demo_plans["b"], demo_plans["district"]
    town_a = demo_plans["towns"][0]
    with demo_engine.connect() as c:
        grid = c.execute(text("SELECT g.code FROM pingan.grids g"
                              " JOIN pingan.villages v ON v.code = g.village_code"
                              " WHERE v.town_code = :t ORDER BY 1 LIMIT 1"), {"t": town_a}).scalar_one()
    ids = [a, b, district]
    cases = {
        Principal("c", "command"): {a, b, district},
        Principal("a", "admin"): {a, b, district},
        Principal("t", "town", (town_a,)): {a},
        Principal("g", "grid", (grid,)): {a},
        Principal("t2", "town", (demo_plans["towns"][1],)): {b},
    }
    for principal, expected in cases.items():
        seen = _seen(svc, principal, ids)
        assert all(v == expected for v in seen.values()), (principal.role, seen)
    for role in ("analyst", "public"):
        with pytest.raises(ProgrammingError, match="permission denied"), \
                transaction(svc, Principal(role, role)) as c:
            c.execute(text("SELECT count(*) FROM pingan.patrol_routes_served"))


def test_town_user_cannot_write_a_plan_of_another_town(svc: Engine, demo_plans) -> None:
    """The service side writes nothing here; were it granted, the policy's check would still hold."""
    with pytest.raises(ProgrammingError, match="permission denied"), \
            transaction(svc, Principal("t", "town", (demo_plans["towns"][0],))) as c:
        c.execute(text("UPDATE pingan.patrol_plans SET name = 'x' WHERE id = :i"), {"i": demo_plans["b"]})


def test_list_and_summary_under_the_caller(svc: Engine, demo_plans) -> None:
    town_a = demo_plans["towns"][0]
    with transaction(svc, Principal("t", "town", (town_a,))) as c:
        listed = [p["id"] for p in list_plans(c)]
        mine = plan_summary(c, demo_plans["a"])
        other = plan_summary(c, demo_plans["b"])
        other_geo = load_plan(c, demo_plans["b"])
    assert demo_plans["a"] in listed
    assert demo_plans["b"] not in listed and demo_plans["district"] not in listed
    assert other is None and other_geo is None
    planned = demo_plans["a_planned"]
    assert mine["stops_visited"] == planned.plan.visited and len(mine["routes"]) == len(planned.plan.routes)
    assert len(mine["left_out"]) == len(planned.plan.dropped) + len(planned.unsnapped)
    assert mine["town_code"] == town_a


# -- saved plans back to the devices ----------------------------------------------------------
@pytest.mark.parametrize("key", ["a", "district"])
def test_a_saved_plan_exports_as_it_was_planned(demo_engine: Engine, demo_plans, key) -> None:
    planned = demo_plans[f"{key}_planned"]
    with demo_engine.connect() as c:
        geo = load_plan(c, demo_plans[key])
    for datum in ("wgs84", "gcj02"):
        assert export(geo, "csv", datum) == export(planned.geometry, "csv", datum)
        assert export(geo, "kml", datum).split("</description>", 1)[1] == \
            export(planned.geometry, "kml", datum).split("</description>", 1)[1]
    saved, fresh = gpxpy.parse(export(geo, "gpx")), gpxpy.parse(export(planned.geometry, "gpx"))
    assert [(w.name, w.time, w.latitude, w.longitude) for w in saved.waypoints] == \
        [(w.name, w.time, w.latitude, w.longitude) for w in fresh.waypoints]
    assert [len(t.segments[0].points) for t in saved.tracks] == \
        [len(t.segments[0].points) for t in fresh.tracks]
    rows = list(csv.DictReader(io.StringIO(export(geo, "csv"))))
    assert sum(float(r["leg_m"]) for r in rows) == pytest.approx(planned.plan.total_length_m, abs=0.5)
    assert geo.title == f"test plan {key}"


def test_unknown_plan_is_none(demo_engine: Engine) -> None:
    with demo_engine.connect() as c:
        assert load_plan(c, 10**12) is None and plan_summary(c, 10**12) is None


@contextmanager
def _as(svc: Engine, principal: Principal) -> Iterator:
    """A service-side transaction for ``principal``, rolled back afterwards."""
    with svc.connect() as c:
        tx = c.begin()
        try:
            set_principal(c, principal)
            yield c
        finally:
            tx.rollback()


def test_who_may_save_plans_on_the_service_side(svc: Engine, demo_plans) -> None:
    """The process patrol-plan saves through the service: a town user its own town's plans only,
    the command centre any, grid users and analysts none."""
    a, b, district = (demo_plans[f"{k}_planned"] for k in ("a", "b", "district"))
    town_a = demo_plans["towns"][0]
    with _as(svc, Principal("t-user", "town", (town_a,))) as c:
        saved = save_plan(c, a, "by the town")
        row = c.execute(text("SELECT town_code, created_by FROM pingan.patrol_plans WHERE id = :i"),
                        {"i": saved}).one()
        assert tuple(row) == (town_a, "t-user")
        assert c.execute(text("SELECT count(*) FROM pingan.patrol_routes_served WHERE plan_id = :i"),
                         {"i": saved}).scalar_one() == len(a.plan.routes)
    for planned in (b, district):
        with pytest.raises(ProgrammingError, match="row-level security"), \
                _as(svc, Principal("t-user", "town", (town_a,))) as c:
            save_plan(c, planned, "not the town's")
    with _as(svc, Principal("c-user", "command")) as c:
        assert save_plan(c, district, "by the command centre") > 0
    for principal in (Principal("g", "grid", ("330304001001001",)), Principal("an", "analyst")):
        with pytest.raises(ProgrammingError, match="permission denied"), _as(svc, principal) as c:
            save_plan(c, a, "no")


def test_registry_knows_lines() -> None:
    base = dict(id="x", title_zh="x", title_en="x", table="pingan.t", properties=())
    assert Layer(geometry_type="LineString", **base).dimension == 1
    assert Layer(geometry_type="MultiLineString", **base).dimension == 1
    assert Layer(geometry_type="MultiPolygon", **base).dimension == 2
    with pytest.raises(RegistryError, match="geometry type 'Polygon'"):
        Layer(geometry_type="Polygon", **base)


def test_coverage_leaves_out_key_sites_placed_only_to_an_area(conn, net) -> None:  # noqa: F811
    """Key sites count in the coverage as in the stops: at their own point. One placed by its
    address only to its village stands at the village's point and is left out of both."""
    stops = [Candidate(n, "given", *xy(i, j), 1.0) for n, i, j in (("ne", 2, 2), ("se", 2, 0), ("nw", 0, 2))]
    planned = plan_patrol(conn, net, stops, [TeamSpec("t1", xy(0, 0), NIGHT)], plan_date=DAY, options=FAST)
    box = "MULTIPOLYGON(((120.6 27.95,120.7 27.95,120.7 28.05,120.6 28.05,120.6 27.95)))"
    for table, code, parent in (("towns", "330304901", "county_code"),
                                ("villages", "330304901001", "town_code"),
                                ("grids", "330304901001001", "village_code")):
        kind = {"towns": "town", "villages": "village", "grids": "comprehensive"}[table]
        conn.execute(text(
            f"INSERT INTO pingan.{table} (code, {parent}, name, kind, population, households, geom, "  # noqa: S608
            "source, source_id) VALUES (:c, :p, :c, :k, 1, 1, ST_GeomFromText(:g, 4490), 't', :c)"),
            {"c": code, "p": code[: {"towns": 6, "villages": 9, "grids": 12}[table]], "k": kind, "g": box})
    for n, (x, y), level in (("ks1", xy(2, 1), None), ("ks2", xy(2, 1.5), "village")):
        conn.execute(text(
            "INSERT INTO pingan.key_sites (code, name, category, grid_code, village_code, town_code, geom, "
            "loc_method, geocode_level, geocode_score, source, source_id) VALUES (:n, :n, 'school', "
            ":g, '330304901001', '330304901', ST_SetSRID(ST_MakePoint(:x, :y), 4490), :m, :l, :s, 't', :n)"),
            {"n": n, "x": x, "y": y, "l": level, "g": None if level else "330304901001001",
             "m": "geocoded" if level else "coordinates", "s": 0.7 if level else None})
    assert coverage(conn, planned.geometry)["key_sites"] == {"covered": 1, "total": 1, "share": 1.0}
