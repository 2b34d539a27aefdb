"""Encryption at rest of person data (name, ID number, phone).

AES-256-GCM with a key ring held outside the database. A ciphertext records the id of the key
that sealed it, so keys can be rotated (`pingan keys rotate`, security issue) while old rows
stay readable. ``blind_index`` gives a keyed HMAC of a normalised value, so the database can keep
one file per ID number (a UNIQUE column) without ever holding the number in clear.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from layers.settings import KeySettings

_FORMAT = 1  # first byte of every ciphertext
_NONCE = 12


class DataKeyError(ValueError):
    """A key is missing, malformed, or unknown."""


@dataclass(frozen=True)
class KeyRing:
    """Data keys by id; ``primary`` seals new values, all of them open old ones."""

    keys: dict[str, bytes]
    primary: str

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        """Parse ``"id:base64key,id:base64key"`` (or one bare base64 key, id ``k1``)."""
        keys: dict[str, bytes] = {}
        order: list[str] = []
        for i, part in enumerate(p.strip() for p in text.strip().split(",") if p.strip()):
            kid, _, b64 = part.rpartition(":") if ":" in part else (f"k{i + 1}", ":", part)
            try:
                raw = base64.b64decode(b64, validate=True)
            except binascii.Error:
                raise DataKeyError(f"data key {kid!r} is not valid base64") from None
            if len(raw) != 32:
                raise DataKeyError(f"data key {kid!r} must be 32 bytes, got {len(raw)}")
            if not kid.isascii() or not 0 < len(kid) < 64:
                raise DataKeyError(f"bad key id {kid!r}")
            keys[kid] = raw
            order.append(kid)
        if not keys:
            raise DataKeyError("no data key given")
        return cls(keys, order[0])

    @classmethod
    def from_settings(cls, settings: KeySettings) -> KeyRing:
        if settings.data_key:
            return cls.parse(settings.data_key)
        if settings.data_key_file:
            try:
                return cls.parse(settings.data_key_file.read_text(encoding="ascii"))
            except OSError as exc:
                raise DataKeyError(f"cannot read data key file {settings.data_key_file}: {exc}") from None
        raise DataKeyError("no data key: set PINGAN_DATA_KEY or PINGAN_DATA_KEY_FILE")

    @staticmethod
    def generate_text(kid: str = "k1") -> str:
        return f"{kid}:{base64.b64encode(os.urandom(32)).decode()}"

    # -- sealing ------------------------------------------------------------------------------
    def encrypt(self, value: str, *, context: bytes = b"") -> bytes:
        """Seal ``value``; ``context`` (e.g. the column name) is bound as associated data."""
        kid = self.primary.encode()
        nonce = os.urandom(_NONCE)
        header = bytes([_FORMAT, len(kid)]) + kid
        ct = AESGCM(self.keys[self.primary]).encrypt(nonce, value.encode(), header + context)
        return header + nonce + ct

    def decrypt(self, blob: bytes, *, context: bytes = b"") -> str:
        if len(blob) < 2 or blob[0] != _FORMAT:
            raise DataKeyError("not a Pingan ciphertext")
        n = blob[1]
        header, kid = blob[: 2 + n], blob[2:2 + n].decode()
        if kid not in self.keys:
            raise DataKeyError(f"ciphertext sealed with unknown key {kid!r}")
        nonce, ct = blob[2 + n:2 + n + _NONCE], blob[2 + n + _NONCE:]
        return AESGCM(self.keys[kid]).decrypt(nonce, ct, header + context).decode()

    def key_id(self, blob: bytes) -> str:
        return blob[2:2 + blob[1]].decode()

    def blind_index(self, value: str) -> bytes:
        """Keyed HMAC-SHA256 of the normalised value (upper case, no blanks)."""
        mac_key = hashlib.sha256(b"pingan blind index\x00" + self.keys[self.primary]).digest()
        norm = "".join(value.split()).upper().encode()
        return hmac.new(mac_key, norm, hashlib.sha256).digest()
