"""`pingan etl refresh`: monthly stats equal an independent computation, and an incremental
refresh after a load equals a full recompute."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import text

from etl.pipeline import load_file
from etl.refresh import refresh
from layers import versions
from tests.etl.test_pipeline import etl_engine, export, sample  # noqa: F401 - fixtures
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
