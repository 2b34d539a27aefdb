"""`pingan index ...`: the safety governance index (基层平安治理指数), its colours, the ladder, stars."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from cli.common import engine, fail

index_app = typer.Typer(
    help="The safety governance index: compute, show, warnings, stars, documents, exports.",
    no_args_is_help=True,
)

PeriodOpt = Annotated[str, typer.Option("--period", help="a month YYYY-MM, or a range YYYY-MM..YYYY-MM")]
ModelOpt = Annotated[
    Path | None, typer.Option("--model", help="an index model TOML (default: the shipped one)")
]
STEPS = {1: "预警 warning", 2: "抄告 notice", 3: "督办 supervision", 4: "挂牌 listing"}


def _model(path: Path | None):  # noqa: ANN202 - gis.index.IndexModel
    from gis.index import ModelError
    from layers.index import read_model

    try:
        return read_model(path)
    except ModelError as exc:
        raise fail(str(exc) if path else f"default model: {exc}") from None


def _periods(spec: str) -> tuple[date, date]:
    from layers.index import IndexInputError, parse_period

    try:
        first, _, last = spec.partition("..")
        a = parse_period(first)
        b = parse_period(last) if last else a
    except IndexInputError as exc:
        raise fail(str(exc)) from None
    if b < a:
        raise fail(f"{spec}: the range ends before it starts")
    return a, b


@index_app.command("compute")
def compute(period: PeriodOpt, model: ModelOpt = None) -> None:
    """Compute and store every village's and town's score, colour, rank and change; rebuild the ladder."""
    from gis.index import ComputeError
    from layers.index import IndexInputError
    from layers.index import compute as run

    first, last = _periods(period)
    m = _model(model)
    eng = engine()
    try:
        s = run(eng, first, m, last)
    except (ComputeError, IndexInputError) as exc:
        raise fail(str(exc)) from None
    finally:
        eng.dispose()
    span = f"{first:%Y-%m}" + (f"..{last:%Y-%m}" if last != first else "")
    typer.echo(f"index {span} computed with {s.model} in {s.seconds:.1f} s: {s.rows:,} scores stored")
    for level, counts in s.classes.items():
        colours = ", ".join(f"{k} {n}" for k, n in counts.items())
        typer.echo(f"  {level:<8} {last:%Y-%m}: {colours}; vetoed {s.vetoed[level]}")
    typer.echo(f"  ladder: {s.open_warnings} open item(s)")
    shown = [n for n in s.notes if "skipped" not in n or n.startswith(f"{last:%Y-%m}")]
    for n in shown[:20]:
        typer.echo(f"  note: {n}")


@index_app.command("show")
def show(
    period: PeriodOpt,
    level: Annotated[str, typer.Option(help="village | town")] = "village",
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 20,
    explain: Annotated[
        str | None, typer.Option(help="a place's code: its score indicator by indicator")
    ] = None,
) -> None:
    """The stored index of a month, best first (or one place explained)."""
    from layers.index import contributions, scores

    if level not in ("village", "town"):
        raise fail("level must be village or town")
    p, _ = _periods(period)
    eng = engine()
    try:
        with eng.connect() as conn:
            rows = scores(conn, p, level)
            parts = contributions(conn, p, level, explain) if explain else None
    finally:
        eng.dispose()
    if not rows:
        raise fail(f"no {level} index stored for {p:%Y-%m}: run `pingan index compute --period {p:%Y-%m}`")
    if explain:
        row = next((r for r in rows if r.code == explain), None)
        if row is None:
            raise fail(f"{explain}: no such {level} in {p:%Y-%m}")
        typer.echo(
            f"{row.code} {row.name}: score {row.score} ({row.class_key}), "
            f"rank {row.rank}" + (f", vetoed: {'; '.join(row.veto_reasons)}" if row.veto else "")
        )
        typer.echo(f"  {'indicator':<22} {'value':>9} {'risk':>7} {'weight':>7} {'points':>7}")
        items = sorted(
            (parts or {}).items(),
            key=lambda kv: (kv[1].get("skipped", False), -(kv[1].get("deduction") or 0), kv[0]),
        )
        for iid, c in items:
            if c.get("skipped"):
                typer.echo(f"  {iid:<22} skipped (no data)")
                continue
            typer.echo(
                f"  {iid:<22} {_n(c['value']):>9} {_n(c['risk']):>7} "
                f"{_n(c['weight']):>7} {-c['deduction']:>7.2f}"
            )
        return
    typer.echo(f"{'rank':>4} {'code':<12} {'name':<16} {'score':>6} {'colour':<7} {'change':>7} {'veto':<4}")
    for r in rows[:limit]:
        change = "" if r.change is None else f"{float(r.change):+.2f}"
        typer.echo(
            f"{r.rank:>4} {r.code:<12} {r.name:<16} {float(r.score):>6.2f} {r.class_key:<7} {change:>7} "
            f"{'yes' if r.veto else ''}"
        )


def _n(x: float | None) -> str:
    return "" if x is None else f"{x:.3g}"


@index_app.command("warnings")
def warnings(town: Annotated[str | None, typer.Option(help="a town's 9-digit code")] = None) -> None:
    """Open items of the accountability ladder (预警/抄告/督办/挂牌), overdue ones flagged."""
    from layers.index import open_warnings

    if town is not None and not (len(town) == 9 and town.isdigit()):
        raise fail("--town takes a 9-digit town code")
    eng = engine()
    try:
        with eng.connect() as conn:
            rows = open_warnings(conn, town)
    finally:
        eng.dispose()
    typer.echo(f"{len(rows)} open item(s)" + (f" in town {town}" if town else ""))
    for r in rows:
        overdue = "  OVERDUE" if r.overdue else ""
        typer.echo(
            f"  #{r.id:<5} {STEPS[r.step]:<18} {r.code:<12} {r.name:<16} since {r.step_since:%Y-%m} "
            f"(opened {r.opened:%Y-%m}) owner {r.owner}, due {r.deadline}{overdue}"
        )


@index_app.command("stars")
def stars(
    year: Annotated[int, typer.Option(min=2000, max=2100, help="the calendar year rated")],
    model: ModelOpt = None,
) -> None:
    """Rate every village for star-level safe villages (星级平安村) and store the scorecards."""
    from layers.index import IndexInputError, compute_stars

    m = _model(model)
    eng = engine()
    try:
        s = compute_stars(eng, year, m)
    except IndexInputError as exc:
        raise fail(str(exc)) from None
    finally:
        eng.dispose()
    dist = ", ".join(f"{k}★ {n}" for k, n in sorted(s.stars.items(), reverse=True))
    typer.echo(f"{year}: {s.villages} villages rated: {dist}; vetoed {s.vetoed}")
    for n in s.notes:
        typer.echo(f"  note: {n}")


@index_app.command("document")
def document(
    warning_id: Annotated[int, typer.Option("--id", help="the ladder item (see `pingan index warnings`)")],
    out: Annotated[Path, typer.Option(help="folder for the document")] = Path("."),
    template: Annotated[Path | None, typer.Option(help="a .docx whose styles to use (DOCX only)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="docx | pdf")] = "docx",
) -> None:
    """Write the item's 预警通知单 / 抄告单 / 督办单 / 挂牌督办通知书 (DOCX or PDF) and record it."""
    from layers.index_documents import FORMATS, DocumentError, ladder_document

    if fmt not in FORMATS:
        raise fail(f"--format must be one of {', '.join(FORMATS)}")
    eng = engine()
    try:
        with eng.begin() as conn:
            d = ladder_document(conn, warning_id, out, template, fmt)
    except DocumentError as exc:
        raise fail(str(exc)) from None
    finally:
        eng.dispose()
    typer.echo(f"{d.title} written: {d.path}")


@index_app.command("export")
def export(
    period: Annotated[str, typer.Option("--period", help="the month YYYY-MM")],
    output: Annotated[Path, typer.Option("-o", "--output", help="the file to write")],
    level: Annotated[str, typer.Option(help="village | town")] = "village",
    fmt: Annotated[str, typer.Option("--format", help="html (standalone page) | png (printed)")] = "html",
    width: Annotated[int, typer.Option(help="PNG width in pixels")] = 1600,
    height: Annotated[int, typer.Option(help="PNG height in pixels")] = 1200,
) -> None:
    """A month's index map: a standalone HTML page (no CDN, works offline) or a PNG with legend,
    north arrow, scale bar, title and date."""
    from layers.index_exports import FORMATS, ExportError, export_html, export_png, read_map

    if fmt not in FORMATS:
        raise fail(f"--format must be one of {', '.join(FORMATS)}")
    p, last = _periods(period)
    if last != p:
        raise fail("--period takes one month")
    eng = engine()
    try:
        with eng.connect() as conn:
            frame = read_map(conn, p, level)
        if fmt == "html":
            output.write_text(export_html(frame, p, level), encoding="utf-8")
        else:
            output.write_bytes(export_png(frame, p, level, width, height).data)
    except ExportError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"{output}: {exc.strerror}") from None
    finally:
        eng.dispose()
    typer.echo(f"{fmt.upper()} map of {len(frame)} {level} unit(s), {p:%Y-%m}, written: {output}")
