"""Bulk mode: a batch large next to its table loads with the table's plain indexes and foreign
keys dropped and made again in the same transaction; the result, the rejects and the schema are
as in the normal path."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import text

from etl import bulk, pipeline
from etl.demo.samples import hazards_export


def schema(engine) -> tuple:
    with engine.connect() as conn:
        idx = conn.execute(text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'pingan' "
                                "AND tablename = 'hazards' ORDER BY 1")).all()
        fks = conn.execute(text("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                                "WHERE conrelid = 'pingan.hazards'::regclass ORDER BY 1")).all()
    return tuple(idx), tuple(fks)


def test_bulk_load_restores_indexes_and_keys(areas_engine, demo_engine, tmp_path, monkeypatch) -> None:
    with demo_engine.connect() as conn:
        df = pd.read_sql(text(
            "SELECT source_id, title, category, state, found_at, assigned_at, deadline, rectified_at, "
            "verified_at, closed_at, address, grid_code, ST_X(geom) AS x, ST_Y(geom) AS y "
            "FROM pingan.hazards ORDER BY id LIMIT 400"), conn)
    out = hazards_export(df, "BULK-" + df.source_id)
    closed = out.index[out["状态"] == "已销号"][0]
    out.loc[closed, "销号时间"] = ""  # 销号 without its time: the CHECK refuses this row
    path = tmp_path / "hazards.csv"
    out.to_csv(path, index=False, encoding="gbk")
    before = schema(areas_engine)
    calls = []
    real_begin = bulk.begin
    monkeypatch.setattr(bulk, "BULK_ROWS", 100)  # read by bulk.begin
    monkeypatch.setattr(bulk, "begin", lambda *a: calls.append(real_begin(*a)) or calls[-1])
    r = pipeline.load_file(areas_engine, path, "hazards", source="bulk")
    with areas_engine.connect() as conn:  # every plain index and foreign key (migrations add some)
        n_idx, n_fk = conn.execute(text(
            "SELECT (SELECT count(*) FROM pg_index WHERE indrelid = 'pingan.hazards'::regclass "
            "AND NOT indisunique AND NOT indisprimary), (SELECT count(*) FROM pg_constraint "
            "WHERE conrelid = 'pingan.hazards'::regclass AND contype = 'f')")).one()
    assert n_idx >= 4 and n_fk == 4
    assert calls and calls[0] is not None and len(calls[0][0]) == n_idx and len(calls[0][1]) == n_fk
    assert (r.status, r.loaded, r.rejected) == ("done", 399, 1), r
    assert "状态与时间不符" in next(iter(r.reasons))
    assert any(w.startswith("bulk mode") for w in r.warnings)
    assert schema(areas_engine) == before
    # the same file again brings no new rows: the normal path, and nothing changes
    calls.clear()
    again = pipeline.load_file(areas_engine, path, "hazards", source="bulk")
    assert calls == [None] and (again.loaded, again.updated, again.unchanged) == (0, 0, 399)
    assert not any(w.startswith("bulk mode") for w in again.warnings)


def test_a_key_that_bulk_mode_finds_taken_sends_the_batch_the_normal_way(
    areas_engine, demo_engine, tmp_path, monkeypatch
) -> None:
    """Bulk mode copies new rows with the unique keys dropped and makes them again before
    anything is upserted; a 编号 another source already holds is found there, and the batch is
    rolled back and loaded again the normal way: the same rows, the same reject, as without bulk
    mode."""
    with demo_engine.connect() as conn:
        df = pd.read_sql(text(
            "SELECT source_id, title, category, state, found_at, assigned_at, deadline, rectified_at, "
            "verified_at, closed_at, address, grid_code, ST_X(geom) AS x, ST_Y(geom) AS y "
            "FROM pingan.hazards ORDER BY id LIMIT 300"), conn)
    first = hazards_export(df.iloc[:1], ["TAKEN-1"])
    first.to_csv(tmp_path / "first.csv", index=False, encoding="gbk")
    assert pipeline.load_file(areas_engine, tmp_path / "first.csv", "hazards", source="first").loaded == 1
    ids = [f"TAKEN-{i}" for i in range(1, 301)]  # TAKEN-1 again, from another source
    hazards_export(df, ids).to_csv(tmp_path / "second.csv", index=False, encoding="gbk")
    before = schema(areas_engine)
    calls = []
    real_begin = bulk.begin
    monkeypatch.setattr(bulk, "BULK_ROWS", 100)  # read by bulk.begin
    monkeypatch.setattr(bulk, "begin", lambda *a: calls.append(real_begin(*a)) or calls[-1])
    r = pipeline.load_file(areas_engine, tmp_path / "second.csv", "hazards", source="second")
    # the first try dropped both unique keys; the second never began bulk mode
    assert len(calls) == 1 and sorted(n for n, _ in calls[0][2]) == [
        "hazards_code_key", "hazards_source_source_id_key"]
    assert (r.status, r.loaded, r.rejected) == ("done", 299, 1), r
    assert r.reasons == {"编号 already used by another record": 1}
    assert any(w.startswith("bulk mode gave way") and "hazards_code_key" in w for w in r.warnings)
    assert schema(areas_engine) == before
    with areas_engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FILTER (WHERE source = 'second'), count(*) FILTER "
                              "(WHERE code = 'TAKEN-1') FROM pingan.hazards")).one()
        batches = conn.execute(text("SELECT count(*) FROM pingan.etl_batches WHERE file_name = 'second.csv'"
                                    )).scalar_one()
    assert tuple(n) == (299, 1) and batches == 1  # the rolled-back try left no batch behind
