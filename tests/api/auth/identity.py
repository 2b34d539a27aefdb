"""One database for the identity tests (API and CLI): migrated, with the demo district loaded
(real towns and grids for town/grid users, and `pingan demo users`). Created once per test
session through the session's DatabaseFactory, which drops it at the end."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from layers.db import make_engine
from layers.settings import DatabaseSettings

_made: dict[int, IdentityDb] = {}


@dataclass(frozen=True)
class IdentityDb:
    owner_url: str  # role pingan: migrations, CLI, test set-up
    service_url: str  # role pingan_service: what the API connects as
    town: str  # a demo town code
    grids: tuple[str, ...]  # two grid codes of that town


def identity_db(databases) -> IdentityDb:  # noqa: ANN001 - tests.conftest.DatabaseFactory
    key = id(databases)
    if key not in _made:
        url = databases.demo()
        engine = make_engine(DatabaseSettings(database_url=url))
        try:
            with engine.connect() as conn:
                town = conn.execute(text("SELECT min(code) FROM pingan.towns")).scalar_one()
                grids = conn.execute(text(
                    "SELECT g.code FROM pingan.grids g JOIN pingan.villages v ON v.code = g.village_code "
                    "WHERE v.town_code = :t ORDER BY g.code LIMIT 2"), {"t": town}).scalars().all()
        finally:
            engine.dispose()
        _made[key] = IdentityDb(url, databases.service_url(url), town, tuple(grids))
    return _made[key]
