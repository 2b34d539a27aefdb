"""Emerging hot spots: a space-time cube, Gi* per bin, Mann-Kendall trends, ArcGIS categories.

The cube holds one value per (time step, location), e.g. event counts per cell and month.
Gi* is computed for every bin over the whole cube (ArcGIS's "entire cube" global window): the
neighbours of bin ``(t, i)`` are the spatial neighbours of ``i`` and ``i`` itself, at steps
``t - time_window .. t`` (ArcGIS's neighbourhood time step; bins before the first step do not
exist). The Mann-Kendall test on each location's series of Gi* z-scores gives its trend.

Categories (ArcGIS Emerging Hot Spot Analysis), for a location with ``T`` steps, ``H`` its
significant hot bins and ``C`` its cold ones (``alpha`` on each bin's p-value); checked in this
order, cold ones mirror the hot ones with negative codes:

====  ============  ==============================================================
code  name          rule
====  ============  ==============================================================
8     historical    >= 90 % of steps hot, the final step not hot
3     intensifying  >= 90 % hot, final step hot, significant upward trend
5     diminishing   >= 90 % hot, final step hot, significant downward trend
4     persistent    >= 90 % hot, final step hot, no significant trend
7     oscillating   final step hot, < 90 % hot, some earlier step cold
1     new           final step hot and no other significant bin
2     consecutive   final run of >= 2 hot steps, no significant bin before it
6     sporadic      final step hot, < 90 % hot, hot before the final run, never cold
0     no pattern    none of the above
====  ============  ==============================================================

A location whose final step is significant (hot or cold) is classified by that direction;
otherwise a >= 90 % history decides (historical). So nine hot steps followed by a cold one is
an oscillating cold spot, not a historical hot spot (as sfdep orders them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse, special

from ._checks import as_weights, probability
from .gistar import confidence_bins, fdr_adjust

__all__ = [
    "CATEGORIES",
    "EmergingResult",
    "MannKendall",
    "classify_emerging",
    "emerging_hotspots",
    "mann_kendall",
    "month_steps",
    "space_time_cube",
    "space_time_weights",
]

#: Category code -> name; negative codes are the cold equivalents.
CATEGORIES: dict[int, str] = {
    0: "no pattern",
    1: "new hot spot", 2: "consecutive hot spot", 3: "intensifying hot spot",
    4: "persistent hot spot", 5: "diminishing hot spot", 6: "sporadic hot spot",
    7: "oscillating hot spot", 8: "historical hot spot",
    -1: "new cold spot", -2: "consecutive cold spot", -3: "intensifying cold spot",
    -4: "persistent cold spot", -5: "diminishing cold spot", -6: "sporadic cold spot",
    -7: "oscillating cold spot", -8: "historical cold spot",
}


def month_steps(times: object, start: object | None = None) -> tuple[np.ndarray, np.datetime64]:
    """Whole months since ``start`` (default: the earliest month) for each timestamp.

    ``times`` is anything numpy reads as datetime64 (ISO strings, ``datetime``, pandas
    timestamps converted to UTC and made naive first). Returns the steps and the first month.

    Examples
    --------
    >>> steps, first = month_steps(["2025-01-31", "2025-03-01T08:00", "2024-12-15"])
    >>> steps.tolist(), str(first)
    ([1, 3, 0], '2024-12')
    """
    try:
        months = np.asarray(times, dtype="datetime64[M]")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"times must be dates or timestamps: {exc}") from None
    if months.ndim != 1 or months.size == 0 or np.isnat(months).any():
        raise ValueError("times must be a non-empty 1-D sequence without missing values")
    first = months.min() if start is None else np.datetime64(start, "M")
    return (months - first).astype(np.int64), first


def space_time_cube(cell: object, step: object, n_cells: int, n_steps: int,
                    weights: object | None = None) -> np.ndarray:
    """Count (or sum ``weights`` of) events per (step, cell): a ``(n_steps, n_cells)`` array.

    ``cell`` and ``step`` are integer indices per event; events with a negative or
    out-of-range index (outside the grid or the period) are left out.

    Examples
    --------
    >>> space_time_cube([0, 1, 1, -1], [0, 0, 1, 1], n_cells=2, n_steps=2).tolist()
    [[1.0, 1.0], [0.0, 1.0]]
    """
    c = np.asarray(cell, dtype=np.int64)
    t = np.asarray(step, dtype=np.int64)
    if c.shape != t.shape or c.ndim != 1:
        raise ValueError("cell and step must be 1-D arrays of the same length")
    if n_cells < 1 or n_steps < 1:
        raise ValueError("n_cells and n_steps must be positive")
    w = np.ones(c.size) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != c.shape or not np.isfinite(w).all():
        raise ValueError("weights must be finite, one per event")
    ok = (c >= 0) & (c < n_cells) & (t >= 0) & (t < n_steps)
    flat = np.bincount(t[ok] * n_cells + c[ok], weights=w[ok], minlength=n_steps * n_cells)
    return flat.reshape(n_steps, n_cells)


def space_time_weights(spatial: object, n_steps: int, time_window: int = 1) -> sparse.csr_array:
    """Binary weights between the bins of a cube flattened step-major (``t * n + i``).

    Bin ``(t, i)`` neighbours ``(s, j)`` when ``t - time_window <= s <= t`` and ``j`` is ``i``
    or a spatial neighbour of ``i``. The diagonal is 1 (Gi* includes the bin itself).
    """
    w = as_weights(spatial, getattr(spatial, "shape", (0,))[0])
    n = w.shape[0]
    if not isinstance(time_window, int | np.integer) or time_window < 0:
        raise ValueError(f"time_window must be a non-negative integer, got {time_window!r}")
    space = sparse.csr_array((w != 0).astype(np.float64) + sparse.eye_array(n, format="csr"))
    space.data[:] = 1.0
    lags = sparse.csr_array(sum(sparse.eye_array(n_steps, k=-d, format="csr")
                                for d in range(min(time_window, n_steps - 1) + 1)))
    out = sparse.csr_array(sparse.kron(lags, space, format="csr"))
    out.sort_indices()
    return out


@dataclass(frozen=True, eq=False)
class MannKendall:
    """Mann-Kendall trend test per series (arrays over the leading axes of the input).

    Attributes
    ----------
    s : Kendall's S, ``sum_{i<j} sign(x_j - x_i)``.
    var : variance of S under no trend, corrected for ties.
    z : ``(S -/+ 1) / sqrt(var)`` with the continuity correction (0 when S is 0 or var is 0).
    p : two-sided p-value of ``z``.
    tau : Kendall's tau-b between time and the series (scipy's ``kendalltau``).
    """

    s: np.ndarray
    var: np.ndarray
    z: np.ndarray
    p: np.ndarray
    tau: np.ndarray


def mann_kendall(series: object, *, continuity: bool = True) -> MannKendall:
    """Mann-Kendall test along the last axis (time), vectorised over the others.

    Examples
    --------
    >>> mk = mann_kendall([1.0, 2.0, 3.0, 5.0, 4.0])
    >>> float(mk.s), round(float(mk.tau), 2)
    (8.0, 0.8)
    """
    x = np.asarray(series, dtype=np.float64)
    if x.ndim == 0 or x.shape[-1] < 3:
        raise ValueError("the series need at least 3 time steps")
    if not np.isfinite(x).all():
        raise ValueError("the series must be finite")
    n = x.shape[-1]
    s = np.zeros(x.shape[:-1])
    for lag in range(1, n):
        s += np.sign(x[..., lag:] - x[..., :-lag]).sum(axis=-1)
    # Ties: for each run of t equal values, subtract t(t-1)(2t+5) from n(n-1)(2n+5).
    srt = np.sort(x, axis=-1)
    equal = np.concatenate([np.zeros(x.shape[:-1] + (1,), bool), srt[..., 1:] == srt[..., :-1]], -1)
    run = np.zeros(x.shape)
    for k in range(1, n):
        run[..., k] = np.where(equal[..., k], run[..., k - 1] + 1, 0)
    ends = ~np.concatenate([equal[..., 1:], np.zeros(x.shape[:-1] + (1,), bool)], -1)
    t = np.where(ends, run + 1, 0)
    ties = (t * (t - 1) * (2 * t + 5)).sum(axis=-1)
    var = (n * (n - 1) * (2 * n + 5) - ties) / 18.0
    tied_pairs = (t * (t - 1) / 2).sum(axis=-1)
    pairs = n * (n - 1) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = s / np.sqrt(pairs * (pairs - tied_pairs))
        adj = s - np.sign(s) if continuity else s
        z = np.where(var > 0, adj / np.sqrt(var), 0.0)
    tau = np.where(pairs - tied_pairs > 0, tau, 0.0)
    p = special.erfc(np.abs(z) / np.sqrt(2.0))
    return MannKendall(s, var, z, p, tau)


def classify_emerging(
    z: np.ndarray, p: np.ndarray, trend_z: np.ndarray, trend_p: np.ndarray,
    *, alpha: float = 0.05, trend_alpha: float = 0.05,
) -> np.ndarray:
    """ArcGIS emerging hot-spot category codes (see :data:`CATEGORIES`) per location.

    Parameters
    ----------
    z, p : ``(T, n)`` bin z-scores and p-values (use FDR-adjusted p for FDR).
    trend_z, trend_p : ``(n,)`` Mann-Kendall z and p of each location's z-score series.
    alpha, trend_alpha : significance of a bin and of a trend.
    """
    z, p = np.asarray(z, dtype=np.float64), np.asarray(p, dtype=np.float64)
    if z.ndim != 2 or z.shape != p.shape:
        raise ValueError("z and p must be (steps, locations) arrays of the same shape")
    sig = p < probability(alpha, "alpha")
    trend_up = (np.asarray(trend_z) > 0) & (np.asarray(trend_p) < probability(trend_alpha, "trend_alpha"))
    trend_down = (np.asarray(trend_z) < 0) & (np.asarray(trend_p) < trend_alpha)
    out = np.zeros(z.shape[1], dtype=np.int8)
    hot, cold = sig & (z > 0), sig & (z < 0)
    _classify_side(out, hot, cold, trend_up, trend_down, +1)
    _classify_side(out, cold, hot, trend_down, trend_up, -1)
    # Final step not significant either way: only a >= 90 % history can name it.
    return out


def _classify_side(out: np.ndarray, same: np.ndarray, other: np.ndarray, stronger: np.ndarray,
                   weaker: np.ndarray, sign: int) -> None:
    steps = same.shape[0]
    share = same.sum(axis=0) / steps
    final = same[-1]
    mostly = share >= 0.9
    run = np.zeros(same.shape[1], dtype=np.int64)  # length of the final run of `same` bins
    alive = final.copy()
    for t in range(steps - 1, -1, -1):
        alive &= same[t]
        run += alive
    ever_other = other.any(axis=0)
    n_sig = same.sum(axis=0) + other.sum(axis=0)
    code = np.zeros(same.shape[1], dtype=np.int8)
    code[mostly & ~final & ~other[-1]] = 8
    fin = final & mostly
    code[fin & stronger] = 3
    code[fin & weaker] = 5
    code[fin & ~stronger & ~weaker] = 4
    rest = final & ~mostly
    code[rest & ever_other] = 7
    calm = rest & ~ever_other
    code[calm & (n_sig == 1)] = 1
    code[calm & (n_sig == run) & (run >= 2)] = 2
    code[calm & (n_sig > run)] = 6
    mask = code != 0
    out[mask] = sign * code[mask]


def _space_time_z(values: np.ndarray, spatial: sparse.csr_array, time_window: int) -> np.ndarray:
    """Gi* z of every bin with the binary weights of :func:`space_time_weights`, without building
    them: the lag is a running sum over the last ``time_window + 1`` steps of the spatial lag.
    Equal to ``gi_star(values.ravel(), space_time_weights(...)).z`` (tested)."""
    steps, n = values.shape
    space = sparse.csr_array((spatial != 0).astype(np.float64) + sparse.eye_array(n, format="csr"))
    space.data[:] = 1.0
    spatial_lag = np.asarray(space @ values.T).T  # (steps, n)
    run = np.cumsum(spatial_lag, axis=0)
    lag = run.copy()
    lag[time_window + 1:] -= run[:-time_window - 1]
    depth = np.minimum(np.arange(steps), time_window) + 1.0  # steps inside the window
    wi = depth[:, None] * (space @ np.ones(n))[None, :]  # binary: sum w = sum w^2
    total = values.size
    mean = values.mean()
    sd = np.sqrt(max((values * values).mean() - mean * mean, 0.0))
    if sd <= 1e-12 * max(abs(mean), 1.0):
        raise ValueError("the cube's values are all equal: Gi* is undefined without variation")
    spread = (total * wi - wi * wi) / (total - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (lag - mean * wi) / (sd * np.sqrt(spread))
    z[~(spread > 0)] = 0.0
    return z


@dataclass(frozen=True, eq=False)
class EmergingResult:
    """Result of :func:`emerging_hotspots`.

    Attributes
    ----------
    z, p, p_fdr, bins : ``(T, n)`` Gi* per bin (``bins`` from ``p_fdr`` if ``fdr``).
    trend : Mann-Kendall of each location's z-score series (arrays of ``n``).
    category : ``(n,)`` int8 codes of :data:`CATEGORIES`.
    """

    z: np.ndarray
    p: np.ndarray
    p_fdr: np.ndarray
    bins: np.ndarray
    trend: MannKendall
    category: np.ndarray
    alpha: float
    fdr: bool
    time_window: int

    @property
    def names(self) -> np.ndarray:
        """Category names per location."""
        return np.array([CATEGORIES[int(c)] for c in self.category])


def emerging_hotspots(
    cube: object,
    spatial_weights: object,
    *,
    time_window: int = 1,
    alpha: float = 0.05,
    trend_alpha: float = 0.05,
    fdr: bool = False,
) -> EmergingResult:
    """Emerging hot-spot analysis of a ``(T, n)`` space-time cube.

    Parameters
    ----------
    cube : array_like, shape (T, n)
        Values per time step and location (e.g. from :func:`space_time_cube`); T >= 10 as ArcGIS
        asks for a meaningful trend (3 is the hard minimum).
    spatial_weights : scipy sparse matrix, shape (n, n)
        Spatial neighbours of the locations (the diagonal is ignored; the bin itself is
        always included).
    time_window : int, default 1
        Previous steps in each bin's neighbourhood (ArcGIS's neighbourhood time step).
    alpha : float, default 0.05
        Significance of a hot or cold bin.
    trend_alpha : float, default 0.05
        Significance of the Mann-Kendall trend.
    fdr : bool, default False
        Judge bins by Benjamini-Hochberg adjusted p-values over the whole cube.
    """
    values = np.asarray(cube, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] < 3 or values.shape[1] < 2:
        raise ValueError("cube must be (steps >= 3, locations >= 2)")
    steps, n = values.shape
    if getattr(spatial_weights, "shape", None) != (n, n):
        raise ValueError(f"spatial_weights must be ({n}, {n}) to match the cube's locations")
    if not np.isfinite(values).all():
        raise ValueError("cube must be finite (no NaN or infinity)")
    if not isinstance(time_window, int | np.integer) or time_window < 0:
        raise ValueError(f"time_window must be a non-negative integer, got {time_window!r}")
    z = _space_time_z(values, as_weights(spatial_weights, n), int(time_window))
    p = special.erfc(np.abs(z) / np.sqrt(2.0))
    p_fdr = fdr_adjust(p.ravel()).reshape(steps, n)
    bins = confidence_bins(z, p_fdr, adjusted=True) if fdr else confidence_bins(z, p)
    trend = mann_kendall(z.T)
    category = classify_emerging(z, p_fdr if fdr else p, trend.z, trend.p, alpha=alpha,
                                 trend_alpha=trend_alpha)
    return EmergingResult(z, p, p_fdr, bins, trend, category, float(alpha), bool(fdr), int(time_window))
