"""Test fixtures: one real PostGIS (the private cluster, or PINGAN_DATABASE_URL's server).

Each session creates its own databases (``pingan_test_*``) so tests never touch the demo or a
user's data, and drops them at the end.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url

from cli.config import DatabaseTarget, database_target
from cli.devdb import create_database, create_extensions
from layers import migrate
from layers.db import libpq_url, make_engine
from layers.settings import DatabaseSettings
from tests.helpers import fresh_database_name


@pytest.fixture(scope="session")
def target() -> DatabaseTarget:
    return database_target(start=True)


class DatabaseFactory:
    """Creates empty databases (with PostGIS) owned by the app role; drops them at teardown."""

    def __init__(self, target: DatabaseTarget) -> None:
        self.target = target
        self.created: list[str] = []
        self._demo_template: str | None = None
        self.demo_result = None  # the template's LoadResult (etl.demo.load)

    def create(self, template: str | None = None) -> str:
        """A new database: empty with PostGIS, or a copy of database ``template`` (which must
        have no connections)."""
        name = fresh_database_name()
        owner = make_url(self.target.url).username
        with psycopg.connect(libpq_url(self.target.admin_url), autocommit=True) as conn:
            if template is None:
                create_database(conn, name, owner=owner)
            else:
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE {} STRATEGY FILE_COPY").format(
                    sql.Identifier(name), sql.Identifier(owner), sql.Identifier(template)))
        self.created.append(name)
        if template is None:
            with psycopg.connect(self._url(name, admin=True), autocommit=True) as conn:
                create_extensions(conn)
        return self._url(name)

    def demo(self) -> str:
        """A new database holding the demo district (scale 1, seed 42), migrated and loaded.

        The district is loaded once per session into a template database that no test
        connects to; each call copies that template (``CREATE DATABASE ... TEMPLATE``), a file
        copy of about half a second where a load takes 15-30 s. A copy is an independent database:
        tests may write to it."""
        if self._demo_template is None:
            from tests.demo import load

            url = self.create()
            engine = make_engine(DatabaseSettings(database_url=url))
            try:
                migrate.upgrade(engine)
                self.demo_result = load(engine)
                assert not self.demo_result.skipped
            finally:
                engine.dispose()  # the template must have no connections when it is copied
            self._demo_template = make_url(url).database
        return self.create(template=self._demo_template)

    def _url(self, name: str, *, admin: bool = False) -> str:
        base = self.target.admin_url if admin else self.target.url
        return libpq_url(make_url(base).set(database=name).render_as_string(hide_password=False))

    def service_url(self, url: str) -> str:
        """The web service role's URL for the database of ``url`` (row-level security binds it)."""
        if not self.target.service_url:
            pytest.skip("no service role URL: set PINGAN_SERVICE_DATABASE_URL")
        service = make_url(self.target.service_url).set(database=make_url(url).database)
        return libpq_url(service.render_as_string(hide_password=False))

    def drop_all(self) -> None:
        with psycopg.connect(libpq_url(self.target.admin_url), autocommit=True) as conn:
            for name in self.created:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


@pytest.fixture(scope="session")
def databases(target: DatabaseTarget) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(target)
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def db_url(databases: DatabaseFactory) -> str:
    """A database migrated to head, shared by the session (tests roll back what they write)."""
    url = databases.create()
    engine = make_engine(DatabaseSettings(database_url=url))
    migrate.upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def service_url(databases: DatabaseFactory, db_url: str) -> str:
    """``db_url``'s database as the web service connects to it (role pingan_service)."""
    return databases.service_url(db_url)


@pytest.fixture(scope="session")
def demo_service_url(databases: DatabaseFactory, demo_engine: Engine) -> str:
    """The demo database as the web service connects to it (role pingan_service)."""
    return databases.service_url(demo_engine.url.render_as_string(hide_password=False))


@pytest.fixture(scope="session")
def svc(demo_service_url: str) -> Iterator[Engine]:
    """An engine on the demo database as the web service: role pingan_service, every new
    connection checked to be bound by row-level security."""
    eng = make_engine(DatabaseSettings(database_url=demo_service_url), service=True)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(DatabaseSettings(database_url=db_url))
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def demo_engine(databases: DatabaseFactory) -> Iterator[Engine]:
    """A database with the demo district (scale 1, seed 42), shared by the session. Tests only
    read it; tests that write take their own copy (``databases.demo()``)."""
    eng = make_engine(DatabaseSettings(database_url=databases.demo()))
    eng.demo_result = databases.demo_result  # type: ignore[attr-defined]
    yield eng
    eng.dispose()


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back after the test."""
    with engine.connect() as c:
        tx = c.begin()
        try:
            yield c
        finally:
            tx.rollback()


@pytest.fixture
def random_suffix() -> str:
    return secrets.token_hex(4)


@dataclass(frozen=True)
class Login:
    """A demo-database user of one role, for tests that call the service as that role."""

    name: str
    password: str
    role: str
    areas: tuple[str, ...]

    @property
    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.name}:{self.password}".encode()).decode()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": self.basic}


@pytest.fixture(scope="session")
def logins(demo_engine: Engine) -> dict[str, Login]:
    """One user per role in the demo database: the town user holds the town with the most
    hazards, the grid user two of that town's grids that hold persons."""
    from api.auth import store

    with demo_engine.begin() as c:
        town = c.execute(text(
            "SELECT town_code FROM pingan.hazards GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")).scalar_one()
        grids = tuple(c.execute(text(
            "SELECT grid_code FROM pingan.persons WHERE town_code = :t GROUP BY 1 ORDER BY count(*) DESC, 1"
            " LIMIT 2"), {"t": town}).scalars())
        made = {}
        for role in ("admin", "command", "town", "grid", "analyst", "public"):
            areas = {"town": (town,), "grid": grids}.get(role, ())
            login = Login(f"t-{role}", secrets.token_urlsafe(18), role, areas)
            store.add_user(c, store.Actor("tests"), login.name, role, list(areas), login.password)
            made[role] = login
    return made
