"""PostgreSQL's binary COPY format with numpy: whole arrays in, whole columns out.

The index of 30,000 villages × 60 months is stored as one row per month whose arrays hold every
place (migration 0016); building those arrays element by element in Python (or through a driver's
list adaptation) would cost seconds, so :func:`array` encodes one with a few numpy operations,
and :func:`copy_rows` sends rows of such values with one ``COPY ... (FORMAT binary)``.

:func:`read_fixed` is the other way: ``COPY (query) TO STDOUT (FORMAT binary)`` of fixed-width,
non-NULL columns straight into numpy arrays (the index reads 1.8 million rows of monthly
statistics this way instead of building 1.8 million Python rows). :func:`read_arrays` reads
rows of one-dimensional arrays.

The format: https://www.postgresql.org/docs/15/sql-copy.html ("Binary Format") and the array
send/receive functions (an array: ndim, has-nulls flag, element type OID, then per dimension its
length and lower bound, then per element its byte length, -1 for NULL, and its bytes).

Example
-------
>>> import numpy as np
>>> array(np.array([1, 2], dtype=np.int32), "int4")[:12] == bytes([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 23])
True
>>> decode_array(array(np.array([1.5, np.nan]), "float4", null=np.array([False, True])), "float4")
array([1.5, nan])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

import numpy as np
from psycopg import sql

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER = SIGNATURE + bytes(8)  # flags, header extension length
TRAILER = b"\xff\xff"
_EPOCH = date(2000, 1, 1)
# element type: (OID, big-endian numpy type)
TYPES = {
    "bool": (16, "u1"),
    "int2": (21, ">i2"),
    "int4": (23, ">i4"),
    "int8": (20, ">i8"),
    "float4": (700, ">f4"),
    "float8": (701, ">f8"),
    "text": (25, None),
}


class CopyFormatError(ValueError):
    """Values this encoder cannot write, or a COPY stream that is not what was asked for."""


def array(values: np.ndarray | Sequence[str], kind: str, null: np.ndarray | None = None) -> bytes:
    """An array value (1-D, or 2-D from an (R, C) matrix) of element type ``kind`` in binary
    form; ``null`` marks NULL elements (numbers only)."""
    oid, fmt = TYPES[kind]
    if fmt is None:
        return text_array(values)
    v = np.asarray(values)
    head = [v.ndim, 0 if null is None or not np.any(null) else 1, oid]
    for d in v.shape:
        head += [d, 1]
    flat = v.reshape(-1)
    rec = np.empty(flat.size, dtype=[("len", ">i4"), ("v", fmt)])
    rec["len"] = np.dtype(fmt).itemsize
    rec["v"] = np.where(np.asarray(null).reshape(-1), 0, flat) if null is not None else flat
    body = rec.tobytes()
    if head[1]:  # drop the value bytes of the NULL elements, whose length becomes -1
        rec["len"][np.asarray(null).reshape(-1)] = -1
        raw = np.frombuffer(rec.tobytes(), dtype=np.uint8).reshape(flat.size, rec.itemsize)
        keep = np.ones(raw.shape, dtype=bool)
        keep[np.asarray(null).reshape(-1), 4:] = False
        body = raw[keep].tobytes()
    return np.array(head, dtype=">i4").tobytes() + body


def text_array(values: Sequence[str]) -> bytes:
    oid = TYPES["text"][0]
    if not len(values):
        return np.array([0, 0, oid], dtype=">i4").tobytes()
    parts = [np.array([1, 0, oid, len(values), 1], dtype=">i4").tobytes()]
    for s in values:
        b = str(s).encode("utf-8")
        parts += [len(b).to_bytes(4, "big"), b]
    return b"".join(parts)


_NULL = b"\xff\xff\xff\xff"
_ENCODE = {  # scalar types → binary field (with its length word)
    bool: lambda v: b"\x00\x00\x00\x01" + (b"\x01" if v else b"\x00"),
    int: lambda v: b"\x00\x00\x00\x08" + v.to_bytes(8, "big", signed=True),
    float: lambda v: b"\x00\x00\x00\x08" + np.array([v], dtype=">f8").tobytes(),
    str: lambda v: _sized(v.encode("utf-8")),
    bytes: lambda v: _sized(v),
    date: lambda v: b"\x00\x00\x00\x04" + (v - _EPOCH).days.to_bytes(4, "big", signed=True),
}


def _sized(b: bytes) -> bytes:
    return len(b).to_bytes(4, "big") + b


def _field(value: object) -> bytes:
    if value is None:
        return _NULL
    enc = _ENCODE.get(type(value))
    if enc is None:
        if isinstance(value, (np.integer, np.bool_)):
            return _field(bool(value) if isinstance(value, np.bool_) else int(value))
        if isinstance(value, np.floating):
            return _field(float(value))
        raise CopyFormatError(f"no binary form for {type(value).__name__}")
    return enc(value)


def scalar(value: object) -> bytes | None:
    """A scalar field's bytes: None (NULL), bool, int (int8), float (float8), str (text), date (not
    a datetime: its time would be lost), or bytes already in binary form (an :func:`array`)."""
    b = _field(value)
    return None if b is _NULL else b[4:]


def copy_rows(cursor, table: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> int:  # noqa: ANN001
    """COPY ``rows`` (values as :func:`scalar` takes them) into ``table`` (schema.name) with one
    binary COPY on a psycopg cursor, sent in chunks of about a megabyte. The columns' types must
    match: int → bigint, float → double precision, date → date. Returns the number of rows."""
    schema, _, name = table.rpartition(".")
    ident = sql.Identifier(schema, name) if schema else sql.Identifier(name)
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
        ident, sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    n, size, width = 0, 0, len(columns)
    head = width.to_bytes(2, "big")
    parts: list[bytes] = [HEADER]
    with cursor.copy(stmt) as cp:
        for row in rows:
            if len(row) != width:
                raise CopyFormatError(f"a row has {len(row)} values for {width} columns")
            parts.append(head)
            for value in row:
                b = _field(value)
                parts.append(b)
                size += len(b)
            n += 1
            if size > 1 << 20:
                cp.write(b"".join(parts))
                parts, size = [], 0
        parts.append(TRAILER)
        cp.write(b"".join(parts))
    return n


def _copy_out(cursor, query: sql.Composable | str) -> memoryview:  # noqa: ANN001
    q = sql.SQL(query) if isinstance(query, str) else query
    with cursor.copy(sql.SQL("COPY ({}) TO STDOUT (FORMAT binary)").format(q)) as cp:
        buf = b"".join(bytes(b) for b in cp)
    if not buf.startswith(SIGNATURE) or buf[-2:] != TRAILER:
        raise CopyFormatError("not a binary COPY stream")
    ext = int.from_bytes(buf[15:19], "big")
    return memoryview(buf)[19 + ext : len(buf) - 2]


def read_fixed(  # noqa: ANN201
    cursor, query: str, types: Sequence[tuple[str, str]]  # noqa: ANN001
):
    """The columns of ``query`` as numpy arrays, one per column. ``types``: (name,
    bool|int2|int4|int8|float4|float8) in the query's column order; every value must be non-NULL
    (coalesce in the query), else :class:`CopyFormatError`.

    The server aggregates each column into one array, and the one row comes by binary COPY: a
    COPY of the rows themselves would arrive as one message per row, which psycopg hands over
    one at a time (1.8 million rows: ~6 s in Python alone)."""
    names = [name for name, _ in types]
    if len(set(names)) != len(names) or not all(n.isidentifier() for n in names):
        raise CopyFormatError("column names must be distinct identifiers")
    aliases = ", ".join(f"c{i}" for i in range(len(types)))
    aggs = ", ".join(f"coalesce(array_agg(q.c{i}), '{{}}')" for i in range(len(types)))
    (row,) = read_rows(cursor, f"SELECT {aggs} FROM ({query}) AS q({aliases})")  # noqa: S608 - callers' SQL
    out = {}
    for (name, kind), value in zip(types, row, strict=True):
        if TYPES[kind][1] is None:
            raise CopyFormatError(f"column {name}: read_fixed reads numbers, not {kind}")
        _ndim, has_null, oid = np.frombuffer(value[:12], dtype=">i4")
        if oid != TYPES[kind][0]:
            raise CopyFormatError(f"column {name}: not {kind} (type OID {oid})")
        if has_null:
            raise CopyFormatError(f"column {name}: NULL in the column")
        out[name] = decode_array(value, kind)
    return out


def decode_array(b: bytes | memoryview, kind: str) -> np.ndarray:
    """A binary array value of numbers (any number of dimensions, flattened); NULL elements
    become NaN (the result is float then), text arrays a numpy array of str."""
    b = memoryview(b)
    ndim, has_null, _oid = np.frombuffer(b[:12], dtype=">i4")
    dims = np.frombuffer(b[12 : 12 + 8 * ndim], dtype=">i4")[0::2]
    n = int(np.prod(dims)) if ndim else 0
    body = b[12 + 8 * ndim :]
    fmt = TYPES[kind][1]
    if fmt is None:
        out, pos = [], 0
        for _ in range(n):
            ln = int.from_bytes(body[pos : pos + 4], "big", signed=True)
            out.append(None if ln < 0 else bytes(body[pos + 4 : pos + 4 + ln]).decode("utf-8"))
            pos += 4 + max(ln, 0)
        return np.array(out, dtype=object)
    width = np.dtype(fmt).itemsize
    if not has_null:
        rec = np.frombuffer(body, dtype=[("len", ">i4"), ("v", fmt)], count=n)
        return rec["v"].astype(fmt.lstrip("><"))
    out = np.full(n, np.nan)
    pos = 0
    for i in range(n):  # only arrays with NULLs come here (rank changes of a first month)
        ln = int.from_bytes(body[pos : pos + 4], "big", signed=True)
        if ln >= 0:
            out[i] = np.frombuffer(body[pos + 4 : pos + 4 + width], dtype=fmt)[0]
        pos += 4 + max(ln, 0)
    return out


def decode_date(b: bytes | memoryview) -> date:
    return date.fromordinal(_EPOCH.toordinal() + int.from_bytes(b, "big", signed=True))


def read_rows(cursor, query: sql.Composable | str) -> list[list[memoryview | None]]:  # noqa: ANN001
    """``COPY (query) TO STDOUT (FORMAT binary)`` as rows of raw field values (None: NULL), for
    few rows of large values (decode arrays with :func:`decode_array`)."""
    body = _copy_out(cursor, query)
    rows, pos = [], 0
    while pos < len(body):
        ncols = int.from_bytes(body[pos : pos + 2], "big")
        pos += 2
        row = []
        for _ in range(ncols):
            ln = int.from_bytes(body[pos : pos + 4], "big", signed=True)
            pos += 4
            row.append(None if ln < 0 else body[pos : pos + ln])
            pos += max(ln, 0)
        rows.append(row)
    return rows
