"""Monthly hot spots of hazards and cases (issue 7), refreshed with the derived layers.

For each event layer and month: the events of the ``window_months`` months ending with that
month are counted into hexagons of side ``cell_side_m`` covering the district (CGCS2000 /
3-degree Gauss-Krüger CM 120°E, EPSG:4549, metres), and Getis-Ord Gi* with the lattice
neighbours (the six adjacent hexagons and the cell itself) and False Discovery Rate correction
marks the hot and cold cells with ArcGIS's confidence bins. One transaction per layer and month
replaces that month's cells; the layer version of ``hotspots`` is bumped so tile caches drop.

Computed as the owner, reading the events through ``layers.analysis`` (the same door,
``pingan.analysis_events``, as the OGC API processes, here for the system role: the district);
served read-only to staff and analysts as counts per cell (migration 0010, layer ``hotspots``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

import numpy as np
import shapely
from sqlalchemy import Engine, text

from gis.hotspots.gistar import gi_star
from layers.analysis import METRIC_SRID, AnalysisInputError, EventQuery, area_mask, hexagon_cells, read_events
from layers.analysis import month_add as _month_add
from layers.analysis import nullable as _nullable
from layers.db import SYSTEM, set_principal
from layers.versions import bump

__all__ = ["LAYERS", "METRIC_SRID", "WINDOW_MONTHS", "HotspotRun", "latest_periods", "refresh_hotspots"]
LAYERS = {"hazards": "found_at", "cases": "accepted_at"}
CELL_SIDE_M = 400.0  # a hexagon of ~0.42 km²: a few village blocks
WINDOW_MONTHS = 3


_INSERT_CELLS = (
    "INSERT INTO pingan.hotspot_cells (layer, period, cell, events, z, p, p_fdr, bin, geom)"
    " SELECT :l, :p, c, e, z, pv, pf, b,"
    " ST_Multi(ST_Transform(ST_SetSRID(ST_GeomFromWKB(g), 4549), 4490))"  # METRIC_SRID
    " FROM unnest(CAST(:cells AS text[]), CAST(:events AS int[]), CAST(:z AS float8[]),"
    " CAST(:pv AS float8[]), CAST(:pf AS float8[]), CAST(:b AS smallint[]), CAST(:g AS bytea[]))"
    " AS t(c, e, z, pv, pf, b, g)"
)


@dataclass(frozen=True)
class HotspotRun:
    layer: str
    period: date
    n_cells: int
    n_events: int
    n_hot: int
    n_cold: int


def latest_periods(engine: Engine) -> dict[str, date]:
    """The newest month with events, per layer."""
    out = {}
    with engine.connect() as conn:
        for layer, column in LAYERS.items():
            latest = conn.execute(text(
                f"SELECT date_trunc('month', max({column}))::date FROM pingan.{layer}")).scalar()  # noqa: S608
            if latest is not None:
                out[layer] = latest
    return out


def refresh_hotspots(engine: Engine, periods: dict[str, list[date]] | None = None, *,
                     cell_side_m: float = CELL_SIDE_M,
                     window_months: int = WINDOW_MONTHS) -> list[HotspotRun]:
    """Compute and store the hot spots of each layer for the given months (default: each layer's
    newest month). Returns one summary per layer and month."""
    if periods is None:
        periods = {layer: [p] for layer, p in latest_periods(engine).items()}
    with engine.connect() as conn:
        try:
            district = area_mask(conn)
        except AnalysisInputError:  # no district loaded
            return []
    grid = hexagon_cells(district, cell_side_m)
    weights = grid.lattice
    polygons = grid.polygons
    cells = grid.ids
    runs = []
    for layer, months in periods.items():
        for period in months:
            period = date(period.year, period.month, 1)
            start, end = _month_add(period, 1 - window_months), _month_add(period, 1)
            with engine.begin() as conn:
                set_principal(conn, SYSTEM)  # the district's events, through pingan.analysis_events
                # naive bounds: midnight in the session's time zone, as the refresh always counted
                read = read_events(conn, EventQuery(layer, datetime.combine(start, time()),
                                                    datetime.combine(end, time())))
                points = read.xy
                counts = grid.counts(points)[0] if len(points) else np.zeros(len(cells))
                if len(points) and counts.min() != counts.max():
                    gi = gi_star(counts, weights, fdr=True)
                    z, p, p_fdr, bins = gi.z, gi.p, gi.p_fdr, gi.bins
                else:  # no events, or the same count everywhere: no hot or cold spot to speak of
                    z = p = p_fdr = np.full(len(counts), np.nan)
                    bins = np.zeros(len(counts), dtype=np.int8)
                run = HotspotRun(layer, period, len(cells), int(counts.sum()), int((bins > 0).sum()),
                                 int((bins < 0).sum()))
                conn.execute(text("DELETE FROM pingan.hotspot_runs WHERE layer = :l AND period = :p"),
                             {"l": layer, "p": period})
                conn.execute(text(
                    "INSERT INTO pingan.hotspot_runs (layer, period, method, window_months, cell_side_m,"
                    " n_cells, n_events, n_hot, n_cold, report) VALUES (:l, :p, 'gi_star_fdr', :w, :s,"
                    " :nc, :ne, :nh, :nk, :r)"),
                    {"l": layer, "p": period, "w": window_months, "s": cell_side_m, "nc": run.n_cells,
                     "ne": run.n_events, "nh": run.n_hot, "nk": run.n_cold,
                     "r": f"Gi* (binary lattice weights, self included, FDR) on {run.n_events} events of "
                          f"{start:%Y-%m}..{_month_add(end, -1):%Y-%m} in {run.n_cells} hexagons of side "
                          f"{cell_side_m:g} m"
                          + (f"; {read.unplaced} events placed only to a grid, village or town by their "
                             "address left out" if read.unplaced else "")})
                conn.execute(text(_INSERT_CELLS), {
                    "l": layer, "p": period, "cells": cells, "events": counts.astype(int).tolist(),
                    "z": _nullable(z), "pv": _nullable(p), "pf": _nullable(p_fdr),
                    "b": np.asarray(bins, dtype=int).tolist(), "g": [shapely.to_wkb(g) for g in polygons]})
                bump(conn, ["hotspots"])
            runs.append(run)
    return runs


