"""The general way into a table: a staging table filled by COPY, then ``INSERT ... ON CONFLICT
DO UPDATE ... WHERE IS DISTINCT FROM`` in ranges of :data:`UPSERT_CHUNK` rows, then the events
of the changed records.

Guarantees: an unchanged row is not touched; a changed row is updated and gets its event (a
person's grade record too when registered); a range the database refuses is halved inside
savepoints until each refused row is found and rejected with the rule it broke, and the other
rows of the range are still loaded. Bulk mode (:mod:`etl.bulk`) is decided here when the caller
has not begun it, and ended here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy import Connection, text

from etl import bulk as bulk_mode  # the module; ``bulk`` below is a batch's bulk mode
from etl.areas import containment_rejects
from etl.bulk import Bulk
from etl.rejects import REFUSED, db_reason
from etl.targets import Target
from layers.copy import copy_binary

#: ``progress(stage, done, total)``: the stage's name, and for long stages the rows done so far
#: out of ``total`` (both None for a stage without a count).
Progress = Callable[..., None]
UPSERT_CHUNK = 50_000  # rows per upsert statement: progress steps, and what a refusal bisects


def stage_and_upsert(
    conn: Connection,
    target: Target,
    frame: pd.DataFrame,
    batch_id: int,
    say: Progress,
    split: dict[str, float] | None = None,
    direct: tuple[int, Bulk | None] | None = None,
    bulk_ok: bool = True,
) -> tuple[dict[str, int], pd.DataFrame]:
    """The general way: write ``frame`` into the target table through a staging table filled by
    COPY, then ``INSERT ... ON CONFLICT DO UPDATE ... WHERE IS DISTINCT FROM`` in ranges that
    are halved until each refused row is found; changed rows get their events. Returns the
    counts and the rows the database refused.

    ``direct``: the rows :func:`etl.direct.locate_and_load` copied straight into the table
    before, and the bulk mode it began (None: bulk mode is decided here, on the rows the table holds)."""
    split = {} if split is None else split
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        split[name] = split.get(name, 0.0) + now - clock
        clock = now

    cols = [*target.fields, *target.location, "source", "source_id"]
    ident = "id" if target.shape == "point" else "code"
    raw = conn.connection.driver_connection
    copied, bulk = direct or (0, None)
    rejects: list[dict] = []
    counts = {"inserted": copied, "updated": 0, "unchanged": 0, "bulk": False, "direct": copied, "moved": 0}
    if len(frame):
        def step(stage: str, done: int | None = None, total: int | None = None) -> None:
            say(stage, None if done is None else copied + done, None if total is None else copied + total)

        what = (cols, ident, batch_id)
        staged = _stage(conn, raw, target, frame, what, bulk, direct is None and bulk_ok, rejects, step, lap)
        counts["inserted"] += staged["inserted"]
        counts["updated"] = staged["updated"]
        counts["moved"] = staged["moved"]
        bulk = staged["bulk"] if direct is None else bulk
    if bulk is not None:
        say("rebuilding indexes")
        bulk_mode.end(raw, target, bulk)
        lap("indexes")
    # the rows copied straight in were all new: the unchanged ones are among the staged
    counts["unchanged"] = len(frame) - len(rejects) - (counts["inserted"] - copied) - counts["updated"]
    counts["bulk"] = bulk is not None
    return counts, pd.DataFrame(rejects, columns=["row_number", "column_name", "reason", "raw"])


def _stage(
    conn: Connection,
    raw: psycopg.Connection,
    target: Target,
    frame: pd.DataFrame,
    what: tuple[list[str], str, int],
    bulk: Bulk | None,
    decide_bulk: bool,
    rejects: list[dict],
    say: Progress,
    lap: Callable[[str], None],
) -> dict:
    """The general way: stage ``frame``, upsert it in bisectable ranges, record events.

    ``what``: the columns, the identity column and the batch; ``bulk``: bulk mode as begun by
    the caller, or (``decide_bulk``) to be decided here on the rows the table already holds."""
    cols, ident, batch_id = what
    conn.execute(
        text(
            f"CREATE TEMP TABLE stage ON COMMIT DROP AS SELECT {', '.join(cols)}, "  # noqa: S608
            f"0::integer AS _pos, 0::integer AS _row FROM {target.table} WITH NO DATA"
        )
    )
    staged = frame.assign(_pos=np.arange(len(frame)))
    copy_binary(conn, "stage", staged[[*cols, "_pos", "_row"]])
    conn.execute(text("CREATE INDEX ON stage (_pos)"))
    lap("copy stage")
    rejects += containment_rejects(conn, target)
    # what the changed rows were before, for their events (only rows already in the table)
    kept = {"pingan.hazard_events": ", t.state", "pingan.case_events": ", t.state",
            "pingan.person_grades": ", t.grade, t.grade_since"}.get(target.events or "", "")
    towns = "town_code" in cols  # kept to tell records an update moved to another 镇街
    kept += ", t.town_code AS _town" if towns else ""
    start = _STARTS.get(target.table)  # and, for the refresh, the place and month a record left
    if start:
        kept += f", coalesce(t.grid_code, t.village_code, t.town_code) AS _place, t.{start} AS _start"
    on = " AND ".join(f"t.{k} = s.{k}" for k in target.key)
    conn.execute(
        text(
            f"CREATE TEMP TABLE before ON COMMIT DROP AS SELECT t.{ident} AS id{kept} "  # noqa: S608
            f"FROM {target.table} t JOIN stage s ON {on}"
        )
    )
    conn.execute(
        text(
            f"CREATE TEMP TABLE changed ON COMMIT DROP AS SELECT {ident} AS id, "  # noqa: S608
            f"true AS inserted FROM {target.table} WITH NO DATA"
        )
    )
    sql = _upsert_sql(target, cols, ident)
    if decide_bulk:
        known = conn.execute(text("SELECT count(*) FROM before")).scalar_one()
        bulk = bulk_mode.begin(raw, target, len(frame) - known)
    for lo in range(0, len(frame), UPSERT_CHUNK):
        hi = min(lo + UPSERT_CHUNK, len(frame)) - 1
        _upsert_range(raw, sql, batch_id, lo, hi, rejects, staged)
        say("loading", hi + 1, len(frame))
    lap("upsert")
    if target.events == "pingan.person_grades":
        _grade_events(conn, batch_id)
    elif target.events:
        _events(conn, target, batch_id)
    inserted, changed = conn.execute(
        text("SELECT count(*) FILTER (WHERE inserted), count(*) FROM changed")
    ).one()
    if start and changed > inserted:
        conn.execute(text(
            "INSERT INTO pingan.refresh_moved (batch_id, code, t0) "  # noqa: S608
            f"SELECT :b, b._place, b._start FROM changed c JOIN before b ON b.id = c.id "
            f"JOIN {target.table} t ON t.{ident} = c.id WHERE NOT c.inserted "
            f"AND (coalesce(t.grid_code, t.village_code, t.town_code) IS DISTINCT FROM b._place "
            f"OR t.{start} IS DISTINCT FROM b._start)"), {"b": batch_id})
    moved = conn.execute(text(
        f"SELECT count(*) FROM changed c JOIN before b ON b.id = c.id JOIN {target.table} t "  # noqa: S608
        f"ON t.{ident} = c.id WHERE NOT c.inserted AND t.town_code IS DISTINCT FROM b._town"
    )).scalar_one() if towns and changed > inserted else 0
    lap("events")
    return {"inserted": inserted, "updated": changed - inserted, "bulk": bulk, "moved": moved}


# the instant that places a record in the months the refresh counts (etl/refresh.py: the monthly
# statistics of hazards and cases; the index inputs of persons too)
_STARTS = {"pingan.hazards": "found_at", "pingan.cases": "accepted_at",
           "pingan.persons": "registered_at"}


def _upsert_sql(target: Target, cols: list[str], ident: str) -> str:
    # the first registration of a record keeps its provenance; the key is not compared
    compared = [c for c in cols if c not in ("source", "source_id", *target.key)]
    col_list = ", ".join(cols)
    new = ", ".join("EXCLUDED." + c for c in compared)
    return (
        f"WITH up AS (INSERT INTO {target.table} AS t ({col_list}, batch_id) "  # noqa: S608
        f"SELECT {col_list}, %(batch)s FROM stage WHERE _pos BETWEEN %(lo)s AND %(hi)s "
        f"ON CONFLICT ({', '.join(target.key)}) DO UPDATE SET "
        f"({', '.join(compared)}, batch_id, updated_at) = ({new}, EXCLUDED.batch_id, now()) "
        f"WHERE ({', '.join('t.' + c for c in compared)}) IS DISTINCT FROM ({new}) "
        f"RETURNING t.{ident}, (xmax = 0) AS inserted) "
        f"INSERT INTO changed SELECT * FROM up"
    )


def _upsert_range(
    raw: psycopg.Connection,
    sql: str,
    batch_id: int,
    lo: int,
    hi: int,
    rejects: list,
    staged: pd.DataFrame,
) -> None:
    """Upsert rows lo..hi; when the database refuses, halve the range until the refused rows
    are found (log2(n) statements per bad row), and reject each with the rule it broke."""
    if lo > hi:
        return
    try:
        with raw.transaction():  # a savepoint: a refusal undoes only this range
            raw.execute(sql, {"batch": batch_id, "lo": lo, "hi": hi})
    except REFUSED as exc:
        if lo == hi:
            rec = staged.iloc[lo]
            rejects.append(
                {
                    "row_number": int(rec["_row"]),
                    "column_name": None,
                    "reason": db_reason(exc),
                    "raw": {"source_id": rec["source_id"]},
                }
            )
            return
        mid = (lo + hi) // 2
        _upsert_range(raw, sql, batch_id, lo, mid, rejects, staged)
        _upsert_range(raw, sql, batch_id, mid + 1, hi, rejects, staged)


def _events(conn: Connection, target: Target, batch_id: int) -> None:
    """An event for each record the import changed (from its state before to its state now).

    New records get none: their own timestamps already tell where they are in the workflow."""
    conn.execute(
        text(
            f"INSERT INTO {target.events} "  # noqa: S608
            f"({target.event_fk}, from_state, to_state, at, actor, note, batch_id) "
            f"SELECT t.id, b.state, t.state, now(), 'etl', 'updated by import', :batch "
            f"FROM changed c JOIN before b ON b.id = c.id JOIN {target.table} t ON t.id = c.id "
            "WHERE NOT c.inserted"
        ),
        {"batch": batch_id},
    )


def _grade_events(conn: Connection, batch_id: int) -> None:
    """A grade record for each person the import registered or whose grade it changed."""
    conn.execute(
        text(
            "INSERT INTO pingan.person_grades (person_id, grade, previous_grade, changed_at, reason, "
            "changed_by, batch_id) "
            "SELECT t.id, t.grade, b.grade, CASE WHEN c.inserted OR t.grade_since > b.grade_since "
            "THEN t.grade_since ELSE now() END, "
            "CASE WHEN c.inserted THEN '初次登记 (import)' ELSE 'updated by import' END, 'etl', :batch "
            "FROM changed c JOIN pingan.persons t ON t.id = c.id LEFT JOIN before b ON b.id = c.id "
            "WHERE c.inserted OR b.grade IS DISTINCT FROM t.grade"
        ),
        {"batch": batch_id},
    )
