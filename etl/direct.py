"""The direct path: the new rows of a point layer keyed on ``(source, source_id)`` are located
and copied straight into the table, a chunk at a time, while the next chunk is located.

Guarantees: a key the table holds already is never copied (those rows go the general way,
:mod:`etl.upsert`); a chunk the database refuses is undone to its savepoint and goes the general
way, where the refused rows are found one by one; an error in the copier that is not a refusal
fails the batch; both ways leave the same table, counts, rejects and events.
"""

from __future__ import annotations

import queue
import threading
import time

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy import Connection

from etl import bulk as bulk_mode  # the module; ``bulk`` below is a batch's bulk mode
from etl.locate import locate, located_notes
from etl.rejects import REFUSED
from etl.targets import Target
from etl.upsert import Progress, stage_and_upsert
from layers.copy import NotBinary, column_types, copy_text, encode_binary, send_binary


def ok(target: Target) -> bool:
    """Whether new rows of ``target`` may skip the staging table: located records keyed on
    (source, source_id) whose new rows need nothing back (persons need their new ids for the
    grade records; areas are checked against their parents on the staging table)."""
    return (
        target.shape == "point"
        and target.key == ("source", "source_id")
        and target.events != "pingan.person_grades"
    )


def _known_keys(raw: psycopg.Connection, target: Target, frame: pd.DataFrame) -> np.ndarray:
    """A mask over ``frame``: the rows whose (source, source_id) the table holds already."""
    known = np.zeros(len(frame), dtype=bool)
    if not len(frame):
        return known
    for source in frame["source"].unique():
        rows = (frame["source"] == source).to_numpy()
        if raw.execute(
            f"SELECT NOT EXISTS (SELECT 1 FROM {target.table} WHERE source = %s)", (source,)  # noqa: S608
        ).fetchone()[0]:
            continue  # a source's first load: nothing to look up
        ids = frame["source_id"].to_numpy(dtype=object)[rows]
        found = raw.execute(
            f"SELECT t.source_id FROM unnest(%s::text[]) AS k(id) "  # noqa: S608
            f"JOIN {target.table} t ON t.source = %s AND t.source_id = k.id",
            ([str(i) for i in ids], source),
        ).fetchall()
        hit = pd.Index([r[0] for r in found])
        known[np.flatnonzero(rows)[pd.Index(ids.astype(str)).isin(hit)]] = True
    return known


def locate_and_load(
    conn: Connection,
    target: Target,
    feed: tuple,
    raw_table,  # noqa: ANN001 (RawTable)
    datum_where: tuple,
    batch_id: int,
    say: Progress,
    split: dict[str, float],
    bulk_ok: bool = True,
) -> tuple[dict[str, int], pd.DataFrame, pd.DataFrame, list[str]]:
    """Locate and load a point layer in chunks of :data:`etl.upsert.UPSERT_CHUNK` rows, two at a
    time: while a copier thread copies chunk N into the table (in its savepoint, as
    :func:`etl.upsert.stage_and_upsert` does), this thread locates chunk N+1, which reads nothing
    from the database (``datum_where``: the default datum and the :class:`~etl.locate.Places`
    read before).
    The database works while Python works, instead of after it. At most two located chunks wait
    for the copier, so memory stays that of a few chunks.

    Rows whose key the table holds already, and chunks the database refused, go the general way
    afterwards (:func:`etl.upsert.stage_and_upsert`), which also makes the counts, rejects and
    events, as for a batch loaded that way only. Returns the counts, the rows the database
    refused, the rows locating rejected, and locating's notes over all chunks (经度 and 纬度
    swapped; 0, 0 taken as no coordinates; a 所属网格 other than the grid placed in).

    ``feed``: the mapped chunks (an iterator: a file may be mapped while the chunks before it
    are copied, :class:`etl.stream.Stream`), the keys ``(source, source_id)`` of all their rows
    indexed as the chunks' rows are, a number per row that is the same for rows of the same key, and
    the count of rows for the progress bar."""
    chunks, keyed, ids, total = feed
    datum, where = datum_where
    clock = time.perf_counter()
    cols = [*target.fields, *target.location, "source", "source_id"]
    raw = conn.connection.driver_connection
    known = pd.Series(_known_keys(raw, target, keyed), index=keyed.index)
    # bulk mode is decided on the rows before locating (the few it rejects do not matter here),
    # each key once
    new = int(np.count_nonzero(np.bincount(ids[~known.to_numpy()])))
    bulk = bulk_mode.begin(raw, target, new, True) if bulk_ok else None
    split["keys"] = time.perf_counter() - clock
    say("loading", 0, total)
    todo: queue.Queue = queue.Queue(maxsize=2)
    done = {"copied": 0}
    refused: list[pd.DataFrame] = []
    failure: list[BaseException] = []
    types = column_types(conn, target.table, [*cols, "batch_id"])

    def copier() -> None:
        while (item := todo.get()) is not None:
            if failure:
                continue  # drain: the main thread stops handing over chunks
            part, data = item
            try:
                try:
                    with raw.transaction():  # a savepoint: a refused chunk is undone and staged below
                        if data is not None:
                            send_binary(conn, target.table, [*cols, "batch_id"], data)
                        else:
                            copy_text(conn, target.table, part[cols].assign(batch_id=batch_id))
                    done["copied"] += len(part)
                except REFUSED:
                    refused.append(part)
                say("loading", done["copied"], total)
            except BaseException as exc:  # noqa: BLE001 (raised again in the loading thread)
                failure.append(exc)

    thread = threading.Thread(target=copier, name="etl-copier", daemon=True)
    rest: list[pd.DataFrame] = []
    rejects: list[pd.DataFrame] = []
    swapped = zeros = 0
    elsewhere: list[int] = []
    coarse: dict[str, int] = {}
    locating = mapping = 0.0
    start = time.perf_counter()
    thread.start()
    try:
        while not failure:
            t0 = time.perf_counter()
            part = next(chunks, None)  # mapped here, for a file mapped a chunk at a time
            mapping += time.perf_counter() - t0
            if part is None:
                break
            t0 = time.perf_counter()  # locating and encoding: the Python side of the pipeline
            located, why = locate(None, part, raw_table, datum, where)
            rejects.append(why)
            swapped += located.swapped
            zeros += located.zeros
            elsewhere += located.elsewhere
            for level, n in located.coarse.items():
                coarse[level] = coarse.get(level, 0) + n
            frame = located.frame
            seen = known.loc[frame.index].to_numpy()
            if seen.any():
                rest.append(frame[seen])
                frame = frame[~seen]
            if len(frame):
                # encoded here, so that the copier only sends and the server never waits for it
                try:
                    data = encode_binary(frame[cols].assign(batch_id=batch_id), types)
                except NotBinary:
                    data = None
                locating += time.perf_counter() - t0
                todo.put((frame, data))
            else:
                locating += time.perf_counter() - t0
    finally:
        todo.put(None)
        thread.join()
    if failure:
        raise failure[0]
    split["copy direct"] = time.perf_counter() - start - locating - mapping
    split["locate"] = locating  # with the encoding of the chunks for COPY
    split["map"] = mapping
    staged = pd.concat([*refused, *rest]) if refused or rest else pd.DataFrame()
    if bulk is not None:
        clock = time.perf_counter()
        bulk_mode.restore_keys(raw, target, bulk)  # before any upsert: ON CONFLICT needs them
        split["unique keys"] = time.perf_counter() - clock
    counts, db_rejects = stage_and_upsert(conn, target, staged, batch_id, say, split, (done["copied"], bulk))
    located_rejects = [r for r in rejects if len(r)]
    return (
        counts,
        db_rejects,
        pd.concat(located_rejects, ignore_index=True) if located_rejects else None,
        located_notes(swapped, zeros, elsewhere, coarse),
    )
