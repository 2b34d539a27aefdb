"""Getis-Ord Gi* with analytical z-scores, False Discovery Rate and ArcGIS confidence bins.

For values ``x`` (n of them) and weights ``w_ij`` that include the observation itself
(``w_ii > 0``)::

    Gi*_i = sum_j w_ij x_j / sum_j x_j
    z_i   = (sum_j w_ij x_j - xbar W_i) / (S sqrt((n S1_i - W_i^2) / (n - 1)))

with ``W_i = sum_j w_ij``, ``S1_i = sum_j w_ij^2``, ``xbar`` the mean and ``S`` the population
standard deviation (divisor n). These are the exact mean and variance of ``sum_j w_ij x_j``
under a random permutation of the values (Getis & Ord 1992, Ord & Getis 1995); it is the
formula ArcGIS's Hot Spot Analysis reports. The z-score does not change when a row is scaled,
so row standardisation has no effect on it.

PySAL esda's ``G_Local(star=True)`` uses the cardinality ``W_i`` in place of ``S1_i``. That is
the same for binary weights and differs for row-standardised ones (it then treats the weighted
mean of the ``k + 1`` values as if it were a single value, shrinking every |z| by about
``sqrt(k + 1)``); ``moments="esda"`` reproduces it for comparison.

Two-sided p-values come from the normal distribution; ``p_fdr`` are Benjamini-Hochberg
adjusted p-values; bins are ArcGIS's ``Gi_Bin``: +/-3 at 99 %, +/-2 at 95 %, +/-1 at 90 %
confidence, 0 otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import sparse, special

from ._checks import as_values, as_weights, choice
from .weights import row_standardize

__all__ = ["CONFIDENCE_LEVELS", "GiStarResult", "confidence_bins", "fdr_adjust", "gi_star"]

#: (bin, two-sided alpha) from the strongest to the weakest level, as ArcGIS reports them.
CONFIDENCE_LEVELS: tuple[tuple[int, float], ...] = ((3, 0.01), (2, 0.05), (1, 0.10))


@dataclass(frozen=True, eq=False)
class GiStarResult:
    """Result of :func:`gi_star`; arrays have one entry per observation.

    Attributes
    ----------
    gi : Gi* statistic ``sum_j w_ij x_j / sum_j x_j`` (NaN if the values sum to zero).
    z : standardised Gi* (positive: hot, negative: cold).
    p : two-sided p-value of ``z`` under the normal approximation.
    p_fdr : Benjamini-Hochberg adjusted ``p`` (the smallest FDR at which the cell is significant).
    bins : int8 in -3..3, from ``p_fdr`` when ``fdr`` is true, otherwise from ``p``.
    expected, variance : moments of ``gi`` under the null.
    n_neighbours : neighbours per observation, itself included.
    fdr, transform, moments : the options used.
    """

    gi: np.ndarray
    z: np.ndarray
    p: np.ndarray
    p_fdr: np.ndarray
    bins: np.ndarray
    expected: np.ndarray
    variance: np.ndarray
    n_neighbours: np.ndarray
    fdr: bool
    transform: str
    moments: str

    @property
    def n_hot(self) -> int:
        """Observations in a hot-spot bin (any confidence level)."""
        return int((self.bins > 0).sum())

    @property
    def n_cold(self) -> int:
        return int((self.bins < 0).sum())


def fdr_adjust(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (``scipy.stats.false_discovery_control``, BH).

    ``adjusted_(k) = min_{m >= k} p_(m) n / m`` over the sorted p-values, capped at 1. A test is
    significant at false discovery rate ``alpha`` exactly when ``adjusted <= alpha``.
    """
    p = np.asarray(p, dtype=np.float64)
    n = p.size
    order = np.argsort(p, kind="stable")
    scaled = p[order] * (n / np.arange(1, n + 1))
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def confidence_bins(z: np.ndarray, p: np.ndarray, *, adjusted: bool = False) -> np.ndarray:
    """ArcGIS confidence bins: ``sign(z) * 3/2/1`` for p below 0.01/0.05/0.10, else 0.

    Uncorrected p-values must be strictly below the level (ArcGIS's ``|z| > 2.58``...);
    FDR-adjusted ones may equal it (Benjamini-Hochberg's ``p_(k) <= k alpha / n``).
    """
    bins = np.zeros(np.shape(z), dtype=np.int8)
    sign = np.sign(z).astype(np.int8)
    for level, alpha in reversed(CONFIDENCE_LEVELS):
        hit = (p <= alpha) if adjusted else (p < alpha)
        bins[hit] = level * sign[hit]
    return bins


def _prepare(w: sparse.csr_array, transform: str, self_weight: float) -> sparse.csr_array:
    diag = w.diagonal()
    if not (diag > 0).any():
        w = sparse.csr_array(w + sparse.diags_array(np.full(w.shape[0], self_weight), format="csr"))
        w.sort_indices()
    if transform == "b":
        w = w.copy()
        w.data = (w.data != 0).astype(np.float64)
    elif transform == "r":
        w = row_standardize(w)
    return w


def gi_star(
    values: object,
    weights: object,
    *,
    transform: Literal["B", "R", "O"] = "B",
    self_weight: float = 1.0,
    fdr: bool = True,
    moments: Literal["exact", "esda"] = "exact",
) -> GiStarResult:
    """Getis-Ord Gi* hot-spot statistic with analytical z-scores.

    Parameters
    ----------
    values : array_like, shape (n,)
        One value per cell (event counts, rates); at least 3 and not all equal.
    weights : scipy sparse matrix, shape (n, n)
        Spatial weights (see :mod:`gis.hotspots.weights`). If its diagonal is all zero,
        ``self_weight`` is put there (Gi* includes the cell itself); a non-zero diagonal is kept.
    transform : {"B", "R", "O"}, default "B"
        "B": binary (every listed neighbour weighs 1), "R": row-standardised, "O": the weights as
        given (inverse distance, kernels). As in esda, applied after the diagonal is set.
    self_weight : float, default 1.0
        Weight of the cell itself when ``weights`` has none (esda's ``star=1``).
    fdr : bool, default True
        Bins from Benjamini-Hochberg adjusted p-values (ArcGIS's "Apply FDR correction").
    moments : {"exact", "esda"}, default "exact"
        "exact": permutation moments with ``S1_i = sum_j w_ij^2`` (ArcGIS); "esda": esda's
        ``G_Local`` moments, identical for binary weights (see the module docstring).

    Returns
    -------
    GiStarResult

    Examples
    --------
    >>> import numpy as np
    >>> from gis.hotspots.weights import distance_band
    >>> pts = [(10, 10), (20, 10), (40, 10), (15, 20), (30, 20), (30, 30)]
    >>> res = gi_star([2, 3, 3.2, 5, 8, 7], distance_band(pts, 15))
    >>> np.round(res.z, 4)
    array([-1.3973, -0.2892,  0.6506, -0.2892,  1.2345,  2.0242])
    >>> res.bins.tolist()
    [0, 0, 0, 0, 0, 0]
    """
    x = as_values(values)
    n = x.size
    w = as_weights(weights, n)
    transform = choice(transform, "transform", ("b", "r", "o"))
    moments = choice(moments, "moments", ("exact", "esda"))  # type: ignore[assignment]
    if not np.isfinite(self_weight) or self_weight <= 0:
        raise ValueError(f"self_weight must be a positive number, got {self_weight!r}")
    w = _prepare(w, transform, float(self_weight))

    mean = x.mean()
    s = np.sqrt(max((x * x).mean() - mean * mean, 0.0))
    if s <= 1e-12 * max(abs(mean), 1.0):
        raise ValueError("values are all equal: Gi* is undefined without variation")
    lag = w @ x
    wi = w @ np.ones(n)
    if moments == "exact":
        s1 = sparse.csr_array((w.data * w.data, w.indices, w.indptr), shape=w.shape) @ np.ones(n)
    else:
        s1 = wi
    spread = (n * s1 - wi * wi) / (n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (lag - mean * wi) / (s * np.sqrt(spread))
    # A cell whose neighbourhood is everything (or nothing) carries no information.
    z[~(spread > 1e-12 * np.maximum(wi * wi, 1e-300))] = 0.0
    total = x.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        gi = lag / total if total != 0 else np.full(n, np.nan)
        expected = wi / n
        variance = spread * (s * s) / (n * mean) ** 2 if mean != 0 else np.full(n, np.nan)
    p = special.erfc(np.abs(z) / np.sqrt(2.0))
    p_fdr = fdr_adjust(p)
    bins = confidence_bins(z, p_fdr, adjusted=True) if fdr else confidence_bins(z, p)
    n_neighbours = np.diff(w.indptr)
    return GiStarResult(gi, z, p, p_fdr, bins, expected, variance, n_neighbours, bool(fdr),
                        transform.upper(), moments)
