"""Pieces of SQL that carry their bound values with them.

Every value a request brings is a ``%s`` placeholder with its value in ``params``, in the order
the placeholders appear; identifiers come from the layer registry as ``sql.Identifier``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from psycopg import sql


@dataclass(frozen=True)
class Fragment:
    sql: sql.Composable
    params: tuple[object, ...] = ()

    def __and__(self, other: Fragment) -> Fragment:
        return join(" AND ", (self, other), wrap=True)


TRUE = Fragment(sql.SQL("TRUE"))
FALSE = Fragment(sql.SQL("FALSE"))


def value(v: object, cast: str | None = None) -> Fragment:
    """One bound value, optionally cast (``cast`` is a type name from this module, never input)."""
    text = "%s" if cast is None else f"%s::{cast}"
    return Fragment(sql.SQL(text), (v,))


def raw(text: str) -> Fragment:
    return Fragment(sql.SQL(text))


def ident(*names: str) -> Fragment:
    return Fragment(sql.Identifier(*names))


def fmt(template: str, *parts: Fragment) -> Fragment:
    """``template`` with ``{}`` replaced by ``parts`` in order (their params follow that order)."""
    params: list[object] = []
    for p in parts:
        params.extend(p.params)
    return Fragment(sql.SQL(template).format(*(p.sql for p in parts)), tuple(params))


def join(sep: str, parts: Iterable[Fragment], *, wrap: bool = False) -> Fragment:
    items = list(parts)
    if wrap:
        items = [fmt("({})", p) for p in items]
    params: list[object] = []
    for p in items:
        params.extend(p.params)
    return Fragment(sql.SQL(sep).join(p.sql for p in items), tuple(params))


def all_of(parts: Iterable[Fragment]) -> Fragment:
    items = [p for p in parts if p is not TRUE]
    if not items:
        return TRUE
    return items[0] if len(items) == 1 else join(" AND ", items, wrap=True)
