"""Inputs and outputs of the hot-spot analyses: events in, cells out (issue 7).

Shared by the monthly refresh (``etl/hotspots.py``) and the OGC API processes
(``api/ogc/processes``): the mathematics is ``gis.hotspots``; this module reads what it needs
from the database and shapes what it returns for storage.

Events are read only through ``pingan.analysis_events`` (migration 0011), a SECURITY DEFINER
function that returns, for the caller stated in the transaction (``layers.db.set_principal``),
the events of its jurisdiction as points in metres (EPSG:4549) with month, type, state and
town/village codes, nothing else. That is how an analyst, who may not read hazards or cases,
can still run an analysis whose result is an aggregate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import shapely
from scipy import sparse
from sqlalchemy import Connection, text

from gis.hotspots.cells import HexGrid, hex_grid
from gis.hotspots.weights import contiguity, distance_band, k_nearest

METRIC_SRID = 4549  # CGCS2000 / 3-degree Gauss-Kruger CM 120E: the Wenzhou area in metres
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
EVENT_LAYERS: dict[str, dict[str, tuple[str, ...]]] = {
    "hazards": {
        "types": ("fire", "gas", "building", "road_traffic", "hazardous_chemicals", "flood_typhoon",
                  "food_safety", "public_order", "construction", "electrical", "other"),
        "states": ("found", "assigned", "handling", "feedback", "verified", "closed"),
    },
    "cases": {
        "types": ("neighbour", "marriage_family", "labour", "land", "property_management",
                  "traffic_accident", "medical", "consumer", "construction", "debt", "theft", "fraud",
                  "fight", "public_order", "other"),
        "states": ("accepted", "mediating", "resolved", "transferred", "closed"),
    },
}
WeightsKind = Literal["contiguity", "fixed-distance", "k-nearest"]


class AnalysisInputError(ValueError):
    """The inputs name something that does not exist or cannot be analysed (a client error)."""


def month_add(d: date, months: int) -> date:
    m = d.year * 12 + d.month - 1 + months
    return date(m // 12, m % 12 + 1, 1)


def local_month_start(d: date) -> datetime:
    """Midnight of the first of ``d``'s month in Asia/Shanghai (months are local, as in
    ``pingan.monthly_stats``)."""
    return datetime(d.year, d.month, 1, tzinfo=LOCAL_TZ)


@dataclass(frozen=True)
class EventQuery:
    """Which events: a layer, the timestamps ``[start, end)``, optional types, states and area."""

    layer: str
    start: datetime
    end: datetime
    types: tuple[str, ...] | None = None
    states: tuple[str, ...] | None = None
    area: str | None = None

    @classmethod
    def months(cls, layer: str, first: date, last: date, **kw: object) -> EventQuery:
        """The events of the local months ``first`` .. ``last`` (inclusive)."""
        return cls(layer, local_month_start(first), local_month_start(month_add(last, 1)), **kw)  # type: ignore[arg-type]

    def check(self) -> None:
        spec = EVENT_LAYERS.get(self.layer)
        if spec is None:
            raise AnalysisInputError(f"unknown event layer {self.layer!r}: one of {', '.join(EVENT_LAYERS)}")
        for name, given in (("types", self.types), ("states", self.states)):
            bad = sorted(set(given or ()) - set(spec[name]))
            if bad:
                raise AnalysisInputError(
                    f"unknown {name} of {self.layer}: {', '.join(bad)} (known: {', '.join(spec[name])})")
        if not self.end > self.start:
            raise AnalysisInputError("the period is empty: its end must come after its start")


@dataclass(frozen=True)
class Events:
    """Event points in metres (EPSG:4549) with their local month, type, state and area codes."""

    xy: np.ndarray  # (n, 2)
    month: np.ndarray  # datetime64[M]
    type: np.ndarray
    state: np.ndarray
    town_code: np.ndarray
    village_code: np.ndarray
    # events of the query without a point of their own, left out: placed only to a grid, village
    # or town by their address (their point is the area's; migration 0027)
    unplaced: int = 0

    def __len__(self) -> int:
        return len(self.xy)


def read_events(conn: Connection, query: EventQuery) -> Events:
    """The events of ``query`` that the caller of ``conn``'s transaction may analyse."""
    query.check()
    rows = conn.execute(
        text("SELECT x, y, month, type, state, town_code, village_code FROM pingan.analysis_events("
             ":layer, :start, :end, CAST(:types AS text[]), CAST(:states AS text[]), :area)"),
        {"layer": query.layer, "start": query.start, "end": query.end,
         "types": list(query.types) if query.types else None,
         "states": list(query.states) if query.states else None, "area": query.area},
    ).all()
    placed = [r for r in rows if r[0] is not None]
    unplaced, rows = len(rows) - len(placed), placed
    if not rows:
        empty = np.array([], dtype=object)
        return Events(np.zeros((0, 2)), np.array([], dtype="datetime64[M]"), empty, empty, empty, empty,
                      unplaced)
    cols = list(zip(*rows, strict=True))
    return Events(
        np.column_stack([np.asarray(cols[0], float), np.asarray(cols[1], float)]),
        np.asarray(cols[2], dtype="datetime64[M]"),
        np.asarray(cols[3], dtype=object), np.asarray(cols[4], dtype=object),
        np.asarray(cols[5], dtype=object), np.asarray(cols[6], dtype=object), unplaced,
    )


def area_mask(conn: Connection, area: str | None = None) -> shapely.Geometry:
    """The district (union of the towns), or one town, village or grid, in metres."""
    if area is None:
        sql = f"SELECT ST_AsBinary(ST_Transform(ST_Union(geom), {METRIC_SRID})) FROM pingan.towns"  # noqa: S608
        wkb = conn.execute(text(sql)).scalar()
    else:
        wkb = conn.execute(text(
            f"SELECT ST_AsBinary(ST_Transform(geom, {METRIC_SRID})) FROM ("  # noqa: S608
            " SELECT geom FROM pingan.towns WHERE code = :a UNION ALL"
            " SELECT geom FROM pingan.villages WHERE code = :a UNION ALL"
            " SELECT geom FROM pingan.grids WHERE code = :a) t LIMIT 1"), {"a": area}).scalar()
        if wkb is None:
            raise AnalysisInputError(f"unknown area code {area!r}: a town, village or grid code is expected")
    if wkb is None:
        raise AnalysisInputError("no district is loaded (pingan.towns is empty)")
    return shapely.from_wkb(bytes(wkb))


@dataclass(frozen=True)
class Cells:
    """Analysis cells: ids, polygons and centres in metres, a lattice (contiguity) and a locator."""

    kind: Literal["hexagon", "grid"]
    ids: list[str]
    polygons: np.ndarray
    centres: np.ndarray
    lattice: sparse.csr_array  # edge-sharing neighbours (contiguity)
    size_m: float | None = None  # hexagon side
    hexes: HexGrid | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def locate(self, xy: np.ndarray) -> np.ndarray:
        """Index of the cell containing each point, -1 outside every cell."""
        if self.hexes is not None:
            return self.hexes.locate(xy)
        out = np.full(len(xy), -1, dtype=np.int64)
        if len(xy):
            tree = shapely.STRtree(self.polygons)
            pts, cells = tree.query(shapely.points(xy), predicate="intersects")
            out[pts[::-1]] = cells[::-1]  # a point on a shared edge: the first cell
        return out

    def counts(self, xy: np.ndarray) -> tuple[np.ndarray, int]:
        idx = self.locate(xy)
        inside = idx >= 0
        return np.bincount(idx[inside], minlength=len(self)).astype(float), int((~inside).sum())

    def weights(self, kind: WeightsKind = "contiguity", *, distance_m: float | None = None,
                k: int | None = None) -> sparse.csr_array:
        """Spatial weights between the cells (binary; Gi* adds the cell itself)."""
        if kind == "contiguity":
            return self.lattice
        if kind == "fixed-distance":
            if distance_m is None:
                raise AnalysisInputError("fixed-distance weights need distance_m")
            return distance_band(self.centres, distance_m)
        if kind == "k-nearest":
            if k is None or not 1 <= k < len(self):
                raise AnalysisInputError(f"k-nearest weights need k between 1 and {len(self) - 1}")
            return k_nearest(self.centres, int(k))
        raise AnalysisInputError(f"unknown weights {kind!r}")


def hexagon_cells(mask: shapely.Geometry, side_m: float) -> Cells:
    """Hexagons of side ``side_m`` covering ``mask`` (metres), ids "q,r" as in the monthly layer."""
    return cells_of(hex_grid(mask.bounds, side_m, mask=mask))


def cells_of(grid: HexGrid) -> Cells:
    """:class:`Cells` of a hexagon grid (e.g. the one an optimised analysis chose)."""
    ids = [f"{q},{r}" for q, r in zip(grid.q.tolist(), grid.r.tolist(), strict=True)]
    return Cells("hexagon", ids, grid.polygons(), grid.centres, grid.neighbours(), float(grid.size), grid)


def hexagon_count(mask: shapely.Geometry, side_m: float) -> int:
    """About how many hexagons of side ``side_m`` cover ``mask`` (to refuse huge requests early)."""
    minx, miny, maxx, maxy = mask.bounds
    return math.ceil((maxx - minx) * (maxy - miny) / (1.5 * math.sqrt(3) * side_m * side_m))


def grid_cells(conn: Connection, area: str | None = None) -> Cells:
    """The cells of the grids layer (the caller's view of ``pingan.grids``), optionally in one area."""
    rows = conn.execute(text(
        f"SELECT code, ST_AsBinary(ST_Transform(geom, {METRIC_SRID})) FROM pingan.grids"  # noqa: S608
        " WHERE CAST(:a AS text) IS NULL OR :a IN (code, village_code, left(code, 9)) ORDER BY code"),
        {"a": area}).all()
    if len(rows) < 3:
        raise AnalysisInputError("fewer than three grids in the area: nothing to analyse")
    polys = shapely.from_wkb([bytes(r[1]) for r in rows])
    polys = np.array([shapely.set_precision(p, 0.01) for p in polys])
    centres = shapely.get_coordinates(shapely.point_on_surface(polys))
    return Cells("grid", [r[0] for r in rows], polys, centres, contiguity(polys, "queen"))


def cell_wkb_4490(conn: Connection, polygons: np.ndarray) -> list[bytes]:
    """Polygons in metres as MultiPolygon WKB in CGCS2000 (EPSG:4490), for storage."""
    rows = conn.execute(text(
        f"SELECT ST_AsBinary(ST_Multi(ST_Transform(ST_SetSRID(ST_GeomFromWKB(g), {METRIC_SRID}), 4490)))"  # noqa: S608
        " FROM unnest(CAST(:g AS bytea[])) WITH ORDINALITY AS t(g, i) ORDER BY i"),
        {"g": [shapely.to_wkb(p) for p in polygons]}).scalars().all()
    return [bytes(r) for r in rows]


def nullable(values: object) -> list[float | None]:
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(values, dtype=float)]


_INSERT_JOB_CELLS = (
    "INSERT INTO pingan.job_cells (job_id, cell, events, z, p, p_fdr, bin, local_i, code, label, geom)"
    " SELECT CAST(:job AS uuid), c, e, z, pv, pf, b, li, cd, lb,"
    " ST_Multi(ST_Transform(ST_SetSRID(ST_GeomFromWKB(g), 4549), 4490))"  # METRIC_SRID
    " FROM unnest(CAST(:cells AS text[]), CAST(:events AS int[]), CAST(:z AS float8[]),"
    " CAST(:pv AS float8[]), CAST(:pf AS float8[]), CAST(:b AS smallint[]), CAST(:li AS float8[]),"
    " CAST(:cd AS smallint[]), CAST(:lb AS text[]), CAST(:g AS bytea[]))"
    " AS t(c, e, z, pv, pf, b, li, cd, lb, g)"
)


def store_job_cells(conn: Connection, job_id: str, cells: Cells, counts: np.ndarray, *,
                    z: object | None = None, p: object | None = None, p_fdr: object | None = None,
                    bins: object | None = None, local_i: object | None = None,
                    code: object | None = None, label: object | None = None) -> int:
    """Store one row per cell of a job's result (``pingan.job_cells``, the layer
    ``hotspot-results``) in the caller's transaction; returns the number of rows."""
    n = len(cells)
    none: list[None] = [None] * n

    def ints(v: object | None) -> list[int | None]:
        return none if v is None else [int(x) for x in np.asarray(v)]

    conn.execute(text(_INSERT_JOB_CELLS), {
        "job": job_id, "cells": cells.ids, "events": [int(c) for c in np.asarray(counts)],
        "z": none if z is None else nullable(z), "pv": none if p is None else nullable(p),
        "pf": none if p_fdr is None else nullable(p_fdr), "b": ints(bins),
        "li": none if local_i is None else nullable(local_i), "cd": ints(code),
        "lb": none if label is None else [str(x) for x in np.asarray(label)],
        "g": [shapely.to_wkb(g) for g in cells.polygons],
    })
    return n
