"""The FastAPI dependencies: who is calling?

``get_principal`` resolves, in this order, ``Authorization: Bearer <token>``, ``Authorization:
Basic <base64>`` and the session cookie; without any it answers 401 with Basic and Bearer
challenges. Requests authenticated by the cookie must send the session's CSRF token in
``X-CSRF-Token`` with every unsafe method (POST, PUT, PATCH, DELETE); Basic and Bearer requests
cannot be forged by another site and need none.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

from fastapi import HTTPException, Request
from starlette.applications import Starlette

from api.auth.credentials import csrf_matches
from api.auth.service import Authenticator, AuthFailure
from layers.db import Principal

REALM = "Pingan Map"
CHALLENGES = (f'Basic realm="{REALM}", charset="UTF-8"', f'Bearer realm="{REALM}"')
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CSRF_HEADER = "X-CSRF-Token"
ANONYMOUS = Principal(user="anonymous", role="public")


class AuthRequired(HTTPException):
    """401 with the challenges; :func:`api.auth.install` sends one WWW-Authenticate line each."""

    def __init__(self, detail: str = "authentication required", locked_until: datetime | None = None) -> None:
        super().__init__(401, detail, headers={"WWW-Authenticate": CHALLENGES[0]})
        self.locked_until = locked_until


class CsrfRefused(HTTPException):
    def __init__(self) -> None:
        super().__init__(403, f"missing or wrong {CSRF_HEADER} header (GET /auth/me gives the token)")


def authenticator(request: Request) -> Authenticator:
    return _authenticator(request.app)


def _authenticator(app: Starlette) -> Authenticator:
    auth = getattr(app.state, "auth", None)
    if auth is None:
        raise RuntimeError("api.auth.install(app, settings) was not called for this app")
    return auth


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def parse_basic(value: str) -> tuple[str, str]:
    """User and password of a Basic credential (UTF-8, as the challenge announces)."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        raise AuthRequired("malformed Basic credentials") from None
    user, sep, password = text.partition(":")
    if not sep or not user:
        raise AuthRequired("malformed Basic credentials")
    return user, password


def _remember(request: Request, principal: Principal, kind: str) -> Principal:
    request.state.principal = principal
    request.state.auth_method = kind
    return principal


async def _resolve(request: Request, *, anonymous_ok: bool) -> Principal | None:
    auth = authenticator(request)
    pool = request.app.state.pool
    header = request.headers.get("authorization")
    try:
        if header:
            scheme, _, value = header.partition(" ")
            scheme = scheme.lower()
            if scheme == "bearer":
                return _remember(request, await bearer_principal(request.app, value.strip()), "bearer")
            if scheme == "basic":
                user, password = parse_basic(value)
                principal = await auth.basic(pool, user, password, client_address(request))
                return _remember(request, principal, "basic")
            raise AuthRequired(f"unsupported authorization scheme {scheme[:20]!r}; use Basic or Bearer")
        session_id = request.cookies.get(auth.settings.cookie_name)
        if session_id:
            try:
                principal = await auth.session(pool, session_id)
            except AuthFailure:
                if anonymous_ok:  # a stale cookie on a public page: just anonymous
                    return None
                raise
            if request.method not in SAFE_METHODS and not csrf_matches(
                session_id, request.headers.get(CSRF_HEADER)
            ):
                raise CsrfRefused()
            request.state.session_id = session_id
            return _remember(request, principal, "session")
    except AuthFailure as exc:
        raise AuthRequired(_public_reason(exc), exc.locked_until) from None
    if anonymous_ok:
        return None
    raise AuthRequired()


async def bearer_principal(app: Starlette, token: str) -> Principal:
    """The caller of a bearer ``token`` (what ``get_principal`` resolves for ``Authorization:
    Bearer``, without recording it on a request); 401 when refused."""
    try:
        return await _authenticator(app).bearer(app.state.pool, token)
    except AuthFailure as exc:
        raise AuthRequired(_public_reason(exc), exc.locked_until) from None


def _public_reason(exc: AuthFailure) -> str:
    # The caller learns that it was refused, not which part was wrong.
    if exc.locked_until is not None and exc.locked_until > datetime.now(UTC):
        return "too many failed logins: try again later"
    return "invalid credentials"


async def get_principal(request: Request) -> Principal:
    """The authenticated caller; 401 (with challenges) when there is none or it was refused."""
    principal = await _resolve(request, anonymous_ok=False)
    assert principal is not None
    return principal


async def optional_principal(request: Request) -> Principal | None:
    """The authenticated caller, or None for a request without credentials. Credentials that
    are sent but wrong still answer 401: a client that tried to log in must learn it failed."""
    return await _resolve(request, anonymous_ok=True)


def anonymous_allowed(request: Request, collection_id: str) -> bool:
    """Whether the deployment publishes ``collection_id`` without login
    (``PINGAN_AUTH_ANONYMOUS_COLLECTIONS``)."""
    return collection_id in authenticator(request).settings.anonymous_collections
