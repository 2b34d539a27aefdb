"""`pingan tiles build`: prepare the polygon shapes that make polygon tiles cheap (tiles/shapes.py).

ETL never imports tiles/ (docs/architecture.md): after a load or refresh changes a polygon layer,
the CLI rebuilds its shapes (``rebuild_shapes``); until then the service draws from the table,
so a stale store costs speed, never correctness.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import engine

tiles_app = typer.Typer(help="Vector tiles: prepared polygon shapes.", no_args_is_help=True)


def rebuild_shapes(eng, layer_ids: list[str] | None = None, *, only_stale: bool = False) -> dict[str, int]:  # noqa: ANN001
    """Rebuild the shapes of ``layer_ids`` (default: every eligible layer) in one transaction;
    with ``only_stale``, only layers whose shapes were built from an older version (or never)."""
    from sqlalchemy import text

    from layers.catalog import default_registry
    from tiles.shapes import rebuild, table_exists

    registry = default_registry()
    with eng.begin() as conn:
        if only_stale and table_exists(conn):
            fresh = set(conn.execute(text(
                "SELECT s.layer_id FROM pingan.tile_shape_versions s JOIN pingan.layer_versions v"
                " ON v.layer_id = s.layer_id AND v.version = s.version")).scalars())
            layer_ids = [lid for lid in (layer_ids or list(registry)) if lid not in fresh]
        return rebuild(conn, registry, layer_ids)


@tiles_app.command("build")
def tiles_build(
    layer: Annotated[list[str] | None, typer.Option(help="a layer id (repeat it); default all")] = None,
) -> None:
    """Rebuild the prepared shapes of polygon layers (towns, villages, grids, ...)."""
    eng = engine()
    try:
        written = rebuild_shapes(eng, layer or None)
    finally:
        eng.dispose()
    for layer_id, n in written.items():
        typer.echo(f"{layer_id}: {n} shapes")
    if not written:
        typer.echo("no polygon layer to prepare (or the tile-shape tables are missing: pingan db migrate)")
