"""Helpers shared by tests."""

from __future__ import annotations

import os
import secrets

from sqlalchemy import Connection, text


def fresh_database_name() -> str:
    return f"pingan_test_{os.getpid()}_{secrets.token_hex(3)}"


def table_fingerprint(conn: Connection, table: str, exclude: frozenset[str] = frozenset()) -> str:
    """md5 of every row of ``table`` (minus ``exclude`` columns), independent of row order."""
    cols = [
        r[0]
        for r in conn.execute(
            text(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = 'pingan' AND table_name = :t ORDER BY ordinal_position"
            ),
            {"t": table},
        )
        if r[0] not in exclude
    ]
    row = "ROW(" + ", ".join(f'"{c}"' for c in cols) + ")::text"
    return conn.execute(
        text(f"SELECT count(*) || ':' || coalesce(md5(string_agg(r, '|' ORDER BY r)), '') "  # noqa: S608
             f"FROM (SELECT {row} AS r FROM pingan.{table}) s")
    ).scalar_one()
