"""The direct path: new rows are copied straight into the table, a chunk at a time, and a chunk
the database refuses goes the general way (staging, upsert, halving to the refused rows). Both
ways must leave the same database, counts, rejects and events."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import text

from etl import direct, upsert
from etl.demo.samples import hazards_export
from etl.pipeline import load_file
from tests.etl.test_pipeline import etl_engine, sample  # noqa: F401 - fixtures (a database, 300 hazards)


@pytest.fixture(scope="module")
def engine(etl_engine):  # noqa: F811 - the pipeline tests' database fixture, one of this module's own
    return etl_engine


def files(sample: pd.DataFrame, prefix: str, tmp_path) -> tuple:  # noqa: F811
    """Two exports of one town: the first has 60 records, one refused by a CHECK (closed without
    its time) and one whose 编号 another source already uses; the second sends 40 of them again
    (one with a changed title and state) and 20 new ones."""
    first = hazards_export(sample.iloc[:60], prefix + sample.source_id.iloc[:60]).astype(object)
    closed = first.index[(first["状态"] == "已销号") & (first.index >= 25) & (first.index < 40)][0]
    first.loc[closed, "销号时间"] = ""
    first.loc[45, "事件编号"] = "TAKEN-" + prefix
    second = pd.concat(
        [first.iloc[:40], hazards_export(sample.iloc[60:80], prefix + sample.source_id.iloc[60:80])],
        ignore_index=True,
    ).astype(object)
    second.loc[0, "标题"] = "标题已修改"
    changed = {0}
    found = second.index[(second["状态"] == "已发现") & (second.index < 40)]
    if len(found):  # a state change too, when the sample has a record still at 发现
        i = found[0]
        second.loc[i, ["状态", "交办时间", "整改期限"]] = ["已交办", second.loc[i, "发现时间"], "2099-01-01"]
        changed.add(i)
    paths = tmp_path / f"{prefix}1.csv", tmp_path / f"{prefix}2.csv"
    first.to_csv(paths[0], index=False, encoding="gbk")
    second.to_csv(paths[1], index=False, encoding="gbk")
    return paths, closed, len(changed)


def state(engine, source: str, prefix: str) -> tuple:
    with engine.connect() as conn:
        records = conn.execute(
            text(
                "SELECT replace(source_id, :p, ''), title, state, found_at, closed_at, grid_code, "
                "ST_AsText(geom), src_datum, batch_id IS NOT NULL, "
                "(SELECT array_agg(from_state || '>' || to_state ORDER BY e.id) FROM pingan.hazard_events e "
                " WHERE e.hazard_id = h.id) FROM pingan.hazards h WHERE source = :s ORDER BY 1"
            ),
            {"s": source, "p": prefix},
        ).all()
        rejects = conn.execute(
            text(
                "SELECT b.n_read, b.n_loaded, b.n_updated, b.n_unchanged, b.n_rejected, r.row_number, "
                "r.column_name, r.reason FROM pingan.etl_batches b "
                "LEFT JOIN pingan.etl_rejects r ON r.batch_id = b.id WHERE b.source = :s ORDER BY b.id, 6"
            ),
            {"s": source},
        ).all()
    return [tuple(r) for r in records], [tuple(r) for r in rejects]


def test_direct_and_staged_paths_leave_the_same_database(
    engine, sample, tmp_path, monkeypatch  # noqa: F811
) -> None:
    monkeypatch.setattr(upsert, "UPSERT_CHUNK", 25)  # chunks 0-24, 25-49 (refused), 50-59
    outcomes = {}
    for way, prefix in (("direct", "DA-"), ("staged", "DB-")):
        # the code "TAKEN-<prefix>" belongs to another source's record already
        taken = hazards_export(sample.iloc[90:91], ["TAKEN-" + prefix])
        taken.to_csv(tmp_path / f"taken-{prefix}.csv", index=False)
        other = load_file(engine, tmp_path / f"taken-{prefix}.csv", "hazards", source="other-" + way)
        assert other.loaded == 1
        if way == "staged":
            monkeypatch.setattr(direct, "ok", lambda target: False)
        (one, two), closed, n_changed = files(sample, prefix, tmp_path)
        a = load_file(engine, one, "hazards", source="town-" + way)
        b = load_file(engine, two, "hazards", source="town-" + way)
        c = load_file(engine, two, "hazards", source="town-" + way)  # again: nothing changes
        assert a.status == b.status == c.status == "done", (a.error, b.error, c.error)
        if way == "direct":  # the direct path ran, and the refused chunk went the general way
            assert a.seconds["copy direct"] > 0 and a.seconds["copy stage"] > 0, a.seconds
            assert "copy direct" in b.seconds, b.seconds
        else:
            assert "copy direct" not in a.seconds
        counts = [(r.loaded, r.updated, r.unchanged, r.rejected) for r in (a, b, c)]
        outcomes[way] = (counts, *state(engine, "town-" + way, prefix))
        assert counts[0] == (58, 0, 0, 2) and counts[2] == (0, 0, 59, 1), counts
        reasons = {r[5]: r[7] for r in outcomes[way][2] if r[4] and r[1] == 58}
        assert "状态与时间不符" in reasons[closed + 2] and "编号 already used" in reasons[47], reasons
    assert outcomes["direct"] == outcomes["staged"]
    counts, records, _ = outcomes["direct"]
    assert counts[1] == (20, n_changed, 40 - 1 - n_changed, 1), counts  # new, changed, the same, refused
    changed = [r for r in records if r[1] == "标题已修改"]
    assert len(changed) == 1 and changed[0][9] is not None  # the update has its event
    assert sum(r[9] is not None for r in records) == counts[1][1]


def test_a_known_key_is_never_copied_twice(engine, sample, tmp_path) -> None:  # noqa: F811
    """Rows of a file whose keys are partly in the table: the known ones are upserted (unchanged
    here), the new ones copied; no duplicate key, whatever the order of rows."""
    data = hazards_export(sample.iloc[:30], "KN-" + sample.source_id.iloc[:30])
    first = tmp_path / "kn1.csv"
    data.iloc[::2].to_csv(first, index=False)
    assert load_file(engine, first, "hazards", source="known").loaded == 15
    both = tmp_path / "kn2.csv"
    data.to_csv(both, index=False)
    r = load_file(engine, both, "hazards", source="known")
    assert (r.loaded, r.updated, r.unchanged, r.rejected) == (15, 0, 15, 0), r
    assert r.seconds["copy direct"] > 0 and r.seconds["upsert"] > 0
    with engine.connect() as conn:
        n, distinct = conn.execute(
            text("SELECT count(*), count(DISTINCT source_id) FROM pingan.hazards WHERE source = 'known'")
        ).one()
    assert n == distinct == 30


def test_the_next_chunk_is_located_while_the_database_copies(
    engine, sample, tmp_path, monkeypatch  # noqa: F811
) -> None:
    """The pipeline: while chunk 1 is being copied, chunk 2 is located, without the connection
    (which the copy holds). A loader that located after copying would wait here in vain."""
    import threading

    monkeypatch.setattr(upsert, "UPSERT_CHUNK", 20)
    path = tmp_path / "overlap.csv"
    hazards_export(sample.iloc[:60], "OV-" + sample.source_id.iloc[:60]).to_csv(path, index=False)
    second = threading.Event()
    conns: list = []
    real_locate, real_send = direct.locate, direct.send_binary

    def spy_locate(conn, *args, **kwargs):  # noqa: ANN001, ANN202
        conns.append(conn)
        if len(conns) == 2:
            second.set()
        return real_locate(conn, *args, **kwargs)

    waited: list[bool] = []

    def held_send(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if not waited:  # the first chunk's COPY ends only once the second chunk is located
            waited.append(second.wait(timeout=10))
        return real_send(*args, **kwargs)

    monkeypatch.setattr(direct, "locate", spy_locate)
    monkeypatch.setattr(direct, "send_binary", held_send)
    r = load_file(engine, path, "hazards", source="overlap")
    assert r.status == "done" and (r.loaded, r.rejected) == (60, 0), (r.error, r.reasons)
    assert waited == [True]
    assert conns == [None, None, None]


def test_a_copier_that_fails_fails_the_batch_whole(
    engine, sample, tmp_path, monkeypatch  # noqa: F811
) -> None:
    """An error in the copier thread (not a refusal: the connection, the disk) is the batch's
    error: a failed batch with the reason, no row of it in the table, and no thread left."""
    import threading

    monkeypatch.setattr(upsert, "UPSERT_CHUNK", 20)
    path = tmp_path / "broken.csv"
    hazards_export(sample.iloc[:60], "BR-" + sample.source_id.iloc[:60]).to_csv(path, index=False)
    sends: list[int] = []
    real_send = direct.send_binary

    def failing_send(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        sends.append(1)
        if len(sends) == 2:
            raise OSError("no space left on device")
        return real_send(*args, **kwargs)

    monkeypatch.setattr(direct, "send_binary", failing_send)
    r = load_file(engine, path, "hazards", source="broken")
    assert r.status == "failed" and "no space left on device" in r.error, r
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM pingan.hazards WHERE source = 'broken'")).scalar_one()
    assert n == 0
    assert not [t for t in threading.enumerate() if t.name == "etl-copier"]
