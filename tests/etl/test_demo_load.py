"""The demo district in PostGIS: counts, statistics, nesting, encryption, idempotence."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from etl.demo.load import TABLES
from tests.etl.conftest import TEST_KEY, load
from tests.helpers import table_fingerprint


def scalar(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def test_counts(demo_engine) -> None:
    counts = demo_engine.demo_result.counts
    assert counts["towns"] == 13
    assert counts["villages"] == 197
    assert 2475 <= counts["grids"] <= 2525
    assert counts["persons"] == 700
    assert counts["hazards"] == 30_000
    assert counts["cases"] == 10_000
    assert counts["hazard_events"] > 30_000 and counts["case_events"] > 10_000
    # the loader's counts are what the database holds
    for table, n in counts.items():
        assert scalar(demo_engine, f"SELECT count(*) FROM pingan.{table}") == n, table


def test_real_divisions(demo_engine) -> None:
    names = scalar(demo_engine, "SELECT string_agg(name, ',' ORDER BY code) FROM pingan.towns")
    assert names.split(",")[:3] == ["景山街道", "梧田街道", "南白象街道"]
    assert "泽雅镇" in names
    assert scalar(demo_engine, "SELECT count(*) FROM pingan.villages WHERE code LIKE '330304001%'") > 0


def test_geometry_nests(demo_engine) -> None:
    # every grid lies in its village and every village in its town (to 1 m² of slivers)
    bad_grids = scalar(demo_engine, """
        SELECT count(*) FROM pingan.grids g JOIN pingan.villages v ON v.code = g.village_code
        WHERE ST_Area(ST_Difference(g.geom, v.geom)::geography) > 1""")
    bad_villages = scalar(demo_engine, """
        SELECT count(*) FROM pingan.villages v JOIN pingan.towns t ON t.code = v.town_code
        WHERE ST_Area(ST_Difference(v.geom, t.geom)::geography) > 1""")
    assert (bad_grids, bad_villages) == (0, 0)
    # grids of a village do not overlap each other
    overlaps = scalar(demo_engine, """
        SELECT count(*) FROM pingan.grids a JOIN pingan.grids b
          ON a.village_code = b.village_code AND a.code < b.code AND a.geom && b.geom
        WHERE ST_Area(ST_Intersection(a.geom, b.geom)::geography) > 1""")
    assert overlaps == 0


def test_points_fall_in_their_grid(demo_engine) -> None:
    for table in ("key_sites", "persons", "hazards", "cases"):
        outside = scalar(demo_engine, f"""
            SELECT count(*) FROM pingan.{table} r JOIN pingan.grids g ON g.code = r.grid_code
            WHERE NOT ST_Covers(g.geom, r.geom)""")
        assert outside == 0, table


def test_outline_is_ouhai(demo_engine) -> None:
    # Ouhai's area is about 466 km²; its government sits near 120.64 E, 27.97 N (WGS84)
    area_km2 = scalar(demo_engine, "SELECT sum(ST_Area(geom::geography)) / 1e6 FROM pingan.towns")
    assert 380 < area_km2 < 560
    inside = scalar(demo_engine, """SELECT bool_or(ST_DWithin(geom::geography,
        ST_SetSRID(ST_MakePoint(120.64, 27.97), 4490)::geography, 5000)) FROM pingan.towns""")
    assert inside


def test_workflow_statistics(demo_engine) -> None:
    closed_old = scalar(demo_engine, """
        SELECT avg((state = 'closed')::int) FROM pingan.hazards
        WHERE found_at < TIMESTAMPTZ '2026-10-31 23:59:59+08' - interval '60 days'""")
    assert closed_old >= 0.985
    overdue = scalar(demo_engine, """
        SELECT count(*) FROM pingan.hazards WHERE deadline < TIMESTAMPTZ '2026-10-31 23:59:59+08'
        AND rectified_at IS NULL""")
    assert overdue > 0
    grassroots = scalar(demo_engine, """
        SELECT avg((resolution_level IN ('grid', 'village', 'town'))::int) FROM pingan.cases
        WHERE kind = 'dispute' AND resolved_at IS NOT NULL""")
    assert 0.88 <= grassroots <= 0.92


def test_events_follow_the_workflow(demo_engine) -> None:
    # every recorded step is a legal transition (or the first 'found'/'accepted')
    for events, parent, first, workflow in (
        ("hazard_events", "hazard_id", "found", "hazard"),
        ("case_events", "case_id", "accepted", "case"),
    ):
        illegal = scalar(demo_engine, f"""
            SELECT count(*) FROM pingan.{events} e
            WHERE NOT (e.from_state IS NULL AND e.to_state = :first)
              AND NOT EXISTS (SELECT 1 FROM pingan.workflow_transitions t
                              WHERE t.workflow = :wf AND t.from_state = e.from_state
                                AND t.to_state = e.to_state)""", first=first, wf=workflow)
        assert illegal == 0, events
        firsts = scalar(demo_engine, f"""
            SELECT count(DISTINCT {parent}) FROM pingan.{events} WHERE from_state IS NULL""")
        assert firsts == scalar(demo_engine, f"SELECT count(*) FROM pingan.{parent[:-3]}s")


def test_person_data_sealed(demo_engine) -> None:
    with demo_engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT name_enc, id_number_enc, phone_enc, id_number_hash, gender, birth_year "
            "FROM pingan.persons ORDER BY id LIMIT 50")).all()
    for r in rows:
        id_number = TEST_KEY.decrypt(r.id_number_enc, context=b"id_number")
        assert re.fullmatch(r"\d{17}[\dX]", id_number)
        assert int(id_number[6:10]) == r.birth_year
        assert ("M" if int(id_number[16]) % 2 else "F") == r.gender
        assert id_number.encode() not in r.id_number_enc
        assert TEST_KEY.blind_index(id_number) == r.id_number_hash
        name = TEST_KEY.decrypt(r.name_enc, context=b"name")
        assert re.fullmatch(r"[\u4e00-\u9fff]{2,4}", name), name
        assert name.encode() not in r.name_enc


def test_second_load_changes_nothing(demo_engine) -> None:
    with demo_engine.connect() as conn:
        before = {t: table_fingerprint(conn, t) for t in (*TABLES, "etl_batches", "layer_versions")}
    again = load(demo_engine)
    assert again.skipped
    assert again.batch_id == demo_engine.demo_result.batch_id
    with demo_engine.connect() as conn:
        after = {t: table_fingerprint(conn, t) for t in before}
    assert after == before


@pytest.mark.slow
def test_other_seed_replaces_and_same_seed_reproduces(demo_engine, databases) -> None:
    """Seed 7 then seed 42 in a fresh database equals seed 42 loaded once: the replacement
    leaves nothing of the old demo, and the generator is deterministic."""
    from layers import migrate
    from layers.db import make_engine
    from layers.settings import DatabaseSettings

    other = make_engine(DatabaseSettings(database_url=databases.create()))
    try:
        migrate.upgrade(other)
        load(other, seed=7)
        replaced = load(other, seed=42)
        assert not replaced.skipped
        # ids, batches, timestamps and ciphertexts (random nonces) differ by nature
        exclude = frozenset({"id", "batch_id", "updated_at", "name_enc", "id_number_enc",
                             "phone_enc", "worker_id", "responsible_worker_id", "person_id",
                             "hazard_id", "case_id"})
        with demo_engine.connect() as a, other.connect() as b:
            for table in TABLES:
                assert table_fingerprint(a, table, exclude) == table_fingerprint(b, table, exclude), table
            assert b.execute(text("SELECT count(*) FROM pingan.etl_batches WHERE status = 'done'")
                             ).scalar_one() == 2
    finally:
        other.dispose()
