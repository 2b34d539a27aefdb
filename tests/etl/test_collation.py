"""Databases are created with collation C and character type C.UTF-8 (cli/devdb.py
`create_database`): C compares text as bytes (memcmp), which for UTF-8 is code point order, the
order C.UTF-8 sorts by; so nothing sorts differently, only faster (docs/performance.md, ETL)."""

from __future__ import annotations

from sqlalchemy import text


def test_databases_compare_text_as_bytes_in_the_order_of_c_utf8(demo_engine) -> None:
    with demo_engine.connect() as conn:
        collate, ctype = conn.execute(
            text("SELECT datcollate, datctype FROM pg_database WHERE datname = current_database()")
        ).one()
        assert (collate, ctype) == ("C", "C.UTF-8")
        # the demo's Chinese text and codes, and random strings over all of Unicode (no NUL, no
        # surrogates): the database's order is that of C.UTF-8, row for row
        differ = conn.execute(
            text(
                "WITH v AS (SELECT address AS s FROM pingan.hazards "
                "UNION ALL SELECT title FROM pingan.hazards "
                "UNION ALL SELECT name FROM pingan.villages UNION ALL SELECT code FROM pingan.grids "
                "UNION ALL SELECT (SELECT string_agg(chr(CASE WHEN c BETWEEN 55296 AND 57343 THEN c + 2048 "
                "ELSE c END), '') FROM (SELECT 1 + floor(random() * CASE WHEN random() < 0.5 THEN 65535 "
                "ELSE 1114110 END)::int AS c, i FROM generate_series(1, 1 + i % 4)) z) "
                "FROM generate_series(1, 20000) i), "
                "o AS (SELECT row_number() OVER (ORDER BY s, md5(s)) AS a, "
                "row_number() OVER (ORDER BY s COLLATE \"C.utf8\", md5(s)) AS b FROM v WHERE s IS NOT NULL) "
                "SELECT count(*), count(*) FILTER (WHERE a <> b) FROM o"
            )
        ).one()
        assert differ[0] > 50_000 and differ[1] == 0, differ
        # and upper/lower still know more than ASCII (the character type is C.UTF-8's)
        assert conn.execute(text("SELECT upper('ÄöΣ abc')")).scalar_one() == "ÄÖΣ ABC"
