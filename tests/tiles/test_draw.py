"""One round trip per tile (tiles.render.draw): the caller's transaction and the tile statements in
one message. The same bytes as in an ordinary transaction, row-level security for the caller,
and nothing of the caller left on the pooled connection afterwards."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest
from psycopg import AsyncConnection
from sqlalchemy import Engine, text

from layers.catalog import CASES, GRIDS, HAZARDS, TOWNS
from layers.db import Principal, atransaction, make_async_pool
from layers.settings import DatabaseSettings
from tests.tiles.reference import count_in_tile, decode, densest_tile
from tiles.render import draw, get_tile, get_tiles, normalise_filters, tile_statements
from tiles.sql import TileQuery

ADMIN = Principal(user="test", role="admin")
_LEFT = ("SELECT current_user, coalesce(current_setting('pingan.role', true), ''),"
         " current_setting('plan_cache_mode')")


def _with_pool(url: str, work: Callable[[Any], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        pool = make_async_pool(DatabaseSettings(database_url=url), min_size=1, service=True)
        await pool.open()
        try:
            return await work(pool)
        finally:
            await pool.close()

    return asyncio.run(run())


async def _left_on(conn: AsyncConnection) -> tuple:
    """What a connection carries between requests: its role and settings, autocommit."""
    row = await (await conn.execute(_LEFT)).fetchone()
    await conn.rollback()
    return (*row, conn.autocommit)  # type: ignore[misc]


def test_draw_gives_the_bytes_of_a_transaction_and_leaves_nothing_behind(demo_url, demo_engine) -> None:
    tile = densest_tile(demo_engine, "hazards", 14)

    async def work(pool: Any) -> tuple:
        async with atransaction(pool, ADMIN) as conn:
            one = await get_tile(conn, HAZARDS, *tile)
            several = await get_tiles(conn, [TOWNS, HAZARDS, CASES], *tile)
        async with pool.connection() as conn:
            before = await _left_on(conn)
            drawn = await draw(conn, ADMIN, tile_statements([HAZARDS], *tile))
            drawn_several = await draw(conn, ADMIN,
                                       tile_statements([TOWNS, HAZARDS, CASES], *tile))
            after = await _left_on(conn)
        return one, several, drawn, drawn_several, before, after

    one, several, drawn, drawn_several, before, after = _with_pool(demo_url, work)
    assert len(decode(one)["hazards"]) > 100  # not vacuous
    assert drawn == [one]
    assert b"".join(drawn_several) == several
    assert before == after == ("pingan_service", "", "auto", False)


def test_filter_values_reach_the_database_as_they_are(demo_url, demo_engine) -> None:
    """Filters are bound as text arrays: values with quotes, commas, backslashes, braces and
    Chinese draw what the cursor's quoted literals draw (``get_tile``), and matching values
    draw features."""
    tile = densest_tile(demo_engine, "hazards", 14)
    asks = [{"state": ["found", "closed"]},
            {"state": ["found", "closed", 'a"b', "c,d", "e\\f", "{g}", "已处置", "NULL"]}]

    async def work(pool: Any) -> list[tuple[bytes, list[bytes]]]:
        out = []
        for filters in asks:
            async with atransaction(pool, ADMIN) as conn:
                one = await get_tile(conn, HAZARDS, *tile, filters=filters)
            async with pool.connection() as conn:
                statements = tile_statements([HAZARDS], *tile, normalise_filters(HAZARDS, filters))
                out.append((one, await draw(conn, ADMIN, statements)))
        return out

    (found, drawn_found), (odd, drawn_odd) = _with_pool(demo_url, work)
    assert len(decode(found)["hazards"]) > 10  # not vacuous
    assert drawn_found == [found]
    assert drawn_odd == [odd] and odd


@pytest.mark.parametrize("role", ["town", "grid"])
def test_draw_runs_as_the_caller(demo_url, demo_engine: Engine, logins, role) -> None:
    """Row-level security binds the tile statements of the message: a town or grid caller's
    hazards tile counts only the hazards of their areas."""
    login = logins[role]
    principal = Principal(user=login.name, role=role, areas=login.areas)
    column = "town_code" if role == "town" else "grid_code"
    with demo_engine.connect() as conn:  # the densest z14 tile of the caller's own hazards
        z, x, y = conn.execute(text(
            "SELECT 14, floor((ST_X(g) + 20037508.342789244) / (40075016.68557849 / 16384))::int,"
            " floor((20037508.342789244 - ST_Y(g)) / (40075016.68557849 / 16384))::int"
            " FROM (SELECT ST_Transform(geom, 3857) AS g FROM pingan.hazards"
            f" WHERE {column} = ANY(:areas)) p GROUP BY 2, 3 ORDER BY count(*) DESC LIMIT 1"),
            {"areas": list(login.areas)}).one()
    areas = ",".join(f"'{a}'" for a in login.areas)
    own = count_in_tile(demo_engine, "hazards", (z, x, y), f"{column} IN ({areas})")
    everyone = count_in_tile(demo_engine, "hazards", (z, x, y))

    async def work(pool: Any) -> list[bytes]:
        async with pool.connection() as conn:
            return await draw(conn, principal, tile_statements([HAZARDS], z, x, y))

    features = decode(_with_pool(demo_url, work)[0]).get("hazards", [])
    represented = sum(f["properties"]["count"] if f["properties"].get("aggregated") else 1 for f in features)
    assert 0 < own == represented
    assert own < everyone or role == "town"  # a grid is smaller than its tile's neighbourhood


def test_a_failed_tile_leaves_the_connection_clean(demo_url) -> None:
    """A statement that fails inside the message rolls the whole implicit transaction back:
    the connection is idle, out of autocommit, and serves the next tile."""
    bad = TileQuery("grids", "detail", (), "SELECT 1 / (%(z)s - %(z)s) || %(x)s::text || %(y)s::text")

    async def work(pool: Any) -> tuple:
        async with pool.connection() as conn:
            with pytest.raises(psycopg.errors.DivisionByZero):
                await draw(conn, ADMIN, [(bad, {"z": 13, "x": 1, "y": 2})])
            left = await _left_on(conn)
            again = await draw(conn, ADMIN, tile_statements([GRIDS], 13, 6841, 3433))
        return left, again

    left, again = _with_pool(demo_url, work)
    assert left == ("pingan_service", "", "auto", False)
    assert isinstance(again[0], bytes)


def test_a_failed_prepare_discards_the_connection(demo_url) -> None:
    """A statement that cannot be prepared: the error reaches the caller, and the connection is
    closed rather than returned to the pool in an unknown state."""
    bad = TileQuery("grids", "detail", (),
                    "SELECT * FROM pingan.no_such_table WHERE %(z)s + %(x)s + %(y)s > 0")

    async def work(pool: Any) -> tuple:
        async with pool.connection() as conn:
            with pytest.raises(psycopg.errors.UndefinedTable):
                await draw(conn, ADMIN, [(bad, {"z": 13, "x": 1, "y": 2})])
            closed = conn.closed
        async with pool.connection() as conn:  # the pool serves a working connection
            again = await draw(conn, ADMIN, tile_statements([GRIDS], 13, 6841, 3433))
        return closed, again

    closed, again = _with_pool(demo_url, work)
    assert closed
    assert isinstance(again[0], bytes)


def test_a_cancelled_draw_closes_the_connection(demo_url) -> None:
    """A draw cancelled while the database works on it (the client went away, the server stops):
    the connection, with its query still running, is closed, never returned to the pool as it is."""
    slow = TileQuery("grids", "detail", (), "SELECT pg_sleep(%(z)s) || %(x)s::text || %(y)s::text")

    async def work(pool: Any) -> tuple:
        async with pool.connection() as conn:
            drawing = asyncio.create_task(draw(conn, ADMIN, [(slow, {"z": 5, "x": 1, "y": 2})]))
            await asyncio.sleep(0.5)
            drawing.cancel()
            with pytest.raises(asyncio.CancelledError):
                await drawing
            closed = conn.closed
        async with pool.connection() as conn:  # the pool serves a working connection
            again = await draw(conn, ADMIN, tile_statements([GRIDS], 13, 6841, 3433))
        return closed, again

    started = time.monotonic()
    closed, again = _with_pool(demo_url, work)
    assert closed
    assert isinstance(again[0], bytes)
    assert time.monotonic() - started < 4  # not the 5 s sleep


def test_the_tile_statement_runs_stated_with_generic_plans(demo_url) -> None:
    """The prepared caller statement states user, role and areas (quoted: a user name with a
    quote) and sets generic plans, for the tile statements of the message only; a second
    caller on the same connection is stated anew, and the connection keeps neither."""
    seen = TileQuery("grids", "detail", (), (
        "SELECT convert_to(concat_ws('|', current_setting('pingan.user'), current_setting('pingan.role'),"
        " current_setting('pingan.areas'), current_user, current_setting('plan_cache_mode')), 'UTF8')"
        " WHERE %(z)s + %(x)s + %(y)s > 0"))
    town = Principal(user="o'neil", role="town", areas=("330102001",))

    async def work(pool: Any) -> tuple:
        async with pool.connection() as conn:
            first = await draw(conn, town, [(seen, {"z": 13, "x": 1, "y": 2})])
            second = await draw(conn, ADMIN, [(seen, {"z": 13, "x": 1, "y": 2})])
            return first, second, await _left_on(conn)

    first, second, left = _with_pool(demo_url, work)
    assert first == [b"o'neil|town|330102001|pingan_as_town|force_generic_plan"]
    assert second == [b"test|admin||pingan_as_admin|force_generic_plan"]
    assert left == ("pingan_service", "", "auto", False)
