"""What a request hands to the provider across pygeoapi: the caller and the route's condition.

pygeoapi instantiates the provider itself and calls it with its own arguments, in a worker
thread. The route sets a ``RequestContext`` in a context variable and runs pygeoapi inside a
copy of its context (``run``), so the provider reads the caller of *this* request and no other.
A provider called with no context refuses to query (it never falls back to some default role).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from api.ogc.fragments import TRUE, Fragment
from layers.db import Principal

T = TypeVar("T")


@dataclass(frozen=True)
class RequestContext:
    principal: Principal
    where: Fragment = TRUE  # filter and datetime, parsed by the route (see params.py)


_CURRENT: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "pingan_ogc_request", default=None
)


class NoCallerError(RuntimeError):
    """The provider was called outside an OGC request: there is no caller to act for."""


def current() -> RequestContext:
    ctx = _CURRENT.get()
    if ctx is None:
        raise NoCallerError("no caller: OGC providers run only inside an OGC route")
    return ctx


def bind(ctx: RequestContext, fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` wrapped to run in a copy of the current context holding ``ctx``: hand the result
    to the thread pool, and the worker thread sees ``ctx`` whatever the pool does with contexts."""
    copied = contextvars.copy_context()
    copied.run(_CURRENT.set, ctx)

    def run(*args: object, **kwargs: object) -> T:
        return copied.run(fn, *args, **kwargs)

    return run
