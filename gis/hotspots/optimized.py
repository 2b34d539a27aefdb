"""Optimised hot-spot settings: the analysis scale and outliers chosen from the data, reported.

Follows the steps of ArcGIS's Optimized Hot Spot Analysis:

1. **Locational outliers**: features whose nearest-neighbour distance exceeds the mean plus
   three standard deviations of those distances. They stay in the analysis but do not set
   the distances searched below (one remote cell would otherwise make every band huge).
2. **Scale** by incremental spatial autocorrelation: global Moran's I (row-standardised,
   binary distance bands) at ``n_bands`` distances from the smallest distance that gives every
   non-outlier a neighbour, in steps of the mean nearest-neighbour distance. The first peak
   of the z-score (a band whose z is larger than both adjacent bands' and significant) is the
   scale. Without a peak: the mean distance to the ``K``-th nearest neighbour with
   ``K = clip(round(0.05 n), 3, 30)``.
3. **Value outliers** in the analysis field (beyond ``Q1 - 3 IQR`` or ``Q3 + 3 IQR``) are
   counted and reported, not changed: a Gi* hot spot is about neighbourhoods, and ArcGIS
   also keeps them.
4. **Gi*** with binary fixed-distance weights at that scale and FDR-corrected bins.

For event points, :func:`optimized_hot_spots` first counts them into hexagon cells; the cell
side is ours (ArcGIS does not publish its rule): hexagons of area ``A / clip(N / 5, 30, 50000)``
for ``N`` events over area ``A`` (the mask, else the events' bounding box), i.e. about five
events per cell, so sparse data still gives 30 cells and dense data stays interactive.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree
from shapely.geometry.base import BaseGeometry

from ._checks import as_coords, as_values, positive
from .cells import HexGrid, aggregate_points, hex_grid, hex_size_for_area
from .gistar import GiStarResult, gi_star
from .moran import moran
from .weights import distance_band

__all__ = [
    "IncrementalResult",
    "OptimizedResult",
    "incremental_spatial_autocorrelation",
    "locational_outliers",
    "optimized_gi_star",
    "optimized_hot_spots",
    "value_outliers",
]

MIN_FEATURES = 30


def locational_outliers(coords: object) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-neighbour distances and a mask of locational outliers (> mean + 3 sd).

    Examples
    --------
    >>> import numpy as np
    >>> xy = np.array([[x, 0.0] for x in range(20)] + [[1000.0, 0.0]])
    >>> locational_outliers(xy)[1].nonzero()[0].tolist()
    [20]
    """
    xy = as_coords(coords)
    if len(xy) < 2:
        raise ValueError("need at least two features")
    d = cKDTree(xy).query(xy, k=2)[0][:, 1]
    return d, d > d.mean() + 3.0 * d.std()


def value_outliers(values: object) -> np.ndarray:
    """Mask of values beyond 3 interquartile ranges from the quartiles (extreme outliers)."""
    x = as_values(values)
    q1, q3 = np.percentile(x, [25, 75])
    iqr = q3 - q1
    return (x < q1 - 3 * iqr) | (x > q3 + 3 * iqr)


@dataclass(frozen=True, eq=False)
class IncrementalResult:
    """Global Moran's I over increasing distance bands; ``peaks`` index into ``distances``."""

    distances: np.ndarray
    I: np.ndarray  # noqa: E741, N815
    z: np.ndarray
    p: np.ndarray
    peaks: np.ndarray

    @property
    def first_peak(self) -> float | None:
        return float(self.distances[self.peaks[0]]) if self.peaks.size else None


def incremental_spatial_autocorrelation(
    coords: object, values: object, *, distances: object | None = None, n_bands: int = 10,
    alpha: float = 0.05,
) -> IncrementalResult:
    """Global Moran's I z-score at increasing fixed distances, and its peaks.

    Parameters
    ----------
    coords : array_like, shape (n, 2)
    values : array_like, shape (n,)
    distances : array_like, optional
        Distances to test; default ``n_bands`` bands from the smallest distance giving every
        non-outlier a neighbour, in steps of the mean nearest-neighbour distance (outliers out).
    n_bands : int, default 10
    alpha : float, default 0.05
        A peak must be significant (two-sided normal p below alpha).
    """
    xy = as_coords(coords)
    x = as_values(values)
    if len(xy) != len(x):
        raise ValueError("coords and values must have the same length")
    if distances is None:
        if not isinstance(n_bands, int) or n_bands < 3:
            raise ValueError("n_bands must be an integer >= 3")
        nn, out = locational_outliers(xy)
        start, step = float(nn[~out].max()), float(nn[~out].mean())
        if step <= 0:
            raise ValueError("features coincide: aggregate them first")
        dist = start + step * np.arange(n_bands)
    else:
        dist = np.sort(np.asarray(distances, dtype=np.float64))
        if dist.ndim != 1 or dist.size < 3 or not np.isfinite(dist).all() or dist[0] <= 0:
            raise ValueError("distances must be at least three positive numbers")
    # One pair list at the largest distance, filtered per band.
    pairs = cKDTree(xy).query_pairs(float(dist[-1]), output_type="ndarray")
    d = np.hypot(*(xy[pairs[:, 0]] - xy[pairs[:, 1]]).T)
    n = len(xy)
    stats = []
    for band in dist:
        keep = d <= band
        i, j = pairs[keep, 0], pairs[keep, 1]
        w = sparse.csr_array((np.ones(2 * i.size), (np.concatenate([i, j]), np.concatenate([j, i]))),
                             shape=(n, n))
        stats.append(moran(x, w, transform="R") if w.nnz else None)
    z = np.array([s.z_norm if s else np.nan for s in stats])
    p = np.array([s.p_norm if s else np.nan for s in stats])
    stat = np.array([s.I if s else np.nan for s in stats])
    inner = np.arange(1, len(dist) - 1)
    is_peak = (z[inner] > z[inner - 1]) & (z[inner] > z[inner + 1]) & (p[inner] < alpha)
    return IncrementalResult(dist, stat, z, p, inner[is_peak])


@dataclass(frozen=True, eq=False)
class OptimizedResult:
    """Gi* at the chosen scale, with the choices made (``report``: plain sentences)."""

    gi: GiStarResult
    distance: float
    scale_source: str
    incremental: IncrementalResult | None
    locational_outliers: int
    value_outliers: int
    report: list[str] = field(default_factory=list)
    grid: HexGrid | None = None
    counts: np.ndarray | None = None


def optimized_gi_star(coords: object, values: object, *, distance: float | None = None,
                      n_bands: int = 10) -> OptimizedResult:
    """Gi* with an automatic scale (or ``distance``), FDR bins, and a report of the choices.

    Examples
    --------
    >>> import numpy as np
    >>> from gis.hotspots.cells import square_grid
    >>> g = square_grid((0, 0, 10, 10), 1)
    >>> x = np.where(g.centres[:, 0] < 3, 10.0, 1.0) + (g.i % 2)
    >>> res = optimized_gi_star(g.centres, x)
    >>> res.scale_source in ("peak", "k-nearest"), res.gi.n_hot > 0
    (True, True)
    """
    xy = as_coords(coords)
    x = as_values(values)
    if len(xy) != len(x):
        raise ValueError("coords and values must have the same length")
    if len(x) < MIN_FEATURES:
        raise ValueError(f"optimised hot-spot analysis needs at least {MIN_FEATURES} features, got {len(x)}")
    if np.ptp(x) == 0:
        raise ValueError("values are all equal: there is nothing to find")
    report = [f"{len(x)} features analysed."]
    _, loc_out = locational_outliers(xy)
    val_out = value_outliers(x)
    report.append(f"{int(loc_out.sum())} locational outliers (nearest neighbour farther than mean + 3 sd); "
                  "kept, but not used to choose the distances.")
    report.append(f"{int(val_out.sum())} value outliers (beyond 3 IQR of the quartiles); kept unchanged.")
    isa = None
    if distance is not None:
        dist, source = positive(distance, "distance"), "given"
        report.append(f"Distance band given: {dist:.6g}.")
    else:
        isa = incremental_spatial_autocorrelation(xy, x, n_bands=n_bands)
        if isa.first_peak is not None:
            dist, source = isa.first_peak, "peak"
            report.append(f"Incremental spatial autocorrelation peaks at {dist:.6g} "
                          f"(Moran's I z = {isa.z[isa.peaks[0]]:.3f}); used as the scale.")
        else:
            k = int(min(30, max(3, round(0.05 * len(x)))))
            dist = float(cKDTree(xy).query(xy, k=k + 1)[0][:, k].mean())
            source = "k-nearest"
            report.append(f"No peak of spatial autocorrelation over {isa.distances[0]:.6g}.."
                          f"{isa.distances[-1]:.6g}; using the mean distance to the {k}th nearest "
                          f"neighbour, {dist:.6g}.")
    w = distance_band(xy, dist)
    lonely = int((np.diff(w.indptr) == 0).sum())
    if lonely:
        report.append(f"{lonely} features have no neighbour within {dist:.6g} (only themselves).")
    gi = gi_star(x, w, transform="B", fdr=True)
    report.append(f"Gi* with FDR correction: {gi.n_hot} hot-spot and {gi.n_cold} cold-spot features "
                  "(90 % confidence or more).")
    return OptimizedResult(gi, dist, source, isa, int(loc_out.sum()), int(val_out.sum()), report)


def optimized_hot_spots(points: object, *, cell_size: float | None = None,
                        mask: BaseGeometry | None = None, n_bands: int = 10) -> OptimizedResult:
    """Count event points into hexagons and run :func:`optimized_gi_star` on the counts.

    Parameters
    ----------
    points : array_like, shape (N, 2)
        Event locations (projected CRS).
    cell_size : float, optional
        Hexagon side; default from the rule in the module docstring.
    mask : shapely Polygon or MultiPolygon, optional
        Where events are possible (the district); cells outside it are left out, cells inside
        it with no event count as zero. Without a mask, cells over the events' bounding box.
    """
    xy = as_coords(points, "points")
    if len(xy) < MIN_FEATURES:
        raise ValueError(f"need at least {MIN_FEATURES} events, got {len(xy)}")
    if mask is not None:
        extent = mask.bounds
        area = float(mask.area)
    else:
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        extent = (lo[0], lo[1], hi[0], hi[1])
        area = float(np.prod(hi - lo))
    if not area > 0:
        raise ValueError("the events (or the mask) cover no area")
    report = []
    if cell_size is None:
        target = min(50_000, max(MIN_FEATURES, len(xy) // 5))
        cell_size = hex_size_for_area(area / target)
        report.append(f"Hexagon side {cell_size:.6g} (about {target} cells over {area:.6g} square units).")
    else:
        cell_size = positive(cell_size, "cell_size")
        report.append(f"Hexagon side given: {cell_size:.6g}.")
    grid = hex_grid(extent, cell_size, mask=mask)
    counts, outside = aggregate_points(grid, xy)
    report.append(f"{len(xy) - outside} events counted into {len(grid)} cells; {outside} outside.")
    res = optimized_gi_star(grid.centres, counts, n_bands=n_bands)
    return OptimizedResult(res.gi, res.distance, res.scale_source, res.incremental,
                           res.locational_outliers, res.value_outliers, report + res.report, grid, counts)
