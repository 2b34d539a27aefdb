"""Patrol plans on the road network: candidate stops, snapping, pgRouting costs, geometry, storage.

The solver itself is pure (``gis.patrol``); this module feeds it from the database and stores
what it returns. Roads are ``pingan.road_edges`` of one ``network`` (``etl/roads.py`` for OSM,
``etl/demo/roads.py`` for the demo streets); a travel mode uses the edges flagged for it, and
walkers go both ways along one-way streets. Costs are metres (pgRouting
``pgr_dijkstraCostMatrix``); the route geometry follows the roads (``pgr_dijkstraVia``).
Functions take a connection: the CLI, the OGC process and the tests call the same code.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import numpy as np
import shapely
from sqlalchemy import Connection, text

from gis.patrol import (
    MODES,
    Dropped,
    Options,
    PatrolError,
    Plan,
    PlanGeometry,
    Route,
    Stop,
    Team,
    Visit,
    greedy,
    solve,
)

CHINA = timezone(timedelta(hours=8))  # no daylight saving: plan times are Beijing time
COVERAGE_M = 200.0  # a place within this many metres of a route counts as covered (issue 9)
HOT_BIN = 2  # a hot-spot cell is one of Gi* confidence bin >= 2 (95 %, FDR) in the latest month
SOURCES = ("key_sites", "hazards", "villages", "hotspots")
LAYERS = ("patrol-routes", "patrol-stops")  # the registry layers a saved plan changes
# Walkers use one-way streets in both directions; bicycles and cars follow the signs.
_REVERSE = {
    "foot": "CASE WHEN reverse_cost < 0 THEN cost ELSE reverse_cost END",
    "bicycle": "reverse_cost",
    "car": "reverse_cost",
}


def _edges_sql(modes: Sequence[str]) -> str:
    """A pgRouting edges query template (for SQL ``format``: %L is the network, then the box).

    Only fixed text goes in here: the modes come from :data:`MODES`, never from a request."""
    bad = sorted(set(modes) - set(MODES))
    if bad:
        raise PatrolError(f"unknown travel mode(s) {', '.join(bad)}: one of {', '.join(MODES)}")
    usable = " AND ".join(sorted(set(modes)))
    return (
        f"SELECT id, source, target, cost, {_REVERSE[modes[0]]} AS reverse_cost FROM pingan.road_edges "  # noqa: S608
        f"WHERE network = %L AND {usable} AND geom && ST_MakeEnvelope(%s, %s, %s, %s, 4490)"
    )


_FORMAT = (
    "format(CAST(:tpl AS text), CAST(:net AS text), CAST(:x0 AS float8), CAST(:y0 AS float8), "
    "CAST(:x1 AS float8), CAST(:y1 AS float8))"
)


@dataclass(frozen=True)
class Priorities:
    """Which data become candidate stops, and at what priority (absent levels are not stops)."""

    key_sites: dict[str, float] = field(default_factory=lambda: {"high": 3.0, "medium": 2.0})
    hazards: dict[str, float] = field(default_factory=lambda: {"severe": 3.0, "major": 2.0})
    villages: dict[str, float] = field(default_factory=lambda: {"red": 3.0, "orange": 2.0})
    # hot-spot cells of the latest month by Gi* confidence bin (3: 99 %, 2: 95 %, 1: 90 %)
    hotspots: dict[int, float] = field(default_factory=lambda: {3: 3.0, 2: 2.0})


@dataclass(frozen=True)
class Candidate:
    """A place that may be visited: ``lon``/``lat`` in CGCS2000; ``ref`` its code in its table."""

    id: str
    kind: str
    lon: float
    lat: float
    priority: float
    name: str = ""
    ref: str | None = None


@dataclass(frozen=True)
class TeamSpec:
    """A team as the planner states it: depot(s) as lon/lat, shift as seconds from midnight."""

    id: str
    depot: tuple[float, float]
    shift: tuple[float, float]
    mode: str = "foot"
    end_depot: tuple[float, float] | None = None
    speed_kmh: float | None = None
    name: str = ""


@dataclass(frozen=True)
class Snap:
    vertex: int | None
    snap_m: float | None  # metres to the nearest usable road (None: no road at all)


@dataclass(frozen=True)
class PlannedPatrol:
    """A solved plan with everything needed to export and store it."""

    geometry: PlanGeometry
    candidates: dict[str, Candidate]
    snaps: dict[str, Snap]
    unsnapped: tuple[tuple[Candidate, str], ...]
    network: str
    plan_date: date
    params: dict
    coverage: dict = field(default_factory=dict)
    # the solver's input, for a second solver on the same problem (bench: the greedy peer)
    matrices: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    teams: tuple[Team, ...] = ()
    town: str | None = None  # the town planned for (who may read the saved plan: migration 0013)

    @property
    def plan(self) -> Plan:
        return self.geometry.plan

    @property
    def messages(self) -> tuple[str, ...]:
        out = list(self.plan.messages)
        if self.unsnapped:
            names = ", ".join(c.id for c, _ in self.unsnapped[:10]) + (
                " ..." if len(self.unsnapped) > 10 else ""
            )
            out.insert(
                0,
                f"{len(self.unsnapped)} stop(s) have no road within the snapping distance "
                f"and are not in the plan: {names}",
            )
        return tuple(out)


# -- candidates -------------------------------------------------------------------------------
# a record at its own point: placed by coordinates or to a door, not only to a grid, village or
# town by its address (migration 0027), which stands at that area's point
_OWN_POINT = "coalesce({t}geocode_level, 'door') = 'door'"


def candidate_stops(
    conn: Connection,
    *,
    town: str | None = None,
    priorities: Priorities | None = None,
    sources: Sequence[str] = ("key_sites", "hazards", "villages"),
) -> tuple[list[Candidate], list[str]]:
    """The places that need a patrol, highest priority first, and notes on sources not available.

    Key sites by risk level, open hazards by level, villages by their latest index colour (the
    index tables are optional: without them the villages are skipped and a note says so), and,
    with source ``hotspots``, the hot-spot cells of the latest month by confidence bin (one stop
    per cell at a point inside it, ``ST_PointOnSurface``; a cell hot for both hazards and cases
    is one stop at the higher bin; in a town: the cells whose point lies in it)."""
    p = priorities or Priorities()
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown:
        raise PatrolError(f"unknown stop source(s) {', '.join(unknown)}: {', '.join(SOURCES)}")
    bad_bins = sorted(str(b) for b in p.hotspots if not (isinstance(b, int) and 1 <= b <= 3))
    if bad_bins:
        raise PatrolError(f"hot-spot priorities are per confidence bin 1, 2 or 3, not {', '.join(bad_bins)}")
    out: list[Candidate] = []
    notes: list[str] = []
    if "key_sites" in sources and p.key_sites:
        rows = conn.execute(
            text(
                "SELECT code, name, risk_level AS level, ST_X(geom) AS lon, ST_Y(geom) AS lat, "  # noqa: S608 - fixed text
                f"NOT {_OWN_POINT.format(t='')} AS coarse "
                "FROM pingan.key_sites WHERE risk_level = ANY (:levels) "
                "AND (CAST(:town AS text) IS NULL OR town_code = :town) ORDER BY code"
            ),
            {"levels": list(p.key_sites), "town": town},
        )
        out += [
            Candidate(f"ks-{r.code}", "key_site", r.lon, r.lat, p.key_sites[r.level], r.name, r.code)
            for r in _placed(rows, "key sites", notes)
        ]
    if "hazards" in sources and p.hazards:
        rows = conn.execute(
            text(
                "SELECT code, title AS name, level, ST_X(geom) AS lon, ST_Y(geom) AS lat, "  # noqa: S608 - fixed text
                f"NOT {_OWN_POINT.format(t='')} AS coarse FROM pingan.hazards "
                "WHERE state NOT IN ('verified', 'closed') AND level = ANY (:levels) "
                "AND (CAST(:town AS text) IS NULL OR town_code = :town) ORDER BY code"
            ),
            {"levels": list(p.hazards), "town": town},
        )
        out += [
            Candidate(f"hz-{r.code}", "hazard", r.lon, r.lat, p.hazards[r.level], r.name, r.code)
            for r in _placed(rows, "hazards", notes)
        ]
    if "villages" in sources and p.villages:
        if conn.execute(text("SELECT to_regclass('pingan.index_scores') IS NOT NULL")).scalar_one():
            rows = conn.execute(
                text(
                    "SELECT s.code, v.name, s.class AS level, ST_X(pt) AS lon, ST_Y(pt) AS lat "
                    "FROM pingan.index_scores s JOIN pingan.villages v ON v.code = s.code, "
                    "LATERAL ST_PointOnSurface(v.geom) pt "
                    "WHERE s.level = 'village' AND s.class = ANY (:levels) "
                    "AND (CAST(:town AS text) IS NULL OR s.town_code = :town) AND s.period = "
                    "(SELECT max(period) FROM pingan.index_months WHERE level = 'village') ORDER BY s.code"
                ),
                {"levels": list(p.villages), "town": town},
            )
            out += [
                Candidate(f"vl-{r.code}", "village", r.lon, r.lat, p.villages[r.level], r.name, r.code)
                for r in rows
            ]
        else:
            notes.append("no safety index in this database (pingan.index_scores): villages skipped")
    if "hotspots" in sources and p.hotspots:
        out += _hotspot_stops(conn, town, p.hotspots, notes)
    out.sort(key=lambda c: (-c.priority, c.id))
    return out, notes


def _placed(rows: Iterable, what: str, notes: list[str]) -> list:
    """The rows with a place to go to: not those placed only to a grid, village or town by
    their address (migration 0027), which stand at that area's point; a note counts them."""
    rows = list(rows)
    keep = [r for r in rows if not r.coarse]
    if len(keep) < len(rows):
        notes.append(f"{len(rows) - len(keep)} {what} placed only to a grid, village or town by address "
                     "(no door or coordinates) are not stops: their point is the area's, not theirs")
    return keep


def _hotspot_stops(
    conn: Connection, town: str | None, bins: dict[int, float], notes: list[str]
) -> list[Candidate]:
    """One stop per hot cell of ``pingan.hotspots_latest`` (the stored Gi* of the latest month)."""
    if not conn.execute(text("SELECT EXISTS (SELECT 1 FROM pingan.hotspots_latest)")).scalar_one():
        notes.append("no hot spots stored (pingan.hotspots_latest is empty; `pingan etl refresh` "
                     "computes them): hot spots skipped")
        return []
    rows = conn.execute(
        text(
            "SELECT c.cell, max(c.bin) AS bin, string_agg(c.layer, '+' ORDER BY c.layer) AS layers, "
            "sum(c.events) AS events, min(c.period) AS period, ST_X(pt) AS lon, ST_Y(pt) AS lat "
            "FROM pingan.hotspots_latest c, LATERAL ST_PointOnSurface(c.geom) pt "
            "WHERE c.bin = ANY (:bins) AND (CAST(:town AS text) IS NULL OR EXISTS (SELECT 1 FROM "
            "pingan.towns t WHERE t.code = :town AND ST_Intersects(t.geom, pt))) "
            "GROUP BY c.cell, c.geom, pt ORDER BY c.cell"
        ),
        {"bins": [int(b) for b in bins], "town": town},
    )
    confidence = {3: "99%", 2: "95%", 1: "90%"}
    return [
        Candidate(
            f"hs-{r.layers}-{r.cell}",
            "hotspot",
            r.lon,
            r.lat,
            bins[r.bin],
            f"热点 {r.layers} {r.period:%Y-%m} ({confidence[r.bin]}, {r.events} events)",
            r.cell,
        )
        for r in rows
    ]


# -- the network ------------------------------------------------------------------------------
def snap(
    conn: Connection, network: str, modes: Sequence[str], points: Sequence[tuple[float, float]], max_m: float
) -> list[Snap]:
    """The road vertex each point is routed from: the nearer end of the nearest road every
    mode may use. ``vertex`` is None when that road is farther than ``max_m`` metres."""
    _edges_sql(modes)  # validates the modes
    if not points:
        return []
    xy = np.asarray(points, np.float64)
    usable = " AND ".join(f"e.{m}" for m in sorted(set(modes)))
    rows = conn.execute(
        text(
            "SELECT p.i, n.vertex, n.metres FROM unnest(CAST(:lon AS float8[]), CAST(:lat AS float8[])) "  # noqa: S608
            "WITH ORDINALITY AS p(lon, lat, i) "
            "LEFT JOIN LATERAL (SELECT CASE WHEN ST_LineLocatePoint(c.geom, c.pt) <= 0.5 THEN c.source "
            "  ELSE c.target END AS vertex, ST_Distance(c.geom::geography, c.pt::geography) AS metres "
            "  FROM (SELECT e.source, e.target, e.geom, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4490) AS pt "
            f"       FROM pingan.road_edges e WHERE e.network = :net AND {usable} "  # noqa: S608 - fixed
            "       ORDER BY e.geom <-> ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4490) LIMIT 8) c "
            "  ORDER BY 2 LIMIT 1) n ON true ORDER BY p.i"
        ),
        {"lon": xy[:, 0].tolist(), "lat": xy[:, 1].tolist(), "net": network},
    )
    out = []
    for r in rows:
        if r.vertex is None:
            out.append(Snap(None, None))
        else:
            out.append(Snap(int(r.vertex) if r.metres <= max_m else None, float(r.metres)))
    return out


def _box(conn: Connection, vertices: Sequence[int], network: str, margin_m: float) -> list[float]:
    """The vertices' bounding box grown by ``margin_m``: routes rarely leave it, and Dijkstra
    then loads a part of a large network rather than all of it."""
    x0, y0, x1, y1 = conn.execute(
        text(
            "SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM (SELECT ST_Extent(geom) b "
            "FROM pingan.road_vertices WHERE network = :net AND id = ANY (:ids)) s"
        ),
        {"net": network, "ids": list(vertices)},
    ).one()
    dlat = margin_m / 111_320.0
    dlon = dlat / max(np.cos(np.radians((y0 + y1) / 2)), 0.1)
    return [x0 - dlon, y0 - dlat, x1 + dlon, y1 + dlat]


def cost_matrix(
    conn: Connection, network: str, mode: str, vertices: Sequence[int], margin_m: float = 3000.0
) -> np.ndarray:
    """Road metres between every pair of ``vertices`` for ``mode`` (``np.inf``: no route)."""
    ids = sorted(set(int(v) for v in vertices))
    pos = {v: i for i, v in enumerate(ids)}
    d = np.full((len(ids), len(ids)), np.inf)
    np.fill_diagonal(d, 0.0)
    if len(ids) < 2:
        return d[np.ix_([pos[v] for v in vertices], [pos[v] for v in vertices])]
    rows = conn.execute(
        text(
            "SELECT start_vid, end_vid, agg_cost FROM pgr_dijkstraCostMatrix("  # noqa: S608 - fixed text
            + _FORMAT
            + ", CAST(:ids AS bigint[]), directed => true)"
        ),
        {
            "tpl": _edges_sql([mode]),
            "net": network,
            "ids": ids,
            **dict(zip(("x0", "y0", "x1", "y1"), _box(conn, ids, network, margin_m), strict=True)),
        },
    )
    for a, b, c in rows:
        d[pos[a], pos[b]] = c
    index = [pos[int(v)] for v in vertices]
    return d[np.ix_(index, index)]


def route_line(
    conn: Connection, network: str, mode: str, vertices: Sequence[int], margin_m: float = 3000.0
) -> np.ndarray | None:
    """The road geometry through ``vertices`` in order, as (m, 2) lon/lat; None if it stays put."""
    seq = [int(v) for i, v in enumerate(vertices) if i == 0 or v != vertices[i - 1]]
    if len(seq) < 2:
        return None
    wkb = conn.execute(
        text(
            "SELECT ST_AsBinary(ST_MakeLine(CASE WHEN v.node = e.source THEN e.geom "  # noqa: S608 - fixed text
            "ELSE ST_Reverse(e.geom) END "
            "ORDER BY v.seq)) FROM pgr_dijkstraVia(" + _FORMAT + ", CAST(:ids AS bigint[]), "
            "directed => true, strict => false, U_turn_on_edge => true) v "
            "JOIN pingan.road_edges e ON e.id = v.edge"
        ),
        {
            "tpl": _edges_sql([mode]),
            "net": network,
            "ids": seq,
            **dict(zip(("x0", "y0", "x1", "y1"), _box(conn, seq, network, margin_m), strict=True)),
        },
    ).scalar_one()
    if wkb is None:
        return None
    return shapely.get_coordinates(shapely.from_wkb(bytes(wkb)))


# -- planning ---------------------------------------------------------------------------------
def plan_patrol(
    conn: Connection,
    network: str,
    candidates: Sequence[Candidate],
    teams: Sequence[TeamSpec],
    *,
    plan_date: date,
    options: Options | None = None,
    max_snap_m: float = 250.0,
    solver: str = "ortools",
    title: str = "patrol plan",
    town: str | None = None,
) -> PlannedPatrol:
    """Snap, cost, solve and draw a patrol plan on ``network``.

    A depot with no road within ``max_snap_m`` is an error (nothing can be planned from it); a
    stop with none is reported in ``unsnapped`` and the messages, never silently dropped.
    ``town`` (9-digit code) is the town planned for: coverage is then measured in the town, and
    the saved plan belongs to it (its users may read it).
    """
    options = options or Options()
    if solver not in ("ortools", "greedy"):
        raise PatrolError(f"unknown solver {solver!r}: ortools or greedy")
    if not teams:
        raise PatrolError("no teams: at least one team is needed")
    ids = [c.id for c in candidates]
    if len(set(ids)) != len(ids):
        raise PatrolError("stop ids must be unique")
    if not conn.execute(
        text("SELECT EXISTS (SELECT 1 FROM pingan.road_edges WHERE network = :n)"), {"n": network}
    ).scalar_one():
        raise PatrolError(
            f"no road network {network!r}: load one with `pingan etl roads` or `pingan demo load`"
        )
    modes = sorted({t.mode for t in teams})
    depot_pts = [t.depot for t in teams] + [t.end_depot or t.depot for t in teams]
    snapped = snap(conn, network, modes, depot_pts + [(c.lon, c.lat) for c in candidates], max_snap_m)
    for k, s in enumerate(snapped[: 2 * len(teams)]):
        if s.vertex is None:
            t = teams[k % len(teams)]
            where = "end depot" if k >= len(teams) else "depot"
            near = f"nearest {s.snap_m:.0f} m" if s.snap_m is not None else "no road at all"
            raise PatrolError(f"team {t.id}: no road within {max_snap_m:.0f} m of its {where} ({near})")
    stop_snaps = dict(zip(ids, snapped[2 * len(teams) :], strict=True))
    unsnapped = tuple(
        (
            c,
            f"no road within {max_snap_m:.0f} m"
            + (f" (nearest {stop_snaps[c.id].snap_m:.0f} m)" if stop_snaps[c.id].snap_m is not None else ""),
        )
        for c in candidates
        if stop_snaps[c.id].vertex is None
    )
    usable = [c for c in candidates if stop_snaps[c.id].vertex is not None]
    # Node k of the matrices: depots first (start, end per team), then the stops.
    vertices = [s.vertex for s in snapped[: 2 * len(teams)]] + [stop_snaps[c.id].vertex for c in usable]
    coords = np.array(depot_pts + [(c.lon, c.lat) for c in usable], np.float64).reshape(-1, 2)
    matrices = {m: cost_matrix(conn, network, m, vertices) for m in modes}
    gis_teams = [
        Team(t.id, k, len(teams) + k, t.shift, t.mode, t.speed_kmh, t.name) for k, t in enumerate(teams)
    ]
    gis_stops = [Stop(c.id, 2 * len(teams) + k, c.priority, c.name, c.kind) for k, c in enumerate(usable)]
    plan = (solve if solver == "ortools" else greedy)(matrices, gis_stops, gis_teams, options)
    tracks = {}
    for r in plan.routes:
        line = route_line(conn, network, r.team.mode, [vertices[n] for n in r.nodes])
        if line is not None:
            tracks[r.team.id] = line
    origin = datetime(plan_date.year, plan_date.month, plan_date.day, tzinfo=CHINA)
    geo = PlanGeometry(plan, coords, origin, tracks, title)
    params = {
        "network": network,
        "town": town,
        "solver": solver,
        "max_snap_m": max_snap_m,
        "service_s": options.service_s,
        "time_limit_s": options.time_limit_s,
        "metres_per_priority": options.metres_per_priority,
        "balance": options.balance,
        "teams": [
            {
                "id": t.id,
                "name": t.name,
                "mode": t.mode,
                "speed_kmh": t.speed_kmh,
                "shift": t.shift,
                "depot": t.depot,
                "end_depot": t.end_depot,
            }
            for t in teams
        ],
    }
    return PlannedPatrol(
        geo,
        {c.id: c for c in candidates},
        stop_snaps,
        unsnapped,
        network,
        plan_date,
        params,
        coverage(conn, geo, town=town),
        matrices,
        tuple(gis_teams),
        town,
    )


def coverage(
    conn: Connection, geo: PlanGeometry, within_m: float = COVERAGE_M, *, town: str | None = None
) -> dict:
    """Share of the key sites and of the hot-spot cells in the plan's area within ``within_m``
    of a route.

    The area is the town when the plan has one, else the routes' bounding box grown by
    ``within_m``. Hot-spot cells are the stored ones (``pingan.hotspots_latest``, bin >= 2, a
    cell hot for both layers counted once); a cell counts as covered when its point (the one
    a hot-spot stop is placed at) is within reach. ``hotspots`` is None when no hot spot is
    stored at all, ``share`` None when the area holds none."""
    lines = [geo.track(r) for r in geo.moving]
    if not lines:
        return {"within_m": within_m, "area": "town" if town else "routes", "key_sites": None,
                "hotspots": None}
    wkb = shapely.to_wkb(shapely.multilinestrings([shapely.linestrings(x) for x in lines]))
    area = (
        "area AS (SELECT geom AS a FROM pingan.towns WHERE code = :town)"
        if town
        else "area AS (SELECT ST_Expand(r.g, :deg) AS a FROM r)"
    )
    row = conn.execute(
        text(
            "WITH r AS (SELECT ST_SetSRID(ST_GeomFromWKB(:wkb), 4490) AS g), "  # noqa: S608 - fixed text
            + area
            + ", sites AS (SELECT ST_DWithin(k.geom::geography, r.g::geography, :m) AS near "  # noqa: S608
            "  FROM pingan.key_sites k, area, r WHERE k.geom && area.a AND ST_Intersects(area.a, k.geom) "
            f"  AND {_OWN_POINT.format(t='k.')}), "  # as candidate_stops
            "cells AS (SELECT DISTINCT ON (c.cell, c.geom) ST_PointOnSurface(c.geom) AS pt "
            "  FROM pingan.hotspots_latest c, area WHERE c.bin >= :hot AND c.geom && area.a), "
            "hot AS (SELECT ST_DWithin(cells.pt::geography, r.g::geography, :m) AS near "
            "  FROM cells, area, r WHERE ST_Intersects(area.a, cells.pt)) "
            "SELECT (SELECT count(*) FILTER (WHERE near) FROM sites) AS sites_near, "
            "(SELECT count(*) FROM sites) AS sites_n, "
            "(SELECT count(*) FILTER (WHERE near) FROM hot) AS hot_near, "
            "(SELECT count(*) FROM hot) AS hot_n, "
            "EXISTS (SELECT 1 FROM pingan.hotspots_latest) AS stored"
        ),
        {"wkb": wkb, "deg": within_m / 111_320.0 * 1.2, "m": within_m, "town": town, "hot": HOT_BIN},
    ).one()

    def share(near: int, n: int) -> dict:
        return {"covered": near, "total": n, "share": round(near / n, 4) if n else None}

    return {
        "within_m": within_m,
        "area": "town" if town else "routes",
        "key_sites": share(row.sites_near, row.sites_n),
        "hotspots": share(row.hot_near, row.hot_n) if row.stored else None,
    }


# -- storage ----------------------------------------------------------------------------------
def save_plan(conn: Connection, planned: PlannedPatrol, name: str, *, town: str | None = None) -> int:
    """Store the plan, its routes and every candidate stop (visited, dropped or unsnapped).

    The plan belongs to ``town``, else to the town it was planned for, else to the one town
    holding all its candidate stops (none: a district-wide plan). Who may read it follows
    (migration 0013). Works as the owner and, on the service side, for callers the database
    lets write plans (admin, command, system; town users for their own town). The layers
    ``patrol-routes`` and ``patrol-stops`` get a new version, so cached tiles are not reused."""
    geo, plan = planned.geometry, planned.plan
    town = town or planned.town or _only_town(conn, list(planned.candidates.values()))
    plan_id = conn.execute(
        text(
            "INSERT INTO pingan.patrol_plans (name, network, plan_date, solver, status, messages, params, "
            "teams, stops_total, stops_visited, length_m, coverage, town_code) VALUES (:name, :net, :day, "
            ":solver, :status, :msgs, CAST(:params AS jsonb), :teams, :total, :visited, :length, "
            "CAST(:coverage AS jsonb), :town) RETURNING id"
        ),
        {
            "town": town,
            "name": name,
            "net": planned.network,
            "day": planned.plan_date,
            "solver": plan.solver,
            "status": "partial" if planned.unsnapped and plan.status == "complete" else plan.status,
            "msgs": list(planned.messages),
            "params": json.dumps(planned.params),
            "teams": len(plan.routes),
            "total": len(planned.candidates),
            "visited": plan.visited,
            "length": plan.total_length_m,
            "coverage": json.dumps(planned.coverage),
        },
    ).scalar_one()
    stop_rows = []
    for r in plan.routes:
        track = geo.tracks.get(r.team.id)
        route_id = conn.execute(
            text(
                "INSERT INTO pingan.patrol_routes (plan_id, team, team_name, travel_mode, shift_start, "
                "shift_end, start_at, end_at, stops, length_m, duration_s, geom) "
                "VALUES (:plan, :team, :tname, :mode, :s0, :s1, "
                ":a, :b, :n, :length, :dur, ST_GeomFromWKB(:wkb, 4490)) RETURNING id"
            ),
            {
                "plan": plan_id,
                "team": r.team.id,
                "tname": r.team.name or None,
                "mode": r.team.mode,
                "s0": geo.when(r.team.shift[0]),
                "s1": geo.when(r.team.shift[1]),
                "a": geo.when(r.visits[0].departure_s),
                "b": geo.when(r.visits[-1].arrival_s),
                "n": len(r.stops),
                "length": r.length_m,
                "dur": r.duration_s,
                "wkb": shapely.to_wkb(shapely.linestrings(track)) if track is not None else None,
            },
        ).scalar_one()
        for k, v in enumerate(r.stops):
            stop_rows.append(
                _stop_row(
                    planned,
                    v.stop.id,
                    "visited",
                    None,
                    route_id,
                    k + 1,
                    geo.when(v.arrival_s),
                    geo.when(v.departure_s),
                    v.leg_m,
                )
            )
    stop_rows += [_stop_row(planned, d.stop.id, "dropped", d.reason) for d in plan.dropped]
    stop_rows += [_stop_row(planned, c.id, "unsnapped", reason) for c, reason in planned.unsnapped]
    if stop_rows:
        conn.execute(
            text(
                "INSERT INTO pingan.patrol_stops (plan_id, route_id, seq, stop_id, kind, ref, name, "
                "priority, status, reason, arrival, departure, vertex, snap_m, leg_m, geom) "
                "VALUES (:plan, :route, :seq, :id, :kind, :ref, "
                ":name, :priority, :status, :reason, :arrival, :departure, :vertex, :snap_m, :leg_m, "
                "ST_SetSRID(ST_MakePoint(:lon, :lat), 4490))"
            ),
            [{"plan": plan_id, **row} for row in stop_rows],
        )
    return plan_id  # the layers' versions were renewed by the database (migration 0013's trigger)


def _only_town(conn: Connection, places: Sequence[Candidate]) -> str | None:
    """The one town whose area holds every place, if there is one."""
    if not places:
        return None
    return conn.execute(
        text(
            "SELECT min(t.code) FROM pingan.towns t, "
            "(SELECT ST_Collect(ST_SetSRID(ST_MakePoint(x, y), 4490)) AS g "
            "FROM unnest(CAST(:lon AS float8[]), CAST(:lat AS float8[])) u(x, y)) p "
            "WHERE t.geom && p.g AND ST_Covers(t.geom, p.g) HAVING count(*) = 1"
        ),
        {"lon": [c.lon for c in places], "lat": [c.lat for c in places]},
    ).scalar()


def _stop_row(
    planned: PlannedPatrol,
    stop_id: str,
    status: str,
    reason: str | None,
    route: int | None = None,
    seq: int | None = None,
    arrival: datetime | None = None,
    departure: datetime | None = None,
    leg_m: float | None = None,
) -> dict:
    c, s = planned.candidates[stop_id], planned.snaps[stop_id]
    return {
        "leg_m": leg_m,
        "route": route,
        "seq": seq,
        "id": c.id,
        "kind": c.kind,
        "ref": c.ref,
        "name": c.name or None,
        "priority": c.priority,
        "status": status,
        "reason": reason,
        "arrival": arrival,
        "departure": departure,
        "vertex": s.vertex,
        "snap_m": s.snap_m,
        "lon": c.lon,
        "lat": c.lat,
    }


# -- saved plans ------------------------------------------------------------------------------
# Read in the caller's transaction (layers.db.transaction): row-level security decides which
# plans exist for the caller (migration 0013), so "not yours" and "no such plan" look the same.
_PLAN_COLUMNS = (
    "id, name, plan_date, town_code, network, solver, status, teams, stops_total, stops_visited, "
    "length_m, coverage, created_at"
)


def list_plans(conn: Connection, *, town: str | None = None, limit: int = 100, offset: int = 0) -> list[dict]:
    """Saved plans the caller may read, newest first (of ``town`` when given)."""
    rows = conn.execute(
        text(
            f"SELECT {_PLAN_COLUMNS} FROM pingan.patrol_plans "  # noqa: S608 - fixed columns
            "WHERE CAST(:town AS text) IS NULL OR town_code = :town "
            "ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset"
        ),
        {"town": town, "limit": limit, "offset": offset},
    ).mappings()
    return [dict(r) for r in rows]


def plan_summary(conn: Connection, plan_id: int) -> dict | None:
    """One saved plan: totals, coverage, messages, its routes and the stops left out (with why)."""
    row = conn.execute(
        text(f"SELECT {_PLAN_COLUMNS}, messages, params FROM pingan.patrol_plans WHERE id = :id"),  # noqa: S608
        {"id": plan_id},
    ).mappings().one_or_none()
    if row is None:
        return None
    out = dict(row)
    params = out.pop("params") or {}
    out["max_snap_m"] = params.get("max_snap_m")
    out["service_s"] = params.get("service_s")
    out["routes"] = [
        dict(r)
        for r in conn.execute(
            text(
                "SELECT id, team, team_name, travel_mode, shift_start, shift_end, start_at, end_at, stops, "
                "length_m, duration_s FROM pingan.patrol_routes WHERE plan_id = :id ORDER BY id"
            ),
            {"id": plan_id},
        ).mappings()
    ]
    out["left_out"] = [
        dict(r)
        for r in conn.execute(
            text(
                "SELECT stop_id, kind, ref, name, priority, status, reason, snap_m FROM pingan.patrol_stops "
                "WHERE plan_id = :id AND status <> 'visited' ORDER BY priority DESC, stop_id"
            ),
            {"id": plan_id},
        ).mappings()
    ]
    return out


def load_plan(conn: Connection, plan_id: int) -> PlanGeometry | None:
    """A saved plan rebuilt for the exports (``gis.patrol.export``): the routes with their stops,
    times and legs, the road geometry, and the depots the plan was made from."""
    head = conn.execute(
        text("SELECT name, plan_date, solver, messages, params FROM pingan.patrol_plans WHERE id = :id"),
        {"id": plan_id},
    ).one_or_none()
    if head is None:
        return None
    origin = datetime(head.plan_date.year, head.plan_date.month, head.plan_date.day, tzinfo=CHINA)

    def secs(t: datetime) -> float:
        return (t - origin).total_seconds()

    teams = {t["id"]: t for t in (head.params or {}).get("teams", [])}
    routes = conn.execute(
        text(
            "SELECT id, team, team_name, travel_mode, shift_start, shift_end, start_at, end_at, length_m, "
            "ST_AsBinary(geom) AS wkb FROM pingan.patrol_routes WHERE plan_id = :id ORDER BY id"
        ),
        {"id": plan_id},
    ).all()
    stops = conn.execute(
        text(
            "SELECT route_id, stop_id, kind, name, priority, status, reason, arrival, departure, leg_m, "
            "ST_X(geom) AS lon, ST_Y(geom) AS lat FROM pingan.patrol_stops WHERE plan_id = :id "
            "ORDER BY route_id, seq, stop_id"
        ),
        {"id": plan_id},
    ).all()
    coords: list[tuple[float, float]] = []

    def node(lon: float, lat: float) -> int:
        coords.append((float(lon), float(lat)))
        return len(coords) - 1

    out_routes, tracks = [], {}
    for r in routes:
        mine = [s for s in stops if s.route_id == r.id]
        track = shapely.get_coordinates(shapely.from_wkb(bytes(r.wkb))) if r.wkb is not None else None
        spec = teams.get(r.team, {})
        first = mine[0] if mine else None
        start_xy = spec.get("depot") or (track[0] if track is not None else (first.lon, first.lat))
        end_xy = spec.get("end_depot") or spec.get("depot") or (
            track[-1] if track is not None else (first.lon, first.lat)
        )
        team = Team(r.team, node(*start_xy), -1, (secs(r.shift_start), secs(r.shift_end)), r.travel_mode,
                    spec.get("speed_kmh"), r.team_name or "")
        visits = [Visit(team.start, None, secs(r.start_at), secs(r.start_at), 0.0)]
        for s in mine:
            k = node(s.lon, s.lat)
            stop = Stop(s.stop_id, k, s.priority, s.name or "", s.kind)
            visits.append(Visit(k, stop, secs(s.arrival), secs(s.departure), s.leg_m or 0.0))
        end = node(*end_xy)
        back = max(r.length_m - sum(v.leg_m for v in visits), 0.0)  # the leg home is not stored
        visits.append(Visit(end, None, secs(r.end_at), secs(r.end_at), back))
        team = Team(team.id, team.start, end, team.shift, team.mode, team.speed_kmh, team.name)
        out_routes.append(Route(team, tuple(visits)))
        if track is not None:
            tracks[r.team] = track
    dropped = tuple(
        Dropped(Stop(s.stop_id, node(s.lon, s.lat), s.priority, s.name or "", s.kind), s.reason or s.status)
        for s in stops
        if s.route_id is None
    )
    plan = Plan(tuple(out_routes), dropped, head.solver, 0.0, tuple(head.messages or ()))
    return PlanGeometry(plan, np.asarray(coords, np.float64).reshape(-1, 2), origin, tracks, head.name)
