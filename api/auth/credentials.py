"""Passwords, session ids and API tokens: how they are made, hashed and checked.

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106's second recommendation:
3 passes over 64 MiB). Session ids and tokens are 32 random bytes; the database keeps only
their SHA-256, which is enough for values with 256 bits of entropy and costs one indexed
lookup per request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024  # argon2 takes any length; this bounds the work a caller can ask for
TOKEN_PREFIX = "pgn_"  # noqa: S105 - lets secret scanners and people recognise a Pingan token


class PasswordPolicyError(ValueError):
    """The password does not meet the policy; the message says why (never the password)."""


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    return PasswordHasher()


def check_password_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"a password may have at most {MAX_PASSWORD_LENGTH} characters")
    if password != password.strip():
        raise PasswordPolicyError("a password may not start or end with white space")
    if any(ord(c) < 32 or ord(c) == 127 for c in password):
        raise PasswordPolicyError("a password may not contain control characters")


def hash_password(password: str) -> str:
    """The argon2id hash (PHC string) of a password that meets the policy."""
    check_password_policy(password)
    return _hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``. With no hash (unknown user) a dummy
    verification runs, so that the answer takes as long whether or not the user exists."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return _hasher().verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher().hash(secrets.token_urlsafe(32))


def new_secret() -> str:
    """32 random bytes, URL-safe base64 (43 characters): a session id."""
    return secrets.token_urlsafe(32)


def new_token() -> str:
    """A new API token: prefix + 32 random bytes."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(value: str) -> bytes:
    """SHA-256 of a session id or token: what the database stores and looks up."""
    return hashlib.sha256(value.encode("utf-8")).digest()


def csrf_token(session_id: str) -> str:
    """The session's synchronizer token: derived from the session id (which only the cookie
    holds), so it needs no storage, differs from what the database keeps, and is per session."""
    raw = hashlib.sha256(b"pingan-csrf\x00" + session_id.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def csrf_matches(session_id: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(csrf_token(session_id), given or "")


def generate_password(length: int = 20) -> str:
    """A random password for demo users: letters and digits without look-alikes."""
    alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))
