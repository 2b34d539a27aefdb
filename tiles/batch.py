"""Tile renders of one caller that wait at the same time are drawn together, in one message.

Each render is one simple-protocol message on a pooled connection: the caller's statement,
then the tile statements, which PostgreSQL runs as one implicit transaction (``tiles.render.draw``).
The message costs the server more than its tile statements: a transaction begins and ends, the
caller's settings and role are set and reset, the message is read, and the driver's work per
round trip comes on top. A map screen asks for a dozen tiles at once, and under load many
requests wait for the database anyway; so renders of the same caller (user, role and areas:
everything the caller's statement states) that are waiting are sent as one message, their
statements one after another, and each request gets its own results back. Measured on grid
tiles at scale 1, eight tiles per message took 0.51 ms of the server's CPU per tile instead of
0.66-0.82, and 0.12 ms of ours instead of 0.26-0.33 (docs/performance.md, "Tiles, ninth run").

At most ``inflight`` messages are out at once (``TileSettings.batch_inflight``); a request that
finds them all out waits in its caller's queue, and whichever sender is free takes from the
queue of the caller who has waited longest its share of the waiting statements (divided among
the free senders, so a dozen tiles asked at once go to several backends side by side) and at
most ``statements`` tile statements. A request that finds a free slot is sent at once: nothing
ever waits to fill a batch. A sender keeps one pooled connection for all the messages it sends
in a row, and gives it back when the queues are empty.

The transaction is shared, not the rights: one message holds one caller's statements only, so
row-level security and the audit see exactly what they would for each request alone. If the
database refuses a message of several requests (a statement timeout, say), each request is
drawn again alone, so one bad tile fails only its own request.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from layers.db import Principal
from tiles.render import draw
from tiles.sql import TileQuery

Statements = Sequence[tuple[TileQuery, dict[str, Any]]]


@dataclass(eq=False)
class _Job:
    statements: Statements
    done: asyncio.Future[list[bytes]]


@dataclass
class BatchStats:
    """Messages sent and the requests and tile statements they carried."""

    messages: int = 0
    requests: int = 0
    statements: int = 0
    largest: int = 0  # the most requests one message carried
    redrawn: int = 0  # requests drawn again alone after their message failed


@dataclass(eq=False)
class DrawBatcher:
    """Draws tiles as :func:`tiles.render.draw` does, sending the waiting renders of one caller
    in one message (module docstring)."""

    inflight: int = 4
    statements: int = 16
    stats: BatchStats = field(default_factory=BatchStats)

    def __post_init__(self) -> None:
        if self.inflight < 1 or self.statements < 1:
            raise ValueError("inflight and statements must be at least 1")
        # per (pool, caller), in the order callers began to wait
        self._queues: dict[tuple[AsyncConnectionPool, Principal], deque[_Job]] = {}
        # The senders that may still take from the queues (strong references to their tasks).
        # A sender leaves it itself, in the same step as it last finds the queues empty: a task's
        # done callback runs later, after a request woken by the sender's last result may already
        # have queued its next render.
        self._senders: set[asyncio.Task[None]] = set()
        self._sending = 0  # senders with a message out
        self._waiting = 0  # tile statements in the queues (cancelled ones until taken)

    async def draw(self, pool: AsyncConnectionPool, principal: Principal,
                   statements: Statements) -> list[bytes]:
        """The MVT of each statement, in order, drawn for ``principal`` on a connection of ``pool``."""
        if not statements:
            return []
        job = _Job(statements, asyncio.get_running_loop().create_future())
        self._queues.setdefault((pool, principal), deque()).append(job)
        self._waiting += len(statements)
        if len(self._senders) < self.inflight:
            self._senders.add(asyncio.create_task(self._send()))
        # Cancelled (the client went away): the future is cancelled and its results dropped.
        return await job.done

    def _take(self) -> tuple[tuple[AsyncConnectionPool, Principal], list[_Job]]:
        """The jobs of the caller who has waited longest, up to this sender's share of the
        waiting statements and at most ``statements`` (at least one job, however many it holds).

        The share is the waiting statements divided among the senders free to take them: ten
        renders arriving together go out as several messages, drawn by as many backends at
        once, rather than as one message that one backend draws while the others have nothing."""
        free = len(self._senders) - self._sending
        share = min(self.statements, -(-self._waiting // max(free, 1)))
        key = next(iter(self._queues))
        queue = self._queues.pop(key)
        jobs: list[_Job] = []
        count = 0
        while queue and (not jobs or count + len(queue[0].statements) <= share):
            job = queue.popleft()
            self._waiting -= len(job.statements)
            if not job.done.done():  # not cancelled meanwhile
                jobs.append(job)
                count += len(job.statements)
        if queue:
            self._queues[key] = queue  # the rest waits behind the other callers
        return key, jobs

    async def _send(self) -> None:
        held = _Held()
        try:
            while self._queues:
                key, jobs = self._take()
                if jobs:
                    self._sending += 1
                    try:
                        await self._message(held, key, jobs, alone_on_error=len(jobs) > 1)
                    finally:
                        self._sending -= 1
        finally:
            # Out of the senders before the connection goes back: a render queued meanwhile
            # starts a sender of its own rather than waiting for this one.
            self._senders.discard(asyncio.current_task())  # type: ignore[arg-type]
            await held.release()

    async def _message(self, held: _Held, key: tuple[AsyncConnectionPool, Principal], jobs: list[_Job],
                       alone_on_error: bool) -> None:
        pool, principal = key
        refused: psycopg.Error | None = None
        try:
            conn = await held.connection(pool)
            try:
                out = await draw(conn, principal, [s for job in jobs for s in job.statements])
            except BaseException:
                await held.release()  # the pool checks it, and keeps it only if it is sound
                raise
        except psycopg.Error as exc:  # the database refused the message
            if not alone_on_error:
                self._fail(jobs, exc)
                return
            refused = exc
        except BaseException as exc:  # also a cancelled sender (shutdown): nobody waits for ever
            self._fail(jobs, exc)
            if not isinstance(exc, Exception):
                raise
            return
        if refused is not None:
            for job in jobs:
                if not job.done.done():
                    self.stats.redrawn += 1
                    await self._message(held, key, [job], alone_on_error=False)
            return
        self.stats.messages += 1
        self.stats.requests += len(jobs)
        self.stats.statements += len(out)
        self.stats.largest = max(self.stats.largest, len(jobs))
        start = 0
        for job in jobs:
            end = start + len(job.statements)
            if not job.done.done():
                job.done.set_result(out[start:end])
            start = end

    @staticmethod
    def _fail(jobs: list[_Job], exc: BaseException) -> None:
        for job in jobs:
            if job.done.done():
                continue
            if isinstance(exc, asyncio.CancelledError):
                job.done.cancel()
            else:
                job.done.set_exception(exc)


@dataclass(eq=False)
class _Held:
    """The pooled connection a sender holds while it has messages to send (one pool's): taken
    once for a burst of messages rather than from the pool and back for each (the pool's get
    and put were ~3% of the service's CPU per tile). A message that fails gives it back (the
    pool keeps it only if it is sound, and a failed prepare has closed it)."""

    pool: AsyncConnectionPool | None = None
    conn: psycopg.AsyncConnection | None = None

    async def connection(self, pool: AsyncConnectionPool) -> psycopg.AsyncConnection:
        if self.conn is not None and self.pool is not pool:
            await self.release()
        if self.conn is None:
            self.conn = await pool.getconn()
            self.pool = pool
        return self.conn

    async def release(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None and self.pool is not None:
            await self.pool.putconn(conn)
