"""Fixtures of the identity tests: a small app protected by api.auth, served through Starlette's
TestClient (httpx), connected to the database as the service role pingan_service."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.auth import AuthSettings, get_principal, install, optional_principal, store
from layers.db import Principal, make_async_pool, make_engine
from layers.settings import DatabaseSettings
from tests.api.auth.identity import IdentityDb, identity_db

ACTOR = store.Actor("test", "system")
ADDR = "203.0.113.7"


@pytest.fixture(scope="session")
def idb(databases) -> IdentityDb:
    return identity_db(databases)


@pytest.fixture(scope="session")
def owner(idb: IdentityDb) -> Iterator[Engine]:
    eng = make_engine(DatabaseSettings(database_url=idb.owner_url))
    yield eng
    eng.dispose()


def make_app(service_url: str, settings: AuthSettings) -> FastAPI:
    """A tiny service: the pool as api.app builds it (service role, checked), api.auth installed,
    and three routes that use the dependencies."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = make_async_pool(DatabaseSettings(database_url=service_url), min_size=1,
                                         service=True)
        await app.state.pool.open()
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(lifespan=lifespan)
    install(app, settings)

    @app.get("/t/whoami")
    async def whoami(request: Request, p: Principal = Depends(get_principal)) -> dict:  # noqa: B008
        return {"user": p.user, "role": p.role, "areas": list(p.areas), "method": request.state.auth_method}

    @app.post("/t/change")
    async def change(p: Principal = Depends(get_principal)) -> dict:  # noqa: B008
        return {"changed_by": p.user}

    @app.get("/t/public")
    async def public(p: Principal | None = Depends(optional_principal)) -> dict:  # noqa: B008
        return {"user": p.user if p else None}

    return app


TEST_SETTINGS = AuthSettings(cookie_secure=False, credential_cache_seconds=0)  # caches: own tests


@pytest.fixture
def make_client(idb: IdentityDb, owner: Engine) -> Iterator[Callable[..., TestClient]]:
    """``make_client(settings=None, addr=ADDR)``: a started TestClient (several may share a
    database: each has its own app, so its own Basic cache)."""
    clients: list[TestClient] = []

    def make(settings: AuthSettings | None = None, addr: str = ADDR) -> TestClient:
        app = make_app(idb.service_url, settings or TEST_SETTINGS)
        c = TestClient(app, client=(addr, 50000))
        c.__enter__()
        clients.append(c)
        return c

    with owner.begin() as conn:  # every test starts without failure counters
        conn.execute(text("DELETE FROM pingan.login_throttle"))
    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> TestClient:
    return make_client()


@pytest.fixture
def new_user(owner: Engine) -> Callable[..., tuple[str, str]]:
    """``new_user(role="command", areas=())`` -> (name, password): a fresh user in the database."""

    def make(role: str = "command", areas: tuple[str, ...] = ()) -> tuple[str, str]:
        name = f"u{secrets.token_hex(5)}"
        password = "pw-" + secrets.token_urlsafe(16)
        with owner.begin() as conn:
            store.add_user(conn, ACTOR, name, role, list(areas), password)
        return name, password

    return make
