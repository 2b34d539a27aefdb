"""Hexagon and square cells over an extent, and counting event points into them.

Hexagons are "pointy-top" with side (= circumradius) ``size``, addressed by axial coordinates
``(q, r)``: the centre is ``origin + size * (sqrt(3) * (q + r / 2), 1.5 * r)``. Neighbouring
centres are ``sqrt(3) * size`` apart, and every cell has six neighbours sharing an edge, so
queen, rook and a distance band of ``sqrt(3) * size`` (plus a little) all give the same
weights (:meth:`HexGrid.neighbours`).

Vertices are computed on an integer lattice (multiples of ``size / 2`` in y and of
``sqrt(3) * size / 2`` in x), so adjacent cells share their vertices bit for bit and
:func:`gis.hotspots.weights.contiguity` finds them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import shapely
from scipy import sparse
from shapely.geometry.base import BaseGeometry

from ._checks import as_coords, choice, positive

__all__ = ["HexGrid", "SquareGrid", "aggregate_points", "hex_grid", "hex_size_for_area", "square_grid"]

_SQRT3 = math.sqrt(3.0)
# Axial offsets of the six neighbours of a hexagon.
_HEX_NEIGHBOURS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, -1), (-1, 1))
# Vertices of a pointy-top hexagon in half-units: x in sqrt(3)*size/2, y in size/2.
_HEX_VERTICES = ((1, 1), (0, 2), (-1, 1), (-1, -1), (0, -2), (1, -1))


def hex_size_for_area(area: float) -> float:
    """Side length of the regular hexagon with the given area: ``sqrt(2 a / (3 sqrt 3))``."""
    return math.sqrt(2.0 * positive(area, "area") / (3.0 * _SQRT3))


def _extent(extent: object) -> tuple[float, float, float, float]:
    try:
        minx, miny, maxx, maxy = (float(v) for v in extent)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise ValueError(f"extent must be (minx, miny, maxx, maxy), got {extent!r}") from None
    if not all(map(math.isfinite, (minx, miny, maxx, maxy))) or maxx <= minx or maxy <= miny:
        raise ValueError(f"extent must be finite with maxx > minx and maxy > miny, got {extent!r}")
    return minx, miny, maxx, maxy


def _lookup(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, int, int, int]:
    """A dense table from (a, b) integer pairs to cell index, for O(1) location."""
    amin, bmin = int(a.min()), int(b.min())
    width, height = int(a.max()) - amin + 1, int(b.max()) - bmin + 1
    table = np.full(width * height, -1, dtype=np.int64)
    table[(b - bmin) * width + (a - amin)] = np.arange(len(a))
    return table, amin, bmin, width


def _find(table_info: tuple[np.ndarray, int, int, int], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    table, amin, bmin, width = table_info
    height = len(table) // width
    ia, ib = a - amin, b - bmin
    inside = (ia >= 0) & (ia < width) & (ib >= 0) & (ib < height)
    out = np.full(len(a), -1, dtype=np.int64)
    out[inside] = table[ib[inside] * width + ia[inside]]
    return out


@dataclass(frozen=True, eq=False)
class HexGrid:
    """Hexagon cells: axial coordinates ``q``, ``r`` (int64) of side ``size`` around ``origin``."""

    size: float
    origin: tuple[float, float]
    q: np.ndarray
    r: np.ndarray

    def __len__(self) -> int:
        return len(self.q)

    @property
    def centres(self) -> np.ndarray:
        """``(n, 2)`` cell centres."""
        x = self.origin[0] + self.size * _SQRT3 * (self.q + self.r / 2.0)
        y = self.origin[1] + self.size * 1.5 * self.r
        return np.column_stack([x, y])

    @property
    def cell_area(self) -> float:
        return 1.5 * _SQRT3 * self.size**2

    def polygons(self) -> np.ndarray:
        """Shapely polygons of the cells (adjacent cells share vertices exactly)."""
        hx = (2 * self.q + self.r)[:, None] + np.array([v[0] for v in _HEX_VERTICES])
        hy = (3 * self.r)[:, None] + np.array([v[1] for v in _HEX_VERTICES])
        x = self.origin[0] + hx * (_SQRT3 * self.size / 2.0)
        y = self.origin[1] + hy * (self.size / 2.0)
        ring = np.stack([x, y], axis=-1)
        ring = np.concatenate([ring, ring[:, :1]], axis=1)
        return shapely.polygons(ring)

    def locate(self, points: object) -> np.ndarray:
        """Index of the cell containing each point, ``-1`` outside the grid."""
        xy = as_coords(points, "points")
        x = (xy[:, 0] - self.origin[0]) / self.size
        y = (xy[:, 1] - self.origin[1]) / self.size
        qf = x / _SQRT3 - y / 3.0
        rf = y * (2.0 / 3.0)
        q, r = _cube_round(qf, rf)
        return _find(_lookup(self.q, self.r), q, r)

    def neighbours(self) -> sparse.csr_array:
        """Binary weights to the (up to) six edge-sharing cells; equals queen and rook."""
        table = _lookup(self.q, self.r)
        rows, cols = [], []
        for dq, dr in _HEX_NEIGHBOURS:
            j = _find(table, self.q + dq, self.r + dr)
            ok = j >= 0
            rows.append(np.flatnonzero(ok))
            cols.append(j[ok])
        return _binary(np.concatenate(rows), np.concatenate(cols), len(self))


def _cube_round(qf: np.ndarray, rf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Round fractional axial coordinates to the hexagon that contains them."""
    sf = -qf - rf
    q, r, s = np.rint(qf), np.rint(rf), np.rint(sf)
    dq, dr, ds = np.abs(q - qf), np.abs(r - rf), np.abs(s - sf)
    fix_q = (dq > dr) & (dq > ds)
    fix_r = ~fix_q & (dr > ds)
    q = np.where(fix_q, -r - s, q)
    r = np.where(fix_r, -q - s, r)
    return q.astype(np.int64), r.astype(np.int64)


def _binary(rows: np.ndarray, cols: np.ndarray, n: int) -> sparse.csr_array:
    w = sparse.csr_array((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    w.sort_indices()
    return w


def _keep_in_mask(polys: np.ndarray, mask: BaseGeometry | None) -> np.ndarray:
    if mask is None:
        return np.ones(len(polys), dtype=bool)
    if not isinstance(mask, BaseGeometry) or mask.is_empty or mask.area <= 0:
        raise ValueError("mask must be a non-empty polygonal shapely geometry")
    shapely.prepare(mask)
    return shapely.intersects(mask, polys) & ~shapely.touches(mask, polys)


def hex_grid(extent: object, size: float, *, mask: BaseGeometry | None = None) -> HexGrid:
    """Hexagons of side ``size`` covering ``extent``, optionally only those overlapping ``mask``.

    Parameters
    ----------
    extent : (minx, miny, maxx, maxy)
        Area to cover, in a projected CRS; the first centre is at (minx, miny).
    size : float
        Side length (= circumradius) of the hexagons; see :func:`hex_size_for_area`.
    mask : shapely Polygon or MultiPolygon, optional
        Keep only cells whose interior overlaps the mask (the study area).

    Examples
    --------
    >>> grid = hex_grid((0, 0, 100, 100), 10)
    >>> len(grid), int(grid.neighbours().sum(axis=1).max())
    (52, 6)
    """
    minx, miny, maxx, maxy = _extent(extent)
    size = positive(size, "size")
    r_hi = math.ceil((maxy - miny) / (1.5 * size)) + 1
    rows = np.arange(-1, r_hi + 1)
    width = _SQRT3 * size
    cols = np.arange(-1, math.ceil((maxx - minx) / width) + 2)
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    r = rr.ravel()
    q = cc.ravel() - np.floor_divide(r, 2)
    grid = HexGrid(size, (minx, miny), q, r)
    cx, cy = grid.centres.T
    half = _SQRT3 * size / 2.0
    # A hexagon spans cx +/- half and cy +/- size, and its full width over cy +/- size / 2: most
    # cells are decided from the centre; only those near the edges need a polygon test.
    keep = (cx > minx - half) & (cx < maxx + half) & (cy > miny - size / 2) & (cy < maxy + size / 2)
    maybe = ~keep & (cx > minx - half) & (cx < maxx + half) & (cy > miny - size) & (cy < maxy + size)
    if maybe.any():
        box = shapely.box(minx, miny, maxx, maxy)
        edge = HexGrid(size, (minx, miny), q[maybe], r[maybe]).polygons()
        keep[maybe] = shapely.intersects(box, edge) & ~shapely.touches(box, edge)
    if mask is not None:
        sub = np.flatnonzero(keep)
        keep[sub] = _keep_in_mask(HexGrid(size, (minx, miny), q[sub], r[sub]).polygons(), mask)
    if not keep.any():
        raise ValueError("no cell overlaps the mask")
    return HexGrid(size, (minx, miny), q[keep], r[keep])


@dataclass(frozen=True, eq=False)
class SquareGrid:
    """Square cells: column ``i`` and row ``j`` (int64) of side ``size``, lower-left ``origin``."""

    size: float
    origin: tuple[float, float]
    i: np.ndarray
    j: np.ndarray

    def __len__(self) -> int:
        return len(self.i)

    @property
    def centres(self) -> np.ndarray:
        return np.column_stack([self.origin[0] + (self.i + 0.5) * self.size,
                                self.origin[1] + (self.j + 0.5) * self.size])

    @property
    def cell_area(self) -> float:
        return self.size**2

    def polygons(self) -> np.ndarray:
        x0 = self.origin[0] + self.i * self.size
        y0 = self.origin[1] + self.j * self.size
        return shapely.box(x0, y0, x0 + self.size, y0 + self.size)

    def locate(self, points: object) -> np.ndarray:
        xy = as_coords(points, "points")
        ci = np.floor((xy[:, 0] - self.origin[0]) / self.size).astype(np.int64)
        cj = np.floor((xy[:, 1] - self.origin[1]) / self.size).astype(np.int64)
        return _find(_lookup(self.i, self.j), ci, cj)

    def neighbours(self, kind: Literal["queen", "rook"] = "queen") -> sparse.csr_array:
        """Binary rook (4 edge) or queen (8 edge-or-corner) neighbours."""
        kind = choice(kind, "kind", ("queen", "rook"))  # type: ignore[assignment]
        offsets = [(1, 0), (-1, 0), (0, 1), (0, -1)]
        if kind == "queen":
            offsets += [(1, 1), (1, -1), (-1, 1), (-1, -1)]
        table = _lookup(self.i, self.j)
        rows, cols = [], []
        for di, dj in offsets:
            k = _find(table, self.i + di, self.j + dj)
            ok = k >= 0
            rows.append(np.flatnonzero(ok))
            cols.append(k[ok])
        return _binary(np.concatenate(rows), np.concatenate(cols), len(self))


def square_grid(extent: object, size: float, *, mask: BaseGeometry | None = None) -> SquareGrid:
    """Square cells of side ``size`` from (minx, miny) covering ``extent`` (and ``mask``)."""
    minx, miny, maxx, maxy = _extent(extent)
    size = positive(size, "size")
    nx, ny = math.ceil((maxx - minx) / size), math.ceil((maxy - miny) / size)
    jj, ii = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    grid = SquareGrid(size, (minx, miny), ii.ravel(), jj.ravel())
    if mask is not None:
        keep = _keep_in_mask(grid.polygons(), mask)
        if not keep.any():
            raise ValueError("no cell overlaps the mask")
        grid = SquareGrid(size, (minx, miny), grid.i[keep], grid.j[keep])
    return grid


def aggregate_points(
    grid: HexGrid | SquareGrid, points: object, weights: object | None = None
) -> tuple[np.ndarray, int]:
    """Count (or sum ``weights`` of) event points per cell.

    Returns
    -------
    counts : numpy.ndarray
        One value per cell of ``grid`` (float64).
    outside : int
        Number of points that fell in no cell (outside the extent or the mask).

    Examples
    --------
    >>> grid = square_grid((0, 0, 2, 1), 1)
    >>> aggregate_points(grid, [[0.5, 0.5], [0.2, 0.1], [1.5, 0.5], [5, 5]])
    (array([2., 1.]), 1)
    """
    cell = grid.locate(points)
    if weights is None:
        w = np.ones(len(cell))
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != cell.shape or not np.isfinite(w).all():
            raise ValueError("weights must be finite, one per point")
    inside = cell >= 0
    counts = np.bincount(cell[inside], weights=w[inside], minlength=len(grid))
    return counts, int((~inside).sum())
