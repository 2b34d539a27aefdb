"""The caller context travels with the transaction and ends with it."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from layers.db import Principal, set_principal, transaction


def _ctx(conn):
    return conn.execute(
        text("SELECT pingan.ctx_user(), pingan.ctx_role(), pingan.ctx_areas()")
    ).one()


def test_principal_is_transaction_local(engine) -> None:
    p = Principal(user="wang", role="town", areas=("330304002",))
    with engine.connect() as conn:
        with conn.begin():
            set_principal(conn, p)
            assert tuple(_ctx(conn)) == ("wang", "town", ["330304002"])
        # same pooled connection, next transaction: nobody
        with conn.begin():
            assert tuple(_ctx(conn)) == (None, None, None)


def test_transaction_helper_sets_context(engine) -> None:
    with transaction(engine, Principal("li", "grid", ("330304002003001", "330304002003002"))) as c:
        user, role, areas = _ctx(c)
    assert (user, role, areas) == ("li", "grid", ["330304002003001", "330304002003002"])


@pytest.mark.parametrize(
    ("role", "areas", "message"),
    [
        ("root", (), "unknown role"),
        ("town", (), "needs at least one area"),
        ("town", ("33030400x",), "6-15 digits"),
        ("grid", ("1; DROP TABLE x",), "6-15 digits"),
    ],
)
def test_principal_validation(role, areas, message) -> None:
    with pytest.raises(ValueError, match=message):
        Principal(user="u", role=role, areas=areas)


def test_async_transaction_sets_context(db_url) -> None:
    import asyncio

    from layers.db import atransaction, make_async_pool
    from layers.settings import DatabaseSettings

    async def run():
        pool = make_async_pool(DatabaseSettings(database_url=db_url), min_size=1)
        await pool.open()
        try:
            async with atransaction(pool, Principal("zhao", "town", ("330304003",))) as conn:
                cur = await conn.execute("SELECT pingan.ctx_user(), pingan.ctx_role(), pingan.ctx_areas()")
                inside = await cur.fetchone()
            async with pool.connection() as conn:
                cur = await conn.execute("SELECT pingan.ctx_role()")
                after = await cur.fetchone()
        finally:
            await pool.close()
        return inside, after

    inside, after = asyncio.run(run())
    assert inside == ("zhao", "town", ["330304003"])
    assert after == (None,)


def test_async_pool_never_prepares_statements(db_url) -> None:
    """A bbox query run many times on one pooled connection stays unprepared (custom plans)."""
    import asyncio

    from layers.db import atransaction, make_async_pool
    from layers.settings import DatabaseSettings

    async def run() -> int:
        pool = make_async_pool(DatabaseSettings(database_url=db_url), min_size=1)
        await pool.open()
        try:
            for _ in range(12):
                async with atransaction(pool, Principal("zhao", "command")) as conn:
                    await conn.execute(
                        "SELECT count(*) FROM pingan.hazards"
                        " WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s, 4490)",
                        (120.0, 27.0, 121.0, 28.0),
                    )
            async with pool.connection() as conn:
                cur = await conn.execute("SELECT count(*) FROM pg_prepared_statements")
                return (await cur.fetchone())[0]
        finally:
            await pool.close()

    assert asyncio.run(run()) == 0
