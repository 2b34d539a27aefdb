"""Renders of one caller waiting at the same time go in one message (tiles.batch): the same bytes
as drawn alone, one transaction per message, never two callers in one message, at most
``statements`` statements and ``inflight`` messages, and a bad tile fails only its request."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from layers.catalog import GRIDS, HAZARDS, TOWNS
from layers.db import Principal, make_async_pool
from layers.settings import DatabaseSettings
from tests.tiles.reference import densest_tile
from tests.tiles.test_draw import ADMIN, _with_pool
from tiles.batch import DrawBatcher
from tiles.render import draw, tile_statements
from tiles.settings import TileSettings
from tiles.sql import TileQuery

# What a statement of the message sees: the caller stated for it, and its transaction.
_SEEN = TileQuery("grids", "detail", (), (
    "SELECT convert_to(concat_ws('|', current_setting('pingan.user'), current_setting('pingan.role'),"
    " current_setting('pingan.areas'), pg_current_xact_id()::text, %(x)s::text), 'UTF8')"
    " WHERE %(z)s + %(y)s > 0"))
_BAD = TileQuery("grids", "detail", (), "SELECT 1 / (%(z)s - %(z)s) || %(x)s::text || %(y)s::text")
TOWN = Principal(user="o'neil", role="town", areas=("330102001",))
GRID = Principal(user="grid-1", role="grid", areas=("330102001001",))


def _seen(x: int) -> list[tuple[TileQuery, dict[str, Any]]]:
    return [(_SEEN, {"z": 13, "x": x, "y": 1})]


def _fields(drawn: list[bytes]) -> list[str]:
    return drawn[0].decode().split("|")


def test_waiting_renders_of_one_caller_share_one_message_with_their_own_bytes(demo_url, demo_engine) -> None:
    z, x, y = densest_tile(demo_engine, "grids", 13)
    asks = [tile_statements([GRIDS], z, x + dx, y + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
    asks.append(tile_statements([TOWNS, HAZARDS], *densest_tile(demo_engine, "hazards", 14)))

    async def work(pool: Any) -> tuple:
        async with pool.connection() as conn:
            alone = [await draw(conn, ADMIN, statements) for statements in asks]
        batcher = DrawBatcher(inflight=1, statements=64)
        together = await asyncio.gather(*(batcher.draw(pool, ADMIN, statements) for statements in asks))
        return alone, together, batcher.stats

    alone, together, stats = _with_pool(demo_url, work)
    assert sum(len(b) for drawn in alone for b in drawn) > 10_000  # not vacuous
    assert together == alone
    assert (stats.messages, stats.requests, stats.statements, stats.largest) == (1, 10, 11, 10)


def test_one_message_is_one_transaction_of_one_caller(demo_url) -> None:
    """Interleaved requests of three callers: each request sees its own caller; the requests of
    a message share its transaction; no transaction holds two callers; ``statements`` caps a
    message."""
    callers = [ADMIN, TOWN, GRID] * 6

    async def work(pool: Any) -> tuple:
        batcher = DrawBatcher(inflight=1, statements=4)
        drawn = await asyncio.gather(*(batcher.draw(pool, who, _seen(i)) for i, who in enumerate(callers)))
        return drawn, batcher.stats

    drawn, stats = _with_pool(demo_url, work)
    seen = [_fields(d) for d in drawn]
    for i, (who, fields) in enumerate(zip(callers, seen, strict=True)):
        assert fields[:3] == [who.user, who.role, ",".join(who.areas)]
        assert fields[4] == str(i)  # its own statement's result
    by_xact: dict[str, set[str]] = {}
    for fields in seen:
        by_xact.setdefault(fields[3], set()).add(fields[0])
    assert all(len(users) == 1 for users in by_xact.values())
    # 6 requests per caller, at most 4 per message: 2 messages each
    assert len(by_xact) == stats.messages == 6
    assert stats.largest == 4


def test_at_most_inflight_messages_are_out(demo_url) -> None:
    slow = TileQuery("grids", "detail", (), (
        "SELECT convert_to(pg_current_xact_id()::text, 'UTF8')"
        " FROM pg_sleep(0.05) WHERE %(z)s + %(x)s + %(y)s > 0"))
    most = 0

    async def work(pool: Any) -> tuple:
        batcher = DrawBatcher(inflight=2, statements=3)

        async def watch() -> None:
            nonlocal most
            while True:
                most = max(most, len(batcher._senders))
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch())
        drawn = await asyncio.gather(*(batcher.draw(pool, ADMIN, [(slow, {"z": 1, "x": i, "y": 1})])
                                       for i in range(12)))
        watcher.cancel()
        return drawn, batcher.stats

    drawn, stats = _with_pool(demo_url, work)
    xacts = {d[0] for d in drawn}
    assert len(xacts) == stats.messages == 4  # 12 requests, 3 per message
    assert most == 2


def test_renders_arriving_together_are_shared_among_the_free_senders(demo_url) -> None:
    """Ten renders asked at once with four messages free go out as four messages (3, 3, 2, 2),
    drawn by four backends at the same time, not as one message one backend draws alone (a
    map screen's pan: the tiles arrive ~20% sooner, docs/performance.md)."""
    slow = TileQuery("grids", "detail", (), (
        "SELECT convert_to(pg_backend_pid()::text || ' '"
        " || extract(epoch FROM clock_timestamp())::text, 'UTF8')"
        " FROM pg_sleep(0.05) WHERE %(z)s + %(x)s + %(y)s > 0"))

    async def work(pool: Any) -> tuple:
        batcher = DrawBatcher(inflight=4, statements=16)
        drawn = await asyncio.gather(*(batcher.draw(pool, ADMIN, [(slow, {"z": 1, "x": i, "y": 1})])
                                       for i in range(10)))
        return drawn, batcher.stats

    drawn, stats = _with_pool(demo_url, work)
    by_backend: dict[str, list[float]] = {}
    for d in drawn:
        pid, at = d[0].decode().split()
        by_backend.setdefault(pid, []).append(float(at))
    assert sorted(len(v) for v in by_backend.values()) == [2, 2, 3, 3]
    assert (stats.messages, stats.requests, stats.largest) == (4, 10, 3)
    # the four messages ran side by side: each backend's first statement ended within 100 ms of
    # the others' (one message after another: 150 ms and more apart)
    firsts = [min(v) for v in by_backend.values()]
    assert max(firsts) - min(firsts) < 0.1


def test_a_bad_tile_fails_only_its_own_request(demo_url) -> None:
    """The database refuses the message: each of its requests is drawn again alone; the bad
    one gets the database's error, the others their tiles."""
    asks = [_seen(0), _seen(1), [(_BAD, {"z": 13, "x": 2, "y": 1})], _seen(3)]

    async def work(pool: Any) -> tuple:
        batcher = DrawBatcher(inflight=1)
        drawn = await asyncio.gather(*(batcher.draw(pool, ADMIN, a) for a in asks), return_exceptions=True)
        return drawn, batcher.stats

    drawn, stats = _with_pool(demo_url, work)
    assert isinstance(drawn[2], psycopg.errors.DivisionByZero)
    assert [_fields(drawn[i])[4] for i in (0, 1, 3)] == ["0", "1", "3"]
    assert stats.redrawn == 4
    assert stats.messages == 3  # three good requests, each alone after the refused message


def test_a_request_that_went_away_is_left_out(demo_url) -> None:
    async def work(pool: Any) -> tuple:
        batcher = DrawBatcher(inflight=1)
        tasks = [asyncio.create_task(batcher.draw(pool, ADMIN, _seen(i))) for i in range(5)]
        await asyncio.sleep(0)  # every request waits in the queue, the sender not yet started
        tasks[1].cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        return done, batcher.stats

    done, stats = _with_pool(demo_url, work)
    assert isinstance(done[1], asyncio.CancelledError)
    assert [_fields(done[i])[4] for i in (0, 2, 3, 4)] == ["0", "2", "3", "4"]
    assert (stats.messages, stats.requests) == (1, 4)


def test_settings_refuse_no_messages_at_all() -> None:
    with pytest.raises(ValueError):
        TileSettings(batch_inflight=0)
    with pytest.raises(ValueError):
        DrawBatcher(inflight=1, statements=0)


def test_the_app_draws_through_the_batcher(cold) -> None:
    before = cold.app.state.tiles.batcher.stats.requests
    assert cold.get("/ogc/collections/grids/tiles/WebMercatorQuad/13/3433/6841").status_code in (200, 204)
    assert cold.app.state.tiles.batcher.stats.requests == before + 1


def test_a_render_right_after_the_last_one_is_drawn(demo_url) -> None:
    """A render asked for as soon as the one before it returns (the sender that drew it has just
    ended) is drawn, not left waiting for a sender that is gone."""
    async def work(pool: Any) -> list[str]:
        batcher = DrawBatcher(inflight=1)
        seen = []
        for i in range(3):
            async with asyncio.timeout(10):  # awaited in this task, as a request awaits it
                seen.append(_fields(await batcher.draw(pool, ADMIN, _seen(i)))[4])
        return seen

    assert _with_pool(demo_url, work) == ["0", "1", "2"]


def test_a_sender_keeps_its_connection_for_a_burst_of_messages(demo_url) -> None:
    """Messages that one sender sends one after another go on the connection it took once,
    not on one taken from the pool and given back for each; it is given back at the end."""
    async def run() -> tuple:
        pool = make_async_pool(DatabaseSettings(database_url=demo_url, pool_size=1), min_size=1, service=True)
        await pool.open(wait=True)
        try:
            batcher = DrawBatcher(inflight=1, statements=1)
            drawn = await asyncio.gather(*(batcher.draw(pool, ADMIN, _seen(i)) for i in range(6)))
            taken = pool.get_stats().get("requests_num", 0)
            async with asyncio.timeout(5), pool.connection():  # the pool's one connection is back
                pass
            return drawn, taken, batcher.stats
        finally:
            await pool.close()

    drawn, taken, stats = asyncio.run(run())
    assert [_fields(d)[4] for d in drawn] == [str(i) for i in range(6)]
    assert stats.messages == 6
    assert taken == 1


def test_a_sender_replaces_a_connection_the_database_closed(demo_url) -> None:
    """A statement that cannot be prepared closes the sender's connection (tiles.render): the
    sender's next message goes on a sound connection from the pool."""
    missing = TileQuery("grids", "detail", (),
                        "SELECT * FROM pingan.no_such_table WHERE %(z)s + %(x)s + %(y)s > 0")
    asks = [[(missing, {"z": 13, "x": 0, "y": 1})], _seen(1), _seen(2)]

    async def work(pool: Any) -> list:
        batcher = DrawBatcher(inflight=1, statements=1)
        return await asyncio.gather(*(batcher.draw(pool, ADMIN, a) for a in asks), return_exceptions=True)

    drawn = _with_pool(demo_url, work)
    assert isinstance(drawn[0], psycopg.errors.UndefinedTable)
    assert [_fields(drawn[i])[4] for i in (1, 2)] == ["1", "2"]
