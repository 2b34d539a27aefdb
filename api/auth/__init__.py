"""Identity: who is calling (issue 4).

``install(app, settings)`` adds ``GET /login``, ``POST /auth/login``, ``POST /auth/logout`` and
``GET /auth/me``; route handlers take the caller from :func:`get_principal` (login required) or
:func:`optional_principal` (None when anonymous). Users and tokens are managed with
``pingan users`` and ``pingan tokens`` (:mod:`api.auth.store`).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.auth.deps import (
    ANONYMOUS,
    CHALLENGES,
    CSRF_HEADER,
    AuthRequired,
    anonymous_allowed,
    get_principal,
    optional_principal,
)
from api.auth.routes import router
from api.auth.service import Authenticator
from api.auth.settings import AuthSettings

__all__ = [
    "ANONYMOUS",
    "CSRF_HEADER",
    "AuthRequired",
    "AuthSettings",
    "anonymous_allowed",
    "auth_required_response",
    "get_principal",
    "install",
    "optional_principal",
]


def auth_required_response(exc: AuthRequired, request: Request | None = None) -> JSONResponse:
    """The 401: one WWW-Authenticate line per scheme (Basic first: QGIS and GDAL answer it).

    A browser's script (``Sec-Fetch-Mode`` other than ``navigate``: fetch/XHR of the map screen)
    gets no Basic challenge, which would pop up the browser's own login dialog; the page sends
    its user to ``/login`` instead. QGIS, GDAL and curl send no Sec-Fetch headers.
    """
    response = JSONResponse({"detail": exc.detail}, status_code=401, headers={"Cache-Control": "no-store"})
    mode = request.headers.get("sec-fetch-mode") if request is not None else None
    for challenge in CHALLENGES:
        if mode and mode != "navigate" and challenge.startswith("Basic"):
            continue
        response.headers.append("WWW-Authenticate", challenge)
    return response


async def _on_auth_required(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthRequired)
    return auth_required_response(exc, request)


def install(app: FastAPI, settings: AuthSettings) -> None:
    """Give ``app`` its authenticator (``app.state.auth``), the login routes and the 401 handler.

    The app must provide ``app.state.pool`` (an open psycopg AsyncConnectionPool) while serving.
    """
    app.state.auth = Authenticator(settings)
    app.include_router(router)
    app.add_exception_handler(AuthRequired, _on_auth_required)
