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
