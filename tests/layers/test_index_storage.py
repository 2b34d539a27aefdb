"""The index's store (migration 0016) and the binary COPY it is written and read with.

- layers.pgcopy against PostgreSQL itself: what it encodes is what the server reads back, and
  what the server sends is what it decodes (NULL elements, 2-D arrays, text, dates);
- 0016 converts scores stored one row per place (0015) into months and back without loss.
"""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pytest
from sqlalchemy import text

from layers import migrate, pgcopy
from layers.db import make_engine
from layers.settings import DatabaseSettings


def test_arrays_and_scalars_round_trip_through_postgres(engine) -> None:
    ints = np.array([3, -7, 2_000_000_000], dtype=np.int64)
    floats = np.array([[0.5, np.nan, -1.25], [1e-7, 3.0, 65504.0]])
    null = np.array([False, True, False])
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TEMP TABLE t (d date, b bigint, f float8, s text, nothing text, ok boolean, "
                "i integer[], n integer[], r real[], w float8[], x text[], e text[], h smallint[])"
            )
        )
        with conn.connection.driver_connection.cursor() as cur:
            rows = [
                (
                    date(2024, 5, 1),
                    42,
                    2.5,
                    "温州 ok",
                    None,
                    True,
                    pgcopy.array(ints, "int4"),
                    pgcopy.array(ints, "int4", null=null),
                    pgcopy.array(floats, "float4"),
                    pgcopy.array(floats[0], "float8"),
                    pgcopy.text_array(["瓯海", "a,b", ""]),
                    pgcopy.text_array([]),
                    pgcopy.array(np.array([0, 4]), "int2"),
                )
            ]
            assert (
                pgcopy.copy_rows(
                    cur, "t", ("d", "b", "f", "s", "nothing", "ok", "i", "n", "r", "w", "x", "e", "h"), rows
                )
                == 1
            )
        got = conn.execute(
            text(
                "SELECT d, b, f, s, nothing, ok, i, n, array_dims(r) AS dims, "
                "r::text AS r, w::text AS w, x, e, h FROM t"
            )
        ).one()
    assert (got.d, got.b, got.f, got.s, got.nothing, got.ok) == (
        date(2024, 5, 1),
        42,
        2.5,
        "温州 ok",
        None,
        True,
    )
    assert got.i == [3, -7, 2_000_000_000] and got.n == [3, None, 2_000_000_000]
    assert got.dims == "[1:2][1:3]"  # 2-D: [row][column] as the matrix
    assert got.r == "{{0.5,NaN,-1.25},{1e-07,3,65504}}"
    assert got.w == "{0.5,NaN,-1.25}" and got.x == ["瓯海", "a,b", ""] and got.e == [] and got.h == [0, 4]


def test_reading_columns_and_arrays_back(engine) -> None:
    with engine.connect() as conn, conn.connection.driver_connection.cursor() as cur:
        got = pgcopy.read_fixed(
            cur,
            "SELECT g::int4, (g * 0.5)::float8, g % 2 = 0 FROM generate_series(1, 5) g",
            [("n", "int4"), ("half", "float8"), ("even", "bool")],
        )
        assert got["n"].tolist() == [1, 2, 3, 4, 5] and got["half"].tolist() == [0.5, 1, 1.5, 2, 2.5]
        assert got["even"].tolist() == [0, 1, 0, 1, 0]
        with pytest.raises(pgcopy.CopyFormatError, match="column a: NULL"):
            pgcopy.read_fixed(
                cur, "SELECT NULL::int4, 1::int4 UNION ALL SELECT 2, 3", [("a", "int4"), ("b", "int4")]
            )
        with pytest.raises(pgcopy.CopyFormatError, match="column b: not int4"):
            pgcopy.read_fixed(cur, "SELECT 1::int4, 1::int8", [("a", "int4"), ("b", "int4")])
        empty = pgcopy.read_fixed(cur, "SELECT 1::int4 WHERE false", [("a", "int4")])
        assert empty["a"].tolist() == []
        ((a, b, c, d),) = pgcopy.read_rows(
            cur,
            "SELECT ARRAY[1, NULL, 3]::int4[], ARRAY[['x', 'é'], ['z', NULL]]::text[], "
            "DATE '2031-12-01', ARRAY[[1.5, 2], [3, 4]]::real[]",
        )
    assert np.array_equal(pgcopy.decode_array(a, "int4"), [1, np.nan, 3], equal_nan=True)
    assert pgcopy.decode_array(b, "text").tolist() == ["x", "é", "z", None]
    assert pgcopy.decode_date(c) == date(2031, 12, 1)
    assert pgcopy.decode_array(d, "float4").tolist() == [1.5, 2, 3, 4]
    with pytest.raises(pgcopy.CopyFormatError, match="no binary form"):
        pgcopy.scalar(object())


def test_float4_be_reads_what_float4send_writes(engine) -> None:
    """The explanations' bytes (0020) decode in SQL to the very float stored: normal, subnormal,
    largest, signed zero, infinities and NaN."""
    xs = np.array([0.0, -0.0, 1.0, -1.5, 1e-45, 1.2e-38, 3.4028235e38, -2.5e-7, 0.1, np.inf, -np.inf, np.nan,
                   *np.random.default_rng(3).normal(0, 1e3, 200)], dtype=np.float32)
    with engine.connect() as c:
        got = c.execute(text("SELECT array_agg(pingan.float4_be(substring(CAST(:b AS bytea) FROM 4 * i + 1 "
                             "FOR 4))::float8 ORDER BY i) FROM generate_series(0, :n - 1) i"),
                        {"b": xs.astype(">f4").tobytes(), "n": len(xs)}).scalar_one()
    got = np.array(got, dtype=np.float32)
    assert np.array_equal(got, xs, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(xs))


def test_0016_turns_scores_into_months_and_back(databases) -> None:
    """Scores stored one row per place (0015) survive the move into months: the view shows the
    same rows, index_contributions the same parts (but for raw, which months do not keep), and
    the way back restores the table; so does 0020's move of the explanations into bytes."""
    engine = make_engine(DatabaseSettings(database_url=databases.create()))
    contrib = {  # two indicators; 'survey' skipped in the month
        "crime": {"raw": 2.0, "value": 10.0, "risk": 0.5, "weight": 0.444444, "deduction": 22.2222},
        "survey": {"skipped": True},
    }
    try:
        migrate.upgrade(engine, "0015")
        with engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO pingan.towns (code, county_code, name, kind, population, "
                    "households, geom, source, "
                    "source_id) VALUES ('330304001', '330304', '镇', 'town', 10, 3, "
                    "ST_GeomFromText('MULTIPOLYGON(((120 27,120.1 27,120.1 27.1,120 27,120 27)))', "
                    "4490), 't', '1')"
                )
            )
            model = c.execute(
                text(
                    "INSERT INTO pingan.index_models (name, version, sha256, toml) "
                    "VALUES ('m', '1', repeat('a', 64), '') RETURNING id"
                )
            ).scalar_one()
            for code, score, cls, rc, ch, reasons in (
                ("330304001001", 77.78, "yellow", None, None, []),
                ("330304001002", 12.5, "red", 1, -3.25, ["命案"]),
            ):
                c.execute(
                    text(
                        "INSERT INTO pingan.index_scores (period, level, code, town_code, model_id, "
                        "score, class, "
                        "colour_hex, rank, rank_change, change, veto, veto_reasons, contributions, "
                        "notes) VALUES "
                        "('2024-05-01', 'village', :code, '330304001', :m, :s, :cls, '#d7191c', :rank, "
                        ":rc, :ch, "
                        ":veto, :reasons, CAST(:contrib AS jsonb), ARRAY['a note'])"
                    ),
                    {
                        "code": code,
                        "m": model,
                        "s": score,
                        "cls": cls,
                        "rank": 1 if score > 50 else 2,
                        "rc": rc,
                        "ch": ch,
                        "veto": bool(reasons),
                        "reasons": reasons,
                        "contrib": json.dumps(contrib),
                    },
                )
        before = _rows(engine)
        migrate.upgrade(engine, "0016")
        assert _rows(engine) == before
        with engine.connect() as c:
            parts = c.execute(
                text("SELECT pingan.index_contributions('2024-05-01', 'village', '330304001002')")
            ).scalar_one()
            assert (
                c.execute(
                    text("SELECT pingan.index_contributions('2024-05-01', 'village', 'nowhere')")
                ).scalar_one()
                is None
            )
        assert parts == {
            "crime": {k: v for k, v in contrib["crime"].items() if k != "raw"},
            "survey": {"skipped": True},
        }
        migrate.upgrade(engine, "0020")  # the explanations become bytes: the same parts
        with engine.connect() as c:
            assert c.execute(
                text("SELECT pingan.index_contributions('2024-05-01', 'village', '330304001002')")
            ).scalar_one() == parts
            assert c.execute(text("SELECT length(value) FROM pingan.index_months")).scalar_one() == 4 * 2 * 2
        migrate.downgrade(engine, "0015")
        after = _rows(engine)
        assert after == before
    finally:
        engine.dispose()


def _rows(engine) -> list:  # noqa: ANN001
    with engine.connect() as c:
        return [
            tuple(r)
            for r in c.execute(
                text(
                    "SELECT period, level, code, town_code, score, class, rank, rank_change, change, "
                    "veto, veto_reasons, "
                    "notes FROM pingan.index_scores ORDER BY code"
                )
            ).all()
        ]
