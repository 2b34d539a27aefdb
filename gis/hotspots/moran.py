"""Global and local Moran's I (Anselin's LISA) with conditional permutations.

Global (:func:`moran`), with ``z = x - xbar``, ``S0 = sum_ij w_ij``::

    I = n / S0 * (z' W z) / (z' z),     E[I] = -1 / (n - 1)

and the variance under normality, ``(n^2 S1 - n S2 + 3 S0^2) / ((n^2 - 1) S0^2) - E[I]^2``, and
under randomisation (Cliff & Ord 1981), with ``S1 = 1/2 sum_ij (w_ij + w_ji)^2`` and
``S2 = sum_i (w_i. + w_.i)^2`` -- esda's ``Moran``.

Local (:func:`local_moran`), with ``z`` standardised by the population standard deviation::

    I_i = (n - 1) z_i sum_j w_ij z_j / sum_k z_k^2

Quadrants as esda: 1 HH (z > 0, lag > 0), 2 LH, 3 LL, 4 HL. Pseudo p-values come from
conditional permutations: the value at ``i`` stays, its neighbours' values are drawn without
replacement from the other ``n - 1``; one matrix of draws is shared by all sites (esda's
scheme), from a :class:`numpy.random.Generator` seeded by ``seed``. The p-value is esda's
folded one: ``(min(#{I_sim >= I}, #{I_sim < I}) + 1) / (permutations + 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import sparse, special

from ._checks import as_values, as_weights, choice
from .weights import row_standardize

__all__ = ["QUADRANTS", "LocalMoranResult", "MoranResult", "local_moran", "moran"]

#: Quadrant code -> label, esda's order.
QUADRANTS: dict[int, str] = {1: "HH", 2: "LH", 3: "LL", 4: "HL"}


def _transform(w: sparse.csr_array, transform: str) -> sparse.csr_array:
    if transform == "r":
        return row_standardize(w)
    if transform == "b":
        w = w.copy()
        w.data = (w.data != 0).astype(np.float64)
    return w


def _norm_p(z: float | np.ndarray) -> float | np.ndarray:
    """Two-sided normal p-value."""
    return special.erfc(np.abs(z) / np.sqrt(2.0))


@dataclass(frozen=True, eq=False)
class MoranResult:
    """Global Moran's I. ``p_*`` are two-sided; ``p_sim`` is NaN without permutations."""

    I: float  # noqa: E741, N815 -- the statistic's name
    expected: float
    variance_norm: float
    z_norm: float
    p_norm: float
    variance_rand: float
    z_rand: float
    p_rand: float
    p_sim: float
    permutations: int


def moran(
    values: object,
    weights: object,
    *,
    transform: Literal["R", "B", "O"] = "R",
    permutations: int = 0,
    seed: int | np.random.Generator | None = None,
) -> MoranResult:
    """Global Moran's I with normal and randomisation inference.

    Parameters
    ----------
    values : array_like, shape (n,)
    weights : scipy sparse matrix, shape (n, n)
        Zero diagonal expected (as built by :mod:`gis.hotspots.weights`).
    transform : {"R", "B", "O"}, default "R"
        Row-standardised (esda's default), binary, or as given.
    permutations : int, default 0
        Random permutations for a pseudo p-value (0: none).
    seed : int or numpy.random.Generator, optional

    Examples
    --------
    >>> import numpy as np
    >>> from gis.hotspots.cells import square_grid
    >>> w = square_grid((0, 0, 4, 4), 1).neighbours("rook")
    >>> res = moran(np.arange(16.0), w)
    >>> round(res.I, 4), round(res.z_norm, 3)
    (0.75, 4.375)
    """
    x = as_values(values)
    n = x.size
    w = _transform(as_weights(weights, n), choice(transform, "transform", ("r", "b", "o")))
    z = x - x.mean()
    zz = float(z @ z)
    if zz <= 0:
        raise ValueError("values are all equal: Moran's I is undefined without variation")
    s0 = float(w.sum())
    if s0 <= 0:
        raise ValueError("weights have no neighbours at all")
    wt = w.T.tocsr()
    s1 = 0.5 * float(((w + wt).data ** 2).sum())
    s2 = float(((w.sum(axis=1) + wt.sum(axis=1)) ** 2).sum())
    stat = n / s0 * float(z @ (w @ z)) / zz
    ei = -1.0 / (n - 1)
    v_norm = (n * n * s1 - n * s2 + 3 * s0 * s0) / ((n - 1) * (n + 1) * s0 * s0) - ei * ei
    kurt = (n * (z**4).sum()) / zz**2
    a = n * ((n * n - 3 * n + 3) * s1 - n * s2 + 3 * s0 * s0)
    b = kurt * ((n * n - n) * s1 - 2 * n * s2 + 6 * s0 * s0)
    v_rand = (a - b) / ((n - 1) * (n - 2) * (n - 3) * s0 * s0) - ei * ei
    z_norm = (stat - ei) / np.sqrt(v_norm)
    z_rand = (stat - ei) / np.sqrt(v_rand) if v_rand > 0 else np.nan
    p_sim = np.nan
    permutations = _permutations(permutations)
    if permutations:
        rng = np.random.default_rng(seed)
        sims = np.array([n / s0 * float((zp := rng.permutation(z)) @ (w @ zp)) / zz
                         for _ in range(permutations)])
        p_sim = _folded_p(sims[:, None], np.array([stat]))[0]
    return MoranResult(stat, ei, float(v_norm), float(z_norm), float(_norm_p(z_norm)), float(v_rand),
                       float(z_rand), float(_norm_p(z_rand)), float(p_sim), permutations)


def _permutations(permutations: object) -> int:
    if not isinstance(permutations, int | np.integer) or permutations < 0:
        raise ValueError(f"permutations must be a non-negative integer, got {permutations!r}")
    return int(permutations)


def _folded_p(sims: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """esda's pseudo p-value from simulations ``(permutations, n)``."""
    perms = sims.shape[0]
    larger = (sims >= observed).sum(axis=0)
    larger = np.minimum(larger, perms - larger)
    return (larger + 1.0) / (perms + 1.0)


@dataclass(frozen=True, eq=False)
class LocalMoranResult:
    """Local Moran's I per observation.

    Attributes
    ----------
    Is : local statistics.
    q : quadrant codes 1 HH, 2 LH, 3 LL, 4 HL (see :data:`QUADRANTS`).
    p_sim : folded pseudo p-values from conditional permutations (NaN without permutations).
    EI_sim, VI_sim, z_sim : mean, variance and standardised value against the permutations.
    labels : "HH"/"LH"/"LL"/"HL" where ``p_sim < alpha``, "ns" elsewhere.
    """

    Is: np.ndarray  # noqa: N815
    q: np.ndarray
    p_sim: np.ndarray
    EI_sim: np.ndarray  # noqa: N815
    VI_sim: np.ndarray  # noqa: N815
    z_sim: np.ndarray
    labels: np.ndarray
    permutations: int
    alpha: float


def local_moran(
    values: object,
    weights: object,
    *,
    transform: Literal["R", "B", "O"] = "R",
    permutations: int = 999,
    seed: int | np.random.Generator | None = None,
    alpha: float = 0.05,
) -> LocalMoranResult:
    """Local Moran's I (LISA) with conditional-permutation pseudo p-values.

    Parameters
    ----------
    values : array_like, shape (n,)
    weights : scipy sparse matrix, shape (n, n)
    transform : {"R", "B", "O"}, default "R"
    permutations : int, default 999
        Conditional permutations (0: statistics and quadrants only).
    seed : int or numpy.random.Generator, optional
        Same seed, same p-values.
    alpha : float, default 0.05
        Level for :attr:`LocalMoranResult.labels`.

    Examples
    --------
    >>> import numpy as np
    >>> from gis.hotspots.cells import square_grid
    >>> w = square_grid((0, 0, 3, 1), 1).neighbours("rook")
    >>> res = local_moran([1.0, 2.0, 6.0], w, permutations=0)
    >>> np.round(res.Is, 3).tolist(), res.q.tolist()
    ([0.286, -0.071, -0.429], [3, 2, 4])
    """
    x = as_values(values)
    n = x.size
    w = _transform(as_weights(weights, n), choice(transform, "transform", ("r", "b", "o")))
    permutations = _permutations(permutations)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    sd = x.std()
    if sd <= 0:
        raise ValueError("values are all equal: local Moran's I is undefined without variation")
    z = (x - x.mean()) / sd
    scale = (n - 1) / float(z @ z)
    lag = w @ z
    stat = scale * z * lag
    zp, lp = z > 0, lag > 0
    q = np.where(zp & lp, 1, np.where(~zp & lp, 2, np.where(~zp & ~lp, 3, 4))).astype(np.int8)
    nan = np.full(n, np.nan)
    p_sim, ei, vi, zs = nan, nan, nan, nan
    if permutations:
        p_sim, ei, vi = _conditional(z, w, stat, scale, permutations, np.random.default_rng(seed))
        with np.errstate(divide="ignore", invalid="ignore"):
            zs = (stat - ei) / np.sqrt(vi)
    names = np.array(["ns", *QUADRANTS.values()])
    labels = names[np.where(p_sim < alpha, q, 0)]
    return LocalMoranResult(stat, q, p_sim, ei, vi, zs, labels, permutations, float(alpha))


def _conditional(
    z: np.ndarray, w: sparse.csr_array, stat: np.ndarray, scale: float, permutations: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Conditional randomisation, vectorised over sites and batches of permutations."""
    n = z.size
    self_w = w.diagonal()
    off = sparse.csr_array(w - sparse.diags_array(self_w, format="csr"))
    off.eliminate_zeros()
    off.sort_indices()
    card = np.diff(off.indptr)
    kmax = int(card.max()) if n else 0
    row = np.repeat(np.arange(n), card)
    pos = np.arange(off.nnz) - np.repeat(off.indptr[:-1], card)
    starts = off.indptr[:-1][card > 0]
    larger = np.zeros(n)
    total = np.zeros(n)
    total2 = np.zeros(n)
    batch = max(1, min(permutations, 4_000_000 // max(off.nnz, 1)))
    done = 0
    while done < permutations:
        b = min(batch, permutations - done)
        ids = np.stack([rng.choice(n - 1, size=kmax, replace=False) for _ in range(b)])
        picked = ids[:, pos]
        picked += picked >= row  # skip the site itself among the n - 1 others
        contrib = z[picked] * off.data
        lag = np.zeros((b, n))
        if starts.size:
            lag[:, card > 0] = np.add.reduceat(contrib, starts, axis=1)
        sims = scale * z * (lag + self_w * z)
        larger += (sims >= stat).sum(axis=0)
        total += sims.sum(axis=0)
        total2 += (sims * sims).sum(axis=0)
        done += b
    larger = np.minimum(larger, permutations - larger)
    mean = total / permutations
    var = np.maximum(total2 / permutations - mean * mean, 0.0)
    return (larger + 1.0) / (permutations + 1.0), mean, var
