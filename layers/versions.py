"""Data versions of layers: a refresh bumps them; tile caches key on them."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, text


def bump(conn: Connection, layer_ids: Iterable[str]) -> None:
    """Increase the version of each layer (creating it at 1) in the caller's transaction."""
    ids = sorted(set(layer_ids))
    if not ids:
        return
    conn.execute(
        text(
            "INSERT INTO pingan.layer_versions (layer_id) SELECT unnest(CAST(:ids AS text[])) "
            "ON CONFLICT (layer_id) DO UPDATE SET version = layer_versions.version + 1, "
            "changed_at = now()"
        ),
        {"ids": ids},
    )


def versions(conn: Connection) -> dict[str, int]:
    rows = conn.execute(text("SELECT layer_id, version FROM pingan.layer_versions"))
    return {r.layer_id: r.version for r in rows}
