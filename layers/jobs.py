"""Jobs of the OGC API - Processes, kept in ``pingan.jobs`` (migration 0011).

Every function takes a connection whose transaction states the caller (``layers.db``): the
table's row-level security decides which jobs the caller sees and may change (its own; admins
every job). A job the caller may not see is, for these functions, a job that does not exist.

The state lives only in the database, so every API worker answers the same status. A job is
run by one worker ("runner", a positive 31-bit number) that holds the advisory lock
``(RUNNER_LOCK_CLASS, runner)`` while it lives; :func:`fail_interrupted` marks failed every
accepted or running job whose runner holds no lock any more (a restart or a crash).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from layers.db import Principal

RUNNER_LOCK_CLASS = 72011
STATUSES = ("accepted", "running", "successful", "failed", "dismissed")
ACTIVE = ("accepted", "running")
_COLUMNS = (
    "id, process_id, owner, owner_role, mode, status, message, progress, inputs, runner, created,"
    " started, finished, updated"
)


class JobDismissed(Exception):  # noqa: N818 - a state, not an error
    """The job was dismissed while it ran: stop and store nothing."""


@dataclass(frozen=True)
class Job:
    id: str
    process_id: str
    owner: str
    owner_role: str
    mode: str
    status: str
    message: str
    progress: int
    inputs: dict[str, Any]
    runner: int
    created: datetime
    started: datetime | None
    finished: datetime | None
    updated: datetime


def _job(row: Any) -> Job:  # noqa: ANN401 - a SQLAlchemy row
    return Job(
        str(row.id),
        row.process_id,
        row.owner,
        row.owner_role,
        row.mode,
        row.status,
        row.message,
        row.progress,
        row.inputs,
        row.runner,
        row.created,
        row.started,
        row.finished,
        row.updated,
    )


def valid_id(job_id: str) -> str | None:
    """``job_id`` as a canonical UUID string, or None when it is not one (so: not found)."""
    try:
        return str(uuid.UUID(job_id))
    except (ValueError, TypeError, AttributeError):
        return None


def create(
    conn: Connection, principal: Principal, process_id: str, inputs: dict[str, Any], *, mode: str, runner: int
) -> Job:
    """A new job, accepted, owned by ``principal`` (the database checks the owner is the caller)."""
    row = conn.execute(
        text(
            "INSERT INTO pingan.jobs (id, process_id, owner, owner_role, owner_areas, mode, status, message,"  # noqa: S608
            " inputs, runner) VALUES (:id, :p, :o, :r, CAST(:a AS text[]), :m, 'accepted',"
            f" 'accepted, waiting for a worker', CAST(:i AS jsonb), :run) RETURNING {_COLUMNS}"
        ),
        {
            "id": str(uuid.uuid4()),
            "p": process_id,
            "o": principal.user,
            "r": principal.role,
            "a": list(principal.areas),
            "m": mode,
            "i": json.dumps(inputs, ensure_ascii=False),
            "run": runner,
        },
    ).one()
    return _job(row)


def get(conn: Connection, job_id: str) -> Job | None:
    jid = valid_id(job_id)
    if jid is None:
        return None
    row = conn.execute(text(f"SELECT {_COLUMNS} FROM pingan.jobs WHERE id = :id"), {"id": jid}).one_or_none()  # noqa: S608
    return _job(row) if row is not None else None


def results(conn: Connection, job_id: str) -> dict[str, Any] | None:
    jid = valid_id(job_id)
    if jid is None:
        return None
    return conn.execute(text("SELECT results FROM pingan.jobs WHERE id = :id"), {"id": jid}).scalar()


def listing(
    conn: Connection,
    *,
    limit: int = 100,
    offset: int = 0,
    process_id: str | None = None,
    status: tuple[str, ...] | None = None,
) -> tuple[list[Job], int]:
    """The caller's jobs (every job for admins), newest first, and how many match."""
    where = (
        "(CAST(:p AS text) IS NULL OR process_id = :p)"
        " AND (CAST(:s AS text[]) IS NULL OR status = ANY (CAST(:s AS text[])))"
    )
    params = {"p": process_id, "s": list(status) if status else None, "limit": limit, "offset": offset}
    rows = conn.execute(
        text(
            f"SELECT {_COLUMNS} FROM pingan.jobs WHERE {where} ORDER BY created DESC, id"  # noqa: S608
            " LIMIT :limit OFFSET :offset"
        ),
        params,
    ).all()
    total = conn.execute(text(f"SELECT count(*) FROM pingan.jobs WHERE {where}"), params).scalar_one()  # noqa: S608
    return [_job(r) for r in rows], int(total)


def start(conn: Connection, job_id: str) -> None:
    """Mark the job running (unless it was dismissed meanwhile: :class:`JobDismissed`)."""
    done = conn.execute(
        text(
            "UPDATE pingan.jobs SET status = 'running', started = now(), updated = now(), progress = 5,"
            " message = 'running' WHERE id = :id AND status = 'accepted' RETURNING id"
        ),
        {"id": job_id},
    ).scalar()
    if done is None:
        raise JobDismissed(job_id)


def progress(conn: Connection, job_id: str, percent: int, message: str) -> None:
    """Record progress; :class:`JobDismissed` when the job is no longer running."""
    done = conn.execute(
        text(
            "UPDATE pingan.jobs SET progress = :pc, message = :m, updated = now()"
            " WHERE id = :id AND status = 'running' RETURNING id"
        ),
        {"id": job_id, "pc": max(0, min(99, int(percent))), "m": message[:500]},
    ).scalar()
    if done is None:
        raise JobDismissed(job_id)


def succeed(conn: Connection, job_id: str, outputs: dict[str, Any], message: str = "done") -> None:
    """Store the results and mark the job successful, in the transaction that stored its cells
    (so a job is successful exactly when its results are there)."""
    done = conn.execute(
        text(
            "UPDATE pingan.jobs SET status = 'successful', progress = 100, message = :m,"
            " results = CAST(:r AS jsonb), finished = now(), updated = now()"
            " WHERE id = :id AND status = 'running' RETURNING id"
        ),
        {"id": job_id, "m": message[:500], "r": json.dumps(outputs, ensure_ascii=False)},
    ).scalar()
    if done is None:
        raise JobDismissed(job_id)


def fail(conn: Connection, job_id: str, message: str) -> None:
    conn.execute(
        text(
            "UPDATE pingan.jobs SET status = 'failed', message = :m, finished = now(), updated = now()"
            " WHERE id = :id AND status IN ('accepted', 'running')"
        ),
        {"id": job_id, "m": message[:2000]},
    )


def dismiss(conn: Connection, job_id: str) -> Job | None:
    """Dismiss the job: a queued or running one stops (its runner sees the status), a finished
    one loses its results. None when the caller has no such job."""
    jid = valid_id(job_id)
    if jid is None:
        return None
    row = conn.execute(
        text(
            "UPDATE pingan.jobs SET status = 'dismissed', message = 'dismissed by ' || pingan.ctx_user(),"  # noqa: S608
            " results = NULL, finished = coalesce(finished, now()), updated = now()"
            f" WHERE id = :id RETURNING {_COLUMNS}"
        ),
        {"id": jid},
    ).one_or_none()  # noqa: S608
    if row is None:
        return None
    conn.execute(text("DELETE FROM pingan.job_cells WHERE job_id = :id"), {"id": jid})
    return _job(row)


def hold_runner_lock(conn: Connection, runner: int) -> bool:
    """Take the runner's session lock on ``conn`` (kept open for the runner's life)."""
    return bool(
        conn.execute(
            text("SELECT pg_try_advisory_lock(:c, :r)"), {"c": RUNNER_LOCK_CLASS, "r": runner}
        ).scalar()
    )


def fail_interrupted(conn: Connection) -> int:
    """Mark failed every accepted or running job whose runner is gone; returns how many."""
    return int(conn.execute(text("SELECT pingan.fail_interrupted_jobs()")).scalar_one())
