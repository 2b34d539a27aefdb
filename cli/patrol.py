"""`pingan patrol plan`: routes through the places that need a patrol, for the devices patrols carry."""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from cli.common import engine, fail

patrol_app = typer.Typer(
    help="Patrol plans: routes for teams through hot spots, key sites, hazards.", no_args_is_help=True
)


def _lonlat(spec: str, datum: str) -> tuple[float, float]:
    from gis.datum import UnknownDatumError, to_cgcs2000

    try:
        lon, lat = (float(v) for v in spec.split(","))
        x, y = to_cgcs2000(lon, lat, datum)
    except ValueError as exc:
        if isinstance(exc, UnknownDatumError):
            raise fail(str(exc)) from None
        raise fail(f"--depot {spec!r}: expected LON,LAT in degrees") from None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise fail(f"--depot {spec!r}: not a longitude,latitude")
    return float(x), float(y)


def _given_stops(path: Path, datum: str) -> list:  # noqa: ANN401 - layers.patrol.Candidate
    """Stops from a CSV file: id, lon, lat and optional name, priority (UTF-8, header row)."""
    from gis.datum import to_cgcs2000
    from layers.patrol import Candidate

    try:
        rows = list(csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines()))
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"{path}: {exc}") from None
    out = []
    for n, r in enumerate(rows, start=2):
        try:
            lon, lat = to_cgcs2000(float(r["lon"]), float(r["lat"]), datum)
            prio = float(r.get("priority") or 1)
            if not prio > 0 or not r["id"]:
                raise ValueError
        except (KeyError, TypeError, ValueError):
            raise fail(f"{path}, line {n}: needs id, lon, lat (degrees) and a positive priority") from None
        out.append(
            Candidate(f"st-{r['id']}", "given", float(lon), float(lat), prio, r.get("name") or "", r["id"])
        )
    return out


@patrol_app.command("plan")
def plan(
    teams: Annotated[int, typer.Option(min=1, max=50, help="number of teams")] = 3,
    shift: Annotated[
        str, typer.Option(help="shift HH:MM-HH:MM; past midnight is fine (20:00-02:00)")
    ] = "20:00-02:00",
    mode: Annotated[str, typer.Option(help="foot | bicycle | car")] = "foot",
    speed: Annotated[float | None, typer.Option(help="km/h instead of the mode's (4.5 / 12 / 30)")] = None,
    network: Annotated[str, typer.Option(help="road network name (pingan etl roads / demo)")] = "demo",
    town: Annotated[str | None, typer.Option(help="only stops of this town (9-digit code)")] = None,
    sources: Annotated[
        str, typer.Option(help="stop sources, comma-separated")
    ] = "key_sites,hazards,villages",
    stops: Annotated[
        Path | None, typer.Option(help="CSV of given stops (id,lon,lat[,name,priority]) instead")
    ] = None,
    max_stops: Annotated[
        int, typer.Option(min=1, help="at most this many stops, highest priority first")
    ] = 60,
    depot: Annotated[
        list[str] | None, typer.Option(help="LON,LAT of a depot (repeat; teams take turns)")
    ] = None,
    input_datum: Annotated[str, typer.Option(help="datum of --depot and --stops coordinates")] = "wgs84",
    service: Annotated[float, typer.Option(min=0, help="minutes spent at each stop")] = 5.0,
    snap: Annotated[float, typer.Option(min=1, help="metres a stop may lie from the nearest road")] = 250.0,
    time_limit: Annotated[float, typer.Option(min=0.1, help="seconds of optimisation")] = 5.0,
    balance: Annotated[
        float,
        typer.Option(
            min=0, help="metres of total length worth a second off the longest route (0: shortest total)"
        ),
    ] = 0.0,
    solver: Annotated[str, typer.Option(help="ortools | greedy (nearest neighbour)")] = "ortools",
    day: Annotated[
        str | None, typer.Option("--date", help="the shift's date YYYY-MM-DD (default today)")
    ] = None,
    export: Annotated[str | None, typer.Option(help="gpx | kml | geojson | csv")] = None,
    datum: Annotated[
        str, typer.Option(help="output datum: wgs84 (GPX devices) | gcj02 (Amap apps)")
    ] = "wgs84",
    out: Annotated[Path | None, typer.Option(help="file to write the export to")] = None,
    save: Annotated[bool, typer.Option(help="store the plan (patrol_plans/routes/stops)")] = False,
    name: Annotated[str | None, typer.Option(help="name of the stored plan")] = None,
) -> None:
    """Plan patrol routes for TEAMS through the places that need a patrol; export and/or store them."""
    from gis.patrol import DATUMS, FORMATS, MODES, ExportError, Options, PatrolError, parse_shift
    from gis.patrol import export as write
    from layers.patrol import CHINA, TeamSpec, candidate_stops, plan_patrol, save_plan

    if mode not in MODES:
        raise fail(f"--mode {mode!r}: one of {', '.join(MODES)}")
    if export is not None and (export not in FORMATS or out is None):
        raise fail(f"--export needs one of {', '.join(FORMATS)} and --out FILE")
    if datum not in DATUMS:
        raise fail(f"--datum {datum!r}: one of {', '.join(DATUMS)}")
    try:
        span = parse_shift(shift)
        plan_date = (
            date.fromisoformat(day) if day else datetime.now(CHINA).date()
        )  # the shift is Beijing time
    except (PatrolError, ValueError) as exc:
        raise fail(str(exc)) from None
    from gis.datum import UnknownDatumError, to_cgcs2000

    try:
        to_cgcs2000(120.0, 28.0, input_datum)
    except UnknownDatumError as exc:
        raise fail(f"--input-datum: {exc}") from None
    depots = [_lonlat(d, input_datum) for d in depot or []]
    eng = engine()
    try:
        with eng.begin() as conn:
            if stops is not None:
                found, notes = _given_stops(stops, input_datum), []
            else:
                found, notes = candidate_stops(
                    conn, town=town, sources=[s.strip() for s in sources.split(",")]
                )
            found = found[:max_stops]
            names: list[str] = []
            if not depots:
                depots, names = _team_depots(conn, town, teams)
            specs = [
                TeamSpec(
                    f"team-{k + 1}",
                    depots[k % len(depots)],
                    span,
                    mode,
                    speed_kmh=speed,
                    name=names[k] if k < len(names) else f"{k + 1}队",
                )
                for k in range(teams)
            ]
            planned = plan_patrol(
                conn,
                network,
                found,
                specs,
                plan_date=plan_date,
                max_snap_m=snap,
                solver=solver,
                options=Options(service_s=service * 60, time_limit_s=time_limit, balance=balance),
                title=name or f"patrol {plan_date} {shift}",
            )
            plan_id = save_plan(conn, planned, name or planned.geometry.title) if save else None
        if export is not None:
            out.write_text(write(planned.geometry, export, datum), encoding="utf-8")
    except (PatrolError, ExportError) as exc:
        raise fail(str(exc)) from None
    finally:
        eng.dispose()
    _report(planned, notes, plan_id, export and out, datum)


def _team_depots(conn, town: str | None, teams: int) -> tuple[list, list]:  # noqa: ANN001 - Connection
    """Depots of the stored patrol teams (of the town), when the planner gives none."""
    from sqlalchemy import text

    rows = conn.execute(
        text(
            "SELECT name, ST_X(depot) AS lon, ST_Y(depot) AS lat FROM pingan.patrol_teams "
            "WHERE CAST(:town AS text) IS NULL OR town_code = :town ORDER BY code LIMIT :n"
        ),
        {"town": town, "n": teams},
    ).all()
    if not rows:
        raise fail("no depot: give --depot LON,LAT (or load patrol teams for this town)")
    return [(r.lon, r.lat) for r in rows], [r.name for r in rows]


def _report(planned, notes: list[str], plan_id: int | None, out: Path | None, datum: str) -> None:  # noqa: ANN001
    plan, geo = planned.plan, planned.geometry
    total = len(planned.candidates)
    typer.echo(
        f"{plan.solver}: {plan.visited} of {total} stops visited by {len(plan.routes)} team(s), "
        f"{plan.total_length_m / 1000:.2f} km in all ({plan.status}; {plan.seconds:.1f} s)"
    )
    for r in plan.routes:
        typer.echo(
            f"  {r.team.id} {r.team.name} ({r.team.mode}): {len(r.stops)} stops, {r.length_m / 1000:.2f} km, "
            f"{geo.when(r.visits[0].departure_s):%H:%M}-{geo.when(r.visits[-1].arrival_s):%H:%M}"
        )
    for m in (*notes, *planned.messages):
        typer.secho(f"  note: {m}", fg=typer.colors.YELLOW)
    for c, reason in planned.unsnapped:
        typer.echo(f"  unsnapped: {c.id} {c.name}: {reason}")
    for d in plan.dropped:
        typer.echo(f"  left out: {d.stop.id} {d.stop.name} (priority {d.stop.priority:g}): {d.reason}")
    sites = planned.coverage.get("key_sites")
    if sites and sites["total"]:
        typer.echo(
            f"  coverage: {sites['covered']} of {sites['total']} key sites in the area within "
            f"{planned.coverage['within_m']:.0f} m of a route ({sites['share']:.0%})"
        )
    if out:
        typer.echo(f"written {out} ({datum})")
    if plan_id is not None:
        typer.echo(f"saved as plan {plan_id}")
