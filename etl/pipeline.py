"""`pingan etl load`: read → map → locate → stage → assign → upsert, one transaction per batch.

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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy import Connection, Engine, text

from etl.copy import copy_frame
from etl.locate import locate
from etl.profile import Mapped, Profile, apply_profile, builtin, convert, read_error_message
from etl.readers import read_file
from etl.targets import CONSTRAINT_REASONS, TARGETS, Target
from layers import versions
from layers.db import SYSTEM, set_principal

Progress = Callable[[str], None]


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
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_file(
    engine: Engine,
    path: Path,
    layer: str,
    *,
    profile: Profile | None = None,
    source: str = "import",
    encoding: str | None = None,
    datum: str | None = None,
    progress: Progress | None = None,
) -> BatchResult:
    """Load one file into ``layer``; see the module docstring for what is guaranteed."""
    if layer not in TARGETS:
        raise ValueError(f"unknown layer {layer!r}; loadable: {', '.join(TARGETS)}")
    target, say = TARGETS[layer], progress or (lambda _m: None)
    clock: dict[str, float] = {}
    t = time.perf_counter()
    digest = file_sha256(path)
    try:
        say("reading")
        raw = read_file(path, encoding=encoding)
        clock["read"] = time.perf_counter() - t
        say("mapping columns")
        mapped = apply_profile(raw, profile or builtin(layer))
        clock["map"] = time.perf_counter() - t - sum(clock.values())
    except Exception as exc:  # a file we cannot read at all: a failed batch, with the reason
        return _failed(engine, target, path, digest, source, read_error_message(exc))
    if datum:
        mapped.frame["datum"] = datum
    _prepare(mapped, target, source)
    result = BatchResult(0, "running", read=len(raw.frame), warnings=list(mapped.warnings))
    try:
        with engine.begin() as conn:
            set_principal(conn, SYSTEM)
            batch_id = _open_batch(conn, target, path, digest, source, mapped)
            say("locating")
            located, rejects = locate(conn, mapped, raw, (profile or builtin(layer)).datum)
            result.warnings += located.warnings
            clock["locate"] = time.perf_counter() - t - sum(clock.values())
            say("loading")
            counts, db_rejects = _stage_and_upsert(conn, target, located.frame, batch_id, source)
            clock["upsert"] = time.perf_counter() - t - sum(clock.values())
            all_rejects = pd.concat([mapped.rejects, rejects, db_rejects], ignore_index=True)
            _write_rejects(conn, batch_id, all_rejects)
            result.batch_id, result.status = batch_id, "done"
            result.loaded, result.updated = counts["inserted"], counts["updated"]
            result.unchanged, result.rejected = counts["unchanged"], len(all_rejects)
            result.reasons = _reason_counts(all_rejects)
            _close_batch(conn, result)
            versions.bump(conn, [target.layer_id])
    except Exception as exc:
        return _failed(engine, target, path, digest, source, read_error_message(exc))
    result.seconds = clock | {"total": time.perf_counter() - t}
    return result


def _prepare(mapped: Mapped, target: Target, source: str) -> None:
    f = mapped.frame
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
    if target.layer == "cases" and "deadline" in f:
        # 人民调解法: a mediation is to finish within 30 days unless agreed otherwise.
        missing = f["deadline"].isna() & f["accepted_at"].notna()
        if missing.any():
            f.loc[missing, "deadline"] = f.loc[missing, "accepted_at"] + pd.Timedelta(days=30)
            mapped.warnings.append(f"{int(missing.sum())} rows had no 办理期限: set to 受理时间 + 30 days")
    # the same record twice in one file: the last row wins, the earlier ones are rejects
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
    mapped.frame["source"] = source


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
    conn: Connection, target: Target, frame: pd.DataFrame, batch_id: int, source: str
) -> tuple[dict[str, int], pd.DataFrame]:
    cols = [*target.fields, *target.location, "source", "source_id"]
    conn.execute(
        text(
            f"CREATE TEMP TABLE stage ON COMMIT DROP AS SELECT {', '.join(cols)}, "  # noqa: S608
            f"0::integer AS _pos, 0::integer AS _row FROM {target.table} WITH NO DATA"
        )
    )
    staged = frame.assign(_pos=np.arange(len(frame)))
    copy_frame(conn, "stage", staged[[*cols, "_pos", "_row"]])
    conn.execute(text("CREATE INDEX ON stage (_pos)"))
    # what the changed rows were before, for their events (only rows already in the table)
    conn.execute(
        text(
            f"CREATE TEMP TABLE before ON COMMIT DROP AS SELECT t.id"  # noqa: S608
            f"{', t.state' if target.events else ''} FROM {target.table} t "
            "JOIN stage s ON t.source = s.source AND t.source_id = s.source_id"
        )
    )
    conn.execute(text("CREATE TEMP TABLE changed (id bigint, inserted boolean) ON COMMIT DROP"))
    rejects: list[dict] = []
    _upsert_range(
        conn.connection.driver_connection, target, cols, batch_id, 0, len(frame) - 1, rejects, staged
    )
    if target.events:
        _events(conn, target, batch_id)
    inserted, changed = conn.execute(
        text("SELECT count(*) FILTER (WHERE inserted), count(*) FROM changed")
    ).one()
    counts = {
        "inserted": inserted,
        "updated": changed - inserted,
        "unchanged": len(frame) - len(rejects) - changed,
    }
    return counts, pd.DataFrame(rejects, columns=["row_number", "column_name", "reason", "raw"])


def _upsert_sql(target: Target, cols: list[str]) -> str:
    compared = [c for c in cols if c not in ("source", "source_id")]
    col_list = ", ".join(cols)
    new = ", ".join("EXCLUDED." + c for c in compared)
    return (
        f"WITH up AS (INSERT INTO {target.table} AS t ({col_list}, batch_id) "  # noqa: S608
        f"SELECT {col_list}, %(batch)s FROM stage WHERE _pos BETWEEN %(lo)s AND %(hi)s "
        f"ON CONFLICT (source, source_id) DO UPDATE SET ({', '.join(compared)}, batch_id, updated_at) = "
        f"({new}, EXCLUDED.batch_id, now()) "
        f"WHERE ({', '.join('t.' + c for c in compared)}) IS DISTINCT FROM ({new}) "
        f"RETURNING t.id, (xmax = 0) AS inserted) "
        f"INSERT INTO changed SELECT id, inserted FROM up"
    )


def _upsert_range(
    raw: psycopg.Connection,
    target: Target,
    cols: list[str],
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
            raw.execute(_upsert_sql(target, cols), {"batch": batch_id, "lo": lo, "hi": hi})
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
        _upsert_range(raw, target, cols, batch_id, lo, mid, rejects, staged)
        _upsert_range(raw, target, cols, batch_id, mid + 1, hi, rejects, staged)


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
