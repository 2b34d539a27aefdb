"""The audit log: who read or changed what, when, from where, and why.

Records go into ``pingan.audit_log`` in the same transaction as the read they describe, so a
read that happened is a read that is logged (and a failed one leaves neither). The service's
database roles may only INSERT there (migration 0005); ``pingan audit`` reads it as the owner.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from sqlalchemy import Connection, Engine, text

from layers.db import Principal

MAX_IDS = 1000  # ids named in one record; past that the record says how many more
_INSERT = (
    "INSERT INTO pingan.audit_log (actor, role, action, object_type, object_id, client_addr, reason, details)"
    " VALUES (%(actor)s, %(role)s, %(action)s, %(object_type)s, %(object_id)s, %(client)s, %(reason)s,"
    " %(details)s::jsonb)"
)


def _inet(addr: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(addr)) if addr else None
    except ValueError:
        return None


def _params(principal: Principal, action: str, object_type: str, ids: Sequence[object],
            details: dict[str, Any] | None) -> dict[str, object]:
    named = [str(i) for i in ids[:MAX_IDS]]
    extra = dict(details or {})
    extra["count"] = len(ids)
    if len(ids) > MAX_IDS:
        extra["ids_not_named"] = len(ids) - MAX_IDS
    if principal.areas:
        extra["areas"] = list(principal.areas)
    client = _inet(principal.client)
    if principal.client and client is None:  # not an IP address (a unix socket, a test client)
        extra["client"] = principal.client[:200]
    return {
        "actor": principal.user,
        "role": principal.role,
        "action": action,
        "object_type": object_type,
        "object_id": ",".join(named) if named else None,
        "client": client,
        "reason": (principal.reason or None) and principal.reason[:500],
        "details": json.dumps(extra, ensure_ascii=False),
    }


async def arecord(conn: AsyncConnection, principal: Principal, action: str, object_type: str,
                  ids: Sequence[object] = (), details: dict[str, Any] | None = None) -> None:
    """Append one record in ``conn``'s transaction."""
    await conn.execute(_INSERT, _params(principal, action, object_type, ids, details))


def record(conn: Connection, principal: Principal, action: str, object_type: str,
           ids: Sequence[object] = (), details: dict[str, Any] | None = None) -> None:
    """Append one record in ``conn``'s transaction (SQLAlchemy connection)."""
    conn.exec_driver_sql(_INSERT, _params(principal, action, object_type, ids, details))


_COLUMNS = "id, at, actor, role, action, object_type, object_id, host(client_addr), reason, details"


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    role: str
    action: str
    object_type: str | None
    object_id: str | None
    client_addr: str | None
    reason: str | None
    details: dict[str, Any]


def query(engine: Engine, *, actor: str | None = None, object_type: str | None = None,
          object_id: str | None = None, action: str | None = None, since: datetime | None = None,
          until: datetime | None = None, limit: int = 100) -> list[AuditEntry]:
    """Audit records, newest first (the owner's view: ``pingan audit``). ``object_id`` matches
    one id inside a record that names several."""
    conds, params = ["true"], {"limit": limit}
    for name, value, cond in (
        ("actor", actor, "actor = :actor"),
        ("object_type", object_type, "object_type = :object_type"),
        ("action", action, "action = :action"),
        ("since", since, "at >= :since"),
        ("until", until, "at < :until"),
        ("object_id", object_id, ":object_id = ANY (string_to_array(object_id, ','))"),
    ):
        if value is not None:
            conds.append(cond)
            params[name] = value
    where = " AND ".join(conds)  # fixed conditions from the table above; values are bound
    sql = f"SELECT {_COLUMNS} FROM pingan.audit_log WHERE {where} ORDER BY at DESC, id DESC LIMIT :limit"  # noqa: S608
    with engine.connect() as conn:
        return [AuditEntry(*row) for row in conn.execute(text(sql), params)]
