"""Bulk mode: a batch whose new rows are many next to its table loads with the table's plain
indexes and foreign keys (and, for rows copied straight in, its unique keys) dropped, and made
again from their catalogue definitions before the batch commits.

Guarantees: all of it happens inside the batch's transaction, so no other transaction ever sees
the table without its indexes and keys; CHECKs and triggers stay; when bulk mode cannot begin
(a lock not granted within 5 s, missing rights, a key another table depends on) the batch loads
the normal way; two rows that share a unique key raise :class:`BulkConflict` (the caller loads
the batch again the normal way).
"""

from __future__ import annotations

import psycopg

from etl.rejects import db_reason
from etl.targets import Target

BULK_ROWS = 200_000  # this many new rows, and at least half the table's size: bulk mode
#: bulk mode's dropped plain indexes, foreign keys and unique keys: (name, definition) each
Bulk = tuple[list, list, list]


def begin(raw: psycopg.Connection, target: Target, rows: int, keys: bool = False) -> Bulk | None:
    """Bulk mode for a batch whose ``rows`` new records are many next to its table (a first
    load, a district's history):
    the table's plain indexes and foreign keys are dropped inside the batch's transaction and
    made again by :func:`end` before it commits (one index build and one join per
    constraint instead of a million index inserts and trigger lookups: 75 s -> 32 s for a
    million hazards). CHECKs and triggers stay, so refused rows are still found one by one; no
    other transaction ever sees the table without its indexes and keys. The cost: the table is
    locked for the batch (readers wait), so small batches never do this, and a lock not granted
    within 5 s (a long reader), missing rights or a key another table depends on fall back to
    the normal path.

    ``keys``: the unique keys too (only for rows that are all new, copied straight in:
    :func:`etl.direct.locate_and_load`). Keeping them during a COPY of a million hazards cost
    6.3 s, making them again 2.9 s. :func:`restore_keys` makes them again before anything is upserted;
    if two rows share a key there, the batch is loaded again the normal way
    (:class:`BulkConflict`), where each such row becomes a reject.

    Returns the definitions to restore, or None when the batch loads normally."""
    if rows < BULK_ROWS:
        return None
    table_rows = raw.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", (target.table,))
    if rows < 0.5 * max(table_rows.fetchone()[0], 0):
        return None
    indexes = raw.execute(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
        "WHERE indrelid = %s::regclass AND NOT indisunique AND NOT indisprimary ORDER BY 1",
        (target.table,),
    ).fetchall()
    fkeys = raw.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY 1",
        (target.table,),
    ).fetchall()
    uniques = raw.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'u' ORDER BY 1",
        (target.table,),
    ).fetchall() if keys else []
    try:
        with raw.transaction():
            raw.execute("SET LOCAL lock_timeout = '5s'")
            for name, _ in indexes:
                raw.execute(f"DROP INDEX {name}")
            for name, _ in [*fkeys, *uniques]:
                raw.execute(f'ALTER TABLE {target.table} DROP CONSTRAINT "{name}"')
            raw.execute("SET LOCAL lock_timeout = 0")
    except (
        psycopg.errors.LockNotAvailable,
        psycopg.errors.InsufficientPrivilege,
        psycopg.errors.DependentObjectsStillExist,
    ):
        return None
    return indexes, fkeys, uniques


class BulkConflict(Exception):  # noqa: N818
    """Two rows of a bulk-mode batch share a unique key: the batch is rolled back and loaded
    again the normal way."""


def restore_keys(raw: psycopg.Connection, target: Target, bulk: Bulk) -> None:
    """Make the unique keys bulk mode dropped again (each by sorting once), before anything is
    upserted against them; their list is emptied, so :func:`end` does not make them twice."""
    for name, definition in bulk[2]:
        try:
            with raw.transaction():
                raw.execute(f'ALTER TABLE {target.table} ADD CONSTRAINT "{name}" {definition}')
        except psycopg.errors.UniqueViolation as exc:
            raise BulkConflict(f"{name}: {db_reason(exc)}") from None
    bulk[2].clear()


def end(raw: psycopg.Connection, target: Target, bulk: Bulk) -> None:
    restore_keys(raw, target, bulk)
    indexes, fkeys, _ = bulk
    for _, definition in indexes:
        raw.execute(definition)
    for name, definition in fkeys:
        raw.execute(f'ALTER TABLE {target.table} ADD CONSTRAINT "{name}" {definition}')
