"""A CSV mapped a chunk at a time inside the locate/copy pipeline (``etl.stream.Stream``):
what needs the whole file (a 编号 repeated in another chunk, the keys the table knows, whether
the gazetteer is needed) must come out as when the file is mapped whole before the copies."""

from __future__ import annotations

from itertools import pairwise

import pandas as pd
import pytest
from sqlalchemy import text

from etl import direct, pipeline, stream, upsert
from etl.demo.samples import hazards_export
from etl.pipeline import load_file
from etl.readers import read_file
from layers import copy as copy_module
from tests.etl.test_pipeline import etl_engine, sample  # noqa: F401 - fixtures (a database, 300 hazards)


@pytest.fixture(scope="module")
def engine(etl_engine):  # noqa: F811 - the pipeline tests' database fixture, one of this module's own
    return etl_engine


def outcome(engine, source: str, prefix: str) -> tuple:
    with engine.connect() as conn:
        records = conn.execute(
            text(
                "SELECT replace(source_id, :p, ''), replace(code, :p, ''), title, state, found_at, "
                "grid_code, ST_AsText(geom), loc_method, geocode_level, description, assigned_to "
                "FROM pingan.hazards "
                "WHERE source = :s ORDER BY 1"
            ),
            {"s": source, "p": prefix},
        ).all()
        rejects = conn.execute(
            text(
                "SELECT b.n_read, b.n_loaded, b.n_updated, b.n_unchanged, b.n_rejected, r.row_number, "
                "r.column_name, replace(r.reason, :p, ''), replace(replace(r.raw::text, :p, ''), :s, '') "
                "FROM pingan.etl_batches b LEFT JOIN pingan.etl_rejects r ON r.batch_id = b.id "
                "WHERE b.source = :s ORDER BY b.id, 6, 8"
            ),
            {"s": source, "p": prefix},
        ).all()
    return [tuple(r) for r in records], [tuple(r) for r in rejects]


def repeated_ids(sample: pd.DataFrame, prefix: str) -> pd.DataFrame:  # noqa: F811
    """70 rows, 编号 repeated across chunks of 20: row 3's 编号 again at 25 and 61 (the last
    wins), row 5's at 45 where that later row has a bad date (so row 5 wins), row 8's at 9 (the
    same chunk), row 12's at 66 where the later row falls outside the district (it wins, and
    is a reject there: the earlier one is still a duplicate, as when the file is mapped whole),
    and a row without 编号 at 30 and 50 (both rejected: it is required); rows 40-47 have only an
    address."""
    data = hazards_export(sample.iloc[:70], prefix + sample.source_id.iloc[:70]).astype(object)
    for earlier, later in ((3, 25), (3, 61), (5, 45), (8, 9), (12, 66)):
        data.loc[later, "事件编号"] = data.loc[earlier, "事件编号"]
    data.loc[[25, 61, 9, 66], "标题"] = ["第二次", "最后一次", "同一块", "区外"]
    data.loc[45, "发现时间"] = "去年夏天"
    data.loc[66, ["经度", "纬度"]] = [121.47, 31.23]  # Shanghai
    data.loc[[30, 50], "事件编号"] = ""
    data.loc[40:47, ["经度", "纬度", "坐标系"]] = None
    # text that only goes to COPY (kept as Arrow text when streamed): empty cells, tabs, quotes
    data["描述"] = [None if i % 3 else f"第{i}条\t\"描述\"\\N" for i in range(70)]
    data["责任单位"] = [None if i % 4 == 1 else ("" if i % 4 == 2 else f"单位{i % 5}") for i in range(70)]
    return data


def test_streamed_and_whole_mapping_leave_the_same_database(engine, sample, tmp_path, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setattr(upsert, "UPSERT_CHUNK", 20)  # chunks 0-19, 20-39, 40-59, 60-69
    mapped_rows: list[int] = []
    real_apply = pipeline.apply_profile  # etl.profile's, imported by both modules that map

    as_read: list[tuple] = []

    def spy_apply(raw, profile, **kw):  # noqa: ANN001, ANN003, ANN202
        mapped_rows.append(len(raw))
        mapped = real_apply(raw, profile, **kw)
        held = (n for n, c in mapped.frame.items() if copy_module.arrow_text(c) is not None)
        as_read.append(tuple(sorted(held)))
        return mapped

    monkeypatch.setattr(pipeline, "apply_profile", spy_apply)  # a file mapped whole
    monkeypatch.setattr(stream, "apply_profile", spy_apply)  # a chunk at a time
    loading: list[int] = []

    def progress(stage: str, done: int | None = None, total: int | None = None) -> None:
        if stage == "loading":
            loading.append(done)

    outcomes = {}
    for way, prefix in (("stream", "SA-"), ("whole", "SB-")):
        if way == "whole":
            monkeypatch.setattr(pipeline, "streams", lambda *_a: False)
        path = tmp_path / f"{way}.csv"
        data = repeated_ids(sample, prefix)
        data.to_csv(path, index=False, encoding="gbk")
        mapped_rows.clear()
        as_read.clear()
        loading.clear()
        first = load_file(engine, path, "hazards", source="stream-" + way, progress=progress)
        assert first.status == "done", first.error
        # copied in chunks of 20 both ways (streamed: etl.stream.Stream; mapped whole: chunked)
        assert len(loading) > 3 and max(b - a for a, b in pairwise(loading)) <= 20, loading
        assert mapped_rows == ([20, 20, 20, 10] if way == "stream" else [70]), mapped_rows
        # streamed, the text only copied is not made Python strings; mapped whole, all is
        read_as = ("assigned_to", "description", "title") if way == "stream" else ()
        assert set(as_read) == {read_as}, as_read
        # again, with one title changed and ten rows more: an update, its event, new rows
        more = pd.concat([data, hazards_export(sample.iloc[70:80], prefix + sample.source_id.iloc[70:80])],
                         ignore_index=True).astype(object)
        more.loc[0, "标题"] = "标题已修改"
        more.to_csv(path, index=False, encoding="gbk")
        second = load_file(engine, path, "hazards", source="stream-" + way)
        assert second.status == "done", second.error
        counts = [(r.loaded, r.updated, r.unchanged, r.rejected, r.reasons) for r in (first, second)]
        outcomes[way] = (counts, *outcome(engine, "stream-" + way, prefix))
    assert outcomes["stream"] == outcomes["whole"]
    counts, records, rejects = outcomes["stream"]
    # 70 rows: 4 earlier duplicates, 2 without 编号, 1 bad date, 1 outside the district
    assert counts[0][:4] == (62, 0, 0, 8), counts
    assert counts[1][:4] == (10, 1, 61, 8), counts
    titles = {r[0]: r[2] for r in records}
    ids = sample.source_id
    assert titles[ids.iloc[3]] == "最后一次" and titles[ids.iloc[8]] == "同一块"
    assert titles[ids.iloc[5]] == sample.title.iloc[5]  # its later row had a bad date
    assert ids.iloc[12] not in titles  # its last row lies outside the district
    first_rejects = {r[5]: r[7] for r in rejects if r[1] == 62}
    dup = "duplicate 编号 in this file"
    assert all(dup in first_rejects[n + 2] for n in (3, 25, 8, 12)), first_rejects
    assert "outside the district" in first_rejects[66 + 2] and "发现时间" in first_rejects[45 + 2]
    assert sum(r[7] == "geocoded" for r in records) == 7  # rows 40-47 but 45
    described = {r[0]: (r[9], r[10]) for r in records}
    assert described[ids.iloc[15]] == ('第15条\t"描述"\\N', "单位0")
    assert described[ids.iloc[6]] == ('第6条\t"描述"\\N', None)  # an empty cell: NULL
    assert described[ids.iloc[7]] == (None, "单位2") and described[ids.iloc[10]] == (None, None)


def test_the_file_is_mapped_while_the_chunks_before_are_copied(engine, sample, tmp_path, monkeypatch) -> None:  # noqa: F811
    """The third chunk is mapped only once the first is being copied: a loader that mapped the
    whole file before its first COPY would wait here in vain."""
    import threading

    monkeypatch.setattr(upsert, "UPSERT_CHUNK", 20)
    path = tmp_path / "overlap.csv"
    hazards_export(sample.iloc[:60], "SO-" + sample.source_id.iloc[:60]).to_csv(path, index=False)
    copying = threading.Event()
    real_apply, real_send = stream.apply_profile, direct.send_binary
    waited: list[bool] = []

    def spy_apply(raw, profile, **kw):  # noqa: ANN001, ANN003, ANN202
        if raw.row_numbers.iloc[0] == 2 + 40:  # the third chunk: rows 40-59 (the header is row 1)
            waited.append(copying.wait(timeout=10))
        return real_apply(raw, profile, **kw)

    def spy_send(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        copying.set()
        return real_send(*args, **kwargs)

    monkeypatch.setattr(stream, "apply_profile", spy_apply)  # the chunks are mapped by etl.stream
    monkeypatch.setattr(direct, "send_binary", spy_send)
    r = load_file(engine, path, "hazards", source="stream-overlap")
    assert r.status == "done" and (r.loaded, r.rejected) == (60, 0), (r.error, r.reasons)
    assert waited == [True]


def test_headers_that_match_no_profile_fail_before_the_batch(engine, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(upsert, "UPSERT_CHUNK", 2)
    path = tmp_path / "odd.csv"
    pd.DataFrame({"名称": ["a", "b", "c"], "备注": ["x", "y", "z"]}).to_csv(path, index=False)
    r = load_file(engine, path, "hazards", source="stream-odd")
    assert r.status == "failed" and "match no profile" in r.error, r
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM pingan.etl_rejects r JOIN pingan.etl_batches b "
                              "ON b.id = r.batch_id WHERE b.source = 'stream-odd'")).scalar_one()
    assert n == 0


@pytest.mark.parametrize("address_only", [False, True])
def test_the_gazetteer_is_read_only_when_a_row_may_need_it(
    engine, sample, tmp_path, monkeypatch, address_only  # noqa: F811
) -> None:
    from etl import geocode

    monkeypatch.setattr(upsert, "UPSERT_CHUNK", 20)
    reads: list[int] = []
    real = geocode.load_gazetteer

    def spy(conn):  # noqa: ANN001, ANN202
        reads.append(1)
        return real(conn)

    monkeypatch.setattr(geocode, "load_gazetteer", spy)
    prefix = f"SG{int(address_only)}-"
    data = hazards_export(sample.iloc[:50], prefix + sample.source_id.iloc[:50]).astype(object)
    if address_only:  # one row in the last chunk has only its address
        data.loc[47, ["经度", "纬度"]] = None
    path = tmp_path / "g.csv"
    data.to_csv(path, index=False)
    r = load_file(engine, path, "hazards", source=f"stream-g{int(address_only)}")
    assert (r.status, r.loaded) == ("done", 50), (r.error, r.reasons)
    assert len(reads) == int(address_only)


def test_raw_table_slices(tmp_path) -> None:
    path = tmp_path / "s.csv"
    pd.DataFrame({"a": ["1", "2", "3", "4", "5"], "b": ["x", "", "z", "w", "v"]}).to_csv(path, index=False)
    raw = read_file(path)
    assert raw.text is not None  # Arrow text
    part = raw.slice(1, 3)
    assert len(part) == 3 and list(part.row_numbers) == [3, 4, 5]
    assert list(part.row_numbers.index) == [0, 1, 2]
    assert part.column("b").isna().tolist() == [True, False, False]
    assert part.records([0, 2]) == [{"a": "2", "b": None}, {"a": "4", "b": "w"}]
    whole = raw.frame  # the frame form slices alike
    assert raw.slice(1, 3).records([0, 2]) == [{"a": "2", "b": None}, {"a": "4", "b": "w"}]
    assert len(whole) == 5 and raw.slice(4, 10).row_numbers.tolist() == [6]


# -- a CSV read as a stream (etl.readers.CsvStream, etl.stream.ReadStream) ------------------------
def streamed_or_whole(engine, monkeypatch, path, source: str, way: str) -> tuple:  # noqa: ANN001
    """Load ``path`` read as a stream (``way`` "stream": chunks of 50 rows, Arrow's blocks and
    the decoding child's of 1,000 bytes, so rows straddle all three) or whole; returns the
    result, whether a stream was read and whether it gave way, and :func:`outcome`."""
    from etl import encoding, readers

    monkeypatch.setattr(upsert, "UPSERT_CHUNK", 50)
    monkeypatch.setattr(readers, "STREAM_BLOCK", 1000)
    monkeypatch.setattr(encoding, "PIPE_BLOCK", 1000)
    monkeypatch.setattr(readers, "STREAM_MIN_BYTES", 0 if way == "stream" else 1 << 40)
    tries: list[bool] = []
    real = pipeline._load

    def spy(*args, read_stream: bool, **kwargs):  # noqa: ANN002, ANN003, ANN202
        result = real(*args, read_stream=read_stream, **kwargs)
        if read_stream:
            tries.append(result is None)  # True: it gave way (rolled back) and the file is read whole
        return result

    monkeypatch.setattr(pipeline, "_load", spy)
    r = load_file(engine, path, "hazards", source=source)
    monkeypatch.setattr(pipeline, "_load", real)
    return r, tries, outcome(engine, source, source.upper() + "-")


def big_export(sample: pd.DataFrame, prefix: str) -> pd.DataFrame:  # noqa: F811
    """300 rows (over 64 KB: the stream decodes the first 64 KB itself, a child the rest):
    a bad date at row 145 and a point outside the district at 266 (rejects after the first
    chunk), an 描述 of three lines across rows 48-50, only addresses from row 140 (the gazetteer
    read late), an empty row after row 180."""
    data = hazards_export(sample.iloc[:300], prefix + sample.source_id.iloc[:300]).astype(object)
    data["描述"] = [f"第{i}条说明，" * 8 for i in range(300)]
    data.loc[48:50, "描述"] = "一行\n两行，\"引号\"\n三行"
    data.loc[145, "发现时间"] = "去年夏天"
    data.loc[266, ["经度", "纬度"]] = [121.47, 31.23]  # Shanghai
    data.loc[140:150, ["经度", "纬度", "坐标系"]] = None
    empty = pd.DataFrame([[None] * data.shape[1]], columns=data.columns)
    return pd.concat([data.iloc[:181], empty, data.iloc[181:]], ignore_index=True)


def write(path, data: pd.DataFrame, title: str = "瓯海区风险隐患台账（测试）\n") -> None:  # noqa: ANN001
    path.write_bytes(title.encode("gbk") + data.to_csv(index=False, lineterminator="\n").encode("gbk"))


def test_a_file_read_as_a_stream_loads_as_when_read_whole(engine, sample, tmp_path, monkeypatch) -> None:  # noqa: F811
    """The chunks of a stream (rows that straddle Arrow's blocks, the child's blocks and the
    chunks; a title row; an empty row; rejects after the first chunk with their file rows; the
    gazetteer first needed in a later chunk) load what the file read whole loads."""
    outcomes = {}
    for way in ("stream", "whole"):
        path = tmp_path / f"{way}.csv"
        write(path, big_export(sample, f"RS{way}-".upper()))
        r, tries, got = streamed_or_whole(engine, monkeypatch, path, f"rs{way}", way)
        assert r.status == "done", r.error
        assert tries == ([False] if way == "stream" else []), tries  # streamed, and it held
        outcomes[way] = ((r.read, r.loaded, r.rejected, r.reasons, r.warnings), *got)
    assert outcomes["stream"] == outcomes["whole"]
    (read, loaded, rejected, _, warnings), records, rejects = outcomes["stream"]
    assert (read, loaded, rejected) == (300, 298, 2)
    assert {r[5] for r in rejects} == {145 + 3, 266 + 4}  # a title row; the empty row after 180
    assert any("empty row(s) skipped (rows 184)" in w for w in warnings), warnings
    assert any("above the header" in w for w in warnings), warnings
    assert sum(r[7] == "geocoded" for r in records) == 10  # rows 140-150 but 145
    described = {r[0]: r[9] for r in records}
    assert described[sample.source_id.iloc[49]] == "一行\n两行，\"引号\"\n三行"


ODD = ["repeated", "bad byte", "utf-8 line", "ragged", "cut short", "known source", "known in the batch"]


@pytest.mark.parametrize("odd", ODD)
def test_a_stream_that_meets_what_the_whole_file_decides_gives_way(
    engine, sample, tmp_path, monkeypatch, odd  # noqa: F811
) -> None:
    """What a stream cannot decide on its chunks (a 编号 again in a later chunk; a later block
    that is not GBK: a byte of neither encoding, a line in UTF-8; a row of another width; a file
    cut short; a source the table holds, found before the stream begins or in its batch) rolls
    its batch back, with the chunks it has copied, and the file is loaded whole: the same rows,
    rejects, warnings or error, and one batch."""
    outcomes = {}
    for way in ("stream", "whole"):
        folder = tmp_path / way
        folder.mkdir()
        path = folder / "odd.csv"  # one name: errors name the file
        prefix, source = f"G{ODD.index(odd)}{way}-".upper(), f"g{ODD.index(odd)}{way}"  # a source of its own
        data = big_export(sample, prefix)
        if odd == "repeated":
            data.loc[250, "事件编号"] = data.loc[3, "事件编号"]
        if odd.startswith("known"):
            data.iloc[:60].to_csv(path, index=False)
            assert load_file(engine, path, "hazards", source=source).status == "done"
        if odd == "known in the batch" and way == "stream":  # as if its rows came after the look before
            monkeypatch.setattr(pipeline, "_streamable", lambda *_a: True)
        text_ = data.to_csv(index=False, lineterminator="\n").split("\n")
        lines = [line.encode("gbk") for line in text_]
        if odd == "bad byte":
            lines[280] = lines[280].replace("说明".encode("gbk"), b"\xff\xfe", 1)
        if odd == "utf-8 line":
            lines[280] = text_[280].encode("utf-8")
        if odd == "ragged":
            lines[270] += b",one more"
        content = b"\n".join(lines)
        if odd == "cut short":  # in the middle of a row near the end
            content = content[: content.rfind(b",", 0, len(content) - 200)]
        path.write_bytes(content)
        r, tries, got = streamed_or_whole(engine, monkeypatch, path, source, way)
        assert tries == ([True] if way == "stream" and odd != "known source" else []), tries
        monkeypatch.undo()
        outcomes[way] = ((r.status, r.error, r.read, r.loaded, r.updated, r.rejected, r.warnings), *got)
    assert outcomes["stream"] == outcomes["whole"]
    (status, error, _, loaded, _, _, warnings), _, rejects = outcomes["stream"]
    assert len({r[:5] for r in rejects}) == 1 + odd.startswith("known")  # one batch (and the first)
    expected = {"repeated": "done", "bad byte": "failed", "utf-8 line": "done", "ragged": "failed",
                "cut short": "done", "known source": "done", "known in the batch": "done"}
    assert status == expected[odd], error
    if odd == "utf-8 line":
        assert any("mixed encodings" in w for w in warnings), warnings
