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
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy import Connection, Engine, text

from etl.areas import containment_rejects, prepare_areas
from etl.locate import locate, places, swapped_warning
from etl.profile import Mapped, Profile, apply_profile, builtin, column_text, convert, read_error_message
from etl.readers import read_file
from etl.targets import CONSTRAINT_REASONS, TARGETS, Target
from layers import versions
from layers.copy import (
    NotBinary,
    column_types,
    copy_binary,
    copy_frame,
    copy_text,
    encode_binary,
    send_binary,
)
from layers.db import SYSTEM, set_principal

if TYPE_CHECKING:
    from layers.crypto import KeyRing

#: ``progress(stage, done, total)``: the stage's name, and for long stages the rows done so far
#: out of ``total`` (both None for a stage without a count).
Progress = Callable[..., None]
UPSERT_CHUNK = 50_000  # rows per upsert statement: progress steps, and what a refusal bisects
BULK_ROWS = 200_000  # this many new rows, and at least half the table's size: bulk mode
#: bulk mode's dropped plain indexes, foreign keys and unique keys: (name, definition) each
Bulk = tuple[list, list, list]
#: what the database raises for rows it refuses (a CHECK, a unique key, a trigger's RAISE)
REFUSED = (psycopg.errors.IntegrityError, psycopg.errors.DataError, psycopg.errors.RaiseException)


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
) -> BatchResult:
    """Load one file into ``layer``; see the module docstring for what is guaranteed.

    ``keys`` (the data key ring) is needed for ``persons``, whose name, ID number and phone are
    sealed before they are written. ``bulk=False``: never bulk mode (:func:`_bulk_begin`)."""
    if layer not in TARGETS:
        raise ValueError(f"unknown layer {layer!r}; loadable: {', '.join(TARGETS)}")
    if layer == "persons" and keys is None:
        raise ValueError("loading persons needs the data key ring (PINGAN_DATA_KEY)")
    target, say = TARGETS[layer], progress or (lambda *_a: None)
    profile = profile or builtin(layer)
    clock: dict[str, float] = {}
    t = time.perf_counter()
    hashing = _sha256_beside(path)
    stream = None
    try:
        say("reading")
        raw = read_file(path, encoding=encoding)
        clock["read"] = time.perf_counter() - t
        say("mapping columns")
        n_read = len(raw)
        if _streams(raw, target, profile):
            # mapped a chunk at a time inside the locate/copy pipeline, so the database copies
            # while the rest of the file is mapped; here only the first chunk and the file's keys
            stream = _Stream(raw, target, profile, source, datum)
            mapped, early = stream.head, None
        else:
            mapped = apply_profile(raw, profile)
            if datum:
                mapped.frame["datum"] = datum
            early = _early_rejects(mapped, raw, target, profile, keys)
            raw.release()  # the text of a million rows: typed copies live in `mapped`
        clock["map"] = time.perf_counter() - t - sum(clock.values())
    except Exception as exc:  # a file we cannot read at all: a failed batch, with the reason
        return _failed(engine, target, path, hashing(), source, read_error_message(exc))
    digest = hashing()
    if stream is None:
        _prepare(mapped, target, source)
    result = BatchResult(0, "running", read=n_read, warnings=list(mapped.warnings))
    try:
        with engine.begin() as conn:
            set_principal(conn, SYSTEM)
            # a batch is one transaction by design: its COPY and upserts of a million rows may
            # take minutes, which the service's per-statement limit is not meant for
            conn.execute(text("SET LOCAL statement_timeout = 0"))
            batch_id = _open_batch(conn, target, path, digest, source, mapped)
            split: dict[str, float] = {}
            if target.shape == "point" and _direct_ok(target):
                # located a chunk at a time while the connection copies the chunk before
                say("locating")
                if stream is not None:
                    found = places(conn, None, raw, profile.datum, addresses=stream.addresses, rows=n_read)
                    feed = (stream.chunks(), stream.keyed, stream.ids, n_read)
                else:
                    found = places(conn, mapped, raw, profile.datum)
                    ids = np.arange(len(mapped.frame))  # deduplicated: each 编号 once
                    feed = (_chunks(mapped), mapped.frame[["source", "source_id"]], ids, len(mapped.frame))
                where = (profile.datum, found)
                streamed = _locate_and_load(conn, target, feed, raw, where, batch_id, say, split, bulk)
                counts, db_rejects, rejects, swapped = streamed
                if stream is not None:
                    mapped.rejects = pd.concat(stream.rejects, ignore_index=True)
                    result.warnings += stream.warnings()
                    raw.release()
                result.warnings += swapped_warning(swapped)
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
                if keys is not None and target.layer == "persons":
                    from etl import persons  # the data key ring's libraries: only for persons

                    frame = persons.seal(conn, frame, keys)
                clock["locate"] = time.perf_counter() - t - sum(clock.values())
                say("loading", 0, len(frame))
                counts, db_rejects = _stage_and_upsert(
                    conn, target, frame, batch_id, say, split, bulk_ok=bulk
                )
            clock["load"] = time.perf_counter() - t - sum(clock.values())
            all_rejects = pd.concat(
                [r for r in (early, mapped.rejects, rejects, db_rejects) if r is not None and len(r)]
                or [_no_rejects()],
                ignore_index=True,
            )
            if target.layer == "persons":
                from etl import persons

                all_rejects = persons.mask_rejects(all_rejects, mapped.matched)
            _write_rejects(conn, batch_id, all_rejects)
            result.batch_id, result.status = batch_id, "done"
            result.loaded, result.updated = counts["inserted"], counts["updated"]
            result.unchanged, result.rejected = counts["unchanged"], len(all_rejects)
            result.reasons = _reason_counts(all_rejects)
            if counts["bulk"]:
                result.warnings.append(f"bulk mode: the indexes and foreign keys of {target.table} "
                                       "were made again in this batch")
            _close_batch(conn, result)
            versions.bump(conn, [target.layer_id])
    except BulkConflict as exc:  # rolled back: loaded again the normal way, which rejects such rows
        again = load_file(engine, path, layer, profile=profile, source=source, encoding=encoding, datum=datum,
                          keys=keys, progress=progress, bulk=False)
        again.warnings.append(f"bulk mode gave way to the normal path: {exc}")
        return again
    except Exception as exc:
        return _failed(engine, target, path, digest, source, read_error_message(exc))
    # read + map + locate + load (+ the batch's bookkeeping) = total; then the load's own split:
    # keys, copy direct, copy stage, upsert, events, indexes
    result.seconds = clock | {"total": time.perf_counter() - t} | split
    return result


def _no_rejects() -> pd.DataFrame:
    return pd.DataFrame(columns=["row_number", "column_name", "reason", "raw"])


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


def _prepare(mapped: Mapped, target: Target, source: str) -> None:
    missing = _fill(mapped.frame, target, source)
    if missing:
        mapped.warnings.append(_deadline_warning(missing))
    _dedupe(mapped)


def _fill(f: pd.DataFrame, target: Target, source: str) -> int:
    """Complete the mapped rows ``f`` in place: defaults, derived fields, the source. Returns
    how many cases had no deadline (set to 受理时间 + 30 days)."""
    # fields a custom profile does not map take the built-in profile's default, or stay empty
    base = builtin(target.layer).columns
    for name in target.fields:
        if name not in f and name != "code":
            spec = base.get(name)
            if spec is not None and spec.default is not None:
                f[name], _ = convert(pd.Series(spec.default, index=f.index, dtype=object), spec)
            else:
                f[name] = None
    if "code" in target.fields and "code" not in f:
        f["code"] = f["source_id"]
    if "normalized" in target.fields:
        # the matching key of standard addresses (gis.address.normalize, without the region:
        # the gazetteer strips a province/city/county prefix itself)
        from gis.address import normalize

        f["normalized"] = [normalize(a) if isinstance(a, str) else None for a in f["address"]]
    missing = 0
    if target.layer == "cases" and "deadline" in f:
        # 人民调解法: a mediation is to finish within 30 days unless agreed otherwise.
        gap = f["deadline"].isna() & f["accepted_at"].notna()
        missing = int(gap.sum())
        if missing:
            f.loc[gap, "deadline"] = f.loc[gap, "accepted_at"] + pd.Timedelta(days=30)
    f["source"] = source
    return missing


def _deadline_warning(n: int) -> str:
    return f"{n} rows had no 办理期限: set to 受理时间 + 30 days"


def _dedupe(mapped: Mapped) -> None:
    """The same record twice in one file: the last row wins, the earlier ones are rejects."""
    f = mapped.frame
    dup = f.duplicated("source_id", keep="last")
    if dup.any():
        extra = pd.DataFrame(
            {
                "row_number": mapped.row_numbers[dup].to_numpy(),
                "column_name": "source_id",
                "reason": "duplicate 编号 in this file; a later row with the same 编号 was loaded",
                "raw": [{"source_id": v} for v in f.loc[dup, "source_id"]],
            }
        )
        mapped.rejects = pd.concat([mapped.rejects, extra], ignore_index=True)
        mapped.frame, mapped.row_numbers = f[~dup], mapped.row_numbers[~dup]


def _streams(raw, target: Target, profile: Profile) -> bool:  # noqa: ANN001 (RawTable)
    """Whether ``raw`` is mapped a chunk at a time inside the locate/copy pipeline
    (:class:`_Stream`): a CSV read by Arrow, for a layer whose new rows are copied straight in
    and that has no checks of its own on the whole file (persons, the survey)."""
    return (
        raw.text is not None
        and raw.geometry is None
        and _direct_ok(target)
        and target.layer not in ("persons", "survey")
        and "source_id" in profile.columns
    )


_READ_HERE = {"address", "source_id", "code", "normalized"}


class _Stream:
    """A file mapped a chunk at a time (:data:`UPSERT_CHUNK` rows) while the chunks before are
    located and copied (:func:`_locate_and_load`), instead of mapped whole before the first
    COPY: the database works while Python maps. What needs the whole file is read from it
    before: the headers (the first chunk is mapped at once, so a file that matches no profile
    fails before its batch begins), and the 编号 of every row, typed as mapping types them: the
    rows whose 编号 the file holds more than once are held back until the end, where the last
    one that mapping did not reject wins, as when the file is mapped whole (:func:`_dedupe`);
    which keys the table knows, and bulk mode, are decided on all of them."""

    def __init__(self, raw, target: Target, profile: Profile, source: str, datum: str | None) -> None:  # noqa: ANN001
        self.raw, self.target, self.profile = raw, target, profile
        self.source, self.datum = source, datum
        self.size = UPSERT_CHUNK
        # text fields that only go to COPY stay Arrow text (no Python string per cell); those
        # read here (the address is geocoded, the 编号 keys and deduplicates, and becomes the
        # code) are Python strings as when the file is mapped whole
        self.as_read = {name for name, spec in profile.columns.items()
                        if spec.type == "string" and name in target.fields and name not in _READ_HERE}
        self.head = self._map(0)  # raises for headers that match no profile
        self.rejects: list[pd.DataFrame] = [_no_rejects()]
        self.missing_deadlines = 0
        ids = self._column("source_id")
        index = pd.RangeIndex(len(raw))
        self.keyed = pd.DataFrame({"source": source, "source_id": ids.to_numpy()}, index=index)
        self.ids = pd.factorize(ids, use_na_sentinel=False)[0]  # one number per distinct 编号
        self.repeated = np.bincount(self.ids)[self.ids] > 1
        # the gazetteer is read when some row may have only an address (a row whose 经度 then
        # fails mapping is a reject anyway: reading it for nothing costs little)
        self.addresses = False
        if "address" in profile.columns:
            xy = self._present("lon") & self._present("lat")
            self.addresses = bool((self._present("address") & ~xy).any())

    def _map(self, lo: int) -> Mapped:
        part = apply_profile(self.raw.slice(lo, self.size), self.profile, as_read=self.as_read)
        part.frame.index += lo  # positions in the whole file, as when it is mapped whole
        part.row_numbers.index += lo
        if self.datum:
            part.frame["datum"] = self.datum
        return part

    def _column(self, name: str) -> pd.Series:
        """One field over the whole file, typed as :func:`apply_profile` types it."""
        spec = self.profile.columns[name]
        return convert(column_text(self.raw, spec, self.head.matched.get(name)), spec)[0]

    def _present(self, name: str) -> np.ndarray:
        spec, header = self.profile.columns.get(name), self.head.matched.get(name)
        if spec is not None and spec.default is not None:
            return np.ones(len(self.raw), dtype=bool)
        if header is None:
            return np.zeros(len(self.raw), dtype=bool)
        return self.raw.column(header).notna().to_numpy(dtype=bool)

    def chunks(self):  # noqa: ANN201 (Iterator[Mapped])
        """The mapped chunks, completed (:func:`_fill`), without the rows held back; then those,
        deduplicated."""
        held: list[Mapped] = []
        for lo in range(0, len(self.raw), self.size):
            part = self.head if lo == 0 else self._map(lo)
            self.head = Mapped(part.frame.iloc[:0], part.row_numbers.iloc[:0], part.rejects.iloc[:0],
                               part.matched, part.warnings)
            self.rejects.append(part.rejects)
            self.missing_deadlines += _fill(part.frame, self.target, self.source)
            again = self.repeated[part.frame.index]
            if again.any():
                held.append(Mapped(part.frame[again], part.row_numbers[again], part.rejects.iloc[:0],
                                   part.matched))
                part = Mapped(part.frame[~again], part.row_numbers[~again], part.rejects.iloc[:0],
                              part.matched)
            yield part
        if held:
            last = Mapped(pd.concat([h.frame for h in held]), pd.concat([h.row_numbers for h in held]),
                          _no_rejects(), self.head.matched)
            _dedupe(last)
            self.rejects.append(last.rejects)
            yield from _chunks(last)

    def warnings(self) -> list[str]:
        return [_deadline_warning(self.missing_deadlines)] if self.missing_deadlines else []


def _chunks(mapped: Mapped):  # noqa: ANN202 (Iterator[Mapped])
    """``mapped`` in chunks of :data:`UPSERT_CHUNK` rows."""
    f, rows = mapped.frame, mapped.row_numbers
    for lo in range(0, len(f), UPSERT_CHUNK):
        hi = lo + UPSERT_CHUNK
        yield Mapped(f.iloc[lo:hi], rows.iloc[lo:hi], mapped.rejects.iloc[:0], mapped.matched)


def _open_batch(
    conn: Connection, target: Target, path: Path, digest: str, source: str, mapped: Mapped
) -> int:
    return conn.execute(
        text(
            "INSERT INTO pingan.etl_batches (source, layer, file_name, file_hash, params) "
            "VALUES (:s, :l, :f, :h, CAST(:p AS jsonb)) RETURNING id"
        ),
        {
            "s": source,
            "l": target.layer,
            "f": path.name,
            "h": digest,
            "p": json.dumps({"columns": mapped.matched}, ensure_ascii=False),
        },
    ).scalar_one()


def _close_batch(conn: Connection, r: BatchResult) -> None:
    conn.execute(
        text(
            "UPDATE pingan.etl_batches SET status = 'done', finished_at = clock_timestamp(), "
            "n_read = :r, n_loaded = :l, n_updated = :u, n_unchanged = :c, n_rejected = :x "
            "WHERE id = :id"
        ),
        {"r": r.read, "l": r.loaded, "u": r.updated, "c": r.unchanged, "x": r.rejected, "id": r.batch_id},
    )


def _failed(engine: Engine, target: Target, path: Path, digest: str, source: str, error: str) -> BatchResult:
    """Record a batch that loaded nothing, and why (its own transaction)."""
    with engine.begin() as conn:
        batch_id = conn.execute(
            text(
                "INSERT INTO pingan.etl_batches (source, layer, file_name, file_hash, status, "
                "finished_at, error) VALUES (:s, :l, :f, :h, 'failed', clock_timestamp(), :e) "
                "RETURNING id"
            ),
            {"s": source, "l": target.layer, "f": path.name, "h": digest, "e": error[:4000]},
        ).scalar_one()
    return BatchResult(batch_id, "failed", error=error)


def _stage_and_upsert(
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

    ``direct``: the rows :func:`_locate_and_load` copied straight into the table before, and
    the bulk mode it began (None: bulk mode is decided here, on the rows the table holds)."""
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
    counts = {"inserted": copied, "updated": 0, "unchanged": 0, "bulk": False, "direct": copied}
    if len(frame):
        def step(stage: str, done: int | None = None, total: int | None = None) -> None:
            say(stage, None if done is None else copied + done, None if total is None else copied + total)

        what = (cols, ident, batch_id)
        staged = _stage(conn, raw, target, frame, what, bulk, direct is None and bulk_ok, rejects, step, lap)
        counts["inserted"] += staged["inserted"]
        counts["updated"] = staged["updated"]
        bulk = staged["bulk"] if direct is None else bulk
    if bulk is not None:
        say("rebuilding indexes")
        _bulk_end(raw, target, bulk)
        lap("indexes")
    # the rows copied straight in were all new: the unchanged ones are among the staged
    counts["unchanged"] = len(frame) - len(rejects) - (counts["inserted"] - copied) - counts["updated"]
    counts["bulk"] = bulk is not None
    return counts, pd.DataFrame(rejects, columns=["row_number", "column_name", "reason", "raw"])


def _locate_and_load(
    conn: Connection,
    target: Target,
    feed: tuple,
    raw_table,  # noqa: ANN001 (RawTable)
    datum_where: tuple,
    batch_id: int,
    say: Progress,
    split: dict[str, float],
    bulk_ok: bool = True,
) -> tuple[dict[str, int], pd.DataFrame, pd.DataFrame, int]:
    """Locate and load a point layer in chunks of :data:`UPSERT_CHUNK` rows, two at a time:
    while a copier thread copies chunk N into the table (in its savepoint, as
    :func:`_stage_and_upsert` does), this thread locates chunk N+1, which reads nothing from the
    database (``datum_where``: the default datum and the :class:`~etl.locate.Places` read before).
    The database works while Python works, instead of after it. At most two located chunks wait
    for the copier, so memory stays that of a few chunks.

    Rows whose key the table holds already, and chunks the database refused, go the general way
    afterwards (:func:`_stage`); so do the counts, rejects and events, as with
    :func:`_stage_and_upsert`. Returns the counts, the rows the database refused, the rows
    locating rejected, and how many rows had their coordinates swapped.

    ``feed``: the mapped chunks (an iterator: a file may be mapped while the chunks before it
    are copied, :class:`_Stream`), the keys ``(source, source_id)`` of all their rows indexed
    as the chunks' rows are, a number per row that is the same for rows of the same key, and
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
    bulk = _bulk_begin(raw, target, new, True) if bulk_ok else None
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
    swapped = 0
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
        _bulk_keys(raw, target, bulk)  # before any upsert: ON CONFLICT needs them
        split["unique keys"] = time.perf_counter() - clock
    counts, db_rejects = _stage_and_upsert(conn, target, staged, batch_id, say, split, (done["copied"], bulk))
    located_rejects = [r for r in rejects if len(r)]
    return (
        counts,
        db_rejects,
        pd.concat(located_rejects, ignore_index=True) if located_rejects else None,
        swapped,
    )


def _direct_ok(target: Target) -> bool:
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
        bulk = _bulk_begin(raw, target, len(frame) - known)
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
    lap("events")
    return {"inserted": inserted, "updated": changed - inserted, "bulk": bulk}


def _bulk_begin(raw: psycopg.Connection, target: Target, rows: int, keys: bool = False) -> Bulk | None:
    """Bulk mode for a batch whose ``rows`` new records are many next to its table (a first
    load, a district's history):
    the table's plain indexes and foreign keys are dropped inside the batch's transaction and
    made again by :func:`_bulk_end` before it commits (one index build and one join per
    constraint instead of a million index inserts and trigger lookups: 75 s -> 32 s for a
    million hazards). CHECKs and triggers stay, so refused rows are still found one by one; no
    other transaction ever sees the table without its indexes and keys. The cost: the table is
    locked for the batch (readers wait), so small batches never do this, and a lock not granted
    within 5 s (a long reader), missing rights or a key another table depends on fall back to
    the normal path.

    ``keys``: the unique keys too (only for rows that are all new, copied straight in:
    :func:`_locate_and_load`). Keeping them during a COPY of a million hazards cost 6.3 s,
    making them again 2.9 s. :func:`_bulk_keys` makes them again before anything is upserted;
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


def _bulk_keys(raw: psycopg.Connection, target: Target, bulk: Bulk) -> None:
    """Make the unique keys bulk mode dropped again (each by sorting once), before anything is
    upserted against them; their list is emptied, so :func:`_bulk_end` does not make them twice."""
    for name, definition in bulk[2]:
        try:
            with raw.transaction():
                raw.execute(f'ALTER TABLE {target.table} ADD CONSTRAINT "{name}" {definition}')
        except psycopg.errors.UniqueViolation as exc:
            raise BulkConflict(f"{name}: {_db_reason(exc)}") from None
    bulk[2].clear()


def _bulk_end(raw: psycopg.Connection, target: Target, bulk: Bulk) -> None:
    _bulk_keys(raw, target, bulk)
    indexes, fkeys, _ = bulk
    for _, definition in indexes:
        raw.execute(definition)
    for name, definition in fkeys:
        raw.execute(f'ALTER TABLE {target.table} ADD CONSTRAINT "{name}" {definition}')


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
    except (psycopg.errors.IntegrityError, psycopg.errors.DataError, psycopg.errors.RaiseException) as exc:
        if lo == hi:
            rec = staged.iloc[lo]
            rejects.append(
                {
                    "row_number": int(rec["_row"]),
                    "column_name": None,
                    "reason": _db_reason(exc),
                    "raw": {"source_id": rec["source_id"]},
                }
            )
            return
        mid = (lo + hi) // 2
        _upsert_range(raw, sql, batch_id, lo, mid, rejects, staged)
        _upsert_range(raw, sql, batch_id, mid + 1, hi, rejects, staged)


def _db_reason(exc: psycopg.Error) -> str:
    diag = exc.diag
    if diag.constraint_name in CONSTRAINT_REASONS:
        return CONSTRAINT_REASONS[diag.constraint_name]
    return (diag.message_primary or str(exc)).split("\n")[0]


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


def _write_rejects(conn: Connection, batch_id: int, rejects: pd.DataFrame) -> None:
    if rejects.empty:
        return
    frame = rejects.assign(
        batch_id=batch_id,
        raw=[json.dumps(_json_safe(r), ensure_ascii=False, default=str) for r in rejects["raw"]],
    )[["batch_id", "row_number", "column_name", "reason", "raw"]]
    copy_frame(conn, "pingan.etl_rejects", frame, geometry_columns=())


def _json_safe(record: object) -> object:
    """The raw row as JSON can hold it: NaN/NaT (not JSON) become null."""
    if not isinstance(record, dict):
        return record
    return {str(k): (None if not isinstance(v, list | dict) and pd.isna(v) else v) for k, v in record.items()}


def _reason_counts(rejects: pd.DataFrame) -> dict[str, int]:
    if rejects.empty:
        return {}
    short = rejects["reason"].astype(str).str.replace(r":.*$", "", regex=True).str.slice(0, 80)
    return short.value_counts().to_dict()
