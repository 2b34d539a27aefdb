"""Readers of what governments really send: CSV (UTF-8, UTF-8 with BOM, GBK/GB18030), XLSX,
GeoJSON, zipped Shapefile and GeoPackage.

Every reader returns a :class:`RawTable`: all attribute values as text (``None`` for empty), the
1-based row number of each record in the file (header = row 1 for tables), and, for spatial
formats, the geometry with its CRS. Typing and validation happen later, against a profile, so
that a bad value becomes a reject with its row, column and reason instead of a failed file.

A file that cannot be read at all raises :class:`ReaderError` with a message for a person.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import queue
import re
import tempfile
import threading
import zipfile
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from etl.encoding import Gb18030Pipe, gb18030_utf8, gb18030_utf8_halves, no_utf8_lines
from etl.safety import UnsafeFileError, check_zip, extract, verify_sizes

if TYPE_CHECKING:
    import geopandas as gpd

MAX_FILE_BYTES = 2 * 1024**3
SPATIAL_SUFFIXES = {".geojson", ".json", ".gpkg", ".zip", ".shp"}
TABLE_SUFFIXES = {".csv", ".txt", ".tsv", ".xlsx", ".xlsm"}


class ReaderError(ValueError):
    """The file cannot be read; the message says why in words a user can act on."""


class RawTable:
    """Text values of a file's records, before any typing.

    ``frame``: object columns of ``str | None``, named as in the file. The CSV reader keeps its
    cells as Arrow text columns instead (``text``), and makes ``frame`` only when someone asks
    for it whole: a million rows of Python strings cost seconds that typing them straight from
    Arrow does not (:meth:`column`, :func:`etl.profile.apply_profile`)."""

    def __init__(
        self,
        frame: pd.DataFrame | None,
        row_numbers: pd.Series,  # 1-based line/row in the file, for rejects
        file_name: str,
        encoding: str | None = None,
        geometry: gpd.GeoSeries | None = None,  # in the file's CRS (``crs``)
        crs: str | None = None,  # e.g. "EPSG:4326"; None for tables and unknown
        warnings: tuple[str, ...] = (),
        *,
        text: pa.Table | None = None,  # cleaned text columns (null for empty), instead of ``frame``
    ) -> None:
        if (frame is None) == (text is None):
            raise ValueError("a RawTable holds either a frame or Arrow text columns")
        self._frame, self.text = frame, text
        self.row_numbers, self.file_name, self.encoding = row_numbers, file_name, encoding
        self.geometry, self.crs, self.warnings = geometry, crs, warnings
        self.sheets: tuple[str, ...] = ()  # a workbook's sheets, in order (the reader sets them)

    @property
    def frame(self) -> pd.DataFrame:
        if self._frame is None:
            names = self.text.column_names
            cells = {name: pd.Series(text_objects(self.text.column(name)), dtype=object) for name in names}
            self._frame = pd.DataFrame(cells, columns=names)
            self.text = None
        return self._frame

    @property
    def columns(self) -> list[str]:
        return list(self.text.column_names if self.text is not None else self._frame.columns)

    def __len__(self) -> int:
        return self.text.num_rows if self.text is not None else len(self._frame)

    def column(self, name: str) -> pd.Series:
        """One column: Arrow-backed (``pd.ArrowDtype``, NA for empty) from the CSV reader, else
        the frame's object column."""
        if self.text is not None:
            return pd.Series(pd.arrays.ArrowExtensionArray(self.text.column(name)), copy=False)
        return self._frame[name]

    def records(self, rows: pd.Series | np.ndarray) -> list[dict]:
        """The raw rows (a mask, or row positions) as dicts of text, for rejects."""
        rows = np.asarray(rows)
        if self.text is None:
            return self._frame[rows].to_dict("records") if rows.dtype == bool else (
                self._frame.iloc[rows].to_dict("records"))
        positions = np.flatnonzero(rows) if rows.dtype == bool else rows
        return self.text.take(pa.array(positions, type=pa.int64())).to_pylist()

    def slice(self, start: int, length: int) -> RawTable:
        """Rows ``start`` .. ``start + length`` as a table of their own, indexed from 0 (as
        :func:`etl.profile.apply_profile` expects); Arrow text is sliced without a copy."""
        rows = self.row_numbers.iloc[start : start + length].reset_index(drop=True)
        geometry = None if self.geometry is None else self.geometry.iloc[start : start + length]
        if self.text is not None:
            return RawTable(None, rows, self.file_name, self.encoding, geometry, self.crs, self.warnings,
                            text=self.text.slice(start, length))
        frame = self._frame.iloc[start : start + length].reset_index(drop=True)
        return RawTable(frame, rows, self.file_name, self.encoding, geometry, self.crs, self.warnings)

    def release(self) -> None:
        """Drop the text (its typed copy lives on); the columns stay."""
        if self.text is not None:
            self.text = self.text.slice(0, 0)
        else:
            self._frame = self._frame.iloc[:0]


def text_objects(column: pa.ChunkedArray) -> np.ndarray:
    """An Arrow text column as an object array of ``str | None``."""
    return column.to_numpy(zero_copy_only=False).astype(object, copy=False)


def read_file(path: Path, *, encoding: str | None = None, sheet: str | None = None) -> RawTable:
    """Read ``path`` by its suffix; ``encoding`` overrides detection for CSV and DBF."""
    if not path.exists():
        raise ReaderError(f"{path}: no such file")
    size = path.stat().st_size
    if size == 0:
        raise ReaderError(f"{path.name}: the file is empty")
    if size > MAX_FILE_BYTES:
        raise ReaderError(f"{path.name}: {size / 1024**3:.1f} GB is over the 2 GB limit")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt", ".tsv"):
            return read_csv(path, encoding=encoding)
        if suffix in (".xlsx", ".xlsm"):
            return read_xlsx(path, sheet=sheet)
        if suffix in SPATIAL_SUFFIXES:
            return read_spatial(path, encoding=encoding)
    except UnsafeFileError as exc:
        raise ReaderError(f"{path.name}: refused: {exc}") from None
    raise ReaderError(
        f"{path.name}: unsupported file type {suffix or '(none)'}; expected CSV, XLSX, GeoJSON, "
        "zipped Shapefile or GeoPackage"
    )


# -- CSV ---------------------------------------------------------------------------------------
def decode(data: bytes, encoding: str | None = None) -> tuple[str, str, tuple[str, ...]]:
    """Decode CSV bytes: the given encoding, else BOM, UTF-8, GB18030 (a superset of GBK).

    A file whose lines are in different encodings (an export edited in two programs) is decoded
    line by line, each line in the first of UTF-8 / GB18030 that fits, with a warning.
    """
    if encoding:
        try:
            return data.decode(encoding), encoding, ()
        except (UnicodeDecodeError, LookupError) as exc:
            raise ReaderError(f"cannot decode as {encoding}: {exc}") from None
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict"), "utf-8-sig", ()
    if not _not_utf8(data):
        try:
            return data.decode("utf-8"), "utf-8", ()
        except UnicodeDecodeError:
            pass
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        text = None
    if text is not None and no_utf8_lines(data):
        return text, "gb18030", ()
    lines = data.splitlines(keepends=True)
    utf8 = sum(1 for ln in lines if _decodes(ln, "utf-8") and not ln.isascii())
    out, n_gb = [], 0
    for ln in lines:
        if _decodes(ln, "utf-8"):
            out.append(ln.decode("utf-8"))
        elif _decodes(ln, "gb18030"):
            out.append(ln.decode("gb18030"))
            n_gb += 1
        else:
            raise ReaderError("the file is neither UTF-8 nor GBK/GB18030 text (is it binary?)")
    return (
        "".join(out),
        "mixed",
        (f"mixed encodings: {utf8} lines in UTF-8 and {n_gb} in GBK/GB18030; each decoded as it fits",),
    )


def _not_utf8(data: bytes) -> bool:
    """Whether ``data`` is certainly not UTF-8: its first 64 KB hold a byte sequence UTF-8 does
    not have (a character cut at 64 KB is not one). A GBK file fails there at once, instead of
    in a decoding of the whole file whose error keeps a copy of all its bytes (0.17 s for 250 MB,
    twice per file)."""
    try:
        codecs.utf_8_decode(data[:65536], "strict", False)
    except UnicodeDecodeError:
        return True
    return False


def _decodes(b: bytes, enc: str) -> bool:
    try:
        b.decode(enc)
    except UnicodeDecodeError:
        return False
    return True


def to_utf8(data: bytes, encoding: str | None = None) -> tuple[bytes, str, tuple[str, ...]]:
    """:func:`decode`, but the text as UTF-8 bytes (what the CSV parser reads fastest); a UTF-8
    file is only checked, not copied."""
    if not encoding and not data.startswith(b"\xef\xbb\xbf"):
        if not _not_utf8(data):
            try:
                codecs.utf_8_decode(data, "strict", True)
                return data, "utf-8", ()
            except UnicodeDecodeError:
                pass
        # not UTF-8: GB18030, what :func:`decode` finds next, on both cores for a large file
        # (None: not plain GB18030, a file in mixed encodings, which decode() reads line by line)
        utf8 = gb18030_utf8_halves(data)
        if utf8 is not None:
            return utf8, "gb18030", ()
    text, used, warnings = decode(data, encoding)
    del data
    return text.encode("utf-8"), used, warnings


def read_csv(path: Path, *, encoding: str | None = None) -> RawTable:
    data, used, warnings = to_utf8(path.read_bytes(), encoding)
    if b"\x00" in data[:65536]:
        raise ReaderError(f"{path.name}: this is not a text file (NUL bytes)")
    sep, skip, title = _layout(data[:65536])
    warnings += title
    text = _arrow_csv(data, sep, skip)
    if text is not None:
        text, numbers = _without_empty_rows(text, np.arange(2 + skip, 2 + skip + text.num_rows))
        warnings += _empty_warning(numbers[1])
        return RawTable(None, pd.Series(numbers[0]), path.name, used, warnings=warnings, text=text)
    try:
        # the C parser reads UTF-8 bytes fast; from a StringIO of a large text it is superlinear
        # (pandas pulls it in small pieces: 97 s of 113 s for a 1M-row file)
        frame = pd.read_csv(
            io.BytesIO(data),
            encoding="utf-8",
            sep=sep,
            dtype=object,
            keep_default_na=False,
            na_filter=False,
            skiprows=skip,
            skip_blank_lines=False,  # a blank line is a row of the file: the rows after keep their numbers
            on_bad_lines="error",
            engine="c",
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ReaderError(f"{path.name}: not a readable CSV table: {str(exc).strip()}") from None
    # the C parser without NA filtering gives text in every cell ('' when empty; NaN for the
    # missing cells of a blank line)
    return _table(frame, path.name, used, warnings, first_row=2 + skip, empty_rows=True)


def _layout(head: bytes) -> tuple[str, int, tuple[str, ...]]:
    """The separator, the rows above the header and their warning, from the file's first 64 KB
    of UTF-8."""
    sample = head.decode("utf-8", errors="ignore")  # a cut character at the end: dropped
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",\t;|")
        sep = dialect.delimiter
    except csv.Error:
        sep = ","
    # rows above the header (a title such as 瓯海区风险隐患台账, a line of who filled it in)
    leading = list(itertools.islice(csv.reader(io.StringIO(sample), delimiter=sep), _HEADER_SEARCH))
    skip = _header_at(leading)
    return sep, skip, _title_warning(leading[:skip])


def _arrow_csv(data: bytes, sep: str, skip: int = 0) -> pa.Table | None:
    """The cells of a rectangular CSV as Arrow text, trimmed, null for empty, from the header
    after ``skip`` rows; None when pandas' parser is to read it instead.

    Arrow's parser runs in C++ on both cores and never makes a Python string (1M rows: 1.3 s
    against 3.9 for pandas' C parser and 2.2 to trim its strings). It is used only where it
    reads what pandas' parser reads: a header of distinct, non-blank names (pandas renames
    duplicates and blanks), every row as wide as the header (pandas fills short rows and takes a
    wider first column as the index), text at all (not an empty file). Anything else goes to
    pandas, whose errors and repairs stay as they were. A blank line is a row of empty cells
    (not skipped, which would shift the numbers of the rows after it); the caller drops it."""
    try:
        table = pacsv.read_csv(io.BytesIO(data), **_arrow_options(sep, skip, use_threads=True))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_columns > _MAX_COLUMNS or table.num_rows == 0:
        return None
    header = _arrow_header(table)
    if header is None:
        return None
    return _trimmed(table.slice(1), header)


def _arrow_options(sep: str, skip: int, **read: object) -> dict:
    """Arrow's CSV options for :func:`_arrow_csv` and :class:`CsvStream`: every column text;
    the header is row 0 (autogenerated names f0, f1, ...); an empty cell, quoted or not, is
    null from the start; a blank line is a row of empty cells."""
    return {
        "read_options": pacsv.ReadOptions(autogenerate_column_names=True, skip_rows=skip, **read),
        "parse_options": pacsv.ParseOptions(delimiter=sep, newlines_in_values=True, ignore_empty_lines=False),
        "convert_options": pacsv.ConvertOptions(
            column_types={f"f{i}": pa.string() for i in range(_MAX_COLUMNS)},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    }


def _arrow_header(table: pa.Table) -> list[str] | None:
    """The header (the table's first row): None when pandas would rename a name (blank or twice)."""
    header = [(v or "").strip().lstrip("\ufeff") for v in table.slice(0, 1).to_pylist()[0].values()]
    if any(not h for h in header) or len(set(header)) != len(header):
        return None
    return header


def _trimmed(body: pa.Table, header: list[str]) -> pa.Table:
    columns = []
    for name in body.column_names:
        cells = pc.utf8_trim_whitespace(body.column(name))  # what str.strip() strips, checked
        blank = pc.equal(cells, "")  # cells of only white space: null too
        if pc.any(blank).as_py():  # copied again only then (all columns of 1M rows: 0.3-1.3 s)
            cells = pc.if_else(blank, pa.scalar(None, pa.string()), cells)
        columns.append(cells)
    return pa.table(columns, names=header)


_MAX_COLUMNS = 1000
_HEADER_SEARCH = 20  # rows looked at for the header


def _header_at(rows: list[list]) -> int:
    """Where the header is among a sheet's first rows: the first row filled in at least 60% as
    wide as the widest of them (and in two cells or more), so a title above it (one merged cell,
    瓯海区风险隐患台账) or a line of who filled it in (填报单位, 日期) is not taken for the header.
    Empty rows before it are skipped too (the rows after keep the file's numbers). A table of
    one column: its first non-empty row."""
    filled = [sum(1 for v in row if v is not None and str(v).strip()) for row in rows]
    widest = max(filled, default=0)
    need = max(2, -(-widest * 3 // 5))
    first = next((i for i, n in enumerate(filled) if n), 0)
    return next((i for i, n in enumerate(filled) if n >= need), first)


def _title_warning(rows: list[list]) -> tuple[str, ...]:
    cells = [str(v).strip() for row in rows for v in row if v is not None and str(v).strip()]
    if not cells:
        return ()
    return (f"{len(rows)} row(s) above the header skipped as a title: {' '.join(cells)[:80]}",)


def _without_empty_rows(
    table: pa.Table, numbers: np.ndarray
) -> tuple[pa.Table, tuple[np.ndarray, np.ndarray]]:
    """The rows with a value in some cell, and the file's numbers of (kept rows, empty rows):
    a row of only separators (``,,,,`` as Excel saves a cleared row) is no record."""
    empty = None
    for column in table.columns:
        null = pc.is_null(column)
        empty = null if empty is None else pc.and_(empty, null)
    if empty is None or not pc.any(empty).as_py():
        return table, (numbers, numbers[:0])
    mask = empty.to_numpy(zero_copy_only=False)
    return table.filter(pc.invert(empty)), (numbers[~mask], numbers[mask])


def _empty_warning(gone: np.ndarray) -> tuple[str, ...]:
    if not len(gone):
        return ()
    shown = ", ".join(str(int(n)) for n in gone[:10]) + (", ..." if len(gone) > 10 else "")
    return (f"{len(gone)} empty row(s) skipped (rows {shown})",)


#: a CSV of this many bytes or more is read as a stream when it may be (:func:`stream_csv`)
STREAM_MIN_BYTES = 16 * 1024**2
STREAM_BLOCK = 4 * 1024**2  # Arrow's block: ~16,000 rows of the bench's file


class Unstreamable(Exception):  # noqa: N818 (not an error: a way given up)
    """The file is read whole after all (:func:`read_csv`), which handles what the stream met:
    a line in another encoding, a row of another width, a header pandas reads otherwise, a 编号
    twice."""


def stream_csv(path: Path, data: bytes, chunk: int) -> CsvStream | None:
    """``data`` (the bytes of the CSV ``path``) read as a stream of tables of ``chunk`` rows
    (:class:`CsvStream`), or None when it is to be read whole: under :data:`STREAM_MIN_BYTES`,
    with a BOM, NUL bytes or a beginning that is not plain GB18030 (it may be mixed). The
    encoding is found as :func:`to_utf8` finds it; the separator and the rows above the header
    from the same 64 KB of UTF-8."""
    if len(data) < STREAM_MIN_BYTES or len(data) > MAX_FILE_BYTES or data.startswith(b"\xef\xbb\xbf"):
        return None
    pipe = None
    if _not_utf8(data) or not _decodes_utf8(data):
        head = gb18030_utf8(data, 0, data.find(b"\n", 65536) + 1 or len(data))
        if head is None:
            return None
        used = "gb18030"
    else:
        head, used = data[:65536], "utf-8"
    if b"\x00" in head[:65536]:
        return None
    sep, skip, title = _layout(head[:65536])
    if used == "utf-8":
        source = pa.BufferReader(data)
    else:
        pipe = Gb18030Pipe(data)
        source = pipe.stream
    return CsvStream(source, pipe, sep, skip, chunk, path.name, used, title, data.count(b"\n") + 1)


def _decodes_utf8(data: bytes) -> bool:
    try:
        codecs.utf_8_decode(data, "strict", True)
    except UnicodeDecodeError:
        return False
    return True


class CsvStream:
    """A CSV read by Arrow's streaming reader in a thread while the tables before are mapped
    and copied: :meth:`next_chunk` hands out the rows ``chunk`` at a time, as :class:`RawTable`\\ s
    of Arrow text cleaned as :func:`read_csv` cleans it (trimmed, null for empty, rows of no
    value dropped after they were numbered); a GBK file is decoded by a child as it is read
    (:class:`etl.encoding.Gb18030Pipe`). Everything that :func:`read_csv` would read otherwise
    (a ragged row, a blank or repeated header, a block that is not plain GB18030) raises
    :class:`Unstreamable` from :meth:`next_chunk`: the caller reads the file whole instead.

    It stands for the whole file where the pipeline keeps one (:meth:`records` of the rows handed
    out, ``len``, :meth:`release`); ``most``: at most this many rows (the file's lines)."""

    geometry = None
    crs = None

    def __init__(self, source, pipe: Gb18030Pipe | None, sep: str, skip: int, chunk: int,  # noqa: ANN001
                 name: str, used: str, title: tuple[str, ...], most: int) -> None:
        self.file_name, self.encoding, self.most = name, used, most
        self._title, self._gone = title, [np.zeros(0, dtype=np.int64)]
        self._pipe, self._tables, self._rows = pipe, [], 0
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._read, args=(source, sep, skip, chunk),
                                        name="etl-csv-stream", daemon=True)
        self._thread.start()

    @property
    def warnings(self) -> tuple[str, ...]:
        """The rows above the header; once the file is read, the empty rows too."""
        return self._title + _empty_warning(np.concatenate(self._gone))

    def __len__(self) -> int:
        return self._rows

    def _read(self, source, sep: str, skip: int, chunk: int) -> None:  # noqa: ANN001 (the thread)
        try:
            reader = pacsv.open_csv(source, **_arrow_options(sep, skip, block_size=STREAM_BLOCK))
            header, number, parts = None, 2 + skip, []
            for batch in reader:
                table = pa.Table.from_batches([batch])
                if header is None and table.num_rows:
                    header = _arrow_header(table) if table.num_columns <= _MAX_COLUMNS else None
                    if header is None:
                        raise Unstreamable("a header that pandas reads")
                    table = table.slice(1)
                numbers = np.arange(number, number + table.num_rows)
                number += table.num_rows
                table, (kept, gone) = _without_empty_rows(_trimmed(table, header), numbers)
                self._gone.append(gone)
                parts.append((table, kept))
                while sum(t.num_rows for t, _ in parts) >= chunk:
                    parts = self._hand_out(parts, chunk)
            if self._pipe is not None and not self._pipe.finished():
                raise Unstreamable("not plain GB18030 throughout")
            if parts and sum(t.num_rows for t, _ in parts):
                self._hand_out(parts, None)
            self._queue.put(None)
        except BaseException as exc:  # noqa: BLE001 (raised again by next_chunk)
            self._queue.put(exc)

    def _hand_out(self, parts: list, size: int | None) -> list:
        table = pa.concat_tables([t for t, _ in parts])
        numbers = np.concatenate([n for _, n in parts])
        size = table.num_rows if size is None else size
        self._queue.put((table.slice(0, size), numbers[:size]))
        return [(table.slice(size), numbers[size:])]

    def next_chunk(self) -> RawTable | None:
        """The next rows, numbered as in the file, indexed from 0; None after the last."""
        item = self._queue.get()
        if item is None:
            self._queue.put(None)
            return None
        if isinstance(item, BaseException):
            self._queue.put(item)
            raise item if isinstance(item, Unstreamable) else Unstreamable(str(item)) from item
        table, numbers = item
        self._tables.append(table)
        self._rows += table.num_rows
        return RawTable(None, pd.Series(numbers), self.file_name, self.encoding, warnings=self._title,
                        text=table)

    def records(self, rows: np.ndarray) -> list[dict]:
        """The rows handed out at these positions (counted over all of them) as dicts of text."""
        rows = np.asarray(rows)
        positions = np.flatnonzero(rows) if rows.dtype == bool else rows
        return pa.concat_tables(self._tables).take(pa.array(positions, type=pa.int64())).to_pylist()

    def release(self) -> None:
        self._tables = []

    def close(self) -> None:
        """End the decoding child, if any, and the reading thread."""
        if self._pipe is not None:
            self._pipe.kill()
        self._thread.join()
        if self._pipe is not None:
            self._pipe.close()


def _table(
    frame: pd.DataFrame,
    name: str,
    encoding: str | None,
    warnings: tuple[str, ...],
    first_row: int,
    *,
    empty_rows: bool = False,
) -> RawTable:
    """The rows are numbered from ``first_row``; ``empty_rows``: rows without a value (a table's
    blank rows) are dropped after they were numbered, so the others keep the file's numbers."""
    frame.columns = [str(c).strip().lstrip("\ufeff") for c in frame.columns]
    if len(frame.columns) == 0 or all(c.startswith("Unnamed") or not c for c in frame.columns):
        raise ReaderError(f"{name}: no header row found")
    cleaned = {col: _clean(frame[col]) for col in frame.columns}
    frame = pd.DataFrame(cleaned, index=frame.index, columns=frame.columns)
    numbers = np.arange(first_row, first_row + len(frame))
    if empty_rows and len(frame.columns):
        empty = frame.isna().all(axis=1).to_numpy()
        if empty.any():
            warnings += _empty_warning(numbers[empty])
            frame, numbers = frame[~empty], numbers[~empty]
    return RawTable(frame.reset_index(drop=True), pd.Series(numbers), name, encoding, warnings=warnings)


_BLANK_AFTER_SEP = re.compile(r"\x00\s")  # a literal first: the regex engine scans for it in C


def _edge_blanks(joined: str) -> bool:
    """Whether a cell of ``\\x00``-separated cells (with a separator at both ends) begins or
    ends with white space (the end: the same search in the reversed text)."""
    return bool(_BLANK_AFTER_SEP.search(joined) or _BLANK_AFTER_SEP.search(joined[::-1]))


def _clean(s: pd.Series) -> pd.Series:
    """Text without surrounding blanks, and None for empty cells.

    Most columns have no cell to strip: one regex over the column joined in C finds out, and
    only a column with such a cell is stripped cell by cell."""
    values = s.to_numpy(dtype=object)
    present = pd.notna(values)
    text = values[present]
    try:
        joined = "\x00".join(text)
    except TypeError:  # not all text (a reader handed over numbers): as text
        text = np.array([str(v) for v in text], dtype=object)
        joined = "\x00".join(text)
    if _edge_blanks("\x00" + joined + "\x00"):
        text = np.array([v.strip() for v in text], dtype=object)
    out = np.full(len(values), None, dtype=object)
    out[present] = text
    out[out == ""] = None
    return pd.Series(out, index=s.index, dtype=object)


# -- XLSX --------------------------------------------------------------------------------------
def _cell_text(v: object) -> str | None:
    if v is None:
        return None
    if isinstance(v, datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, date | time):
        return v.isoformat()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))  # 1.0 in Excel is usually an integer code
    return str(v)


def read_xlsx(path: Path, *, sheet: str | None = None) -> RawTable:
    import openpyxl

    if not zipfile.is_zipfile(path):
        raise ReaderError(f"{path.name}: not a valid XLSX file (truncated or corrupt)")
    check_zip(path)  # an XLSX is a zip: no bomb, no traversal, before openpyxl inflates it
    verify_sizes(path)  # and its members hold what they declare (openpyxl inflates them itself)
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ReaderError(f"{path.name}: not a valid XLSX file (truncated or corrupt): {exc}") from None
    try:
        if sheet is not None and sheet not in wb.sheetnames:
            raise ReaderError(f"{path.name}: no sheet {sheet!r}; sheets: {', '.join(wb.sheetnames)}")
        ws = wb[sheet] if sheet else wb.worksheets[0]
        sheets = tuple(wb.sheetnames)
        others = [name for name in sheets if name != ws.title]
        data = [[_cell_text(v) for v in row] for row in ws.iter_rows(values_only=True)]
    except (zipfile.BadZipFile, KeyError, OSError, EOFError) as exc:
        raise ReaderError(f"{path.name}: not a valid XLSX file (truncated or corrupt): {exc}") from None
    finally:
        wb.close()
    if not any(v is not None and v.strip() for row in data for v in row):
        raise ReaderError(f"{path.name}: the sheet is empty")
    at = _header_at(data[:_HEADER_SEARCH])  # sheet row at + 1
    header = [v or f"column_{j + 1}" for j, v in enumerate(data[at])]
    width = len(header)
    body = [(r + [None] * width)[:width] for r in data[at + 1 :]]
    frame = pd.DataFrame(body, columns=header, dtype=object)
    notes = _title_warning(data[:at])
    if others:
        notes += (f"sheet {ws.title!r} read; the workbook has {len(others)} more ({', '.join(others[:5])}): "
                  "another is read with --sheet",)
    table = _table(frame, path.name, None, notes, at + 2, empty_rows=True)  # numbered as the sheet
    table.sheets = sheets
    return table


# -- spatial -----------------------------------------------------------------------------------
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")  # what GDAL reads of a Shapefile


def read_spatial(path: Path, *, encoding: str | None = None) -> RawTable:
    """A spatial file read by GDAL (pyogrio). A zipped Shapefile's parts are inflated into a
    temporary folder first (:func:`etl.safety.extract`: never past the sizes the zip declares)
    and GDAL reads plain files, not the zip; a path pyogrio would take for an archive or a URL
    (a ``!`` in it) is handed over as a link of a plain name."""
    with tempfile.TemporaryDirectory(prefix="pingan-read-") as folder:
        if path.suffix.lower() == ".zip":
            shp = _unzip_shapefile(path, Path(folder))
        else:
            shp = _plain_name(path, Path(folder))
        return _read_gdal(shp, path.name, encoding)


def _unzip_shapefile(path: Path, folder: Path) -> Path:
    members = check_zip(path)
    shp = [m for m in members if m.lower().endswith(".shp")]
    if not shp:
        raise ReaderError(f"{path.name}: the zip holds no .shp file")
    stem = shp[0][:-4]
    parts: dict[str, Path] = {}
    for ext in SHAPEFILE_PARTS:
        member = next((m for m in members if m.lower() == (stem + ext).lower()), None)
        if member is not None:
            parts[member] = folder / f"data{ext}"  # a plain name: nothing in it for GDAL to parse
        elif ext in (".dbf", ".shx"):
            raise ReaderError(f"{path.name}: {Path(stem).name}.shp has no {ext} beside it")
    extract(path, parts)
    return folder / "data.shp"


def _plain_name(path: Path, folder: Path) -> Path:
    """``path`` itself, absolute; if pyogrio would read it as ``archive!member`` (a ``!`` in it),
    a link of a plain name to it (and, for a Shapefile, to its parts) in ``folder``."""
    path = path.absolute()
    if "!" not in str(path) and not str(path).startswith("/vsi"):
        return path
    if path.suffix.lower() != ".shp":
        (folder / f"data{path.suffix.lower()}").symlink_to(path)
        return folder / f"data{path.suffix.lower()}"
    for part in path.parent.iterdir():
        if part.stem.lower() == path.stem.lower() and part.suffix.lower() in SHAPEFILE_PARTS:
            (folder / f"data{part.suffix.lower()}").symlink_to(part)
    return folder / "data.shp"


def _read_gdal(shp: Path, name: str, encoding: str | None) -> RawTable:
    import pyogrio

    kwargs = {"encoding": encoding} if encoding else {}
    if shp.suffix.lower() == ".shp" and not encoding and not _has_cpg(shp):
        # A .dbf without .cpg from a Chinese office is GBK far more often than Latin-1, which
        # is what GDAL would assume; one written by QGIS or GeoPandas is UTF-8: its text says
        kwargs["encoding"] = _dbf_text_encoding(shp)
    try:
        gdf = pyogrio.read_dataframe(str(shp), **kwargs)
    except Exception as exc:  # pyogrio raises several GDAL error types
        raise ReaderError(f"{name}: cannot read as spatial data: {exc}") from None
    crs = gdf.crs.to_string() if gdf.crs is not None else None
    attrs = pd.DataFrame(gdf.drop(columns=gdf.geometry.name)).astype(object)
    attrs = attrs.where(attrs.notna(), None).map(_cell_text)
    table = _table(attrs, name, kwargs.get("encoding"), (), first_row=1)
    table.geometry = gdf.geometry.reset_index(drop=True)
    table.crs = crs
    return table


def _dbf_text_encoding(shp: Path, sample: int = 4 * 1024**2) -> str:
    """The encoding of a ``.dbf`` that has no ``.cpg``: UTF-8 when the text of its first records
    (``sample`` bytes past the header) is UTF-8 with some character past ASCII, else GB18030.
    Real GBK text is almost never also valid UTF-8 (a Chinese character takes two bytes in GBK,
    three in UTF-8, whose lead and trail bytes fall in ranges GBK's pairs rarely keep to)."""
    try:
        dbf = next(p for p in shp.parent.iterdir() if p.name.lower() == shp.stem.lower() + ".dbf")
        with dbf.open("rb") as fh:
            head = fh.read(sample)
    except (StopIteration, OSError):
        return "GB18030"  # GDAL says what is wrong with the file when it reads it
    records = head[int.from_bytes(head[8:10], "little") :] if len(head) >= 32 else b""
    if records.isascii():
        return "GB18030"  # nothing to tell apart: both read ASCII alike
    try:
        codecs.utf_8_decode(records, "strict", False)  # a character cut at the sample's end is fine
    except UnicodeDecodeError:
        return "GB18030"
    return "UTF-8"


def _has_cpg(shp: Path) -> bool:
    return shp.with_suffix(".cpg").exists()
