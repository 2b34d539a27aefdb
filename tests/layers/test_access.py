"""Access control enforced by the database itself (migration 0005), as the web service sees it.

Everything here connects as ``pingan_service`` (the role the service uses) and states a caller
with ``layers.db.transaction``, exactly as request handlers do; the expected answers come from
the owner's unfiltered view of the same demo database.
"""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError, ProgrammingError

from layers.db import Principal, transaction

ACCESS = ("admin", "command", "town", "grid", "analyst", "public", "system")
EVERYONE = frozenset(ACCESS)
PLACES = EVERYONE - {"public"}
STAFF = frozenset({"admin", "command", "town", "grid", "system"})

# Who may SELECT what. A table or view added later without a line here fails
# test_every_relation_has_an_access_decision: decide, then add it.
SELECT_MATRIX: dict[str, frozenset[str]] = {
    "towns": EVERYONE, "villages": EVERYONE, "layer_versions": EVERYONE | {"service"},
    "workflow_transitions": EVERYONE, "persons_by_grid": EVERYONE, "persons_by_village": EVERYONE,
    "persons_by_town": EVERYONE,  # 0028
    "grids": PLACES, "key_sites": PLACES, "patrol_teams": PLACES, "monthly_stats": PLACES,
    "refresh_state": PLACES, "address_points": PLACES, "road_vertices": PLACES, "road_edges": PLACES,
    "hazards": STAFF, "hazard_events": STAFF, "cases": STAFF, "case_events": STAFF,
    "persons": STAFF, "person_grades": STAFF, "person_visits": STAFF, "persons_served": STAFF,
    "etl_batches": STAFF,
    "etl_rejects": frozenset({"admin", "system"}),
    # never to the service side: raw material, owner-only settings, the log it only appends to
    "audit_log": frozenset(), "privacy_config": frozenset(), "grid_workers": frozenset(),
    "person_counts": frozenset(), "person_counts_by_area": frozenset(), "persons_by_area": frozenset(),
    "refresh_moved": frozenset(),  # 0027: the ETL's own notes for the refresh
    "person_counts_pattern": frozenset(),  # 0028: which counts are withheld, read through the views
    # tile shapes (0008): derived polygons; every shapes statement also reads the layer's table
    "tile_shapes": EVERYONE, "tile_shape_versions": frozenset({"service"}),
    # monthly hot spots (0010): counts per hexagon for staff and analysts
    "hotspot_runs": PLACES, "hotspot_cells": PLACES, "hotspots_latest": PLACES,
    # the index (0007): published index and stars to everyone; explanations to places; ladder to staff
    "index_villages": EVERYONE, "index_towns": EVERYONE, "index_star_villages": EVERYONE,
    "index_stars": EVERYONE,
    "index_scores": PLACES, "index_models": PLACES, "index_survey": PLACES,
    # 0016: the scores' store (index_scores is its view); 0029: its explanations hold person
    # figures of every place, so only for the district-wide roles (town users: index_contributions)
    "index_months": frozenset({"admin", "command", "system"}),
    "index_warnings": STAFF, "index_warning_events": STAFF,
    # 0020: the counted inputs, five-loss persons per village among them: the roles that compute
    "index_inputs": frozenset({"admin", "command"}),
    # ladder evidence (0014): staff, rows by the item's jurisdiction (tests/api/test_warnings.py)
    "index_warning_evidence": STAFF,
    # patrol plans (0009): routes through places, not individuals, but when a place is watched: staff
    "patrol_plans": STAFF, "patrol_routes": STAFF, "patrol_stops": STAFF,
    # rasters (0012): monthly densities to staff and analysts; job rasters to owner and admins (RLS)
    "rasters": PLACES,
    # saved plans as layers (0013): staff, and row-level security by town (tests/layers/test_patrol_layer.py)
    "patrol_routes_served": STAFF, "patrol_stops_served": STAFF,
    # processes (0011): own jobs and their cell results, for every role that may run a process
    "jobs": PLACES, "job_cells": PLACES, "hotspot_results": PLACES,
}
# What the service side may append (INSERT only; never UPDATE/DELETE), besides the audit log.
INDEX_WRITERS = frozenset({"admin", "command"})
INSERTS: dict[str, frozenset[str]] = {
    "rasters": PLACES,  # 0012: a caller's own job rasters only (RLS: owner, audience, job)
    "index_warning_evidence": frozenset({"admin", "command", "town", "grid"}),  # 0014, append-only
    # 0013: the process patrol-plan saves plans for its caller; a town user its own town's only (RLS)
    "patrol_plans": frozenset({"admin", "command", "town", "system"}),
    "patrol_routes": frozenset({"admin", "command", "town", "system"}),
    "patrol_stops": frozenset({"admin", "command", "town", "system"}),
    # 0011: a caller's own jobs and their cells (RLS: owner), written by the job runner for the caller
    "jobs": PLACES, "job_cells": PLACES,
    # 0015: the process index-compute, for the district-wide roles that lead the index
    **dict.fromkeys(("index_models", "index_months", "index_warnings", "index_warning_events"),
                    INDEX_WRITERS),
}
# 0011: besides INSERT: the runner updates its caller's job status; dismissing drops the job's cells
CHANGES: dict[tuple[str, str], frozenset[str]] = {
    ("jobs", "UPDATE"): PLACES, ("job_cells", "DELETE"): PLACES,
    # 0015: a computation replaces the month's scores and rebuilds the ladder
    **dict.fromkeys((("index_models", "UPDATE"), ("index_months", "DELETE"), ("index_warnings", "UPDATE"),
                     ("index_warnings", "DELETE"), ("index_warning_events", "DELETE")), INDEX_WRITERS),
}
# Relations the identity migration owns (tests/api/auth checks their privileges).
IDENTITY = {"users", "sessions", "api_tokens", "login_throttle"}


def _db_role(role: str) -> str:
    return "pingan_service" if role == "service" else f"pingan_as_{role}"


@pytest.fixture(scope="module")
def demo_areas(demo_engine: Engine) -> dict[str, object]:
    with demo_engine.connect() as c:
        town = c.execute(text(
            "SELECT town_code FROM pingan.hazards GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")).scalar_one()
        grids = tuple(c.execute(text(
            "SELECT grid_code FROM pingan.persons WHERE town_code = :t"
            " GROUP BY 1 ORDER BY count(*) DESC LIMIT 2"), {"t": town}).scalars())
    return {"town": town, "grids": grids}


def _principal(role: str, areas: dict[str, object]) -> Principal:
    if role == "town":
        return Principal("t", "town", (areas["town"],))
    if role == "grid":
        return Principal("g", "grid", areas["grids"])
    return Principal(role, role)


def test_every_relation_has_an_access_decision(demo_engine: Engine) -> None:
    with demo_engine.connect() as c:
        rels = set(c.execute(text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'pingan' AND c.relkind IN ('r', 'v', 'm', 'p')"
        )).scalars())
    assert rels - IDENTITY == set(SELECT_MATRIX), "decide the access of new relations in SELECT_MATRIX"


def test_select_privileges_match_the_matrix(demo_engine: Engine) -> None:
    with demo_engine.connect() as c:
        for rel, allowed in SELECT_MATRIX.items():
            for role in (*ACCESS, "service"):
                has = c.execute(text("SELECT has_table_privilege(:r, :t, 'SELECT')"),
                                {"r": _db_role(role), "t": f"pingan.{rel}"}).scalar_one()
                assert has == (role in allowed), f"{_db_role(role)} SELECT on {rel}: {has}"


def test_service_side_cannot_write_anything_but_audit(demo_engine: Engine) -> None:
    """No INSERT/UPDATE/DELETE/TRUNCATE anywhere (the workflow API will grant its own); audit
    rows may be appended, never changed or deleted."""
    with demo_engine.connect() as c:
        for rel in SELECT_MATRIX:
            for role in (*ACCESS, "service"):
                for priv in ("INSERT", "UPDATE", "DELETE", "TRUNCATE"):
                    has = c.execute(text("SELECT has_table_privilege(:r, :t, :p)"),
                                    {"r": _db_role(role), "t": f"pingan.{rel}", "p": priv}).scalar_one()
                    expected = priv == "INSERT" and (rel == "audit_log" or role in INSERTS.get(rel, ()))
                    expected = expected or role in CHANGES.get((rel, priv), ())
                    assert has == expected, f"{_db_role(role)} {priv} on {rel}"


def test_service_role_bypasses_nothing(demo_engine: Engine) -> None:
    with demo_engine.connect() as c:
        row = c.execute(text(
            "SELECT rolsuper, rolbypassrls, rolinherit FROM pg_roles WHERE rolname = 'pingan_service'"
        )).one()
    assert tuple(row) == (False, False, False)


def test_no_caller_no_rows(svc: Engine) -> None:
    """Without a stated caller the service role reads no individual at all."""
    with svc.connect() as c:
        for rel in ("hazards", "cases", "persons", "persons_served"):
            with pytest.raises(ProgrammingError, match="permission denied"), c.begin():
                c.execute(text(f"SELECT count(*) FROM pingan.{rel}"))  # noqa: S608 - fixed names


@pytest.mark.parametrize("rel", ["hazards", "cases", "persons"])
@pytest.mark.parametrize("role", ACCESS)
def test_rows_follow_jurisdiction(svc, demo_engine, demo_areas, role, rel) -> None:
    principal = _principal(role, demo_areas)
    with demo_engine.connect() as c:  # the owner: every row
        everything = c.execute(text(f"SELECT count(*) FROM pingan.{rel}")).scalar_one()  # noqa: S608
        in_town = c.execute(text(f"SELECT count(*) FROM pingan.{rel} WHERE town_code = :t"),  # noqa: S608
                            {"t": demo_areas["town"]}).scalar_one()
        in_grids = c.execute(text(f"SELECT count(*) FROM pingan.{rel} WHERE grid_code = ANY (:g)"),  # noqa: S608
                             {"g": list(demo_areas["grids"])}).scalar_one()
    if role in ("analyst", "public"):
        with pytest.raises(ProgrammingError, match="permission denied"), transaction(svc, principal) as c:
            c.execute(text(f"SELECT count(*) FROM pingan.{rel}"))  # noqa: S608
        return
    with transaction(svc, principal) as c:
        seen, towns, grids = c.execute(text(
            f"SELECT count(*), array_agg(DISTINCT town_code), array_agg(DISTINCT grid_code) FROM pingan.{rel}"  # noqa: S608
        )).one()
    if role == "town":
        assert (seen, towns) == (in_town, [demo_areas["town"]])
    elif role == "grid":
        assert seen == in_grids and set(grids) <= set(demo_areas["grids"])
    else:
        assert seen == everything
    assert seen > 0


@pytest.mark.parametrize("role", ["town", "grid"])
def test_event_history_follows_its_parent(svc, demo_engine, demo_areas, role) -> None:
    principal = _principal(role, demo_areas)
    column = "town_code" if role == "town" else "grid_code"
    areas = [demo_areas["town"]] if role == "town" else list(demo_areas["grids"])
    with demo_engine.connect() as c:
        expected = c.execute(text(
            f"SELECT count(*) FROM pingan.hazard_events e JOIN pingan.hazards h ON h.id = e.hazard_id"  # noqa: S608
            f" WHERE h.{column} = ANY (:a)"), {"a": areas}).scalar_one()
    with transaction(svc, principal) as c:
        seen = c.execute(text("SELECT count(*) FROM pingan.hazard_events")).scalar_one()
    assert seen == expected and seen > 0


def test_planner_estimates_stay_right_under_row_level_security(svc, demo_engine, demo_areas) -> None:
    """numberMatched of large collections comes from EXPLAIN: the policies must not skew it."""
    with demo_engine.connect() as c:
        total = c.execute(text(
            "SELECT reltuples FROM pg_class WHERE oid = 'pingan.hazards'::regclass")).scalar_one()
    with transaction(svc, Principal("c", "command")) as c:
        plan = c.execute(text("EXPLAIN (FORMAT JSON) SELECT 1 FROM pingan.hazards")).scalar_one()
    assert plan[0]["Plan"]["Plan Rows"] == pytest.approx(total, rel=0.05)


def test_person_location_only_for_those_responsible(svc, demo_engine, demo_areas) -> None:
    with transaction(svc, Principal("a", "admin")) as c:
        admin = c.execute(text(
            "SELECT count(*), bool_or(exact_location), bool_or(address IS NOT NULL)"
            " FROM pingan.persons_served")).one()
    with transaction(svc, _principal("grid", demo_areas)) as c:
        grid = c.execute(text("SELECT count(*), bool_and(exact_location) FROM pingan.persons_served")).one()
    with demo_engine.connect() as c:
        n = c.execute(text("SELECT count(*) FROM pingan.persons")).scalar_one()
        exact = c.execute(text(
            "SELECT count(*) FROM pingan.persons p JOIN pingan.grids g ON g.code = p.grid_code"
            " WHERE ST_Equals(p.geom, ST_PointOnSurface(g.geom))")).scalar_one()
    assert admin == (n, False, False)
    assert grid[0] > 0 and grid[1] is True
    assert exact == 0  # so a generalised point never happens to be the exact one


@pytest.mark.parametrize("role", ACCESS)
def test_person_counts_are_suppressed_below_the_threshold(svc, demo_engine, demo_areas, role) -> None:
    columns = ("total", "grade_red", "grade_yellow", "grade_green", "career_failure", "family_discord",
               "life_frustration", "mental_imbalance", "abnormal_behaviour")
    with demo_engine.connect() as c:
        k = c.execute(text("SELECT min_count FROM pingan.privacy_config")).scalar_one()
    for view in ("persons_by_grid", "persons_by_village", "persons_by_town"):
        with transaction(svc, _principal(role, demo_areas)) as c:
            town = "code" if view == "persons_by_town" else "town_code"
            rows = c.execute(text(
                f"SELECT {town}, suppressed, {', '.join(columns)} FROM pingan.{view}")).all()  # noqa: S608
        assert rows or (role == "grid" and view != "persons_by_grid")  # a grid user: its grids only
        for town, suppressed, *counts in rows:
            assert all(n is None or n == 0 or n >= k for n in counts)
            assert suppressed == any(n is None for n in counts)
            if role == "town":
                assert town == demo_areas["town"]
    # and the village view agrees with the owner's exact count where it shows one
    with demo_engine.connect() as c:
        exact = dict(c.execute(text(
            "SELECT village_code, count(*) FROM pingan.persons WHERE status = 'active' GROUP BY 1")).all())
    with transaction(svc, Principal("x", "analyst")) as c:
        shown = c.execute(text(
            "SELECT code, total FROM pingan.persons_by_village WHERE total IS NOT NULL")).all()
    assert shown and all(total == exact.get(code, 0) for code, total in shown)
    assert any(total >= k for _, total in shown)


def test_audit_log_is_append_only_for_the_service(demo_service_url: str) -> None:
    with psycopg.connect(demo_service_url) as c:
        c.execute("INSERT INTO pingan.audit_log (actor, role, action) VALUES ('t', 'command', 'test')")
        for sql in ("UPDATE pingan.audit_log SET actor = 'x'", "DELETE FROM pingan.audit_log",
                    "TRUNCATE pingan.audit_log", "SELECT count(*) FROM pingan.audit_log"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), c.transaction():
                c.execute(sql)
        c.rollback()


def _events(service: Engine, table: str) -> tuple[int, int, int] | None:
    """The events an analysis reads: with a point, without one (SQL), without one (read_events)."""
    if table == "persons":
        return None
    from datetime import UTC, datetime

    from layers.analysis import EventQuery, read_events

    with transaction(service, Principal("c", "command")) as c:
        placed, unplaced = c.execute(text(
            "SELECT count(x), count(*) - count(x) "
            "FROM pingan.analysis_events(:t, now() - interval '99 years', now())"), {"t": table}).one()
        read = read_events(c, EventQuery(table, datetime(1927, 1, 1, tzinfo=UTC), datetime.now(UTC)))
        assert len(read) == placed
        return placed, unplaced, read.unplaced


@pytest.mark.parametrize("table", ["hazards", "cases", "persons"])
def test_records_placed_only_to_a_village_or_town_are_not_a_grids(databases, table: str) -> None:
    """A record geocoded only to its village or town has no grid (migration 0027), so no grid's
    worker sees it (the town's staff do); records placed by coordinates, to a door, or to the
    grid the export names stay the grid's. A village-level record cannot be given a grid (nor a
    town-level one a village)."""
    from layers.db import make_engine
    from layers.settings import DatabaseSettings

    url = databases.demo()
    owner = make_engine(DatabaseSettings(database_url=url))
    service = make_engine(DatabaseSettings(database_url=databases.service_url(url)), service=True)
    try:
        with owner.begin() as c:
            grid, town = c.execute(text(
                f"SELECT grid_code, town_code FROM pingan.{table} GROUP BY 1, 2 "  # noqa: S608
                "ORDER BY count(*) DESC LIMIT 1")).one()
            ids = c.execute(text(
                f"SELECT id FROM pingan.{table} WHERE grid_code = :g ORDER BY id LIMIT 5"),  # noqa: S608
                {"g": grid}).scalars().all()
        events = _events(service, table)
        with owner.begin() as c:
            for level, rid in zip(["town", "village", "grid", "door"], ids, strict=False):
                c.execute(text(
                    f"UPDATE pingan.{table} SET loc_method = 'geocoded', geocode_level = :l, "  # noqa: S608
                    "geocode_score = 0.5, grid_code = CASE WHEN :l IN ('door', 'grid') THEN grid_code END, "
                    "village_code = CASE WHEN :l <> 'town' THEN village_code END WHERE id = :i"),
                    {"l": level, "i": rid})
        # a village-level record keeping its grid, a town-level one keeping its village: refused
        for keeps in ("geocode_level = 'village'", "geocode_level = 'town', grid_code = NULL"):
            with pytest.raises(IntegrityError, match=f"{table}_placed"), owner.begin() as c:
                c.execute(text(
                    f"UPDATE pingan.{table} SET loc_method = 'geocoded', geocode_score = 0.5, {keeps} "  # noqa: S608
                    "WHERE id = :i"), {"i": ids[-1]})
        seen = {}
        for who in (Principal("g", "grid", (grid,)), Principal("t", "town", (town,))):
            with transaction(service, who) as c:
                seen[who.role] = set(c.execute(text(
                    f"SELECT id FROM pingan.{table} WHERE id = ANY(:ids)"), {"ids": ids}).scalars())  # noqa: S608
        assert seen["town"] == set(ids)
        # placed to the grid by the export's 所属网格, to a door, by coordinates
        assert seen["grid"] == set(ids[2:])
        if table != "persons":  # the analyses leave out the three placed only to an area's point,
            assert events[1:] == (0, 0)  # and say how many they left out
            assert _events(service, table) == (events[0] - 3, 3, 3)
            return
        # persons without a grid are still served; to those who may not see where they live, at
        # a point of their village or town (of their grid before)
        with transaction(service, Principal("a", "admin")) as c:
            served = c.execute(text(
                "SELECT p.id, ST_Equals(p.geom, ST_PointOnSurface(coalesce(g.geom, v.geom, t.geom))),"
                " g.code IS NULL, v.code IS NULL FROM pingan.persons_served p"
                " LEFT JOIN pingan.grids g ON g.code = p.grid_code"
                " LEFT JOIN pingan.villages v ON v.code = p.village_code"
                " LEFT JOIN pingan.towns t ON t.code = p.town_code WHERE p.id = ANY(:ids) ORDER BY p.id"),
                {"ids": ids}).all()
        assert [r[0] for r in served] == sorted(ids)
        assert all(r[1] for r in served)
        assert [r[2:] for r in served][:2] == [(True, True), (True, False)]  # the town's, the village's
    finally:
        owner.dispose()
        service.dispose()

