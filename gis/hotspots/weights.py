"""Spatial weights as sparse CSR matrices.

Row ``i`` of a weights matrix lists the neighbours ``j`` of observation ``i`` and their weights
``w_ij``; the diagonal (the observation itself) is zero in everything built here, and the
statistics add it where they need it (Gi* does). Matrices are :class:`scipy.sparse.csr_array`
of float64, so they pass unchanged to ``libpysal.graph.Graph.from_sparse`` and back.

Builders:

* :func:`distance_band` -- fixed distance: every pair within ``threshold`` (binary or
  inverse-distance weights); libpysal's ``DistanceBand``.
* :func:`k_nearest` -- the ``k`` nearest others (not symmetric); libpysal's ``KNN``.
* :func:`contiguity` -- queen (a shared vertex) or rook (a shared edge) between polygons, by
  exact vertex coordinates as libpysal's ``Queen``/``Rook`` do.

Coordinates must be in a projected (metric) CRS: distances are Euclidean.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import shapely
from scipy import sparse
from scipy.spatial import cKDTree

from ._checks import as_coords, choice, positive

__all__ = [
    "contiguity",
    "distance_band",
    "k_nearest",
    "row_standardize",
    "set_diagonal",
    "symmetrize",
]


def _from_pairs(i: np.ndarray, j: np.ndarray, data: np.ndarray, n: int) -> sparse.csr_array:
    w = sparse.coo_array((data, (i, j)), shape=(n, n)).tocsr()
    w.sum_duplicates()
    w.sort_indices()
    return w


def distance_band(
    coords: object, threshold: float, *, binary: bool = True, alpha: float = -1.0
) -> sparse.csr_array:
    """Fixed-distance weights: ``j`` is a neighbour of ``i`` when ``0 < d_ij <= threshold``.

    Parameters
    ----------
    coords : array_like, shape (n, 2)
        Projected x, y of the observations (cell centres, points).
    threshold : float
        Neighbourhood distance, in the units of ``coords``.
    binary : bool, default True
        Weights of 1; otherwise ``d_ij ** alpha`` (inverse distance for ``alpha < 0``).
    alpha : float, default -1.0
        Distance exponent when ``binary`` is False.

    Returns
    -------
    scipy.sparse.csr_array
        Symmetric ``(n, n)`` weights with a zero diagonal. Coincident points are neighbours
        (``d = 0`` counts); with ``binary=False`` they would get an infinite weight and are refused.

    Examples
    --------
    >>> w = distance_band([[0, 0], [1, 0], [3, 0]], 1.5)
    >>> w.toarray().astype(int).tolist()
    [[0, 1, 0], [1, 0, 0], [0, 0, 0]]
    """
    xy = as_coords(coords)
    threshold = positive(threshold, "threshold")
    n = len(xy)
    pairs = cKDTree(xy).query_pairs(threshold, output_type="ndarray")
    i, j = pairs[:, 0], pairs[:, 1]
    if binary:
        data = np.ones(len(i))
    else:
        d = np.hypot(*(xy[i] - xy[j]).T)
        if (d == 0).any():
            raise ValueError("coincident points get an infinite inverse-distance weight; "
                             "aggregate them first or use binary weights")
        data = d**alpha
    return _from_pairs(np.concatenate([i, j]), np.concatenate([j, i]), np.concatenate([data, data]), n)


def k_nearest(coords: object, k: int) -> sparse.csr_array:
    """Binary weights to the ``k`` nearest other observations (ties broken by index).

    Parameters
    ----------
    coords : array_like, shape (n, 2)
    k : int
        Number of neighbours, ``1 <= k < n``.

    Returns
    -------
    scipy.sparse.csr_array
        ``(n, n)`` with exactly ``k`` ones per row; not symmetric in general (use
        :func:`symmetrize` for a symmetric version).

    Examples
    --------
    >>> k_nearest([[0, 0], [1, 0], [3, 0]], 1).toarray().astype(int).tolist()
    [[0, 1, 0], [1, 0, 0], [0, 1, 0]]
    """
    xy = as_coords(coords)
    n = len(xy)
    if not isinstance(k, int | np.integer) or not 1 <= k < n:
        raise ValueError(f"k must be an integer in [1, {n - 1}], got {k!r}")
    _, idx = cKDTree(xy).query(xy, k=k + 1)
    rows = np.arange(n)[:, None]
    # Normally the point itself comes first; with duplicates it may come later or not at all.
    not_self = idx != rows
    keep = not_self & (np.cumsum(not_self, axis=1) <= k)
    cols = idx[keep].reshape(n, k)
    return _from_pairs(np.repeat(np.arange(n), k), cols.ravel(), np.ones(n * k), n)


def contiguity(polygons: object, kind: Literal["queen", "rook"] = "queen") -> sparse.csr_array:
    """Binary contiguity between polygons by shared vertices (queen) or shared edges (rook).

    Two polygons are queen neighbours when they have a vertex with exactly equal coordinates,
    rook neighbours when they share an edge (two consecutive vertices, in either order). This
    is libpysal's definition; it assumes a clean coverage (adjacent polygons share their
    vertices), which is what hexagon cells, the grids layer and any snapped coverage are.

    Parameters
    ----------
    polygons : array_like of shapely Polygon or MultiPolygon (a GeoSeries works)
    kind : {"queen", "rook"}

    Returns
    -------
    scipy.sparse.csr_array
        Symmetric binary ``(n, n)`` weights with a zero diagonal.

    Examples
    --------
    >>> import shapely
    >>> boxes = [shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1), shapely.box(1, 1, 2, 2)]
    >>> contiguity(boxes, "rook").toarray().astype(int).tolist()
    [[0, 1, 0], [1, 0, 1], [0, 1, 0]]
    >>> contiguity(boxes, "queen").toarray().astype(int).tolist()
    [[0, 1, 1], [1, 0, 1], [1, 1, 0]]
    """
    kind = choice(kind, "kind", ("queen", "rook"))  # type: ignore[assignment]
    geoms = np.asarray(getattr(polygons, "values", polygons), dtype=object)
    if geoms.ndim != 1 or geoms.size < 2:
        raise ValueError("polygons must be a 1-D sequence of at least two geometries")
    types = shapely.get_type_id(geoms)
    if not np.isin(types, (3, 6)).all():  # Polygon, MultiPolygon
        raise ValueError("contiguity needs Polygon or MultiPolygon geometries (no missing ones)")
    n = len(geoms)
    parts, part_of = shapely.get_parts(geoms, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    xy, coord_ring = shapely.get_coordinates(rings, return_index=True)
    owner = part_of[ring_part[coord_ring]]
    vertex = _vertex_ids(xy)
    if kind == "queen":
        keys = vertex
    else:
        same_ring = coord_ring[1:] == coord_ring[:-1]
        a, b = vertex[:-1][same_ring], vertex[1:][same_ring]
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        keys = np.unique(lo * (vertex.max() + 1) + hi, return_inverse=True)[1]
        owner = owner[:-1][same_ring]
    incidence = sparse.csr_array((np.ones(len(keys)), (owner, keys)), shape=(n, int(keys.max()) + 1))
    incidence.data[:] = 1.0  # a ring's closing vertex repeats its first one
    shared = (incidence @ incidence.T).tocsr()
    shared.setdiag(0)
    shared.eliminate_zeros()
    shared.data[:] = 1.0
    shared.sort_indices()
    return sparse.csr_array(shared)


def _vertex_ids(xy: np.ndarray) -> np.ndarray:
    """Integer id per coordinate pair; equal pairs (bit for bit) share an id."""
    order = np.lexsort((xy[:, 1], xy[:, 0]))
    s = xy[order]
    new = np.ones(len(s), dtype=bool)
    new[1:] = (s[1:] != s[:-1]).any(axis=1)
    ids = np.empty(len(s), dtype=np.int64)
    ids[order] = np.cumsum(new) - 1
    return ids


def row_standardize(weights: sparse.sparray) -> sparse.csr_array:
    """Divide each row by its sum (rows without neighbours stay zero); libpysal's ``"r"``."""
    w = sparse.csr_array(weights, dtype=np.float64, copy=True)
    sums = np.asarray(w.sum(axis=1)).ravel()
    scale = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
    w.data *= np.repeat(scale, np.diff(w.indptr))
    return w


def set_diagonal(weights: sparse.sparray, value: float | np.ndarray) -> sparse.csr_array:
    """A copy of ``weights`` with the diagonal set to ``value`` (a scalar or one per row)."""
    w = sparse.csr_array(weights, dtype=np.float64)
    n = w.shape[0]
    diag = np.broadcast_to(np.asarray(value, dtype=np.float64), (n,))
    off = w - sparse.diags_array(w.diagonal(), format="csr")
    out = sparse.csr_array(off + sparse.diags_array(diag, format="csr"))
    out.eliminate_zeros()
    out.sort_indices()
    return out


def symmetrize(weights: sparse.sparray) -> sparse.csr_array:
    """Binary ``W or W.T``: ``j`` neighbours ``i`` when either lists the other (for k-nearest)."""
    w = sparse.csr_array(weights, dtype=np.float64)
    out = sparse.csr_array((w + w.T) > 0, dtype=np.float64)
    out.sort_indices()
    return out
