"""Monthly kernel density of hazards and cases (issue 7), refreshed with the derived layers.

For each event layer, the newest complete month (Asia/Shanghai) that has events: the events of
the ``window_months`` months ending with that month (the window of the monthly hot spots,
etl/hotspots.py) are projected to CGCS2000 / 3-degree Gauss-Krüger CM 120°E (EPSG:4549, metres)
and their kernel density (gis.hotspots.kde: quartic kernel, ArcGIS's bandwidth rule unless a
bandwidth is given) is computed on ``cell_size_m`` cells over the district's bounding box, snapped
to whole cells so months align cell for cell. Cells whose centre lies outside the district are
set to zero: the events describe the district, not its neighbours. One transaction per layer
replaces that month's raster (layers.rasters.save_raster, a COG in pingan.rasters) and bumps the
version of layer ``density``.

Computed as the owner (the events are individual rows); the raster is an aggregate, which staff
and analysts read (migration 0012).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from datetime import date

import numpy as np
import shapely
from sqlalchemy import Engine, text

from etl.hotspots import LAYERS, METRIC_SRID, WINDOW_MONTHS
from gis.hotspots.kde import kernel_density
from layers.rasters import delete_monthly, save_raster
from layers.versions import bump

CELL_SIZE_M = 50.0
KERNEL = "quartic"
BANDWIDTH_RULE = "arcgis"
LAYER_VERSION_ID = "density"
TZ = "Asia/Shanghai"
TITLES = {"hazards": ("Risk hazards", "风险隐患"), "cases": ("Disputes and incidents", "矛盾纠纷")}


@dataclass(frozen=True)
class DensityRun:
    layer: str
    period: date
    raster_id: int | None  # None: no event in the window, nothing stored
    n_events: int
    bandwidth_m: float | None
    shape: tuple[int, int] | None
    seconds: float

    def summary(self) -> str:
        if self.raster_id is None:
            return f"kernel density {self.layer} {self.period:%Y-%m}: no events, nothing stored"
        h, w = self.shape or (0, 0)
        return (f"kernel density {self.layer} {self.period:%Y-%m}: {self.n_events:,} events, bandwidth"
                f" {self.bandwidth_m:,.0f} m, {w} x {h} cells (raster {self.raster_id},"
                f" {self.seconds:.1f} s)")


def _month_add(d: date, months: int) -> date:
    m = d.year * 12 + d.month - 1 + months
    return date(m // 12, m % 12 + 1, 1)


def latest_complete_periods(engine: Engine) -> dict[str, date]:
    """Per layer, the newest month before the current one (Asia/Shanghai) that has events."""
    out = {}
    with engine.connect() as conn:
        for layer, column in LAYERS.items():
            latest = conn.execute(text(
                f"SELECT date_trunc('month', max({column}) AT TIME ZONE '{TZ}')::date"  # noqa: S608
                f" FROM pingan.{layer} WHERE {column} < date_trunc('month', now() AT TIME ZONE '{TZ}')"
                f" AT TIME ZONE '{TZ}'")).scalar()
            if latest is not None:
                out[layer] = latest
    return out


def _district(engine: Engine) -> shapely.Geometry | None:
    with engine.connect() as conn:
        wkb = conn.execute(text(
            f"SELECT ST_AsBinary(ST_Transform(ST_Union(geom), {METRIC_SRID})) FROM pingan.towns"  # noqa: S608
        )).scalar()
    return None if wkb is None else shapely.from_wkb(bytes(wkb))


def district_extent(district: shapely.Geometry, cell_size_m: float) -> tuple[float, float, float, float]:
    """The district's bounding box snapped outwards to multiples of the cell size."""
    minx, miny, maxx, maxy = district.bounds
    c = cell_size_m
    return (math.floor(minx / c) * c, math.floor(miny / c) * c,
            math.ceil(maxx / c) * c, math.ceil(maxy / c) * c)


def events_xy(engine: Engine, layer: str, start: date, end: date) -> np.ndarray:
    """Event locations (EPSG:4549 metres) of ``layer`` from ``start`` (inclusive) to ``end``
    (exclusive), both local (Asia/Shanghai) dates."""
    column = LAYERS[layer]
    with engine.connect() as conn:
        rows = conn.execute(text(
            f"SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform(geom, {METRIC_SRID}) AS p"  # noqa: S608
            f" FROM pingan.{layer} WHERE geom IS NOT NULL"
            f" AND {column} >= CAST(:s AS timestamp) AT TIME ZONE '{TZ}'"
            f" AND {column} < CAST(:e AS timestamp) AT TIME ZONE '{TZ}') t ORDER BY 1, 2"),
            {"s": start, "e": end}).all()
    return np.asarray(rows, dtype=float).reshape(-1, 2)


def mask_outside(values: np.ndarray, x0: float, y1: float, cell: float, area: shapely.Geometry) -> np.ndarray:
    """``values`` with the cells whose centre lies outside ``area`` set to zero."""
    h, w = values.shape
    cx = x0 + (np.arange(w) + 0.5) * cell
    cy = y1 - (np.arange(h) + 0.5) * cell
    shapely.prepare(area)
    inside = shapely.contains_xy(area, *np.meshgrid(cx, cy))
    return np.where(inside, values, 0.0)


def refresh_density(engine: Engine, periods: dict[str, list[date]] | None = None, *,
                    cell_size_m: float = CELL_SIZE_M, bandwidth_m: float | None = None,
                    window_months: int = WINDOW_MONTHS) -> list[DensityRun]:
    """Compute and store the monthly kernel density of each layer for the given months (default:
    each layer's newest complete month). Returns one summary per layer and month."""
    if periods is None:
        periods = {layer: [p] for layer, p in latest_complete_periods(engine).items()}
    unknown = set(periods) - set(LAYERS)
    if unknown:
        raise ValueError(f"no event layer {', '.join(sorted(unknown))}; expected {', '.join(LAYERS)}")
    district = _district(engine)
    if district is None:
        return []
    extent = district_extent(district, cell_size_m)
    runs = []
    for layer, months in periods.items():
        for period in months:
            t0 = time.perf_counter()
            period = date(period.year, period.month, 1)
            start, end = _month_add(period, 1 - window_months), _month_add(period, 1)
            xy = events_xy(engine, layer, start, end)
            if len(xy) == 0:
                runs.append(DensityRun(layer, period, None, 0, None, None, time.perf_counter() - t0))
                continue
            grid = kernel_density(xy, extent=extent, cell_size=cell_size_m, kernel=KERNEL,
                                  bandwidth=bandwidth_m if bandwidth_m is not None else BANDWIDTH_RULE)
            grid = replace(grid, values=mask_outside(grid.values, grid.x0, grid.y1, grid.cell_size, district))
            en, zh = TITLES.get(layer, (layer, layer))
            span = f"{start:%Y-%m}..{period:%Y-%m}"
            params = {"window_months": window_months, "start": start.isoformat(), "end": end.isoformat(),
                      "time_zone": TZ, "n_events": len(xy), "kernel": KERNEL,
                      "bandwidth_m": grid.bandwidth,
                      "bandwidth_rule": None if bandwidth_m else BANDWIDTH_RULE,
                      "cell_size_m": cell_size_m, "method": grid.method, "extent": list(extent),
                      "mask": "district", "title_zh": f"{zh}核密度 {span}"}
            with engine.begin() as conn:
                delete_monthly(conn, "density", layer, period)
                raster_id = save_raster(conn, grid, crs=METRIC_SRID, kind="density", layer=layer,
                                        title=f"Kernel density of {en.lower()}, {span}", params=params,
                                        period=period)
                bump(conn, [LAYER_VERSION_ID])
            runs.append(DensityRun(layer, period, raster_id, len(xy), grid.bandwidth, grid.shape,
                                   time.perf_counter() - t0))
    return runs
