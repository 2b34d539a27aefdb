"""COPY writers: every value comes back as it went in (text with tabs, new lines, backslashes,
quotes and Chinese; NULLs; numbers; booleans; timestamps; bytes; arrays; geometry)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import text

from layers import copy as copy_module
from layers.copy import copy_binary, copy_frame, copy_text

NASTY = ["a\tb", "line\nbreak\r\n", "back\\slash\\N", '"quoted", comma', "\\x41", "中文，顿号、", "", " x "]


@pytest.mark.parametrize(("writer", "empty"), [(copy_text, ""), (copy_frame, None), (copy_binary, "")])
def test_copy_round_trip(conn, writer, empty) -> None:
    """(CSV cannot tell an empty string from NULL: copy_frame writes both as NULL.)"""
    n = len(NASTY)
    conn.execute(text(
        "CREATE TEMP TABLE t (s text, i integer, r real, f double precision, b boolean, "
        "at timestamptz, blob bytea, tags text[], geom geometry(Point, 4490))"))
    df = pd.DataFrame({
        "s": [*NASTY[:-1], None],
        "i": pd.array([1, None, 3, 4, 5, 6, 7, -8], dtype="Int64"),
        "r": [0.5, np.nan, 0.25, 1, 0, 0.125, 0.75, 0.1],
        "f": np.linspace(-1e6, 1e6, n) + 0.123456789,
        "b": [True, False] * (n // 2),
        "at": pd.to_datetime(["2025-03-01 09:00:00.123456+08:00"] * (n - 1) + [None], utc=True),
        "blob": [b"\x00\xff\\", None, b"", b"abc", b"\t", b"\n", b"x", b"y"],
        "tags": [["fire", "gas"], None, ["a"], ["b"], ["c"], ["d"], ["e"], ["f"]],
        "geom": shapely.points(np.linspace(120.5, 120.7, n), np.full(n, 27.9)),
    })
    assert writer(conn, "t", df) == n
    back = conn.execute(text("SELECT s, i, r, f, b, at, blob, tags, ST_X(geom), ST_Y(geom) FROM t")).all()
    for k, row in enumerate(back):
        assert row[0] == (None if pd.isna(df.s[k]) else df.s[k] or empty)
        assert (row[1] is None) if pd.isna(df.i[k]) else row[1] == df.i[k]
        assert (row[2] is None) if np.isnan(df.r[k]) else row[2] == pytest.approx(df.r[k])
        assert row[3] == df.f[k]  # double precision exactly
        assert row[4] == df.b[k]
        assert (row[5] is None) if pd.isna(df["at"][k]) else pd.Timestamp(row[5]) == df["at"][k]
        assert (row[6] is None) if df.blob[k] is None else bytes(row[6]) == df.blob[k]
        assert row[7] == df.tags[k]
        assert (row[8], row[9]) == (df.geom[k].x, df.geom[k].y)


def test_point_ewkb_is_shapelys() -> None:
    from layers.copy import _geometry_column, _point_ewkb

    rng = np.random.default_rng(3)
    pts = shapely.points(rng.uniform(-180, 180, 1000), rng.uniform(-90, 90, 1000))
    assert _point_ewkb(np.asarray(pts, dtype=object)) == list(_geometry_column(pd.Series(pts)))
    assert _point_ewkb(np.array([shapely.box(0, 0, 1, 1)], dtype=object)) is None
    assert _point_ewkb(np.array([shapely.Point(1, 2), None], dtype=object)) is None


def _no_text(*_a, **_k) -> None:
    raise AssertionError("went by the text format")


def test_copy_binary_writes_binary(conn, monkeypatch) -> None:
    """The hazards' column types go by the binary format, chunk after chunk (none by text)."""
    monkeypatch.setattr(copy_module, "copy_text", _no_text)
    monkeypatch.setattr(copy_module, "BINARY_CHUNK_ROWS", 3)
    conn.execute(text(
        "CREATE TEMP TABLE t (s text, n bigint, r real, at timestamptz, g geometry(Point, 4490))"))
    n = 10
    df = pd.DataFrame({
        "s": ["中文", None, "", "a\tb", *(f"x{i}" for i in range(n - 4))],
        "n": pd.array([1, None, *range(n - 2)], dtype="Int64"),
        "r": [0.5, np.nan, *np.linspace(0, 1, n - 2)],
        "at": pd.to_datetime(
            ["1999-12-31 23:59:59.5+08:00", None, *["2025-03-01 09:00:00.0+08:00"] * (n - 2)], utc=True
        ),
        "g": [shapely.Point(120.5, 27.9), None, *shapely.points(np.full(n - 2, 120.0), np.arange(n - 2))],
    })
    assert copy_binary(conn, "t", df) == n
    back = conn.execute(text("SELECT s, n, r, at, ST_X(g), ST_Y(g) FROM t")).all()
    assert [r[0] for r in back] == [None if pd.isna(v) else v for v in df.s]
    assert [r[1] for r in back] == [None if pd.isna(v) else v for v in df.n]
    assert back[0][3] == pd.Timestamp("1999-12-31 15:59:59.5", tz="UTC")
    assert back[1][2:] == (None, None, None, None)
    assert back[9][4:] == (120.0, 7.0)


def test_copy_binary_falls_back_to_text_midway(conn, monkeypatch) -> None:
    """A column found not writable in a later chunk (a number in a text column) undoes the binary
    COPY, and the frame goes whole by the text format: no row twice, none lost."""
    monkeypatch.setattr(copy_module, "BINARY_CHUNK_ROWS", 2)
    conn.execute(text("CREATE TEMP TABLE t (s text, k integer)"))
    df = pd.DataFrame({"s": ["a", "b", "c", 4, "e"], "k": range(5)})
    assert copy_binary(conn, "t", df) == 5
    assert conn.execute(text("SELECT s FROM t ORDER BY k")).scalars().all() == ["a", "b", "c", "4", "e"]


def test_text_held_by_arrow_is_written_as_text_held_by_python() -> None:
    """pandas keeps new text columns in Arrow when pyarrow is installed; the binary encoder
    writes those from Arrow's buffers, byte for byte as it writes object columns (NULL, the
    empty string, Chinese, tabs), and a NUL still sends the frame to the text format."""
    import pyarrow as pa

    values = [*NASTY, None, "中文", ""]
    types = {"s": "text", "t": "text"}
    as_objects = pd.DataFrame({"s": pd.Series(values, dtype=object), "t": pd.Series(["x"] * len(values),
                                                                                      dtype=object)})
    for dtype in ("str", pd.ArrowDtype(pa.string()), pd.ArrowDtype(pa.large_string())):
        held = as_objects.astype(dtype)
        assert copy_module.arrow_text(held["s"]) is not None
        assert copy_module.encode_binary(held, types) == copy_module.encode_binary(as_objects, types)
        # a slice of a column (a chunk) starts where its own offsets say
        part, same = held.iloc[3:7], as_objects.iloc[3:7]
        assert copy_module.encode_binary(part, types) == copy_module.encode_binary(same, types)
    with pytest.raises(copy_module.NotBinary):
        copy_module.encode_binary(pd.DataFrame({"s": ["a\x00b"]}, dtype="str"), {"s": "text"})
    all_null = pd.DataFrame({"s": pd.Series([None, None], dtype="str")})
    assert copy_module.encode_binary(all_null, {"s": "text"}) == copy_module.encode_binary(
        all_null.astype(object), {"s": "text"})


def test_points_as_x_plus_iy_write_the_bytes_of_shapely_points_and_of_the_server(conn) -> None:
    """A geometry column of complex numbers x + iy (the ETL's located frames: no GEOS point made)
    is written byte for byte as the same points given as shapely points, in binary and in text,
    NaN as NULL; and the binary stream is the server's own ``COPY ... TO (FORMAT binary)`` of
    the rows it loaded."""
    rng = np.random.default_rng(11)
    n = 1_000
    x, y = rng.uniform(73, 136, n), rng.uniform(3, 54, n)
    x[:3], y[:3] = [120.5, -0.0, 1e-300], [27.9, 0.0, 179.999999999999]
    xy = np.empty(n, dtype=np.complex128)
    xy.real, xy.imag = x, y
    missing = np.zeros(n, dtype=bool)
    missing[[5, 17]] = True
    xy[missing] = complex(np.nan, np.nan)
    pts = shapely.points(x, y).astype(object)
    pts[missing] = None
    as_xy = pd.DataFrame({"k": np.arange(n), "g": xy})
    as_points = pd.DataFrame({"k": np.arange(n), "g": pts})
    types = {"k": "bigint", "g": "geometry"}
    data = copy_module.encode_binary(as_xy, types)
    assert data == copy_module.encode_binary(as_points, types)
    assert copy_module._text_column(as_xy["g"], True) == copy_module._text_column(as_points["g"], True)
    assert list(copy_module._geometry_column(as_xy["g"]).fillna("")) == list(
        copy_module._geometry_column(as_points["g"]).fillna(""))
    conn.execute(text("CREATE TEMP TABLE t (k bigint, g geometry(Point, 4490))"))
    raw = conn.connection.driver_connection
    out = "COPY (SELECT k, g FROM t ORDER BY k) TO STDOUT (FORMAT binary)"
    copy_module.send_binary(conn, "t", ["k", "g"], data)
    with raw.cursor() as cur, cur.copy(out) as cp:
        server = b"".join(bytes(chunk) for chunk in cp)
    assert server == b"".join(data)
    for writer in (copy_text, copy_frame):
        conn.execute(text("TRUNCATE t"))
        writer(conn, "t", as_xy, geometry_columns=("g",))
        with raw.cursor() as cur, cur.copy(out) as cp:
            assert b"".join(bytes(chunk) for chunk in cp) == server
