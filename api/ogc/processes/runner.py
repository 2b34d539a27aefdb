"""The job runner of one API worker process: a bounded pool of threads and a lock that says it lives.

Every execution, synchronous or not, becomes a job row (``layers.jobs``) and runs in this pool
of ``workers`` threads (default 2: the machine's cores), so twenty requests queue rather than
start twenty heavy analyses. A synchronous request waits for its job; an asynchronous one gets
201 and a Location at once.

The runner holds a PostgreSQL session advisory lock for as long as the process serves (on a
connection of its own). At startup, and before each new job, ``pingan.fail_interrupted_jobs()``
marks failed every accepted or running job whose runner holds no lock: its process stopped
(restart, crash), so the job would otherwise stay "running" for ever. Another live worker's
jobs are untouched: its lock is held.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import threading
from collections.abc import AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from api.ogc.processes.execute import Prepared, RunContext, RunInputError
from api.ogc.processes.inputs import AnalysisLimits
from layers import audit, jobs
from layers.db import Principal, transaction

log = logging.getLogger(__name__)


class RunnerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PINGAN_JOBS_", extra="ignore")

    workers: int = Field(default=2, ge=1, le=64, description="analyses running at once per API process")
    queue: int = Field(default=50, ge=1, description="jobs accepted but not started, per API process")


class QueueFullError(RuntimeError):
    pass


@dataclass
class Outcome:
    job_id: str
    status: str  # successful / failed / dismissed
    outputs: dict[str, Any] | None
    message: str
    client_error: bool = False


@dataclass
class JobRunner:
    engine: Engine
    settings: RunnerSettings = field(default_factory=RunnerSettings)
    limits: AnalysisLimits = field(default_factory=AnalysisLimits)
    runner_id: int = field(default_factory=lambda: secrets.randbelow(2**31 - 2) + 1)
    _pool: ThreadPoolExecutor | None = None
    _lock_conn: Connection | None = None
    _pending: int = 0
    _guard: threading.Lock = field(default_factory=threading.Lock)

    # -- life ---------------------------------------------------------------------------------
    def start(self) -> int:
        """Take the runner lock, fail the jobs of dead runners; returns how many were failed."""
        self._pool = ThreadPoolExecutor(max_workers=self.settings.workers, thread_name_prefix="pingan-job")
        self._lock_conn = self.engine.connect()
        if not jobs.hold_runner_lock(self._lock_conn, self.runner_id):
            raise RuntimeError("runner lock taken: runner ids collide")  # 1 in 2^31
        self._lock_conn.commit()  # the session lock stays; no transaction stays open
        failed = self.sweep()
        if failed:
            log.warning("%d job(s) interrupted by a restart were marked failed", failed)
        return failed

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self._lock_conn is not None:
            self._lock_conn.invalidate()  # ends the session, so the lock goes: unfinished jobs are orphans
            self._lock_conn.close()
            self._lock_conn = None

    def sweep(self) -> int:
        with self.engine.begin() as conn:  # as pingan_service: the sweep covers every caller's jobs
            return jobs.fail_interrupted(conn)

    # -- jobs ---------------------------------------------------------------------------------
    def submit(
        self, prepared: Prepared, principal: Principal, base_url: str, *, mode: str
    ) -> tuple[jobs.Job, Future]:
        """Record the job (and the execution in the audit log) and queue it."""
        assert self._pool is not None, "start() first"
        with self._guard:
            if self._pending >= self.settings.queue + self.settings.workers:
                raise QueueFullError("too many jobs are waiting; try again later")
            self._pending += 1
        try:
            self.sweep()
            with transaction(self.engine, principal) as conn:
                job = jobs.create(
                    conn, principal, prepared.process_id, prepared.inputs, mode=mode, runner=self.runner_id
                )
                audit.record(
                    conn,
                    principal,
                    "execute",
                    "process",
                    [prepared.process_id],
                    {"job_id": job.id, "mode": mode, "inputs": prepared.inputs},
                )
            future = self._pool.submit(self._run, prepared, principal, job.id, base_url)
        except BaseException:
            with self._guard:
                self._pending -= 1
            raise
        return job, future

    def _run(self, prepared: Prepared, principal: Principal, job_id: str, base_url: str) -> Outcome:
        try:
            return self._run_job(prepared, principal, job_id, base_url)
        finally:
            with self._guard:
                self._pending -= 1

    def _run_job(self, prepared: Prepared, principal: Principal, job_id: str, base_url: str) -> Outcome:
        def progress(percent: int, message: str) -> None:
            with transaction(self.engine, principal) as conn:
                jobs.progress(conn, job_id, percent, message)

        try:
            with transaction(self.engine, principal) as conn:
                jobs.start(conn, job_id)
            outputs, message = prepared.run(
                RunContext(self.engine, principal, job_id, base_url, progress, self.limits)
            )
            return Outcome(job_id, "successful", outputs, message)
        except jobs.JobDismissed:
            return Outcome(job_id, "dismissed", None, "dismissed")
        except RunInputError as exc:
            self._fail(principal, job_id, str(exc))
            return Outcome(job_id, "failed", None, str(exc), client_error=True)
        except Exception as exc:
            if isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) == "42501":
                # insufficient_privilege: a missing grant, said plainly
                first = str(exc.orig).splitlines()[0][:300]
                message = f"internal error: the database refused role {principal.role!r}: {first}"
                log.error("job %s (%s): %s", job_id, prepared.process_id, message)
            else:
                log.exception("job %s (%s) failed", job_id, prepared.process_id)
                message = f"internal error (pid {os.getpid()}); the server log has the details"
            self._fail(principal, job_id, message)
            return Outcome(job_id, "failed", None, message)

    def _fail(self, principal: Principal, job_id: str, message: str) -> None:
        try:
            with transaction(self.engine, principal) as conn:
                jobs.fail(conn, job_id, message)
        except Exception:
            log.exception("could not mark job %s failed", job_id)


async def wait(future: Future) -> Outcome:
    return await asyncio.wrap_future(future)


@asynccontextmanager
async def open_runner(state: Any) -> AsyncIterator[JobRunner]:  # noqa: ANN401 - the app's state
    """The lifespan part of the processes: a runner on the app's (service) engine."""
    runner = JobRunner(state.engine)
    try:
        await asyncio.to_thread(runner.start)
    except Exception as exc:  # the database is down at startup: jobs answer 503 until it is back
        log.warning("job runner not started: %s", type(exc).__name__)
        runner.stop()
        state.processes = None
        yield runner
        return
    state.processes = runner
    try:
        yield runner
    finally:
        await asyncio.to_thread(runner.stop)
