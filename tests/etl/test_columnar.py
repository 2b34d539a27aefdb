"""The CSV reader's Arrow path and the typing of Arrow columns give what the pandas / object path
gives (no database): the fast path is only a faster way to the same values and rejects."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from etl import readers
from etl.profile import DEFAULT_FORMATS, ColumnSpec, _iso_shape, convert

TRICKY_ROWS = [
    ["A1", "  梧田街道  ", "120.6", "2025-03-01 09:00:00", "已交办"],
    ["A2", '"引号", 逗号', "", "2025/3/1", " 已销号\t"],
    ["A3", "两行\n地址", "\u3000", "2025年03月01日", ""],
    ["A4", "", "1,234.5", "", "x"],
    ["A5", "\xa0中\u3000文\xa0", "-0", "20250230", "已交办"],
]


def _write(tmp_path: Path, rows: list[list[str]], header: list[str], encoding: str) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows)
    path = tmp_path / f"t-{encoding}.csv"
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030", "utf-8-sig"])
def test_arrow_reader_reads_what_pandas_reads(tmp_path: Path, encoding: str, monkeypatch) -> None:
    path = _write(tmp_path, TRICKY_ROWS, [" 编号", "地址 ", "经度", "发现时间", "状态"], encoding)
    fast = readers.read_file(path)
    assert fast.text is not None  # the Arrow path took it
    fast_frame, fast_rows = fast.frame, fast.row_numbers.tolist()
    monkeypatch.setattr(readers, "_arrow_csv", lambda data, sep, skip=0: None)
    slow = readers.read_file(path)
    assert slow.text is None
    header = ["编号", "地址", "经度", "发现时间", "状态"]
    assert list(fast_frame.columns) == list(slow.frame.columns) == header
    assert fast_frame.to_numpy().tolist() == slow.frame.to_numpy().tolist()
    assert fast_rows == slow.row_numbers.tolist() == [2, 3, 4, 5, 6]
    assert fast.encoding == slow.encoding
    # rejects take their raw rows from the Arrow text
    monkeypatch.undo()
    again = readers.read_file(path)
    mask = pd.Series([False, True, False, False, True])
    assert again.records(mask.to_numpy()) == slow.frame[mask.to_numpy()].to_dict("records")
    assert again.records([4, 1]) == [slow.frame.iloc[4].to_dict(), slow.frame.iloc[1].to_dict()]


def test_empty_and_blank_cells_quoted_or_not_are_null_both_ways(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "q.csv"
    path.write_bytes('编号,a,b,c\nQ1,"",  ,"\u3000"\nQ2,,"x ",""\n'.encode())
    fast = readers.read_file(path)
    assert fast.text is not None
    assert fast.text.to_pylist() == [{"编号": "Q1", "a": None, "b": None, "c": None},
                                     {"编号": "Q2", "a": None, "b": "x", "c": None}]
    monkeypatch.setattr(readers, "_arrow_csv", lambda data, sep, skip=0: None)
    slow = readers.read_file(path)
    assert fast.frame.to_numpy().tolist() == slow.frame.to_numpy().tolist()
    # a header quoted empty is blank: pandas reads that file
    monkeypatch.undo()
    path.write_bytes('编号,"",c\n1,2,3\n'.encode())
    assert readers.read_file(path).text is None


@pytest.mark.parametrize(
    "header, rows",
    [
        (["编号", "编号", "地址"], [["1", "2", "x"]]),  # pandas renames a duplicate: "编号.1"
        (["编号", "", "地址"], [["1", "2", "x"]]),  # and a blank header: "Unnamed: 1"
        (["编号", "地址"], [["1", "x"], ["2"]]),  # a short row: filled with None
    ],
)
def test_files_the_arrow_path_leaves_to_pandas(tmp_path: Path, header, rows) -> None:
    table = readers.read_file(_write(tmp_path, rows, header, "utf-8"))
    assert table.text is None
    assert len(table.frame) == len(rows)


DATES = [
    "2025-02-30", "2025-13-01", "2025-3-1", "2025-03-01", "2025-03-01 9:05:00", "2025-03-01 09:05",
    "20250301", "2025年3月1日", "2025年03月01日 08:09", "2025-03-01 09:00:00", "2025-03-01x",
    "2025-03-01 24:00:00",
    "2025-03-01 23:59:60", "2025/3/1", "2025.03.01", "2025-03-01T09:00:00", "0001-01-01", "2025-02-29",
    "2024-02-29", "12025-03-01", "2025-03-01 09:00:00.5", "2025-003-01", "+2025-03-01", "25-03-01",
    "2025-03-01T09:00:00+08:00", "2025-03-10 02:30:00", None, "abc", "2025年3月1日 8:09:07",
    "2025/03/01 23:59",
    "1900-01-01", "2262-04-12", "2262-04-11 23:47:16", "9999-12-31", "2025/02/30", "2025年02月30日",
    "2025年02月28日 23:59:59", "2025.02.29", "20240229", "2025/03/01 10:00:00", "2025-04-31 10:00",
]
NUMBERS = [
    "1", "1.5", "-2", "+3", ".5", "5.", "1e3", "1E-2", "1,234", "1,234.5", "inf", "nan", "-inf", "0x10", None,
    "１２", "1_000", "12abc", "1.2.3", "120.591652731234567", "1e400", "-0", "00012", "9007199254740993",
]
SPECS = [
    (DATES, ColumnSpec(aliases=["x"], type="datetime")),
    (DATES + ["03/04/2025", "3/4/2025", "13/04/2025", "2025030109", "04/13/2025"],
     ColumnSpec(aliases=["x"], type="datetime", formats=["%d/%m/%Y", "%m/%d/%Y", "%Y%m%d%H", "%Y-%m-%d"])),
    (NUMBERS, ColumnSpec(aliases=["x"], type="number")),
    (NUMBERS, ColumnSpec(aliases=["x"], type="integer")),
    (["高德", "百度", "GCJ02", None, "x", "wgs84", "高德"], ColumnSpec(aliases=["x"], type="datum")),
    (["已销号", "x", None, "已销号"], ColumnSpec(aliases=["x"], type="enum", values={"已销号": "closed"})),
    (["a、b", "b,a", None, "c"], ColumnSpec(aliases=["x"], type="enum_list", values={"a": "A", "b": "B"})),
    (["x", None, "y"], ColumnSpec(aliases=["x"], type="string")),
]


def _same(a: object, b: object) -> bool:
    if isinstance(a, list) or isinstance(b, list):
        return a == b
    return (pd.isna(a) and pd.isna(b)) or (a == b and type(a) is type(b))


@pytest.mark.parametrize("values, spec", SPECS, ids=[f"{s.type}-{i}" for i, (_, s) in enumerate(SPECS)])
def test_typing_arrow_text_gives_what_typing_objects_gives(values, spec) -> None:
    objects = pd.Series(values, dtype=object)
    arrow = pd.Series(pd.arrays.ArrowExtensionArray(pa.chunked_array([pa.array(values, type=pa.string())])))
    want, want_bad = convert(objects, spec)
    got, got_bad = convert(arrow, spec)
    assert got.dtype == want.dtype
    assert got_bad.tolist() == want_bad.tolist()
    diffs = [(v, x, y) for v, x, y in zip(values, want, got, strict=True) if not _same(x, y)]
    assert diffs == []


def test_dates_no_timestamp_can_hold_are_bad_cells_not_a_failed_file() -> None:
    spec = ColumnSpec(aliases=["x"], type="datetime")
    for text in (pd.Series(["0001-01-01", "2025-03-01", "9999-12-31"], dtype=object),
                 pd.Series(pd.arrays.ArrowExtensionArray(pa.chunked_array([["0001-01-01", "2025-03-01",
                                                                             "9999-12-31"]])))):
        values, bad = convert(text, spec)
        assert bad.tolist() == [True, False, True]
        assert values.iloc[1] == pd.Timestamp("2025-03-01", tz="Asia/Shanghai")


def test_iso_shapes_of_formats() -> None:
    shapes = {fmt: _iso_shape(fmt) for fmt in DEFAULT_FORMATS}
    assert all(shape is not None for shape in shapes.values())  # every built-in format has one
    assert shapes["%Y-%m-%d %H:%M:%S"][1] is None  # ISO 8601 as written
    assert shapes["%Y年%m月%d日 %H:%M"][1] == [(0, 4), (5, 7), (8, 10), (12, 14), (15, 17)]
    for fmt in ("%d/%m/%Y", "%Y-%m-%d %H", "%Y-%j", "%Y-%m-%d %H:%M:%S.%f", "%y-%m-%d", "%Y%%%m%d"):
        assert _iso_shape(fmt) is None


@pytest.mark.parametrize("fmt", ["%Y-%m-%d %H:%M:%S", "%Y年%m月%d日 %H:%M", "%Y/%m/%d"])
def test_cells_shaped_as_the_format_by_numpy_as_by_the_regex(fmt) -> None:
    """A block of cells of the format's byte length is checked byte by byte by numpy; it finds
    what the format's regex finds (digits only where digits go, each literal byte in place)."""
    from etl.profile import _shaped

    pattern, _, template = _iso_shape(fmt)
    good = pd.Timestamp("2025-03-01 09:05:07").strftime(fmt)
    width = len(good.encode())
    odd = [good.replace("0", "O", 1), good.replace("2", "２", 1), good[:-1] + "/", "/" + good[1:],
           good[:4] + "x" + good[5:], good.replace("9", ":", 1), "9" * width, good[::-1]]
    odd = [c for c in odd if len(c.encode()) == width and c != good] + ["٠" * (width // 2)] * (width % 2 == 0)
    cells = pa.array([good, *odd, good.replace("1", "8")])
    regex = pc.fill_null(pc.match_substring_regex(cells, pattern), False).to_numpy(zero_copy_only=False)
    assert (np.diff(np.frombuffer(cells.buffers()[1], dtype=np.int32)) == width).all()  # the block way
    assert _shaped(cells, pattern, template).tolist() == regex.tolist()
    assert regex.tolist() == [True] + [False] * len(odd) + [True]
    # cells of other lengths, or missing: the regex itself
    mixed = pa.array([good, good + " ", None, good[:-1]])
    assert _shaped(mixed, pattern, template).tolist() == [True, False, False, False]
