"""`pingan etl refresh`: monthly stats equal an independent computation, and an incremental
refresh after a load equals a full recompute."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
from sqlalchemy import text

from etl.pipeline import load_file
from etl.refresh import refresh
from layers import migrate, versions
from layers.db import make_engine
from layers.settings import DatabaseSettings
from tests.etl.test_pipeline import etl_engine, export, hazards_sample, sample  # noqa: F401 - fixtures
from tests.helpers import table_fingerprint


def stats(engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(text("SELECT * FROM pingan.monthly_stats"), conn)


def test_full_refresh_matches_pandas(etl_engine) -> None:  # noqa: F811
    result = refresh(etl_engine, full=True)
    assert result.rows > 0
    with etl_engine.connect() as conn:
        h = pd.read_sql(text("SELECT grid_code, found_at, rectified_at, deadline FROM pingan.hazards"), conn)
        c = pd.read_sql(text("SELECT grid_code, resolved_at, resolution_level FROM pingan.cases"), conn)
    local = h.found_at.dt.tz_convert("Asia/Shanghai")
    h["period"] = local.dt.tz_localize(None).dt.to_period("M").dt.to_timestamp().dt.date
    expected = h.groupby(["period", "grid_code"]).size()
    got = stats(etl_engine).query("level == 'grid'").set_index(["period", "code"])["hazards_found"]
    got = got[got > 0]
    pd.testing.assert_series_equal(expected.sort_index(), got.sort_index(), check_names=False)
    # rectified on time ≤ rectified; grassroots resolutions as counted directly
    s = stats(etl_engine)
    assert (s.hazards_rectified_on_time <= s.hazards_rectified).all()
    grass = c[c.resolved_at.notna() & c.resolution_level.isin(["grid", "village", "town"])]
    assert s.query("level == 'town'").cases_resolved_grassroots.sum() == len(grass)
    # villages and towns are the sums of their grids
    g = (
        s.query("level == 'grid'")
        .assign(town=lambda d: d.code.str[:9])
        .groupby(["period", "town"])
        .sum(numeric_only=True)
    )
    t = s.query("level == 'town'").set_index(["period", "code"]).drop(columns=["level", "refreshed_at"])
    pd.testing.assert_frame_equal(g.sort_index(), t.sort_index(), check_names=False, check_dtype=False)


def test_incremental_equals_full(etl_engine, sample, tmp_path) -> None:  # noqa: F811
    refresh(etl_engine, full=True)
    with etl_engine.connect() as conn:
        before_version = versions.versions(conn).get("monthly-stats")
    path = tmp_path / "more.csv"
    export(sample.head(40), "INC-").to_csv(path, index=False)
    assert load_file(etl_engine, path, "hazards", source="test-refresh").loaded == 40
    inc = refresh(etl_engine)
    assert 0 < inc.pairs < 40 * 30  # only what the 40 records touched
    with etl_engine.connect() as conn:
        after_incremental = table_fingerprint(conn, "monthly_stats", frozenset({"refreshed_at"}))
        assert versions.versions(conn)["monthly-stats"] > before_version
    refresh(etl_engine, full=True)
    with etl_engine.connect() as conn:
        assert table_fingerprint(conn, "monthly_stats", frozenset({"refreshed_at"})) == after_incremental
    again = refresh(etl_engine)
    assert (again.pairs, again.rows) == (0, 0)  # nothing new since


def test_a_batch_that_commits_after_a_later_one_is_refreshed(etl_engine, sample, tmp_path) -> None:  # noqa: F811
    """Batch ids are handed out when a load begins: A begins, B (a higher id) commits, a refresh
    takes B, then A commits. The next refresh takes A, and the statistics equal a full refresh."""
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    export(sample.head(30), "RACE-A-").to_csv(a, index=False)
    export(sample.iloc[30:60], "RACE-B-").to_csv(b, index=False)
    refresh(etl_engine, full=True)
    parked, go = threading.Event(), threading.Event()

    def hold(stage: str, *_counts: object) -> None:  # A waits inside its transaction, id taken
        if stage == "loading" and not parked.is_set():
            parked.set()
            go.wait(60)

    with ThreadPoolExecutor(1) as pool:
        try:
            pending = pool.submit(load_file, etl_engine, a, "hazards", source="test-race-a", progress=hold)
            assert parked.wait(60)
            rb = load_file(etl_engine, b, "hazards", source="test-race-b")
            first = refresh(etl_engine)
        finally:
            go.set()
        ra = pending.result(60)
    assert (ra.loaded, rb.loaded) == (30, 30)
    assert ra.batch_id < rb.batch_id
    assert first.batches == 1  # B; A was not committed yet
    second = refresh(etl_engine)
    assert second.batches == 1 and second.pairs > 0  # A, though its id is below B's
    with etl_engine.connect() as conn:
        after_incremental = table_fingerprint(conn, "monthly_stats", frozenset({"refreshed_at"}))
        marked = conn.execute(text(
            "SELECT count(*) FROM pingan.etl_batches WHERE id IN (:a, :b) AND refreshed_at IS NOT NULL"),
            {"a": ra.batch_id, "b": rb.batch_id}).scalar_one()
    assert marked == 2
    refresh(etl_engine, full=True)
    with etl_engine.connect() as conn:
        assert table_fingerprint(conn, "monthly_stats", frozenset({"refreshed_at"})) == after_incremental
    assert refresh(etl_engine).batches == 0


def test_refreshes_at_once_take_each_batch_once(etl_engine, sample, tmp_path) -> None:  # noqa: F811
    path = tmp_path / "once.csv"
    export(sample.iloc[60:80], "ONCE-").to_csv(path, index=False)
    refresh(etl_engine, full=True)
    assert load_file(etl_engine, path, "hazards", source="test-once").loaded == 20
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: refresh(etl_engine), range(2)))
    assert sorted(r.batches for r in runs) == [0, 1]


def test_since_takes_the_batches_after_it_again(etl_engine, sample, tmp_path) -> None:  # noqa: F811
    path = tmp_path / "since.csv"
    export(sample.iloc[80:100], "SINCE-").to_csv(path, index=False)
    loaded = load_file(etl_engine, path, "hazards", source="test-since")
    assert refresh(etl_engine).batches >= 1
    again = refresh(etl_engine, since_batch=loaded.batch_id - 1)
    assert again.batches >= 1 and again.pairs > 0  # taken again on request
    assert refresh(etl_engine).batches == 0


def test_migration_marks_what_the_highest_id_had_covered(databases) -> None:
    """0024 marks the done batches up to refresh_state.last_batch_id; its downgrade goes back to
    the highest id below which every done batch was refreshed."""
    engine = make_engine(DatabaseSettings(database_url=databases.create()))
    try:
        migrate.upgrade(engine, "0023")
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO pingan.etl_batches (id, source, layer, status, finished_at) VALUES "
                "(1, 's', 'hazards', 'done', now()), (2, 's', 'hazards', 'failed', now()), "
                "(3, 's', 'hazards', 'done', now()), (4, 's', 'hazards', 'done', now())"))
            conn.execute(text(
                "INSERT INTO pingan.refresh_state (job, last_batch_id) VALUES ('monthly_stats', 3)"))
        migrate.upgrade(engine, "0024")
        with engine.begin() as conn:
            marked = conn.execute(text(
                "SELECT id FROM pingan.etl_batches WHERE refreshed_at IS NOT NULL ORDER BY id")).scalars()
            assert list(marked) == [1, 3]
            conn.execute(text("UPDATE pingan.etl_batches SET refreshed_at = NULL WHERE id = 3"))
            conn.execute(text("UPDATE pingan.etl_batches SET refreshed_at = now() WHERE id = 4"))
        migrate.downgrade(engine, "0023")
        with engine.connect() as conn:
            last = conn.execute(text("SELECT last_batch_id FROM pingan.refresh_state")).scalar_one()
        assert last == 2  # batch 3 was not refreshed: taken again
    finally:
        engine.dispose()


def _found_and_accepted(engine) -> pd.DataFrame:
    """hazards_found and cases_accepted per (period, level, code), counted from the records:
    a grid its records, a village and a town every record that names it (with a grid or not)."""
    out = []
    with engine.connect() as conn:
        for table, at, metric in (("hazards", "found_at", "hazards_found"),
                                  ("cases", "accepted_at", "cases_accepted")):
            sql = f"SELECT grid_code, village_code, town_code, {at} AS t FROM pingan.{table}"  # noqa: S608
            r = pd.read_sql(text(sql), conn)
            local = r.t.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None)
            r["period"] = local.dt.to_period("M").dt.to_timestamp().dt.date
            for level in ("grid", "village", "town"):
                n = r.dropna(subset=[f"{level}_code"]).groupby(["period", f"{level}_code"]).size()
                out.append(n.rename(metric).rename_axis(["period", "code"]).reset_index().assign(level=level))
    return pd.concat(out).groupby(["period", "level", "code"]).sum().fillna(0).astype(int)


def _assert_counts_match(engine) -> None:
    """monthly_stats' hazards_found and cases_accepted equal the records' own counts."""
    s = stats(engine).set_index(["period", "level", "code"])[["hazards_found", "cases_accepted"]]
    pd.testing.assert_frame_equal(_found_and_accepted(engine).sort_index(),
                                  s[(s.hazards_found > 0) | (s.cases_accepted > 0)].sort_index(),
                                  check_dtype=False)


def _assert_incremental_equals_full(engine, table: str) -> None:
    """An incremental refresh now, then a full one: ``table`` the same after each."""
    refresh(engine)
    with engine.connect() as conn:
        incremental = table_fingerprint(conn, table, frozenset({"refreshed_at"}))
    refresh(engine, full=True)
    with engine.connect() as conn:
        assert table_fingerprint(conn, table, frozenset({"refreshed_at"})) == incremental


def test_records_without_a_grid_count_in_their_village_or_town_only(databases, tmp_path) -> None:
    """Records placed only to a village (no grid) or a town (no village): each village's and
    town's months count them, no grid's does; after a load of such records an incremental refresh
    equals a full one."""
    engine = make_engine(DatabaseSettings(database_url=databases.demo()))
    try:
        with engine.begin() as conn:
            for table in ("hazards", "cases"):
                for level, every in (("village", 7), ("town", 11)):
                    conn.execute(text(
                        f"UPDATE pingan.{table} SET loc_method = 'geocoded', geocode_level = :l, "  # noqa: S608
                        "geocode_score = 0.5, grid_code = NULL, "
                        "village_code = CASE WHEN :l = 'village' THEN village_code END "
                        "WHERE id % :n = 0 AND geocode_level IS NULL"), {"l": level, "n": every})
        refresh(engine, full=True)
        _assert_counts_match(engine)
        s = stats(engine).set_index(["period", "level", "code"])
        assert not (s.index.get_level_values("code").str.len() != s.index.get_level_values("level").map(
            {"grid": 15, "village": 12, "town": 9})).any()
        # a file of records placed only to a village or town, then an incremental refresh
        sample = hazards_sample(engine, 20, "grid_code IS NOT NULL")
        with engine.connect() as conn:
            names = conn.execute(text(
                "SELECT t.name, v.name FROM pingan.villages v JOIN pingan.towns t ON t.code = v.town_code "
                "ORDER BY v.code LIMIT 20")).all()
        df = export(sample, "CR-").astype(object)
        df[["经度", "纬度", "坐标系"]] = None
        df["地址"] = [t + (v if i % 2 else "") for i, (t, v) in enumerate(names)]
        path = tmp_path / "coarse.csv"
        df.to_csv(path, index=False, encoding="gbk")
        assert load_file(engine, path, "hazards", source="test-coarse-refresh").loaded == 20
        _assert_incremental_equals_full(engine, "monthly_stats")
        _assert_counts_match(engine)
    finally:
        engine.dispose()


def test_the_first_refresh_after_migration_0027_recomputes_everything(databases) -> None:
    """Statistics refreshed before 0027 count village-level records in the grid of their area's
    point; after it those records have no grid. The next plain refresh must be a full one: an
    incremental one would keep the old grid rows and add the records to their villages again."""
    engine = make_engine(DatabaseSettings(database_url=databases.demo()))
    try:
        migrate.downgrade(engine, "0026")
        with engine.begin() as conn:
            for table in ("hazards", "cases"):
                conn.execute(text(
                    f"UPDATE pingan.{table} SET loc_method = 'geocoded', geocode_level = 'village', "  # noqa: S608
                    "geocode_score = 0.7 WHERE id % 5 = 0"))
            # today's refresh on 0026's schema (where every record has a grid) writes what 0026's
            # did; it reads one table 0027 adds, made here for it and dropped before the upgrade
            conn.execute(text(
                "CREATE TABLE pingan.refresh_moved (batch_id bigint, code text, t0 timestamptz)"))
        refresh(engine, full=True)
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE pingan.refresh_moved"))
        migrate.upgrade(engine)
        again = refresh(engine)
        assert again.rows > 0
        _assert_counts_match(engine)
    finally:
        engine.dispose()


def test_a_reload_that_moves_records_takes_them_out_of_their_old_place(databases, tmp_path) -> None:
    """A reload that moves records (to another grid, to their village only by an address, or to
    another month) recomputes the months of the place and start they left: the incremental
    refresh equals an independent count, with no stale grid row and no village counting a
    record twice."""
    engine = make_engine(DatabaseSettings(database_url=databases.demo()))
    try:
        sample = hazards_sample(engine, 12)
        with engine.connect() as conn:
            names = conn.execute(text(
                "SELECT t.name || v.name FROM pingan.villages v JOIN pingan.towns t ON t.code = v.town_code "
                "ORDER BY v.code DESC LIMIT 4")).scalars().all()
            far = conn.execute(text(
                "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM pingan.grids "
                "ORDER BY code DESC LIMIT 1")).one()
        first = export(sample, "MV-", datum="CGCS2000")
        path = tmp_path / "first.csv"
        first.to_csv(path, index=False)
        assert load_file(engine, path, "hazards", source="test-move").loaded == 12
        refresh(engine, full=True)
        second = first.astype(object)
        second.loc[:3, ["经度", "纬度", "坐标系"]] = None  # to their village only
        second.loc[:3, "地址"] = names
        second.loc[4:7, ["经度", "纬度"]] = far  # to another grid
        path = tmp_path / "second.csv"
        second.to_csv(path, index=False)
        assert load_file(engine, path, "hazards", source="test-move").updated == 8
        refresh(engine)
        _assert_counts_match(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM pingan.refresh_moved")).scalar_one() == 0
    finally:
        engine.dispose()


def test_a_person_who_moves_village_is_counted_again_where_they_left(databases, tmp_path) -> None:
    """The index's register counts of five-loss persons: after a reload that moves persons to
    another village, an incremental refresh equals a full one (the village they left is
    counted again too)."""
    import numpy as np

    from etl.demo import people
    from etl.demo.samples import persons_export
    from tests.etl.conftest import TEST_KEY

    engine = make_engine(DatabaseSettings(database_url=databases.demo()))
    try:
        with engine.connect() as conn:
            grids = conn.execute(text(
                "SELECT village_code, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
                "FROM pingan.grids ORDER BY code")).all()
        here, there = grids[0], grids[-1]
        assert here[0] != there[0]
        rng = np.random.default_rng(3)
        male = rng.random(6) < 0.5
        birth = np.datetime64("1970-01-01") + rng.integers(0, 20 * 365, 6).astype("timedelta64[D]")
        df = pd.DataFrame({
            "name": people.names(rng, male), "id_number": people.id_numbers(rng, birth, male),
            "phone": people.phones(rng, 6), "categories": [["family_discord"]] * 6,
            "grade": ["red", "yellow"] * 3,
            "registered_at": pd.Timestamp("2025-06-01 09:00", tz="Asia/Shanghai"),
            "address": None, "x": here[1], "y": here[2],
        })
        path = tmp_path / "persons.csv"
        persons_export(df).to_csv(path, index=False)
        assert load_file(engine, path, "persons", source="test-move", keys=TEST_KEY).loaded == 6
        refresh(engine, full=True)
        persons_export(df.assign(x=there[1], y=there[2])).to_csv(path, index=False)
        assert load_file(engine, path, "persons", source="test-move", keys=TEST_KEY).updated == 6
        _assert_incremental_equals_full(engine, "index_inputs")
    finally:
        engine.dispose()
