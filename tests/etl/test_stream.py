"""A CSV of a point layer is read and mapped a chunk at a time inside the locate/copy pipeline
(etl/pipeline.py `_csv_feed`): the database copies chunk N while Python reads chunk N+1. It must
leave the same database, counts and rejects as the file read whole, duplicates of a 编号 across
chunks included (the last row that maps wins)."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from etl import pipeline
from etl.demo.samples import hazards_export
from etl.pipeline import load_file
from tests.etl.test_pipeline import etl_engine, sample  # noqa: F401 - fixtures (a database, 300 hazards)


@pytest.fixture(scope="module")
def engine(etl_engine):  # noqa: F811 - the pipeline tests' database fixture, one of this module's own
    return etl_engine


def odd_file(sample: pd.DataFrame, prefix: str, path) -> None:  # noqa: F811
    """70 rows, read 15 at a time: 编号 D1 at rows 3 and 55 (the later wins), D2 at rows 10 and
    30 (the later has a bad date, so the earlier is loaded), D3 at rows 12 and 13 (the later lies
    outside the district: neither is loaded), D4 at rows 20, 21 and 22; row 40 has neither
    coordinates nor an address, row 65 (only in the fifth chunk) only an address."""
    df = hazards_export(sample.iloc[:70], prefix + sample.source_id.iloc[:70]).astype(object)
    for key, rows in {"D1": [3, 55], "D2": [10, 30], "D3": [12, 13], "D4": [20, 21, 22]}.items():
        df.loc[rows, "事件编号"] = prefix + key
    df.loc[30, "发现时间"] = "not a date"
    df.loc[13, ["经度", "纬度"]] = [100.0, 30.0]
    df.loc[40, ["经度", "纬度", "坐标系", "地址"]] = ["", "", "", ""]
    df.loc[65, ["经度", "纬度", "坐标系"]] = ["", "", ""]
    df.to_csv(path, index=False, encoding="gbk")


def outcome(engine, source: str, prefix: str) -> tuple:
    with engine.connect() as conn:
        records = conn.execute(
            text(
                "SELECT replace(source_id, :p, ''), title, state, found_at, grid_code, "
                "ST_AsText(geom), loc_method FROM pingan.hazards WHERE source = :s ORDER BY 1"
            ),
            {"s": source, "p": prefix},
        ).all()
        rejects = conn.execute(
            text(
                "SELECT b.id, r.row_number, r.column_name, r.reason FROM pingan.etl_rejects r "
                "JOIN pingan.etl_batches b ON b.id = r.batch_id WHERE b.source = :s ORDER BY 1, 2"
            ),
            {"s": source},
        ).all()
    first = rejects[0][0] if rejects else 0
    return [tuple(r) for r in records], [(r[0] - first, *r[1:]) for r in rejects]


def test_a_csv_read_in_chunks_loads_as_the_whole_file(engine, sample, tmp_path, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setattr(pipeline, "UPSERT_CHUNK", 15)
    results = {}
    for way in ("chunks", "whole"):
        if way == "whole":
            monkeypatch.setattr(pipeline, "_streams", lambda *a: False)
        prefix = f"S{way[0]}-"
        path = tmp_path / f"{way}.csv"
        odd_file(sample, prefix, path)
        loads = [load_file(engine, path, "hazards", source="stream-" + way) for _ in range(2)]
        assert [r.status for r in loads] == ["done", "done"], [r.error for r in loads]
        counts = [(r.read, r.loaded, r.updated, r.unchanged, r.rejected) for r in loads]
        results[way] = (counts, *outcome(engine, "stream-" + way, prefix))
        if way == "chunks":  # the CSV was read inside the pipeline, the other way not
            assert "map" in loads[0].seconds and loads[0].seconds["copy direct"] > 0, loads[0].seconds
    assert results["chunks"] == results["whole"]
    counts, records, rejects = results["chunks"]
    # 70 rows: 4 earlier duplicates (rows 3, 12, 20, 21), a bad date (30), outside (13), unplaced (40)
    assert counts == [(70, 63, 0, 0, 7), (70, 0, 0, 63, 7)], counts
    titles = {r[0]: r[1] for r in records}
    assert titles["D1"] == sample.title.iloc[55] and titles["D2"] == sample.title.iloc[10], titles
    assert titles["D4"] == sample.title.iloc[22] and "D3" not in titles
    assert {r[0]: r[6] for r in records}[sample.source_id.iloc[65]] == "geocoded"
    why = {r[1]: r[3] for r in rejects if r[0] == 0}  # file row = position + 2
    assert sorted(why) == [5, 14, 15, 22, 23, 32, 42], why
    assert all("duplicate 编号" in why[row] for row in (5, 14, 22, 23)), why
    assert "发现时间" in why[32] and "outside the district" in why[15] and "cannot be placed" in why[42]


def test_the_next_chunk_is_read_while_the_database_copies(engine, sample, tmp_path, monkeypatch) -> None:  # noqa: F811
    """While the first chunk is being copied, the later chunks are read and mapped, not before:
    a loader that mapped the whole file first would have mapped it in one piece."""
    monkeypatch.setattr(pipeline, "UPSERT_CHUNK", 10)
    path = tmp_path / "overlap-read.csv"
    hazards_export(sample.iloc[:100], "OR-" + sample.source_id.iloc[:100]).to_csv(path, index=False)
    mapped: list[int] = []
    second = threading.Event()
    real_apply, real_send = pipeline.apply_profile, pipeline.send_binary

    def spy_apply(raw, profile):  # noqa: ANN001, ANN202
        mapped.append(len(raw.frame))
        if len(mapped) == 2:
            second.set()
        return real_apply(raw, profile)

    at_first_send: list[int] = []

    def held_send(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if not at_first_send:  # the first COPY ends only once the second chunk is mapped
            second.wait(timeout=10)
            at_first_send.append(len(mapped))
        return real_send(*args, **kwargs)

    monkeypatch.setattr(pipeline, "apply_profile", spy_apply)
    monkeypatch.setattr(pipeline, "send_binary", held_send)
    r = load_file(engine, path, "hazards", source="overlap-read")
    assert r.status == "done" and (r.read, r.loaded, r.rejected) == (100, 100, 0), (r.error, r.reasons)
    assert mapped == [10] * 10
    assert 2 <= at_first_send[0] < 10, at_first_send


def test_a_csv_broken_after_its_first_chunk_is_a_failed_batch(engine, sample, tmp_path, monkeypatch) -> None:  # noqa: F811
    """A line with too many fields far into the file: the batch fails with the reason, and the
    chunks copied before it are rolled back with it."""
    monkeypatch.setattr(pipeline, "UPSERT_CHUNK", 10)
    path = tmp_path / "broken-late.csv"
    hazards_export(sample.iloc[:60], "BL-" + sample.source_id.iloc[:60]).to_csv(path, index=False)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[45] = lines[45].rstrip("\n") + ",extra,fields\n"
    path.write_text("".join(lines), encoding="utf-8")
    r = load_file(engine, path, "hazards", source="broken-late")
    assert r.status == "failed" and "not a readable CSV table" in r.error and "line 46" in r.error, r.error
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM pingan.hazards WHERE source = 'broken-late'"))
        assert n.scalar_one() == 0


def test_a_header_alone_loads_nothing(engine, tmp_path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("事件编号,标题,状态,发现时间,经度,纬度\n", encoding="utf-8")
    r = load_file(engine, path, "hazards", source="header-only")
    assert (r.status, r.read, r.loaded, r.rejected) == ("done", 0, 0, 0), r.error


def test_the_row_numbers_of_chunks_follow_the_file(tmp_path) -> None:
    from etl.readers import open_csv

    path = tmp_path / "rows.csv"
    pd.DataFrame({"编号": [f" K{i} " for i in range(25)], "x": [""] * 25}).to_csv(path, index=False)
    table = open_csv(path)
    parts = list(table.chunks(10))
    assert [len(p.frame) for p in parts] == [10, 10, 5]
    assert np.array_equal(pd.concat([p.row_numbers for p in parts]).to_numpy(), np.arange(2, 27))
    assert list(pd.concat([p.frame for p in parts]).index) == list(range(25))
    assert list(table.column("编号")) == [f"K{i}" for i in range(25)]
    assert pd.concat([p.frame for p in parts])["x"].isna().all()
