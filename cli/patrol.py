"""`pingan patrol plan|plans|export`: routes through the places that need a patrol, for the devices
patrols carry; the saved plans and their exports."""

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
    hotspots: Annotated[
        bool, typer.Option("--hotspots", help="also the hot-spot cells of the latest month (Gi* bin >= 2)")
    ] = False,
    hotspot_priority: Annotated[
        str, typer.Option(help="priority per hot-spot confidence bin, BIN=PRIORITY,... (3: 99 %, 2: 95 %)")
    ] = "3=3,2=2",
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
    time_limit: Annotated[float, typer.Option(min=0.1, help="seconds of optimisation")] = 8.5,
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
    from layers.patrol import CHINA, Priorities, TeamSpec, candidate_stops, plan_patrol, save_plan

    priorities = Priorities(hotspots=_bins(hotspot_priority))
    wanted = [s.strip() for s in sources.split(",") if s.strip()] + (["hotspots"] if hotspots else [])
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
                    conn, town=town, sources=list(dict.fromkeys(wanted)), priorities=priorities
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
                town=town,
            )
            plan_id = save_plan(conn, planned, name or planned.geometry.title) if save else None
        if export is not None:
            out.write_text(write(planned.geometry, export, datum), encoding="utf-8")
    except (PatrolError, ExportError) as exc:
        raise fail(str(exc)) from None
    finally:
        eng.dispose()
    _report(planned, notes, plan_id, export and out, datum)


def _bins(spec: str) -> dict[int, float]:
    """``"3=3,2=2"``: the priority of each hot-spot confidence bin (bins left out are no stops)."""
    out: dict[int, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        b, _, prio = part.partition("=")
        try:
            out[int(b)] = float(prio)
        except ValueError:
            raise fail(f"--hotspot-priority {spec!r}: expected BIN=PRIORITY,... e.g. 3=3,2=2") from None
        if int(b) not in (1, 2, 3) or not out[int(b)] > 0:
            raise fail(f"--hotspot-priority {spec!r}: bins are 1, 2 or 3, priorities positive")
    return out


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
    for key, what in (("key_sites", "key sites"), ("hotspots", "hot-spot cells")):
        got = planned.coverage.get(key)
        if got and got["total"]:
            typer.echo(
                f"  coverage: {got['covered']} of {got['total']} {what} in the area within "
                f"{planned.coverage['within_m']:.0f} m of a route ({got['share']:.0%})"
            )
    if out:
        typer.echo(f"written {out} ({datum})")
    if plan_id is not None:
        typer.echo(f"saved as plan {plan_id}")


@patrol_app.command("plans")
def plans(
    town: Annotated[str | None, typer.Option(help="only plans of this town (9-digit code)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="at most this many, newest first")] = 50,
) -> None:
    """List the saved plans, newest first."""
    from layers.patrol import list_plans

    eng = engine()
    try:
        with eng.connect() as conn:
            rows = list_plans(conn, town=town, limit=limit)
    finally:
        eng.dispose()
    if not rows:
        typer.echo("no saved plans")
        return
    for r in rows:
        hot = (r["coverage"] or {}).get("hotspots") or {}
        sites = (r["coverage"] or {}).get("key_sites") or {}
        cover = "".join(
            f", {what} {c['share']:.0%}" for what, c in (("key sites", sites), ("hot spots", hot))
            if c.get("share") is not None
        )
        typer.echo(
            f"{r['id']:>6}  {r['plan_date']}  {r['town_code'] or 'district':<9}  {r['name']}: "
            f"{r['stops_visited']}/{r['stops_total']} stops, {r['teams']} team(s), "
            f"{r['length_m'] / 1000:.2f} km ({r['status']}{cover})"
        )


@patrol_app.command("export")
def export_plan(
    plan_id: Annotated[int, typer.Argument(min=1, help="a saved plan's id (pingan patrol plans)")],
    out: Annotated[Path, typer.Option(help="file to write")],
    format: Annotated[str, typer.Option("--format", help="gpx | kml | geojson | csv")] = "gpx",  # noqa: A002
    datum: Annotated[str, typer.Option(help="wgs84 (GPX devices) | gcj02 (Amap apps)")] = "wgs84",
) -> None:
    """Write a saved plan for a device: GPX, KML, GeoJSON or CSV in WGS84 or GCJ-02."""
    from gis.patrol import DATUMS, FORMATS, ExportError
    from gis.patrol import export as write
    from layers.patrol import load_plan

    if format not in FORMATS:
        raise fail(f"--format {format!r}: one of {', '.join(FORMATS)}")
    if datum not in DATUMS:
        raise fail(f"--datum {datum!r}: one of {', '.join(DATUMS)}")
    eng = engine()
    try:
        with eng.connect() as conn:
            geo = load_plan(conn, plan_id)
        if geo is None:
            raise fail(f"no saved plan {plan_id}")
        try:
            text = write(geo, format, datum)
            out.write_text(text, encoding="utf-8")
        except (ExportError, OSError) as exc:
            raise fail(str(exc)) from None
    finally:
        eng.dispose()
    typer.echo(f"written {out} ({format}, {datum}): plan {plan_id} {geo.title}")
