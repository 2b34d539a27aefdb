"""Encryption at rest of person data."""

from __future__ import annotations

import base64

import pytest
from cryptography.exceptions import InvalidTag

from layers.crypto import DataKeyError, KeyRing
from layers.settings import KeySettings

K1 = base64.b64encode(bytes(range(32))).decode()
K2 = base64.b64encode(bytes(range(32, 64))).decode()


def test_round_trip_and_no_clear_text() -> None:
    ring = KeyRing.parse(f"k1:{K1}")
    blob = ring.encrypt("张伟", context=b"name")
    assert "张伟".encode() not in blob
    assert ring.decrypt(blob, context=b"name") == "张伟"
    assert ring.encrypt("张伟", context=b"name") != blob  # fresh nonce each time


def test_tampering_and_wrong_context_fail() -> None:
    ring = KeyRing.parse(K1)
    blob = bytearray(ring.encrypt("330304198001011234", context=b"id_number"))
    with pytest.raises(InvalidTag):
        ring.decrypt(bytes(blob), context=b"phone")  # a value moved to another column
    blob[-1] ^= 1
    with pytest.raises(InvalidTag):
        ring.decrypt(bytes(blob), context=b"id_number")


def test_rotation_keeps_old_rows_readable() -> None:
    old = KeyRing.parse(f"k1:{K1}")
    blob = old.encrypt("13800000000")
    new = KeyRing.parse(f"k2:{K2},k1:{K1}")
    assert new.primary == "k2"
    assert new.decrypt(blob) == "13800000000"
    assert new.key_id(new.encrypt("x")) == "k2"
    with pytest.raises(DataKeyError, match="unknown key 'k1'"):
        KeyRing.parse(f"k2:{K2}").decrypt(blob)


def test_blind_index_normalises_and_is_keyed() -> None:
    ring = KeyRing.parse(K1)
    assert ring.blind_index("33030419800101123x") == ring.blind_index(" 33030419800101123X ")
    assert ring.blind_index("330304198001011234") != ring.blind_index("330304198001011235")
    assert KeyRing.parse(K2).blind_index("1") != ring.blind_index("1")


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "no data key"), ("k1:notbase64!!", "not valid base64"),
     ("k1:" + base64.b64encode(b"short").decode(), "must be 32 bytes")],
)
def test_bad_keys_are_refused(text: str, message: str) -> None:
    with pytest.raises(DataKeyError, match=message):
        KeyRing.parse(text)


def test_key_from_file_and_missing(tmp_path) -> None:
    path = tmp_path / "data.key"
    path.write_text(f"k1:{K1}\n")
    assert KeyRing.from_settings(KeySettings(data_key_file=path)).primary == "k1"
    with pytest.raises(DataKeyError, match="cannot read"):
        KeyRing.from_settings(KeySettings(data_key_file=tmp_path / "none"))
