"""Person files: identity opened per role, masked otherwise, every read audited; key rotation."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from gis.privacy import mask_id, mask_name, mask_phone
from layers import audit
from layers.crypto import DataKeyError, KeyRing
from layers.db import Principal, make_engine, transaction
from layers.persons import key_usage, read_file, rotate
from layers.settings import DatabaseSettings
from tests.demo import TEST_KEY


def test_masks() -> None:
    assert mask_id("330304198001011234") == "3303**********1234"
    assert mask_name("张伟") == "张*" and mask_name("欧阳娜娜") == "欧***"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_id("123") == "***"


@pytest.fixture(scope="module")
def person(demo_engine: Engine) -> dict:
    """One person with a phone, and the clear values (opened with the owner's key)."""
    with demo_engine.connect() as c:
        row = c.execute(text(
            "SELECT id, grid_code, town_code, name_enc, id_number_enc, phone_enc FROM pingan.persons"
            " WHERE phone_enc IS NOT NULL ORDER BY id LIMIT 1")).one()
    pid, grid, town, *blobs = row
    clear = {f: TEST_KEY.decrypt(bytes(b), context=f.encode())
             for f, b in zip(("name", "id_number", "phone"), blobs, strict=True)}
    return {"id": pid, "grid": grid, "town": town, **clear}


@pytest.mark.parametrize(
    ("role", "clear"),
    [("grid", {"name", "id_number", "phone"}), ("town", {"name", "phone"}), ("command", set()),
     ("admin", set())],
)
def test_identity_by_role_and_audited(svc, demo_engine, person, role, clear) -> None:
    areas = {"grid": (person["grid"],), "town": (person["town"],)}.get(role, ())
    who = Principal(f"tester-{role}", role, areas, client="127.0.0.9", reason="家访前核对")
    with transaction(svc, who) as c:
        got = read_file(c, TEST_KEY, who, person["id"])
    masks = {"name": mask_name, "id_number": mask_id, "phone": mask_phone}
    for field, mask in masks.items():
        expected = person[field] if field in clear else mask(person[field])
        assert got[field] == expected, field
    assert got["location"]["exact"] == (role != "admin")
    entry = audit.query(demo_engine, actor=f"tester-{role}", object_type="persons",
                        object_id=str(person["id"]), limit=1)[0]
    assert (entry.action, entry.role) == ("read", role)
    assert (entry.client_addr, entry.reason) == ("127.0.0.9", "家访前核对")
    assert entry.details["clear"] == sorted(clear)


def test_someone_elses_person_does_not_exist(svc, person, demo_engine) -> None:
    with demo_engine.connect() as c:
        other = c.execute(text("SELECT code FROM pingan.towns WHERE code <> :t LIMIT 1"),
                          {"t": person["town"]}).scalar_one()
    who = Principal("tester-other-town", "town", (other,))
    with transaction(svc, who) as c:
        assert read_file(c, TEST_KEY, who, person["id"]) is None
    assert not audit.query(demo_engine, actor="tester-other-town")


K2 = KeyRing.parse("k2:" + base64.b64encode(b"another-test-key-of-32-bytes!!!!").decode())


@pytest.fixture(scope="module")
def rotating(databases) -> Iterator[Engine]:
    eng = make_engine(DatabaseSettings(database_url=databases.demo()))
    yield eng
    eng.dispose()


def test_rotation_reseals_everything_and_keeps_the_blind_index_working(rotating: Engine) -> None:
    with rotating.connect() as c:
        before = dict(c.execute(text(
            "SELECT id, id_number_enc FROM pingan.persons ORDER BY id")).all())
    both = KeyRing({**K2.keys, **TEST_KEY.keys}, "k2")
    assert key_usage(rotating) == {"k1": len(before)}
    result = rotate(rotating, both)
    assert (result.persons, result.resealed, result.reindexed) == (len(before), len(before), len(before))
    assert key_usage(rotating) == {"k2": len(before)}
    with rotating.connect() as c:
        pid, blob, stored_hash = c.execute(text(
            "SELECT id, id_number_enc, id_number_hash FROM pingan.persons ORDER BY id LIMIT 1")).one()
    clear = TEST_KEY.decrypt(bytes(before[pid]), context=b"id_number")
    assert K2.decrypt(bytes(blob), context=b"id_number") == clear  # the new key alone opens it
    assert bytes(stored_hash) == K2.blind_index(clear)  # loaders with the new key find the person
    with pytest.raises(DataKeyError):
        TEST_KEY.decrypt(bytes(blob), context=b"id_number")
    again = rotate(rotating, both)  # idempotent
    assert (again.resealed, again.reindexed) == (0, 0)
    assert audit.query(rotating, action="rotate-keys", limit=5)


def test_rotation_without_the_old_key_changes_nothing(rotating: Engine) -> None:
    with rotating.connect() as c:
        before = c.execute(text("SELECT md5(string_agg(id_number_enc::text, ',' ORDER BY id))"
                                " FROM pingan.persons")).scalar_one()
    k3 = KeyRing.parse("k3:" + base64.b64encode(b"third-test-key-which-is-32-bytes").decode())
    with pytest.raises(DataKeyError, match="unknown key"):
        rotate(rotating, k3)
    with rotating.connect() as c:
        after = c.execute(text("SELECT md5(string_agg(id_number_enc::text, ',' ORDER BY id))"
                               " FROM pingan.persons")).scalar_one()
    assert after == before
