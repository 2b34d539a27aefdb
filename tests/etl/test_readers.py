"""Readers and archive checks on odd files (no database)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import Point

from etl.readers import ReaderError, decode, read_file, to_utf8
from etl.safety import UnsafeFileError, check_zip


def test_decode_detects_encodings() -> None:
    text = "事件编号,地址\n1,瓯海区梧田街道\n"
    assert decode(text.encode("utf-8"))[1] == "utf-8"
    assert decode(b"\xef\xbb\xbf" + text.encode("utf-8"))[1] == "utf-8-sig"
    assert decode(text.encode("gbk")) == (text, "gb18030", ())
    mixed = "编号,地址\n".encode() + "1,梧田\n".encode("gbk") + "2,娄桥\n".encode()
    decoded, used, warnings = decode(mixed)
    assert used == "mixed" and decoded.splitlines()[1:] == ["1,梧田", "2,娄桥"]
    assert "mixed encodings" in warnings[0]
    with pytest.raises(ReaderError, match="cannot decode as utf-8"):
        decode(text.encode("gbk"), "utf-8")


def test_utf8_judged_on_the_first_64_kb_only_when_they_rule_it_out() -> None:
    """A GBK file is ruled out as UTF-8 on its first 64 KB; a UTF-8 character cut there does
    not rule it out, and a file whose first 64 KB are ASCII is decoded whole as before."""
    head = "编号,地址\n1,"
    cut = head + "x" * (65536 - 2 - len(head.encode())) + "梧田街道\n"  # 梧: bytes 65,534-65,536
    data = cut.encode()
    assert data[65534:65537] == "梧".encode()
    assert decode(data) == (cut, "utf-8", ())
    assert to_utf8(data) == (data, "utf-8", ())
    ascii_then_gbk = "a,b\n" + "1,x\n" * 20000 + "2,梧田\n"
    assert decode(ascii_then_gbk.encode("gbk")) == (ascii_then_gbk, "gb18030", ())
    assert to_utf8(ascii_then_gbk.encode("gbk")) == (ascii_then_gbk.encode(), "gb18030", ())
    ascii_then_utf8 = "a,b\n" + "1,x\n" * 20000 + "2,梧田\n"
    assert to_utf8(ascii_then_utf8.encode()) == (ascii_then_utf8.encode(), "utf-8", ())


def test_header_only_and_empty(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text("事件编号,地址\n", encoding="utf-8")
    assert len(read_file(tmp_path / "h.csv").frame) == 0
    (tmp_path / "e.csv").write_bytes(b"")
    with pytest.raises(ReaderError, match="empty"):
        read_file(tmp_path / "e.csv")
    (tmp_path / "x.doc").write_text("x")
    with pytest.raises(ReaderError, match="unsupported file type"):
        read_file(tmp_path / "x.doc")


def _zip_shapefile(tmp_path: Path, *, cpg: bool, crs: int = 4326, encoding: str = "GBK") -> Path:
    gdf = gpd.GeoDataFrame({"编号": ["a1", "a2"], "名称": ["梧田第一小学", "茶山农贸市场"]},
                           geometry=[Point(120.66, 27.95), Point(120.70, 27.93)], crs=4326).to_crs(crs)
    shp = tmp_path / "shp" / "sites.shp"
    shp.parent.mkdir()
    gdf.to_file(shp, encoding=encoding)
    out = tmp_path / "sites.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in shp.parent.iterdir():
            if f.suffix == ".cpg" and not cpg:
                continue
            zf.write(f, f.name)
    return out


@pytest.mark.parametrize("encoding", ["GBK", "UTF-8"])
@pytest.mark.parametrize("cpg", [True, False])
def test_zipped_shapefile_gbk_or_utf8_with_and_without_cpg(tmp_path: Path, cpg: bool, encoding: str) -> None:
    """The .cpg says the .dbf's encoding; without one, its text tells GBK from UTF-8."""
    table = read_file(_zip_shapefile(tmp_path, cpg=cpg, encoding=encoding))
    assert list(table.frame["名称"]) == ["梧田第一小学", "茶山农贸市场"]
    assert table.crs == "EPSG:4326"


def test_zipped_shapefile_projected_prj(tmp_path: Path) -> None:
    table = read_file(_zip_shapefile(tmp_path, cpg=True, crs=4549))  # CGCS2000 / 3-degree GK CM 120E
    assert table.crs == "EPSG:4549"
    assert 500_000 < table.geometry.x.iloc[0] < 600_000


def test_zip_without_shp_and_traversal_and_bomb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    z = tmp_path / "noshp.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("readme.txt", "x")
    with pytest.raises(ReaderError, match="no .shp"):
        read_file(z)
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../etc/passwd.shp", "x")
    with pytest.raises(UnsafeFileError, match="outside the archive"):
        check_zip(evil)
    with pytest.raises(ReaderError, match="refused"):
        read_file(evil)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.shp", b"\0" * 50_000_000)  # ~1000x
    assert check_zip(bomb) == ["a.shp"]  # 50 MB: what it inflates to is harmless, whatever the ratio
    from etl import safety

    monkeypatch.setattr(safety, "RATIO_FROM", 40_000_000)  # as if it were past the size that matters
    with pytest.raises(UnsafeFileError, match="compression bomb"):
        check_zip(bomb)
    monkeypatch.undo()
    trunc = tmp_path / "trunc.zip"
    trunc.write_bytes(bomb.read_bytes()[:100])
    with pytest.raises(ReaderError, match="not a valid zip"):
        read_file(trunc)


ODD_ROWS = [  # (cells as written in the file, what the reader must give)
    (["A1", "梧田街道", "120.1", "2025-03-01 09:00"], ["A1", "梧田街道", "120.1", "2025-03-01 09:00"]),
    (["A2", " 娄桥街道 ", "", "2025/03/01"], ["A2", "娄桥街道", None, "2025/03/01"]),
    (["A3", "\u3000茶山街道\u3000", " 27.9", "2025年3月1日"], ["A3", "茶山街道", "27.9", "2025年3月1日"]),
    (["A4", '"引号, 逗号"', "\t", "20250301"], ["A4", '"引号, 逗号"', None, "20250301"]),
    (["A5", "两行\n地址", "", ""], ["A5", "两行\n地址", None, None]),
]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "mixed"])
def test_csv_cells_are_stripped_and_empty_cells_are_none(tmp_path: Path, encoding: str) -> None:
    """Blanks (also the full-width 　 and tabs) around a cell go, inside a cell they stay; an
    empty or blank cell is None; quoted cells keep their commas, quotes and line breaks; short
    rows are filled with None; the same in every encoding the reader detects."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["编号", "地址", "经度", "发现时间"])
    w.writerows(cells for cells, _ in ODD_ROWS)
    text = buf.getvalue() + "A6,短行\r\n"
    if encoding == "mixed":  # an export edited in two programs: some lines GBK, some UTF-8
        lines = text.splitlines(keepends=True)
        data = b"".join(ln.encode("gbk" if i % 2 else "utf-8") for i, ln in enumerate(lines))
    else:
        data = text.encode(encoding)
    path = tmp_path / "odd.csv"
    path.write_bytes(data)
    table = read_file(path)
    assert list(table.frame.columns) == ["编号", "地址", "经度", "发现时间"]
    want = [expected for _, expected in ODD_ROWS] + [["A6", "短行", None, None]]
    assert table.frame.to_numpy().tolist() == want
    assert table.row_numbers.tolist() == [2, 3, 4, 5, 6, 7]  # rows as a spreadsheet counts them
    assert (table.warnings != ()) == (encoding == "mixed")


def test_cleaning_strips_and_empties() -> None:
    """Cells lose their surrounding blanks (U+3000 too); empty cells become None."""
    import pandas as pd

    from etl.readers import _clean

    cells = ["", " a", "b ", "c", "\u3000", "d e", "", "f\t", "中文", " 中 "]
    for column in (cells, [c for c in cells if c.strip()], ["x"] * 5, [""] * 3):
        assert _clean(pd.Series(column, dtype=object)).tolist() == [c.strip() or None for c in column]
    assert _clean(pd.Series([None, " x", float("nan")], dtype=object)).tolist() == [None, "x", None]


@pytest.mark.parametrize(
    "text",
    [
        "编号,地址\n" + "".join(f"{i},梧田街道{i}号\n" for i in range(50)),  # GBK lines on both sides
        "编号,地址\n1,梧田\n2,娄桥",  # the last line without its line end
        "编号,地址\n" + "1,x\n" * 40 + "2,梧田\r\n3,𠀀瓯海\r\n",  # CRLF; a 4-byte GB18030 character
        "a,b\n" + "1,x\n" * 40,  # ASCII only (a UTF-8 file: never reaches the halves)
    ],
)
def test_gbk_decoded_in_two_halves_as_whole(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    """A large GBK file is decoded half in a forked child; the result is what one process makes."""
    from etl import encoding

    data = text.encode("gb18030")
    whole = to_utf8(data)
    monkeypatch.setattr(encoding, "PARALLEL_MIN_BYTES", 0)
    assert to_utf8(data) == whole == (text.encode(), "gb18030" if not text.isascii() else "utf-8", ())
    forks = []
    monkeypatch.setattr(encoding.os, "fork", lambda: forks.append(1) or _fork())
    assert encoding.gb18030_utf8_halves(data) == text.encode()
    assert forks == [1]


_fork = __import__("os").fork


@pytest.mark.parametrize("where", ["first", "second"])
def test_gbk_halves_not_plain_gb18030(monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    """A UTF-8 line or a byte GB18030 lacks in either half: None from the halves, and the file is
    read the general way (mixed encodings line by line, or an error), as with one process."""
    from etl import encoding

    gbk = "".join(f"{i},梧田街道\n" for i in range(40)).encode("gb18030")
    for odd, expect in ((b"9,\xe5\xa8\x84\xe6\xa1\xa5\n", "mixed"), (b"9,\x81\n", None)):  # 娄桥 in UTF-8
        data = gbk + odd + gbk if where == "first" else gbk + gbk + gbk + odd
        serial = encoding.gb18030_utf8(data)
        monkeypatch.setattr(encoding, "PARALLEL_MIN_BYTES", 0)
        assert serial is None and encoding.gb18030_utf8_halves(data) is None
        if expect is None:
            with pytest.raises(ReaderError, match="neither UTF-8 nor GBK"):
                to_utf8(data)
        else:
            assert to_utf8(data)[1] == "mixed"
        monkeypatch.setattr(encoding, "PARALLEL_MIN_BYTES", 16 * 1024**2)


def test_gbk_halves_child_status_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    """A child reaped by someone else (a process that ignores SIGCHLD): its half is not trusted,
    and the file is decoded the general way, to the same text."""
    from etl import encoding

    text = "编号,地址\n" + "".join(f"{i},梧田街道{i}号\n" for i in range(50))
    data = text.encode("gb18030")
    monkeypatch.setattr(encoding, "PARALLEL_MIN_BYTES", 0)
    real_wait = encoding.os.waitpid

    def reaped(pid: int, options: int) -> tuple[int, int]:
        real_wait(pid, options)
        raise ChildProcessError

    monkeypatch.setattr(encoding.os, "waitpid", reaped)
    assert encoding.gb18030_utf8_halves(data) is None
    assert to_utf8(data) == (text.encode(), "gb18030", ())


def test_gbk_halves_child_that_never_ends_is_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A child that does not finish (stuck after the fork) is killed after its grace time and the
    file is decoded in one process, to the same text: the load never hangs on it."""
    import time

    from etl import encoding

    text = "编号,地址\n" + "".join(f"{i},梧田街道{i}号\n" for i in range(50))
    data = text.encode("gb18030")
    real = encoding.gb18030_utf8
    # only the child decodes from a start past 0: it sleeps instead, as a stuck child would
    monkeypatch.setattr(encoding, "gb18030_utf8",
                        lambda d, start=0, stop=None: time.sleep(30) if start else real(d, start, stop))
    monkeypatch.setattr(encoding, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(encoding, "CHILD_GRACE_S", 0.5)
    children: list[int] = []
    monkeypatch.setattr(encoding.os, "fork", lambda: children.append(_fork()) or children[-1])
    began = time.monotonic()
    assert encoding.gb18030_utf8_halves(data) is None
    assert 0.5 <= time.monotonic() - began < 10
    with pytest.raises(ProcessLookupError):  # killed and reaped: no process, no zombie
        __import__("os").kill(children[0], 0)
    assert to_utf8(data) == (text.encode(), "gb18030", ())


HEADER = ["事件编号", "标题", "状态", "发现时间"]


def _xlsx(path: Path, rows: list[list]) -> Path:
    import openpyxl

    wb = openpyxl.Workbook()
    for row in rows:
        wb.active.append(row)
    wb.save(path)
    return path


def test_xlsx_title_rows_above_the_header_and_blank_rows_keep_the_sheet_numbers(tmp_path: Path) -> None:
    """A 台账 export: a title (one merged cell), a line of who filled it in, a blank row, then
    the header; blank rows among the records. The header is found, and each record keeps the
    row number Excel shows, which is what a clerk looks for in a reject."""
    path = _xlsx(tmp_path / "t.xlsx", [
        ["瓯海区风险隐患台账"],                      # row 1
        ["填报单位：梧田街道", None, "日期：2025-03"],  # row 2
        [],                                          # row 3
        HEADER,                                      # row 4
        ["H1", "a", "已发现", "2025-03-01"],         # row 5
        [],                                          # row 6
        [None, None, None, None],                    # row 7
        ["H2", "b", "丢失", "2025-03-01"],           # row 8
    ])
    table = read_file(path)
    assert table.columns == HEADER
    assert table.frame["事件编号"].tolist() == ["H1", "H2"]
    assert table.row_numbers.tolist() == [5, 8]
    assert any("瓯海区风险隐患台账" in w and "above the header" in w for w in table.warnings)
    assert any("2 empty row(s) skipped (rows 6, 7)" in w for w in table.warnings)


@pytest.mark.parametrize("parser", ["arrow", "pandas"])
@pytest.mark.parametrize("blank", ["", ",,,"], ids=["blank line", "separators only"])
def test_csv_title_rows_and_empty_rows_keep_the_file_numbers(
    tmp_path: Path, blank: str, parser: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same in a CSV, by either parser: numbers as a spreadsheet shows the file's rows."""
    from etl import readers

    if parser == "pandas":
        monkeypatch.setattr(readers, "_arrow_csv", lambda data, sep, skip=0: None)
    lines = ["瓯海区风险隐患台账,,,", ",".join(HEADER), "H1,a,已发现,2025-03-01", blank, blank,
             '"H2","多行\n描述",丢失,2025-03-01', "H3,c,已发现,2025-03-02", ""]
    path = tmp_path / "t.csv"
    path.write_bytes("\n".join(lines).encode("gbk"))
    table = read_file(path)
    assert (table.text is not None) == (parser == "arrow")
    assert table.columns == HEADER
    assert table.frame["事件编号"].tolist() == ["H1", "H2", "H3"]
    assert table.row_numbers.tolist() == [3, 6, 7]
    assert any("above the header" in w for w in table.warnings)
    assert any("2 empty row(s) skipped (rows 4, 5)" in w for w in table.warnings)


def test_one_column_and_plain_tables_take_their_first_row_as_header(tmp_path: Path) -> None:
    """No title to skip: a table of one column, and a header with some blank names."""
    one = tmp_path / "one.csv"
    one.write_text("地址\n梧田街道1号\n娄桥街道2号\n", encoding="utf-8")
    table = read_file(one)
    assert table.columns == ["地址"] and table.row_numbers.tolist() == [2, 3]
    assert table.warnings == ()
    x = _xlsx(tmp_path / "x.xlsx", [HEADER, ["H1", "a", None, None], ["H2", None, None, None]])
    table = read_file(x)
    assert table.columns == HEADER and table.row_numbers.tolist() == [2, 3]


def test_xlsx_is_checked_as_a_zip_before_it_is_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from etl import safety

    path = _xlsx(tmp_path / "t.xlsx", [HEADER, ["H1", "a", "已发现", "2025-03-01"]])
    monkeypatch.setattr(safety, "RATIO_FROM", 0)  # every member counts: the sheet XML compresses >1x
    monkeypatch.setattr(safety, "MAX_RATIO", 1)
    with pytest.raises(ReaderError, match="refused: .*compression bomb"):
        read_file(path)


def test_a_line_of_garbage_read_as_a_header_is_cut_in_the_error(tmp_path: Path) -> None:
    """A file of one long line (100 KB of noise) matches no profile: the error names its
    headers cut short, not 100 KB of them."""
    from etl.profile import ProfileError, builtin, match_columns

    path = tmp_path / "noise.csv"
    path.write_text("x" * 100_000 + ",y\n1,2\n", encoding="utf-8")
    with pytest.raises(ProfileError) as caught:
        match_columns(builtin("hazards"), read_file(path).columns)
    message = str(caught.value)
    assert len(message) < 1_000 and "(100,000 characters)" in message and "match no profile" in message


@pytest.mark.parametrize("encoding", ["gbk", "utf-8"])
def test_a_csv_read_as_a_stream_gives_the_table_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encoding: str
) -> None:
    """The chunks of :class:`etl.readers.CsvStream`, joined, are :func:`read_csv`'s table: the
    same cells (trimmed, null for empty), row numbers (a title row above the header, empty rows
    dropped after they were numbered, cells of three lines that straddle Arrow's blocks and the
    decoding child's), warnings and raw records; chunks of the size asked, the last one shorter."""
    import numpy as np
    import pyarrow as pa

    from etl import encoding as decoding
    from etl import readers

    rows = [f'B{i:05d}, 梧田街道{i}号 ,"第{i}行\n第二行\n𠀀第三行"' for i in range(1600)]
    rows[::7] = [f"B{i:05d},,　" for i in range(0, 1600, 7)]  # empty cells, one of a blank (U+3000)
    for i in range(37, 1600, 211):
        rows[i] = ",,"
    text = "瓯海区风险隐患台账\n编号,地址,说明\n" + "\n".join(rows) + "\n"
    path = tmp_path / "s.csv"
    path.write_bytes(text.encode("gb18030" if encoding == "gbk" else "utf-8"))
    assert path.stat().st_size > 65536  # past the 64 KB the stream decodes itself
    whole = read_file(path)
    monkeypatch.setattr(readers, "STREAM_MIN_BYTES", 0)
    monkeypatch.setattr(readers, "STREAM_BLOCK", 700)
    monkeypatch.setattr(decoding, "PIPE_BLOCK", 900)
    stream = readers.stream_csv(path, path.read_bytes(), 100)
    try:
        chunks = list(iter(stream.next_chunk, None))
    finally:
        stream.close()
    assert [len(c) for c in chunks] == [100] * 15 + [len(whole) - 1500]
    assert pa.concat_tables([c.text for c in chunks]).equals(whole.text)
    numbers = np.concatenate([c.row_numbers.to_numpy() for c in chunks])
    assert numbers.tolist() == whole.row_numbers.tolist() and numbers[0] == 3
    assert (stream.encoding, stream.warnings, len(stream)) == (whole.encoding, whole.warnings, len(whole))
    assert "empty row(s) skipped" in stream.warnings[-1]
    picks = [0, 99, 100, 777, len(whole) - 1]
    assert stream.records(np.array(picks)) == whole.records(np.array(picks))


def test_gbk_decoded_by_a_child_into_a_pipe_as_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """:class:`etl.encoding.Gb18030Pipe` writes what one process decodes (blocks cut at line
    ends: CRLF, 2- and 4-byte characters on both sides of each cut); a later block with a byte
    GB18030 lacks, or a line in UTF-8, ends the stream there and the child says it failed; a
    child still decoding is killed and reaped by close()."""
    import os

    from etl import encoding

    monkeypatch.setattr(encoding, "PIPE_BLOCK", 1000)
    text = "编号,地址\r\n" + "".join(f"{i},梧田街道𠀀{i}号\r\n" for i in range(400)) + "9,娄桥"
    data = text.encode("gb18030")
    pipe = encoding.Gb18030Pipe(data)
    assert pipe.stream.read() == text.encode() and pipe.finished()
    pipe.close()
    for odd in (b"9,\x81\r\n", "9,娄桥\r\n".encode()):
        pipe = encoding.Gb18030Pipe(data + b"\r\n" + odd + data)
        out = pipe.stream.read()
        assert not pipe.finished() and text.encode().startswith(out) and len(out) > 1000
        pipe.close()
    monkeypatch.setattr(encoding, "PIPE_BLOCK", 1 << 20)
    pipe = encoding.Gb18030Pipe(data * 2000)  # 20 MB: still decoding (the pipe full) when closed
    pipe.close()
    with pytest.raises(ProcessLookupError):  # killed and reaped: no process, no zombie
        os.kill(pipe.pid, 0)
