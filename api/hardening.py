"""HTTP hardening: security headers on every response, bounded requests.

A plain ASGI middleware (not Starlette's BaseHTTPMiddleware, which costs a task and a queue per
request: the tile path serves thousands a second).

- Security headers: no MIME sniffing, no framing, no referrer to other sites, a same-origin content security
  policy (everything the pages use is served by the app itself), HSTS when served over HTTPS.
- Bounded requests: a body larger than ``max_body_bytes`` is refused with 413 (by its
  Content-Length, and while streaming for chunked bodies); a query string longer than
  ``max_query_bytes`` with 414. CORS stays off: no Access-Control-* header is ever sent (there is
  no setting for it), so other sites' scripts cannot read responses with the user's cookie.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

def content_security_policy(extra_origins: tuple[str, ...] = ()) -> str:
    """Same-origin only; ``extra_origins`` (a configured basemap's, e.g. 天地图) may add images
    and fetches, nothing else. Only the map page asks for them, and only when configured."""
    extra = "".join(f" {o}" for o in extra_origins)
    return (
        f"default-src 'self'; img-src 'self' data: blob:{extra}; style-src 'self' 'unsafe-inline'; "
        f"script-src 'self'; worker-src 'self' blob:; connect-src 'self'{extra}; font-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    )


CSP = content_security_policy()
_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on our own form
    # posts, which the login's cross-site check must refuse
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"geolocation=(), camera=(), microphone=()"),
    (b"content-security-policy", CSP.encode()),
]
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class TooLarge(Exception):  # noqa: N818 - a signal inside the middleware, never raised to callers
    pass


class HardeningMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int = 1 << 20, max_query_bytes: int = 8192,
                 body_limits: Sequence[tuple[str, int]] = ()) -> None:
        """``body_limits``: (path regex, bytes) for the few routes that take larger bodies (an
        evidence file); every other request is held to ``max_body_bytes``."""
        self.app = app
        self.max_body = max_body_bytes
        self.max_query = max_query_bytes
        self.body_limits = tuple((re.compile(pattern), limit) for pattern, limit in body_limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        secure = scope.get("scheme") == "https"
        path = scope.get("path", "")
        max_body = next((n for pattern, n in self.body_limits if pattern.fullmatch(path)), self.max_body)
        if len(scope.get("query_string", b"")) > self.max_query:
            await _refuse(send, 414, "query string too long", secure)
            return
        length = _content_length(scope)
        if length is not None and length > max_body:
            await _refuse(send, 413, f"request body over {max_body} bytes", secure)
            return
        started = False
        seen = 0

        async def bounded_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_body:
                    raise TooLarge
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = harden(message.get("headers", []), secure)
            await send(message)

        try:
            await self.app(scope, bounded_receive, send_with_headers)
        except TooLarge:
            if not started:
                await _refuse(send, 413, f"request body over {max_body} bytes", secure)


def harden(headers: Sequence[tuple[bytes, bytes]], secure: bool) -> list[tuple[bytes, bytes]]:
    """A response's headers as every response leaves: no ``server`` header from the app, each
    security header the app did not set, HSTS over HTTPS."""
    out = [(k, v) for k, v in headers if k.lower() != b"server"]
    present = {k.lower() for k, _ in out}
    out += [(k, v) for k, v in _HEADERS if k not in present]
    if secure:
        out.append(_HSTS)
    return out


def within_limits(scope: Scope, max_query_bytes: int) -> bool:
    """Whether a request has no body and a query string this middleware would let through
    (what a path that bypasses it may take; anything else goes through it)."""
    if len(scope.get("query_string", b"")) > max_query_bytes:
        return False
    return not any(key in (b"content-length", b"transfer-encoding") for key, _ in scope.get("headers", ()))


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Send, status: int, description: str, secure: bool) -> None:
    body = json.dumps({"code": "InvalidParameterValue", "description": description}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               *_HEADERS]
    if secure:
        headers.append(_HSTS)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
