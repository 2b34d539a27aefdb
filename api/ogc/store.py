"""Run the statements of ``queries`` on a connection, and say what database errors mean.

``page_steps`` yields statements; these drivers execute each and send back its first row, one
for the provider (psycopg under SQLAlchemy, in pygeoapi's worker thread) and one for the native
path (asyncio psycopg). Bad values that only the database notices (a NUL byte, a number out of
range) are class 22 errors: the client's fault, a 400.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection

from api.ogc.errors import InvalidParameterError, UnavailableError
from api.ogc.fragments import Fragment

T = TypeVar("T")


def run(conn: psycopg.Connection, steps: Generator[Fragment, Any, T]) -> T:
    statement = next(steps)
    while True:
        row = conn.execute(statement.sql, statement.params).fetchone()
        try:
            statement = steps.send(row)
        except StopIteration as done:
            return done.value


async def arun(conn: AsyncConnection, steps: Generator[Fragment, Any, T]) -> T:
    statement = next(steps)
    while True:
        row = await (await conn.execute(statement.sql, statement.params)).fetchone()
        try:
            statement = steps.send(row)
        except StopIteration as done:
            return done.value


@contextmanager
def database_errors() -> Iterator[None]:
    """Database errors as OGC errors: bad values → 400, timeouts and outages → 503."""
    try:
        yield
    except psycopg.errors.QueryCanceled:
        raise UnavailableError("the query took too long; narrow it with bbox, filter or limit") from None
    except psycopg.DataError as err:
        code = err.sqlstate or "22000"
        raise InvalidParameterError(f"a parameter value is not valid here (SQLSTATE {code})") from None
    except psycopg.OperationalError:
        raise UnavailableError("the database is not reachable") from None
