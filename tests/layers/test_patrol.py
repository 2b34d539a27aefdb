"""Patrol plans on a road network in PostGIS/pgRouting: snapping, costs, geometry, storage."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from sqlalchemy import text

from gis.patrol import Options, PatrolError, export
from layers.patrol import (
    Candidate,
    TeamSpec,
    candidate_stops,
    cost_matrix,
    plan_patrol,
    route_line,
    save_plan,
    snap,
)

X0, Y0, DX, DY = 120.6500, 28.0100, 0.005, 0.0045  # a 3 x 3 lattice of crossings ~490 x 500 m apart
NIGHT = (72000.0, 93600.0)
FAST = Options(service_s=120, time_limit_s=0.3)


def vid(i: int, j: int) -> int:
    return 1 + i + 3 * j


def xy(i: float, j: float) -> tuple[float, float]:
    return (X0 + i * DX, Y0 + j * DY)


@pytest.fixture
def net(conn, random_suffix):
    """Network ``t-<suffix>``: the lattice streets; the street (1,0)->(2,0) is one-way east."""
    name = f"t-{random_suffix}"
    conn.execute(
        text(
            "INSERT INTO pingan.road_vertices (id, network, geom) SELECT 1 + i + 3 * j, :n, "
            "ST_SetSRID(ST_MakePoint(:x0 + i * :dx, :y0 + j * :dy), 4490) "
            "FROM generate_series(0, 2) i, generate_series(0, 2) j"
        ),
        {"n": name, "x0": X0, "y0": Y0, "dx": DX, "dy": DY},
    )
    pairs = [((i, j), (i + 1, j)) for i in range(2) for j in range(3)] + [
        ((i, j), (i, j + 1)) for i in range(3) for j in range(2)
    ]
    for a, b in pairs:
        oneway = (a, b) == ((1, 0), (2, 0))
        conn.execute(
            text(
                "INSERT INTO pingan.road_edges (network, source, target, length_m, cost, reverse_cost, geom) "
                "SELECT :n, :s, :t, l, l, CASE WHEN :ow THEN -1 ELSE l END, g FROM (SELECT "
                "ST_Length(g::geography) AS l, g FROM "
                "(SELECT ST_SetSRID(ST_MakeLine(a.geom, b.geom), 4490) g "
                "FROM pingan.road_vertices a, pingan.road_vertices b WHERE a.network = :n AND b.network = :n "
                "AND a.id = :s AND b.id = :t) q) r"
            ),
            {"n": name, "s": vid(*a), "t": vid(*b), "ow": oneway},
        )
    return name


def edge(conn, net, a, b) -> float:
    return conn.execute(
        text("SELECT length_m FROM pingan.road_edges WHERE network = :n AND source = :s AND target = :t"),
        {"n": net, "s": vid(*a), "t": vid(*b)},
    ).scalar_one()


def test_snap_takes_the_nearer_end_of_the_nearest_road_within_reach(conn, net) -> None:
    near = (X0 + 0.3 * DX, Y0 + 0.0002)  # on the street (0,0)-(1,0), 22 m north of it, nearer (0,0)
    far = (X0 + 0.5 * DX, Y0 - 0.02)  # 2.2 km south of everything
    s = snap(conn, net, ["foot"], [near, xy(2, 1), far], max_m=250)
    assert [x.vertex for x in s] == [vid(0, 0), vid(2, 1), None]
    assert s[0].snap_m == pytest.approx(22.2, abs=0.5) and s[1].snap_m < 0.01 and s[2].snap_m > 2000


def test_cost_matrix_is_road_metres_and_respects_one_way_streets(conn, net) -> None:
    a, b, c = vid(0, 0), vid(2, 0), vid(2, 2)
    east = edge(conn, net, (0, 0), (1, 0)) + edge(conn, net, (1, 0), (2, 0))
    car = cost_matrix(conn, net, "car", [a, b, c])
    foot = cost_matrix(conn, net, "foot", [a, b, c])
    assert car[0, 1] == pytest.approx(east) and foot[1, 0] == pytest.approx(east)
    # back west by car: round the block (up, across, down): two blocks longer than straight back
    around = (
        edge(conn, net, (2, 0), (2, 1))
        + edge(conn, net, (1, 1), (2, 1))
        + edge(conn, net, (1, 0), (1, 1))
        + edge(conn, net, (0, 0), (1, 0))
    )
    assert car[1, 0] == pytest.approx(around, abs=0.5) and car[1, 0] > car[0, 1]  # or the twin path
    np.testing.assert_allclose(foot, foot.T)
    assert np.diag(car).tolist() == [0, 0, 0]


def test_route_line_follows_the_streets(conn, net) -> None:
    line = route_line(conn, net, "foot", [vid(0, 0), vid(2, 0), vid(2, 2), vid(0, 0)])
    assert line is not None
    np.testing.assert_allclose(line[0], xy(0, 0)) and np.testing.assert_allclose(line[-1], xy(0, 0))
    # every point is a lattice crossing (the streets are straight between crossings)
    ij = (line - [X0, Y0]) / [DX, DY]
    np.testing.assert_allclose(ij, np.round(ij), atol=1e-6)
    assert route_line(conn, net, "foot", [vid(1, 1), vid(1, 1)]) is None


def test_plan_around_the_block_is_the_known_optimum(conn, net) -> None:
    """Depot at the south-west corner, stops at the other three corners: the best walk is the
    perimeter of the 2 x 2 block (any tour through the four corners of a lattice is at least
    that long), with the stops in order round it."""
    stops = [
        Candidate("ne", "given", *xy(2, 2), 1.0),
        Candidate("se", "given", *xy(2, 0), 1.0),
        Candidate("nw", "given", *xy(0, 2), 1.0),
    ]
    team = TeamSpec("t1", xy(0, 0), NIGHT, "foot", name="一队")
    planned = plan_patrol(conn, net, stops, [team], plan_date=date(2026, 11, 24), options=FAST)
    perimeter = sum(
        edge(conn, net, a, b)
        for a, b in [
            ((0, 0), (1, 0)),
            ((1, 0), (2, 0)),
            ((2, 0), (2, 1)),
            ((2, 1), (2, 2)),
            ((1, 2), (2, 2)),
            ((0, 2), (1, 2)),
            ((0, 1), (0, 2)),
            ((0, 0), (0, 1)),
        ]
    )
    plan = planned.plan
    assert plan.total_length_m == pytest.approx(perimeter, abs=1.0) and plan.status == "complete"
    order = [v.stop.id for v in plan.routes[0].stops]
    assert order in (["se", "ne", "nw"], ["nw", "ne", "se"])
    track = planned.geometry.tracks["t1"]
    assert len(track) == 9  # 8 streets, 9 crossings


def test_stop_without_a_road_is_reported_not_dropped(conn, net) -> None:
    stops = [Candidate("ok", "given", *xy(1, 1), 1.0), Candidate("sea", "given", X0, Y0 - 0.05, 2.0)]
    team = TeamSpec("t1", xy(0, 0), NIGHT, "foot")
    planned = plan_patrol(
        conn, net, stops, [team], plan_date=date(2026, 11, 24), options=FAST, max_snap_m=200
    )
    assert [c.id for c, _ in planned.unsnapped] == ["sea"]
    assert "no road within 200 m (nearest 5" in planned.unsnapped[0][1]
    assert "no road within the snapping distance" in planned.messages[0] and "sea" in planned.messages[0]
    assert planned.plan.visited == 1
    plan_id = save_plan(conn, planned, "test")
    rows = dict(
        conn.execute(
            text("SELECT stop_id, status FROM pingan.patrol_stops WHERE plan_id = :p"), {"p": plan_id}
        ).all()
    )
    assert rows == {"ok": "visited", "sea": "unsnapped"}
    status = conn.execute(
        text("SELECT status FROM pingan.patrol_plans WHERE id = :p"), {"p": plan_id}
    ).scalar_one()
    assert status == "partial"


def test_depot_without_a_road_is_an_error(conn, net) -> None:
    with pytest.raises(PatrolError, match="team t1: no road within 250 m of its depot"):
        plan_patrol(
            conn,
            net,
            [Candidate("a", "given", *xy(1, 1), 1.0)],
            [TeamSpec("t1", (X0, Y0 - 0.05), NIGHT)],
            plan_date=date(2026, 11, 24),
            options=FAST,
        )


def test_unknown_network_is_an_error(conn) -> None:
    with pytest.raises(PatrolError, match="no road network 'nowhere'"):
        plan_patrol(conn, "nowhere", [], [TeamSpec("t", xy(0, 0), NIGHT)], plan_date=date(2026, 11, 24))


def test_saved_plan_rows_match_the_plan(conn, net) -> None:
    stops = [
        Candidate(f"s{i}{j}", "given", *xy(i, j), 1.0 + i)
        for i in range(3)
        for j in range(3)
        if (i, j) not in ((0, 0), (2, 2))
    ]
    teams = [TeamSpec("a", xy(0, 0), NIGHT, "foot"), TeamSpec("b", xy(2, 2), NIGHT, "bicycle")]
    planned = plan_patrol(conn, net, stops, teams, plan_date=date(2026, 11, 24), options=FAST)
    plan_id = save_plan(conn, planned, "two teams")
    plan = planned.plan
    got = conn.execute(
        text(
            "SELECT stops_total, stops_visited, round(length_m), teams FROM pingan.patrol_plans WHERE id = :p"
        ),
        {"p": plan_id},
    ).one()
    assert tuple(got) == (7, plan.visited, round(plan.total_length_m), 2) and plan.visited == 7
    routes = conn.execute(
        text(
            "SELECT team, stops, length_m, ST_Length(geom::geography) AS drawn "
            "FROM pingan.patrol_routes WHERE plan_id = :p ORDER BY team"
        ),
        {"p": plan_id},
    ).all()
    for row, route in zip(routes, plan.routes, strict=True):
        assert row.team == route.team.id and row.stops == len(route.stops)
        if route.stops:
            assert row.drawn == pytest.approx(row.length_m, rel=0.01)  # the line is the road route
    seqs = conn.execute(
        text(
            "SELECT r.team, array_agg(s.stop_id ORDER BY s.seq) FROM pingan.patrol_stops s "
            "JOIN pingan.patrol_routes r ON r.id = s.route_id WHERE s.plan_id = :p GROUP BY 1"
        ),
        {"p": plan_id},
    ).all()
    assert dict(seqs) == {r.team.id: [v.stop.id for v in r.stops] for r in plan.routes if r.stops}
    gpx = export(planned.geometry, "gpx")
    assert gpx.count("<trkpt") == sum(len(t) for t in planned.geometry.tracks.values())


def test_candidates_from_the_demo_district(demo_engine) -> None:
    with demo_engine.connect() as c:
        found, notes = candidate_stops(c)
        n_sites = c.execute(
            text("SELECT count(*) FROM pingan.key_sites WHERE risk_level IN ('high', 'medium')")
        ).scalar_one()
        n_hazards = c.execute(
            text(
                "SELECT count(*) FROM pingan.hazards WHERE state NOT IN ('verified', 'closed') "
                "AND level IN ('major', 'severe')"
            )
        ).scalar_one()
        town = c.execute(text("SELECT town_code FROM pingan.key_sites LIMIT 1")).scalar_one()
        in_town, _ = candidate_stops(c, town=town, sources=["key_sites"])
    kinds = [x.kind for x in found]
    assert kinds.count("key_site") == n_sites > 0 and kinds.count("hazard") == n_hazards > 0
    assert [x.priority for x in found] == sorted((x.priority for x in found), reverse=True)
    assert {x.kind for x in in_town} == {"key_site"} and 0 < len(in_town) < n_sites
    assert all(isinstance(n, str) for n in notes)
    with pytest.raises(PatrolError, match="unknown stop source"), demo_engine.connect() as c:
        candidate_stops(c, sources=["persons"])


def test_records_placed_only_to_an_area_are_not_stops(demo_engine) -> None:
    """A hazard or key site placed only to its village (or grid) by address stands at that
    area's point: no patrol can go there. It is left out of the stops, and a note counts it."""
    with demo_engine.connect() as c:
        try:
            hz = c.execute(text(
                "SELECT code FROM pingan.hazards WHERE state NOT IN ('verified', 'closed') "
                "AND level IN ('major', 'severe') ORDER BY code LIMIT 2")).scalars().all()
            ks = c.execute(text(
                "SELECT code FROM pingan.key_sites WHERE risk_level = 'high' ORDER BY code LIMIT 1")
            ).scalar_one()
            for table, codes, level in (("hazards", hz[:1], "village"), ("hazards", hz[1:], "grid"),
                                        ("key_sites", [ks], "village")):
                c.execute(text(
                    f"UPDATE pingan.{table} SET loc_method = 'geocoded', geocode_level = :l, "  # noqa: S608
                    "geocode_score = 0.7, grid_code = CASE WHEN :l = 'grid' THEN grid_code END "
                    "WHERE code = ANY(:c)"), {"c": codes, "l": level})
            found, notes = candidate_stops(c, sources=["key_sites", "hazards"])
        finally:
            c.rollback()
    codes = {x.ref for x in found}
    assert codes and not codes & {*hz, ks}
    tail = " placed only to a grid, village or town by address (no door or coordinates) are not stops: " \
        "their point is the area's, not theirs"
    assert [n for n in notes if "placed only to a grid, village or town" in n] == [
        "1 key sites" + tail, "2 hazards" + tail]
