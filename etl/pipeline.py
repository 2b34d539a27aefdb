"""`pingan etl load`: read → map → locate → copy new rows / stage and upsert the others, one
transaction per batch.

Guarantees:
- one batch is one transaction: a crash or SIGKILL mid-load leaves the database as before it,
  and the re-run loads the batch whole (no duplicates: the upsert is keyed on
  ``(source, source_id)``);
- nothing is dropped without a trace: a row that cannot be loaded is a reject with its file,
  row number, column and reason, found by the profile (bad values), the locator (no
  coordinates, outside the district) or the database itself (its CHECKs name the rule);
- loading the same file again changes no row (``IS DISTINCT FROM`` guards the update); a
  changed row is updated and gets an event.

This module reads the file, maps it, makes the layer's own checks and keeps the batch's books
(its row, its rejects, its summary); the ways into the table are modules of their own:
:mod:`etl.direct` (new point rows located and copied straight in), :mod:`etl.upsert` (the
general way: stage and upsert), :mod:`etl.bulk` (bulk mode), :mod:`etl.stream` (the mapped rows
completed, whole or a chunk at a time), :mod:`etl.rejects` (how a reject is recorded).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from etl import direct, readers, upsert
from etl.areas import prepare_areas
from etl.bulk import BulkConflict
from etl.locate import locate, places
from etl.profile import (
    Mapped,
    Profile,
    ProfileError,
    apply_profile,
    builtin,
    match_columns,
    read_error_message,
)
from etl.readers import CsvStream, RawTable, Unstreamable, read_file, stream_csv
from etl.rejects import no_rejects, reason_counts, write_rejects
from etl.stream import ReadStream, Stream, chunked, in_chunks, prepare, streams
from etl.targets import TARGETS, Target
from etl.upsert import Progress, stage_and_upsert
from gis.datum import check_datum
from layers import versions
from layers.db import SYSTEM, set_principal

if TYPE_CHECKING:
    from layers.crypto import KeyRing


@dataclass
class BatchResult:
    batch_id: int
    status: str
    read: int = 0
    loaded: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 24), b""):
            h.update(chunk)
    return h.hexdigest()


def _sha256_beside(path: Path) -> Callable[[], str]:
    """:func:`file_sha256` in a thread of its own, while this one reads the file; returns the
    function that waits for the digest (and raises what hashing raised). Reading and hashing
    release the GIL (16 MB at a time): the hash of a 250 MB file (0.2 s) runs on the other core."""
    executor = ThreadPoolExecutor(1, thread_name_prefix="etl-sha256")
    future = executor.submit(file_sha256, path)
    executor.shutdown(wait=False)  # the submitted hash still runs; the thread ends with it
    return future.result


def load_file(
    engine: Engine,
    path: Path,
    layer: str,
    *,
    profile: Profile | None = None,
    source: str = "import",
    encoding: str | None = None,
    datum: str | None = None,
    keys: KeyRing | None = None,
    progress: Progress | None = None,
    bulk: bool = True,
    sheet: str | None = None,
) -> BatchResult:
    """Load one file into ``layer``; see the module docstring for what is guaranteed.
    ``sheet``: the sheet of a workbook to read (else its first).

    ``keys`` (the data key ring) is needed for ``persons``, whose name, ID number and phone are
    sealed before they are written. ``bulk=False``: never bulk mode (:func:`etl.bulk.begin`)."""
    if layer not in TARGETS:
        raise ValueError(f"unknown layer {layer!r}; loadable: {', '.join(TARGETS)}")
    if layer == "persons" and keys is None:
        raise ValueError("loading persons needs the data key ring (PINGAN_DATA_KEY)")
    target, say = TARGETS[layer], progress or (lambda *_a: None)
    profile = profile or builtin(layer)
    t, began = time.perf_counter(), datetime.now(UTC)  # the batch's start: before reading
    hashing = _sha256_beside(path)
    how = (engine, path, target, profile, source, encoding, datum, keys, say, bulk, sheet)
    if encoding is None and sheet is None and _streamable(engine, path, target, profile, source):
        result = _load(*how, hashing, t, began, read_stream=True)
        if result is not None:
            return result
    return _load(*how, hashing, t, began, read_stream=False)  # the file read whole


def _load(
    engine: Engine, path: Path, target: Target, profile: Profile, source: str, encoding: str | None,
    datum: str | None, keys: KeyRing | None, say: Progress, bulk: bool, sheet: str | None,
    hashing: Callable[[], str], t: float, began: datetime, *, read_stream: bool,
) -> BatchResult | None:
    """:func:`load_file`'s batch. ``read_stream``: the CSV is read as a stream
    (:func:`etl.readers.stream_csv`, :class:`etl.stream.ReadStream`); None when it gave way
    (rolled back: nothing of it is left), and the file is to be loaded whole."""
    how = (engine, path, target, profile, source, encoding, datum, keys, say, bulk, sheet, hashing, t, began)
    if not read_stream:
        return _batch(*how, None)
    say("reading")
    try:
        reading = stream_csv(path, path.read_bytes(), upsert.UPSERT_CHUNK)
    except OSError:
        return None  # read whole, it fails as such a file does
    if reading is None:
        return None
    try:
        return _batch(*how, reading)
    finally:
        reading.close()  # the decoding child and the reading thread end with the batch


def _batch(  # noqa: C901 (one batch's steps, in order)
    engine: Engine, path: Path, target: Target, profile: Profile, source: str, encoding: str | None,
    datum: str | None, keys: KeyRing | None, say: Progress, bulk: bool, sheet: str | None,
    hashing: Callable[[], str], t: float, began: datetime, reading: CsvStream | None,
) -> BatchResult | None:
    """One batch: the file read whole, or as the stream ``reading`` (None when it gave way)."""
    clock: dict[str, float] = {}
    stream = None
    try:
        # a datum for the whole file that no name matches fails the batch, not each row
        datum = check_datum(datum) if datum else None
        say("reading")
        if reading is not None:
            raw = reading.next_chunk()  # the first rows: the rest is read while they are copied
            if raw is None:
                raise Unstreamable("no rows")
        else:
            raw = _read(path, encoding, sheet, profile)
        clock["read"] = time.perf_counter() - t
        say("mapping columns")
        n_read = len(raw) if reading is None else reading.most  # the stream's: at most
        if reading is not None:
            stream = ReadStream(reading, raw, target, profile, source, datum)
            raw, mapped, early = reading, stream.head, None
        elif streams(raw, target, profile):
            # mapped a chunk at a time inside the locate/copy pipeline, so the database copies
            # while the rest of the file is mapped; here only the first chunk and the file's keys
            stream = Stream(raw, target, profile, source, datum)
            mapped, early = stream.head, None
        else:
            mapped = apply_profile(raw, profile)
            if datum:
                mapped.frame["datum"] = datum
            early = _early_rejects(mapped, raw, target, profile, keys)
        clock["map"] = time.perf_counter() - t - sum(clock.values())
    except Exception as exc:  # a file we cannot read at all: a failed batch, with the reason
        if reading is not None:  # read whole, it fails (or not) as such a file does
            return None
        try:
            digest = hashing()
        except OSError:  # no such file, or not readable: the batch records no hash
            digest = None
        return _failed(engine, target, path, digest, source, read_error_message(exc), began)
    digest = hashing()
    if stream is None:
        prepare(mapped, target, source)
    result = BatchResult(0, "running", read=n_read, warnings=list(mapped.warnings))
    try:
        with engine.begin() as conn:
            set_principal(conn, SYSTEM)
            # a batch is one transaction by design: its COPY and upserts of a million rows may
            # take minutes, which the service's per-statement limit is not meant for
            conn.execute(text("SET LOCAL statement_timeout = 0"))
            if reading is not None and _source_known(conn, target, source):
                raise Unstreamable("the table holds rows of this source")  # their keys need the file's
            batch_id = _open_batch(conn, target, path, digest, source, mapped, began)
            split: dict[str, float] = {}
            if target.shape == "point" and direct.ok(target):
                # located a chunk at a time while the connection copies the chunk before
                say("locating")
                if stream is not None:
                    found = places(conn, None, raw, profile.datum, addresses=stream.addresses, rows=n_read)
                    feed = (stream.chunks(), stream.keyed, stream.ids, n_read)
                else:
                    found = places(conn, mapped, raw, profile.datum)
                    ids = np.arange(len(mapped.frame))  # deduplicated: each 编号 once
                    feed = (chunked(mapped), mapped.frame[["source", "source_id"]], ids, len(mapped.frame))
                where = (profile.datum, found)
                streamed = direct.locate_and_load(conn, target, feed, raw, where, batch_id, say, split, bulk)
                counts, db_rejects, rejects, notes = streamed
                result.read = len(raw)  # a stream's rows are known once it is read
                raw.release()  # the file's text, kept for the locator's rejects (rows as read)
                if stream is not None:
                    mapped.rejects = pd.concat(stream.rejects, ignore_index=True)
                    # the read's warnings (a stream's empty rows are known once it is read)
                    result.warnings = [*raw.warnings, *stream.warnings()]
                result.warnings += notes
                clock["map"] += split.pop("map")  # the chunks mapped while the copies ran
                clock["locate"] = split.pop("locate")  # its seconds, spent while the copies ran
            else:
                if target.shape == "point":
                    say("locating")
                    located, rejects = locate(conn, mapped, raw, profile.datum)
                    result.warnings += located.warnings
                    frame = located.frame
                else:
                    frame, rejects = mapped.frame, None
                raw.release()  # the file's text, kept for the locator's rejects (rows as read)
                if keys is not None and target.layer == "persons":
                    from etl import persons  # the data key ring's libraries: only for persons

                    frame = persons.seal(conn, frame, keys)
                clock["locate"] = time.perf_counter() - t - sum(clock.values())
                say("loading", 0, len(frame))
                counts, db_rejects = stage_and_upsert(
                    conn, target, frame, batch_id, say, split, bulk_ok=bulk
                )
            clock["load"] = time.perf_counter() - t - sum(clock.values())
            all_rejects = pd.concat(
                [r for r in (early, mapped.rejects, rejects, db_rejects) if r is not None and len(r)]
                or [no_rejects()],
                ignore_index=True,
            )
            if target.layer == "persons":
                from etl import persons

                all_rejects = persons.mask_rejects(all_rejects, mapped.matched)
            write_rejects(conn, batch_id, all_rejects)
            result.batch_id, result.status = batch_id, "done"
            result.loaded, result.updated = counts["inserted"], counts["updated"]
            result.unchanged, result.rejected = counts["unchanged"], len(all_rejects)
            result.reasons = reason_counts(all_rejects)
            if counts["moved"]:
                result.warnings.append(
                    f"{counts['moved']} records moved to another 镇街 on update: if they are another town's "
                    "records with the same 编号, load each town's exports with its own --source")
            if counts["bulk"]:
                result.warnings.append(f"bulk mode: the indexes and foreign keys of {target.table} "
                                       "were made again in this batch")
            result.seconds = clock | {"total": time.perf_counter() - t} | split  # all but the commit
            _close_batch(conn, result)
            if result.loaded or result.updated:  # an unchanged reload keeps the tile caches
                versions.bump(conn, [target.layer_id])
            committing = time.perf_counter()
    except BulkConflict as exc:  # rolled back: loaded again the normal way, which rejects such rows
        again = load_file(engine, path, target.layer, profile=profile, source=source, encoding=encoding,
                          datum=datum, keys=keys, progress=say, bulk=False, sheet=sheet)
        again.warnings.append(f"bulk mode gave way to the normal path: {exc}")
        return again
    except Unstreamable:  # rolled back: the file is loaded whole
        return None
    except Exception as exc:
        return _failed(engine, target, path, digest, source, read_error_message(exc), began)
    # read + map + locate + load (+ the batch's bookkeeping) + commit = total; then the load's own
    # split: keys, copy direct, copy stage, upsert, events, indexes
    clock["commit"] = time.perf_counter() - committing  # index builds deferred to it, the WAL flush
    result.seconds = clock | {"total": time.perf_counter() - t} | split
    _record_commit(engine, result)
    return result


def _streamable(engine: Engine, path: Path, target: Target, profile: Profile, source: str) -> bool:
    """Whether ``path`` may be read as a stream (:class:`etl.stream.ReadStream`): a large CSV
    for a layer mapped a chunk at a time (:func:`etl.stream.streams`), of a source the table
    holds no rows of yet (checked again in the batch)."""
    try:
        size = path.stat().st_size
    except OSError:
        return False
    if path.suffix.lower() not in (".csv", ".txt", ".tsv") or size < readers.STREAM_MIN_BYTES:
        return False
    if not in_chunks(target, profile):
        return False
    with engine.connect() as conn:
        return not _source_known(conn, target, source)


def _source_known(conn: Connection, target: Target, source: str) -> bool:
    return conn.execute(
        text(f"SELECT EXISTS (SELECT 1 FROM {target.table} WHERE source = :s)"), {"s": source}  # noqa: S608
    ).scalar_one()


def _read(path: Path, encoding: str | None, sheet: str | None, profile: Profile) -> RawTable:
    """The file's table; of a workbook whose sheet is not named, the first sheet whose headers
    the profile matches (a 说明 or 封面 sheet before the data is common), else the first."""
    raw = read_file(path, encoding=encoding, sheet=sheet)
    if sheet is not None or len(raw.sheets) < 2 or _matches(profile, raw):
        return raw
    for name in raw.sheets[1:]:
        other = read_file(path, sheet=name)
        if _matches(profile, other):
            other.warnings += (f"the first sheet, {raw.sheets[0]!r}, matches no profile for {profile.layer}",)
            return other
    return raw  # mapping says what the first sheet lacks


def _matches(profile: Profile, raw: RawTable) -> bool:
    try:
        match_columns(profile, raw.columns)
    except ProfileError:
        return False
    return True


def _early_rejects(
    mapped: Mapped, raw, target: Target, profile: Profile, keys: KeyRing | None  # noqa: ANN001
) -> pd.DataFrame | None:
    """Layer-specific checks before the database: ID numbers of persons, boundaries of areas."""
    if target.shape == "polygon":
        return prepare_areas(mapped, raw, target, profile.datum)
    if target.layer == "survey":
        from etl import survey

        return survey.prepare(mapped, raw)
    if target.layer != "persons" or keys is None:
        return None
    from etl import persons

    f = mapped.frame
    ids, why = persons.check_id_numbers(f["id_number"])
    bad = why.notna()
    early = pd.DataFrame(
        {
            "row_number": mapped.row_numbers[bad].to_numpy(),
            "column_name": mapped.matched.get("id_number", "id_number"),
            "reason": why[bad].to_numpy(),
            "raw": raw.records(f.index[bad].to_numpy()),
        }
    )
    f = f[~bad].assign(id_number=ids[~bad])
    f = f.assign(**persons.identity_fields(f["id_number"]))
    f["id_number_hash"] = persons.blind_indexes(f["id_number"], keys)
    # without a register number, the person's key is the blind index (never the clear number)
    hashes = "pid-" + f["id_number_hash"].str.slice(0, 32)
    f["source_id"] = f["source_id"].where(f["source_id"].notna(), hashes) if "source_id" in f else hashes
    f["grade_since"] = f["grade_since"].where(f["grade_since"].notna(), f["registered_at"])
    # the same person twice in one file: the last row wins
    dup = f.duplicated("id_number_hash", keep="last")
    rows = mapped.row_numbers[~bad]
    if dup.any():
        extra = pd.DataFrame(
            {
                "row_number": rows[dup].to_numpy(),
                "column_name": mapped.matched.get("id_number", "id_number"),
                "reason": "the same 身份证号 again in this file; a later row was loaded",
                "raw": raw.records(f.index[dup].to_numpy()),
            }
        )
        early = pd.concat([early, extra], ignore_index=True)
    mapped.frame, mapped.row_numbers = f[~dup], rows[~dup]
    return early


def _open_batch(
    conn: Connection, target: Target, path: Path, digest: str, source: str, mapped: Mapped, began: datetime
) -> int:
    return conn.execute(
        text(
            "INSERT INTO pingan.etl_batches (source, layer, file_name, file_hash, params, started_at) "
            "VALUES (:s, :l, :f, :h, CAST(:p AS jsonb), :t) RETURNING id"
        ),
        {
            "s": source,
            "l": target.layer,
            "f": path.name,
            "h": digest,
            "p": json.dumps({"columns": mapped.matched}, ensure_ascii=False),
            "t": began,
        },
    ).scalar_one()


def _close_batch(conn: Connection, r: BatchResult) -> None:
    conn.execute(
        text(
            "UPDATE pingan.etl_batches SET status = 'done', finished_at = clock_timestamp(), "
            "n_read = :r, n_loaded = :l, n_updated = :u, n_unchanged = :c, n_rejected = :x, "
            "seconds = CAST(:s AS jsonb) WHERE id = :id"
        ),
        {"r": r.read, "l": r.loaded, "u": r.updated, "c": r.unchanged, "x": r.rejected, "id": r.batch_id,
         "s": _seconds_json(r)},
    )


def _record_commit(engine: Engine, r: BatchResult) -> None:
    """The seconds with the commit's and the end after it, in a short transaction of its own
    after the batch's: a crash before it leaves the batch done and whole, its seconds all but
    the commit's and its end before the commit. A database that does not take it (gone, or the
    row locked for more than 2 s by a refresh taking the batch) costs the figure, with a note,
    not the load."""
    try:
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '2s'"))
            conn.execute(
                text("UPDATE pingan.etl_batches SET finished_at = clock_timestamp(), "
                     "seconds = CAST(:s AS jsonb) WHERE id = :id AND status = 'done'"),
                {"id": r.batch_id, "s": _seconds_json(r)},
            )
    except SQLAlchemyError as exc:
        why = str(getattr(exc, "orig", None) or exc).strip().partition("\n")[0]
        r.warnings.append(f"the batch is loaded, but the seconds of its commit were not recorded: {why}")


def _seconds_json(r: BatchResult) -> str:
    return json.dumps({k: round(v, 3) for k, v in r.seconds.items()})


def _failed(
    engine: Engine, target: Target, path: Path, digest: str | None, source: str, error: str,
    began: datetime,
) -> BatchResult:
    """Record a batch that loaded nothing, and why (its own transaction)."""
    with engine.begin() as conn:
        batch_id = conn.execute(
            text(
                "INSERT INTO pingan.etl_batches (source, layer, file_name, file_hash, status, "
                "started_at, finished_at, error) "
                "VALUES (:s, :l, :f, :h, 'failed', :t, clock_timestamp(), :e) RETURNING id"
            ),
            {"s": source, "l": target.layer, "f": path.name, "h": digest, "e": error[:4000], "t": began},
        ).scalar_one()
    return BatchResult(batch_id, "failed", error=error)
