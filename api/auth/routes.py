"""Login, logout and "who am I": ``GET /login``, ``POST /auth/login``, ``POST /auth/logout``,
``GET /auth/me``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from api.auth import page
from api.auth.credentials import csrf_matches, csrf_token
from api.auth.deps import CSRF_HEADER, authenticator, client_address, get_principal
from api.auth.service import AuthFailure
from layers.db import Principal

router = APIRouter(tags=["auth"])
MAX_BODY = 16 * 1024
NO_STORE = {"Cache-Control": "no-store"}


class BadRequestError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        self.status, self.detail = status, detail


async def _form(request: Request) -> tuple[dict[str, str], bool]:
    """The body as a flat dict, and whether it was JSON. Form bodies are parsed here (no
    multipart: a login has no files)."""
    body = await request.body()
    if len(body) > MAX_BODY:
        raise BadRequestError(413, "request body too large")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise BadRequestError(400, "malformed JSON") from None
        if not isinstance(data, dict):
            raise BadRequestError(400, "expected a JSON object")
        return {k: v for k, v in data.items() if isinstance(v, str)}, True
    if ctype in ("application/x-www-form-urlencoded", ""):
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
        except (UnicodeDecodeError, ValueError):
            raise BadRequestError(400, "malformed form") from None
        return {k: v[0] for k, v in fields.items()}, False
    raise BadRequestError(415, "send application/x-www-form-urlencoded or application/json")


def _same_origin(request: Request) -> bool:
    """A browser's Origin header, when present, must name this site (login CSRF)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return origin != "null" and urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()


def _error(status: int, detail: str, *, as_json: bool, lang: str, next_path: str, key: str | None = None,
           username: str = "", headers: dict[str, str] | None = None) -> Response:
    headers = {**NO_STORE, **(headers or {})}
    if as_json:
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)
    html = page.render(lang, next_path, error=key or "bad", username=username)
    return HTMLResponse(html, status_code=status, headers={**headers, "Content-Security-Policy": page.CSP})


@router.get("/login", include_in_schema=False)
async def login_page(request: Request, next: str | None = None, lang: str | None = None) -> HTMLResponse:  # noqa: A002
    html = page.render(page.language(lang), page.safe_next(next))
    return HTMLResponse(html, headers={**NO_STORE, "Content-Security-Policy": page.CSP,
                                       "X-Frame-Options": "DENY"})


@router.post("/auth/login", include_in_schema=False)
async def login(request: Request) -> Response:
    """Form or JSON ``{username, password, next}``: a session cookie; the form is redirected to
    ``next`` (local paths only), JSON gets the caller and its CSRF token."""
    auth = authenticator(request)
    try:
        data, as_json = await _form(request)
    except BadRequestError as exc:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=NO_STORE)
    lang, next_path = page.language(data.get("lang")), page.safe_next(data.get("next"))
    user, password = data.get("username", "").strip(), data.get("password", "")
    if not _same_origin(request):
        return _error(403, "cross-site login refused", as_json=as_json, lang=lang, next_path=next_path)
    if not user or not password:
        return _error(400, "username and password are required", as_json=as_json, lang=lang,
                      next_path=next_path, username=user)
    try:
        result = await auth.login(request.app.state.pool, user, password, client_address(request),
                                  request.headers.get("user-agent"))
    except AuthFailure as exc:
        if exc.locked_until is not None:
            wait = max(1, int((exc.locked_until - datetime.now(UTC)).total_seconds()) + 1)
            return _error(429, "too many failed logins: try again later", as_json=as_json, lang=lang,
                          next_path=next_path, key="locked", username=user,
                          headers={"Retry-After": str(wait)})
        return _error(401, "wrong user name or password", as_json=as_json, lang=lang,
                      next_path=next_path, key="failed", username=user)
    old = request.cookies.get(auth.settings.cookie_name)
    if old:  # the browser's previous session ends: one browser, one session
        await auth.logout(request.app.state.pool, old, client_address(request))
    p = result.principal
    response: Response
    if as_json:
        response = JSONResponse({"user": p.user, "role": p.role, "areas": list(p.areas),
                                 "csrf_token": result.csrf_token,
                                 "expires_at": result.expires_at.isoformat()}, headers=NO_STORE)
    else:
        response = RedirectResponse(next_path, status_code=303, headers=NO_STORE)
    s = auth.settings
    response.set_cookie(s.cookie_name, result.session_id, max_age=s.session_lifetime_seconds, path="/",
                        httponly=True, samesite="lax", secure=s.cookie_secure)
    return response


@router.post("/auth/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    """End the browser session (CSRF token in the X-CSRF-Token header or a csrf_token field)."""
    auth = authenticator(request)
    try:
        data, as_json = await _form(request)
    except BadRequestError as exc:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=NO_STORE)
    session_id = request.cookies.get(auth.settings.cookie_name)
    if session_id:
        given = request.headers.get(CSRF_HEADER) or data.get("csrf_token")
        if not _same_origin(request) or not csrf_matches(session_id, given):
            return JSONResponse({"detail": f"missing or wrong {CSRF_HEADER} header"}, status_code=403,
                                headers=NO_STORE)
        await auth.logout(request.app.state.pool, session_id, client_address(request))
    has_form = request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
    response: Response = (RedirectResponse("/login", status_code=303, headers=NO_STORE)
                          if has_form and not as_json else Response(status_code=204, headers=NO_STORE))
    response.delete_cookie(auth.settings.cookie_name, path="/", httponly=True, samesite="lax",
                           secure=auth.settings.cookie_secure)
    return response


@router.get("/auth/me", summary="The authenticated caller (and, for a browser session, its CSRF token)")
async def me(request: Request, principal: Annotated[Principal, Depends(get_principal)]) -> JSONResponse:
    method = getattr(request.state, "auth_method", None)
    body: dict[str, object] = {"user": principal.user, "role": principal.role,
                               "areas": list(principal.areas), "method": method}
    if method == "session":
        body["csrf_token"] = csrf_token(request.state.session_id)
    return JSONResponse(body, headers=NO_STORE)
