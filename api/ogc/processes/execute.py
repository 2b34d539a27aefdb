"""What each process does: check its inputs (``prepare``, before a job exists) and run it.

``prepare`` turns the request's inputs into a :class:`Prepared` run, or raises an OGC 400/404;
it may read the database as the caller (an unknown area code, too many cells). ``Prepared.run``
is synchronous: it runs in a worker thread of the job runner, reads as the caller, computes
with ``gis.hotspots`` and stores the result with the job's success, in one transaction.

Errors in a run: :class:`RunInputError` (the data cannot be analysed as asked: too few events,
all counts equal) fails the job with its message (a synchronous request answers 400); anything
else fails it with "internal error" (500) and is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, text

from api.ogc.errors import InvalidParameterError
from api.ogc.processes import inputs as check
from api.ogc.processes.descriptions import MAX_CELLS, MAX_RASTER_CELLS, READS_EVENTS
from gis.hotspots import (
    QUADRANTS,
    bandwidth_rule,
    emerging_hotspots,
    gi_star,
    kernel_density,
    local_moran,
    optimized_gi_star,
    optimized_hot_spots,
    space_time_cube,
)
from layers import jobs
from layers.analysis import (
    METRIC_SRID,
    AnalysisInputError,
    Cells,
    Events,
    area_mask,
    cells_of,
    grid_cells,
    hexagon_cells,
    hexagon_count,
    read_events,
    store_job_cells,
)
from layers.db import Principal, transaction

log = logging.getLogger(__name__)
Progress = Callable[[int, str], None]


class RunInputError(ValueError):
    """The data cannot be analysed as asked (a client's matter, not a server fault)."""


@dataclass
class RunContext:
    engine: Engine
    principal: Principal
    job_id: str
    base_url: str  # .../ogc
    progress: Progress
    limits: check.AnalysisLimits


@dataclass
class Prepared:
    process_id: str
    inputs: dict[str, Any]
    run: Callable[[RunContext], tuple[dict[str, Any], str]]
    notes: list[str] = field(default_factory=list)


# -- helpers ------------------------------------------------------------------------------------
def _check_area(conn: Connection, area: str | None) -> Any:  # noqa: ANN401 - a shapely geometry
    try:
        return area_mask(conn, area)
    except AnalysisInputError as exc:
        raise InvalidParameterError(f"input 'area': {exc}") from None


def _links(ctx: RunContext, *, cells: bool) -> list[dict[str, str]]:
    base, jid = ctx.base_url, ctx.job_id
    out = [{"rel": "status", "type": "application/json", "title": "job status", "href": f"{base}/jobs/{jid}"}]
    if cells:
        out += [
            {
                "rel": "items",
                "type": "application/geo+json",
                "title": "result cells (GeoJSON)",
                "href": f"{base}/collections/hotspot-results/items?job_id={jid}",
            },
            {
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
                "type": "application/vnd.mapbox-vector-tile",
                "title": "result cells (vector tiles)",
                "href": f"{base}/collections/hotspot-results/tiles/WebMercatorQuad/"
                f"{{tileMatrix}}/{{tileRow}}/{{tileCol}}?job_id={jid}",
                "templated": "true",
            },
        ]
    return out


def _read(ctx: RunContext, ev: check.EventInputs, grid_layer: bool) -> tuple[Events, Any, Cells | None]:
    with transaction(ctx.engine, ctx.principal) as conn:
        events = read_events(conn, ev.query)
        mask = area_mask(conn, ev.query.area)
        cells = grid_cells(conn, ev.query.area) if grid_layer else None
    ctx.progress(30, f"{len(events)} events read")
    return events, mask, cells


def _finish(
    ctx: RunContext, outputs: dict[str, Any], message: str, store: Callable[[Connection], None] | None = None
) -> tuple[dict[str, Any], str]:
    with transaction(ctx.engine, ctx.principal) as conn:
        if store is not None:
            store(conn)
        jobs.succeed(conn, ctx.job_id, outputs, message)
    return outputs, message


@contextmanager
def _analysis_errors() -> Iterator[None]:
    """The analysis functions raise ValueError for data they cannot analyse."""
    try:
        yield
    except (ValueError, AnalysisInputError) as exc:
        if isinstance(exc, RunInputError):
            raise
        raise RunInputError(f"cannot analyse these events: {exc}") from None


def _summary(
    ev: check.EventInputs, events: Events, cells: Cells, counts: np.ndarray, outside: int
) -> dict[str, Any]:
    return {
        "layer": ev.query.layer,
        "period_start": f"{ev.first:%Y-%m}",
        "period_end": f"{ev.last:%Y-%m}",
        "events": len(events),
        "events_without_place": events.unplaced,  # placed only to an area: left out
        "events_counted": int(counts.sum()),
        "events_outside_cells": outside,
        "cells": len(cells),
        "cell_kind": cells.kind,
        "cell_size_m": None if cells.size_m is None else round(cells.size_m, 3),
    }


def _vals(v: Any) -> list[float | None]:  # noqa: ANN401
    return [None if not np.isfinite(x) else round(float(x), 10) for x in np.asarray(v, dtype=float)]


def _auto_cells(
    ctx: RunContext,
    events: Events,
    mask: Any,
    size: float | None,  # noqa: ANN401
    report: list[str],
) -> tuple[Cells, np.ndarray, int, Any]:
    """Hexagons: given, or chosen by the optimised hot-spot rule (at least the minimum size for
    callers who may not read individual events). Returns cells, counts, outside, and the
    optimised result when one was computed."""
    if size is None:
        res = optimized_hot_spots(events.xy, mask=mask)
        minimum = ctx.limits.min_cell_m
        if ctx.principal.role not in READS_EVENTS and res.grid is not None and res.grid.size < minimum:
            report.append(
                f"The automatic hexagon side {res.grid.size:.1f} m is below the minimum "
                f"{minimum:g} m for role {ctx.principal.role!r}; {minimum:g} m is used."
            )
            res = optimized_hot_spots(events.xy, mask=mask, cell_size=minimum)
        assert res.grid is not None and res.counts is not None
        cells = cells_of(res.grid)
        report += res.report
        return cells, res.counts, int(len(events) - res.counts.sum()), res
    cells = hexagon_cells(mask, size)
    counts, outside = cells.counts(events.xy)
    report.append(
        f"{len(events)} events counted into {len(cells)} hexagons of side {size:g} m; {outside} outside."
    )
    return cells, counts, outside, None


def _weights(cells: Cells, ci: check.CellInputs, report: list[str]) -> Any:  # noqa: ANN401
    kind = "contiguity" if ci.weights == "auto" else ci.weights
    w = cells.weights(kind, distance_m=ci.distance_m, k=ci.k)  # type: ignore[arg-type]
    detail = {
        "contiguity": "contiguity (cells sharing an edge or a corner)",
        "fixed-distance": f"fixed distance {ci.distance_m:g} m between cell centres" if ci.distance_m else "",
        "k-nearest": f"the {ci.k} nearest cells",
    }[kind]
    report.append(f"Weights: binary, {detail}.")
    return w


def _check_cells(conn: Connection, ev: check.EventInputs, ci: check.CellInputs) -> None:
    mask = _check_area(conn, ev.query.area)
    if ci.cells == "hexagon" and ci.size_m is not None and hexagon_count(mask, ci.size_m) > MAX_CELLS:
        raise InvalidParameterError(
            f"input 'cell_size_m': {ci.size_m:g} m hexagons over this area would be more than "
            f"{MAX_CELLS:,} cells; use a larger size"
        )


# -- hotspot-gistar -------------------------------------------------------------------------------
def _gistar(
    ev: check.EventInputs, ci: check.CellInputs
) -> Callable[[RunContext], tuple[dict[str, Any], str]]:
    def run(ctx: RunContext) -> tuple[dict[str, Any], str]:
        events, mask, grid = _read(ctx, ev, ci.cells == "grid")
        report: list[str] = []
        with _analysis_errors():
            if grid is not None:
                cells = grid
                counts, outside = cells.counts(events.xy)
                report.append(f"{len(events)} events counted into {len(cells)} grids; {outside} outside.")
                gi = gi_star(counts, _weights(cells, ci, report), fdr=True)
            else:
                cells, counts, outside, res = _auto_cells(ctx, events, mask, ci.size_m, report)
                if ci.weights == "auto":
                    if res is None:  # size given: the scale from incremental spatial autocorrelation
                        res = optimized_gi_star(cells.centres, counts)
                        report += res.report
                    gi = res.gi
                    report.append(
                        f"Weights: binary, fixed distance {res.distance:.1f} m ({res.scale_source})."
                    )
                else:
                    gi = gi_star(counts, _weights(cells, ci, report), fdr=True)
                    report.append(
                        f"Gi* with FDR correction: {gi.n_hot} hot-spot and {gi.n_cold} cold-spot cells."
                    )
        ctx.progress(80, "storing the cells")
        out_cells = [
            {"cell": c, "events": int(e), "z": z, "p": p, "p_fdr": pf, "bin": int(b)}
            for c, e, z, p, pf, b in zip(
                cells.ids, counts, _vals(gi.z), _vals(gi.p), _vals(gi.p_fdr), gi.bins, strict=True
            )
        ]
        summary = {**_summary(ev, events, cells, counts, outside), "hot": gi.n_hot, "cold": gi.n_cold}
        outputs = {"cells": out_cells, "report": report, "summary": summary, "links": _links(ctx, cells=True)}
        return _finish(
            ctx,
            outputs,
            f"{gi.n_hot} hot and {gi.n_cold} cold cells of {len(cells)}",
            lambda conn: store_job_cells(
                conn, ctx.job_id, cells, counts, z=gi.z, p=gi.p, p_fdr=gi.p_fdr, bins=gi.bins
            ),
        )

    return run


# -- hotspot-local-moran --------------------------------------------------------------------------
def _moran(
    ev: check.EventInputs, ci: check.CellInputs, perms: int, seed: int, alpha: float
) -> Callable[[RunContext], tuple[dict[str, Any], str]]:
    def run(ctx: RunContext) -> tuple[dict[str, Any], str]:
        events, mask, grid = _read(ctx, ev, ci.cells == "grid")
        report: list[str] = []
        with _analysis_errors():
            if grid is not None:
                cells = grid
                counts, outside = cells.counts(events.xy)
            else:
                cells, counts, outside, _ = _auto_cells(ctx, events, mask, ci.size_m, report)
            w = _weights(cells, ci, report)
            lm = local_moran(counts, w, transform="R", permutations=perms, seed=seed, alpha=alpha)
        report.append(
            f"Local Moran's I (row-standardised weights), {perms} conditional permutations, "
            f"seed {seed}, alpha {alpha:g}."
        )
        ctx.progress(80, "storing the cells")
        quad = np.array([QUADRANTS[int(q)] for q in lm.q])
        out_cells = [
            {"cell": c, "events": int(e), "local_i": i, "p_sim": p, "quadrant": q, "label": str(lb)}
            for c, e, i, p, q, lb in zip(
                cells.ids, counts, _vals(lm.Is), _vals(lm.p_sim), quad, lm.labels, strict=True
            )
        ]
        found = {k: int((lm.labels == k).sum()) for k in ("HH", "HL", "LH", "LL")}
        summary = {
            **_summary(ev, events, cells, counts, outside),
            "significant": found,
            "permutations": perms,
            "seed": seed,
            "alpha": alpha,
        }
        outputs = {"cells": out_cells, "report": report, "summary": summary, "links": _links(ctx, cells=True)}
        return _finish(
            ctx,
            outputs,
            ", ".join(f"{k} {v}" for k, v in found.items()),
            lambda conn: store_job_cells(
                conn, ctx.job_id, cells, counts, p=lm.p_sim, local_i=lm.Is, code=lm.q, label=lm.labels
            ),
        )

    return run


# -- emerging-hotspots ----------------------------------------------------------------------------
def _emerging(
    ev: check.EventInputs, ci: check.CellInputs, window: int, alpha: float, fdr: bool
) -> Callable[[RunContext], tuple[dict[str, Any], str]]:
    def run(ctx: RunContext) -> tuple[dict[str, Any], str]:
        events, mask, grid = _read(ctx, ev, ci.cells == "grid")
        report: list[str] = []
        with _analysis_errors():
            cells = grid if grid is not None else hexagon_cells(mask, ci.size_m)  # type: ignore[arg-type]
            idx = cells.locate(events.xy)
            first = np.datetime64(f"{ev.first:%Y-%m}", "M")
            steps = (events.month - first).astype(np.int64) if len(events) else np.zeros(0, np.int64)
            cube = space_time_cube(idx, steps, len(cells), ev.months)
            res = emerging_hotspots(cube, cells.lattice, time_window=window, alpha=alpha, fdr=fdr)
        counts = cube.sum(axis=0)
        outside = int(len(events) - counts.sum())
        report.append(
            f"Space-time cube of {len(cells)} {cells.kind} cells x {ev.months} months, "
            f"{int(counts.sum())} events; Gi* per bin with a time window of {window} month(s), "
            f"Mann-Kendall trend per cell, alpha {alpha:g}{' on FDR-adjusted p' if fdr else ''}."
        )
        ctx.progress(80, "storing the cells")
        names = res.names
        out_cells = [
            {"cell": c, "events": int(e), "category": str(n), "code": int(k), "trend_z": tz, "trend_p": tp}
            for c, e, n, k, tz, tp in zip(
                cells.ids, counts, names, res.category, _vals(res.trend.z), _vals(res.trend.p), strict=True
            )
        ]
        found = {str(n): int((names == n).sum()) for n in sorted(set(names.tolist())) if n != "no pattern"}
        summary = {**_summary(ev, events, cells, counts, outside), "months": ev.months, "categories": found}
        outputs = {"cells": out_cells, "report": report, "summary": summary, "links": _links(ctx, cells=True)}
        return _finish(
            ctx,
            outputs,
            f"{sum(found.values())} cells with a pattern",
            lambda conn: store_job_cells(
                conn, ctx.job_id, cells, counts, z=res.trend.z, p=res.trend.p, code=res.category, label=names
            ),
        )

    return run


# -- kernel-density -------------------------------------------------------------------------------
def _kde(ev: check.EventInputs, ki: check.KdeInputs) -> Callable[[RunContext], tuple[dict[str, Any], str]]:
    def run(ctx: RunContext) -> tuple[dict[str, Any], str]:
        from layers.rasters import save_raster  # the raster store (layers/rasters.py)

        events, mask, _ = _read(ctx, ev, False)
        report: list[str] = []
        if not len(events):
            raise RunInputError("no event matches these inputs: there is no density to compute")
        weights = None
        if ki.type_weights:
            weights = np.array([ki.type_weights.get(t, 1.0) for t in events.type])
            report.append(f"Weights by type: {ki.type_weights} (other types weigh 1).")
        with _analysis_errors():
            if ki.bandwidth_m is not None:
                h = ki.bandwidth_m
                report.append(f"Bandwidth given: {h:g} m.")
            else:
                h = bandwidth_rule(events.xy, ki.rule, weights)  # type: ignore[arg-type]
                report.append(f"Bandwidth by the {ki.rule} rule: {h:.1f} m.")
                if ctx.principal.role not in READS_EVENTS and h < ctx.limits.min_bandwidth_m:
                    h = ctx.limits.min_bandwidth_m
                    report.append(f"Raised to the minimum {h:g} m for role {ctx.principal.role!r}.")
            grid = kernel_density(
                events.xy,
                extent=mask.bounds,
                cell_size=ki.cell_size_m,
                bandwidth=h,
                kernel=ki.kernel,
                weights=weights,
            )  # type: ignore[arg-type]
        report.append(
            f"{ki.kernel} kernel over {grid.shape[1]} x {grid.shape[0]} cells of {ki.cell_size_m:g} m "
            f"({grid.method}); values are events per square metre."
        )
        ctx.progress(80, "storing the raster")
        params = {
            "layer": ev.query.layer,
            "period_start": f"{ev.first:%Y-%m}",
            "period_end": f"{ev.last:%Y-%m}",
            "kernel": ki.kernel,
            "bandwidth_m": h,
            "cell_size_m": ki.cell_size_m,
            "events": len(events),
            "events_without_place": events.unplaced,
        }
        holder: dict[str, int] = {}

        def store(conn: Connection) -> None:
            holder["id"] = save_raster(
                conn,
                grid,
                crs=f"EPSG:{METRIC_SRID}",
                kind="density",
                layer=ev.query.layer,
                title=f"kernel density {ev.query.layer} {ev.first:%Y-%m}..{ev.last:%Y-%m}",
                params=params,
                job_id=ctx.job_id,
            )
            rid = holder["id"]
            root = ctx.base_url.removesuffix("/ogc")
            outputs["raster"] = {
                "id": rid,
                "bandwidth_m": h,
                "kernel": ki.kernel,
                "cell_size_m": ki.cell_size_m,
                "width": grid.shape[1],
                "height": grid.shape[0],
                "max": float(grid.values.max()),
                "crs": f"EPSG:{METRIC_SRID}",
            }
            outputs["links"] = _links(ctx, cells=False) + [
                {
                    "rel": "describedby",
                    "type": "application/json",
                    "title": "raster metadata",
                    "href": f"{root}/api/rasters/{rid}",
                },
                {
                    "rel": "enclosure",
                    "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                    "title": "Cloud-Optimised GeoTIFF",
                    "href": f"{root}/api/rasters/{rid}/cog.tif",
                },
                {
                    "rel": "http://www.opengis.net/def/rel/ogc/1.0/tilesets-map",
                    "type": "image/png",
                    "title": "colour tiles",
                    "templated": "true",
                    "href": f"{root}/api/rasters/{rid}/tiles/WebMercatorQuad/"
                    "{tileMatrix}/{tileRow}/{tileCol}.png",
                },
            ]
            outputs["summary"] = params

        outputs: dict[str, Any] = {"report": report}
        return _finish(ctx, outputs, "raster stored", store)

    return run


# -- index-compute --------------------------------------------------------------------------------
class _CallerEngine:
    """An engine whose transactions act for the caller (what ``layers.index.compute`` opens)."""

    def __init__(self, engine: Engine, principal: Principal) -> None:
        self._engine, self._principal = engine, principal

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with transaction(self._engine, self._principal) as conn:
            yield conn


def _index(first: date, last: date) -> Callable[[RunContext], tuple[dict[str, Any], str]]:
    def run(ctx: RunContext) -> tuple[dict[str, Any], str]:
        from layers.index import IndexInputError, compute

        try:
            s = compute(_CallerEngine(ctx.engine, ctx.principal), first, last=last)  # type: ignore[arg-type]
        except IndexInputError as exc:
            raise RunInputError(str(exc)) from None
        summary = {
            "first": f"{s.first:%Y-%m}",
            "last": f"{s.last:%Y-%m}",
            "model": s.model,
            "rows": s.rows,
            "classes": s.classes,
            "vetoed": s.vetoed,
            "open_warnings": s.open_warnings,
            "notes": s.notes[:50],
            "seconds": round(s.seconds, 3),
        }
        links = _links(ctx, cells=False) + [
            {
                "rel": "items",
                "type": "application/geo+json",
                "title": f"index-{lv} {s.last:%Y-%m}",
                "href": f"{ctx.base_url}/collections/index-{lv}/items?period={s.last:%Y-%m-%d}",
            }
            for lv in ("villages", "towns")
        ]
        return _finish(ctx, {"summary": summary, "links": links}, f"{s.rows} scores stored")

    return run


# -- patrol-plan ----------------------------------------------------------------------------------
def _patrol(pi: check.PatrolInputs) -> Callable[[RunContext], tuple[dict[str, Any], str]]:
    def run(ctx: RunContext) -> tuple[dict[str, Any], str]:
        from gis.patrol import Options, PatrolError, parse_shift
        from layers.patrol import CHINA, TeamSpec, candidate_stops, plan_patrol, save_plan

        try:
            span = parse_shift(pi.shift)
            with transaction(ctx.engine, ctx.principal) as conn:
                network = conn.execute(
                    text("SELECT network FROM pingan.road_edges GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
                ).scalar()
                if network is None:
                    raise RunInputError("no road network is loaded")
                found, notes = candidate_stops(conn, town=pi.town, sources=pi.sources)
                found = found[: pi.max_stops]
                depots = conn.execute(
                    text(
                        "SELECT name, ST_X(depot) AS lon, ST_Y(depot) AS lat FROM pingan.patrol_teams"
                        " WHERE town_code = :t ORDER BY code LIMIT :n"
                    ),
                    {"t": pi.town, "n": pi.teams},
                ).all()
                if not depots:
                    raise RunInputError(f"no patrol team depot in town {pi.town}")
                specs = [
                    TeamSpec(
                        f"team-{k + 1}",
                        (depots[k % len(depots)].lon, depots[k % len(depots)].lat),
                        span,
                        pi.mode,
                        name=depots[k].name if k < len(depots) else f"{k + 1}队",
                    )
                    for k in range(pi.teams)
                ]
                day = pi.day or datetime.now(CHINA).date()
                ctx.progress(30, f"{len(found)} candidate stops; solving")
                planned = plan_patrol(
                    conn,
                    network,
                    found,
                    specs,
                    plan_date=day,
                    options=Options(time_limit_s=pi.time_limit_s),
                    title=pi.name or f"patrol {day} {pi.shift}",
                    town=pi.town,
                )
                plan_id = save_plan(conn, planned, pi.name or planned.geometry.title, town=pi.town)
                teams = [
                    {
                        "team": r.team.id,
                        "name": r.team.name,
                        "stops": len(r.stops),
                        "length_m": round(r.length_m, 1),
                        "duration_s": round(r.duration_s, 1),
                    }
                    for r in planned.plan.routes
                ]
                plan = {
                    "id": plan_id,
                    "date": f"{day}",
                    "network": network,
                    "teams": teams,
                    "visited": planned.plan.visited,
                    "candidates": len(found),
                    "messages": list(planned.messages) + notes,
                    "coverage": planned.coverage,
                }
                links = _links(ctx, cells=False) + [
                    {
                        "rel": "items",
                        "type": "application/geo+json",
                        "title": f"patrol-{kind} of plan {plan_id}",
                        "href": f"{ctx.base_url}/collections/patrol-{kind}/items?plan_id={plan_id}",
                    }
                    for kind in ("routes", "stops")
                ]
                outputs = {"plan": plan, "links": links}
                jobs.succeed(
                    conn, ctx.job_id, outputs, f"plan {plan_id}: {planned.plan.visited} stops visited"
                )
        except PatrolError as exc:
            raise RunInputError(str(exc)) from None
        return outputs, f"plan {plan_id}"

    return run


# -- prepare --------------------------------------------------------------------------------------
def prepare(
    process_id: str,
    raw: Any,
    engine: Engine,
    principal: Principal,  # noqa: ANN401
    limits: check.AnalysisLimits,
) -> Prepared:
    """Check the inputs of ``process_id`` for ``principal`` (400 on any mistake)."""
    inputs = check.check_known(process_id, raw)
    if process_id == "index-compute":
        first, last = check.index_inputs(inputs)
        return Prepared(process_id, inputs, _index(first, last))
    if process_id == "patrol-plan":
        pi = check.patrol_inputs(inputs)
        if principal.role in ("town", "grid") and pi.town not in {a[:9] for a in principal.areas}:
            raise InvalidParameterError(f"input 'town': {pi.town} is outside your jurisdiction")
        return Prepared(process_id, inputs, _patrol(pi))
    ev = check.event_inputs(inputs)
    if process_id == "kernel-density":
        ki = check.kde_inputs(inputs, ev.query.layer, principal.role, limits)
        with transaction(engine, principal) as conn:
            mask = _check_area(conn, ev.query.area)
        minx, miny, maxx, maxy = mask.bounds
        if (maxx - minx) * (maxy - miny) / ki.cell_size_m**2 > MAX_RASTER_CELLS:
            raise InvalidParameterError(
                f"input 'cell_size_m': {ki.cell_size_m:g} m cells over this area would be "
                f"more than {MAX_RASTER_CELLS:,}; use larger cells"
            )
        return Prepared(process_id, inputs, _kde(ev, ki))
    default = 400.0 if process_id == "emerging-hotspots" else None
    ci = check.cell_inputs(
        inputs,
        principal.role,
        limits,
        weights=process_id != "emerging-hotspots",
        default_size=default if inputs.get("cells", "hexagon") == "hexagon" else None,
    )
    with transaction(engine, principal) as conn:
        _check_cells(conn, ev, ci)
    if process_id == "hotspot-gistar":
        return Prepared(process_id, inputs, _gistar(ev, ci))
    if process_id == "hotspot-local-moran":
        perms, seed, alpha = check.moran_inputs(inputs)
        return Prepared(process_id, inputs, _moran(ev, ci, perms, seed, alpha))
    if process_id == "emerging-hotspots":
        window, alpha, fdr = check.emerging_inputs(inputs)
        if ev.months < 3:
            raise InvalidParameterError(
                "input 'period_end': emerging hot spots need at least 3 months "
                "(10 or more for a meaningful trend)"
            )
        return Prepared(process_id, inputs, _emerging(ev, ci, window, alpha, fdr))
    raise AssertionError(process_id)
