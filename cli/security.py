"""`pingan keys ...` (the person-data key) and `pingan audit` (who read what)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer

from cli.common import engine, fail, keyring

keys_app = typer.Typer(help="The data key that seals person data.", no_args_is_help=True)


@keys_app.command("generate")
def keys_generate(key_id: Annotated[str, typer.Option("--id", help="the new key's id")] = "k2") -> None:
    """Print a new random key as `ID:BASE64`. Put it FIRST in PINGAN_DATA_KEY (or the key file),
    keep the old ones after it, then run `pingan keys rotate`."""
    from layers.crypto import KeyRing

    typer.echo(KeyRing.generate_text(key_id))


@keys_app.command("status")
def keys_status() -> None:
    """Which keys seal how many person files, and which key is primary."""
    from layers.persons import key_usage

    ring = keyring()
    eng = engine()
    try:
        usage = key_usage(eng)
    finally:
        eng.dispose()
    typer.echo(f"primary key: {ring.primary}; configured: {', '.join(ring.keys)}")
    for kid, n in usage.items():
        known = "" if kid in ring.keys else "  (NOT CONFIGURED: these files cannot be opened)"
        typer.echo(f"  {kid}: {n} persons{known}")


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Re-seal every person file with the primary key and rebuild the blind indexes; one
    transaction (loaders wait), safe to run again. Old keys must still be configured."""
    from layers.crypto import DataKeyError
    from layers.persons import key_usage, rotate

    ring = keyring()
    eng = engine()
    try:
        missing = sorted(set(key_usage(eng)) - set(ring.keys))
        if missing:
            raise fail(f"person files are sealed with keys that are not configured: {', '.join(missing)}; "
                       "add them after the new primary key and run again")
        try:
            result = rotate(eng, ring)
        except DataKeyError as exc:
            raise fail(str(exc)) from None
    finally:
        eng.dispose()
    typer.echo(f"rotated to {ring.primary}: {result.persons} persons, {result.resealed} re-sealed, "
               f"{result.reindexed} blind indexes rebuilt")


def audit(
    actor: Annotated[str | None, typer.Option(help="the user name")] = None,
    object_type: Annotated[str | None, typer.Option("--object", help="e.g. persons")] = None,
    object_id: Annotated[str | None, typer.Option("--id", help="one record id, e.g. a person's")] = None,
    action: Annotated[str | None, typer.Option(help="read, login, login-failed, ...")] = None,
    since: Annotated[datetime | None, typer.Option(help="from this time (ISO 8601)")] = None,
    until: Annotated[datetime | None, typer.Option(help="before this time")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Who read or changed what, when, from where and why (newest first)."""
    from layers import audit as log

    eng = engine()
    try:
        rows = log.query(eng, actor=actor, object_type=object_type, object_id=object_id, action=action,
                         since=since, until=until, limit=limit)
    finally:
        eng.dispose()
    for r in rows:
        if as_json:
            typer.echo(json.dumps({**r.__dict__, "at": r.at.isoformat()}, ensure_ascii=False))
            continue
        ids = r.object_id or ""
        ids = ids if len(ids) <= 60 else ids[:57] + "..."
        typer.echo(f"{r.at:%Y-%m-%d %H:%M:%S%z}  {r.actor:<16} {r.role:<8} {r.action:<12} "
                   f"{r.object_type or '':<10} {ids:<24} {r.client_addr or '-':<15} {r.reason or ''}")
    if not rows:
        typer.echo("no audit records match", err=True)
