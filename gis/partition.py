"""Partition a polygon into non-overlapping cells that cover it exactly.

The cells are the Voronoi cells of seed points clipped to the polygon. Seeds are drawn from an
optional density surface and improved by Lloyd relaxation, which makes the tessellation
*centroidal* with respect to that density: every cell ends up holding about the same density
mass, so cells are small where the density is high (a town centre) and large where it is low
(mountains). Nested partitions (towns > villages > grids) are built by partitioning each cell
again.

All functions are pure: geometry and a :class:`numpy.random.Generator` in, arrays or shapely
geometries out. Work in a projected (metric) CRS; in lon/lat a Voronoi cell is stretched by
``1 / cos(latitude)`` east-west.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

__all__ = [
    "Density",
    "apportion",
    "centroidal_seeds",
    "partition_polygon",
    "sample_points",
    "snap_coverage",
    "voronoi_cells",
]

#: A density surface: ``density(x, y) -> weights`` on equal-length float arrays, weights >= 0.
Density = Callable[[np.ndarray, np.ndarray], np.ndarray]


def sample_points(
    polygon: BaseGeometry, n: int, rng: np.random.Generator, *, max_rounds: int = 200
) -> np.ndarray:
    """Draw points uniformly inside a polygonal geometry.

    Parameters
    ----------
    polygon : shapely.Polygon or shapely.MultiPolygon
        Area to sample; must have a positive area.
    n : int
        Number of points.
    rng : numpy.random.Generator
        Source of randomness; the result depends only on its state.
    max_rounds : int, default 200
        Rejection rounds before giving up (a safeguard for degenerate input).

    Returns
    -------
    numpy.ndarray
        ``(n, 2)`` array of x, y inside ``polygon``.

    Examples
    --------
    >>> import numpy as np, shapely
    >>> pts = sample_points(shapely.box(0, 0, 1, 1), 5, np.random.default_rng(0))
    >>> pts.shape, bool(((pts > 0) & (pts < 1)).all())
    ((5, 2), True)
    """
    if n <= 0:
        return np.empty((0, 2))
    if polygon.area <= 0:
        raise ValueError("cannot sample points in a geometry without area")
    shapely.prepare(polygon)
    x0, y0, x1, y1 = polygon.bounds
    # Draw in the bounding box and keep what falls inside; oversample by the inverse of the
    # fill ratio so that one or two rounds usually suffice.
    fill = polygon.area / max((x1 - x0) * (y1 - y0), 1e-300)
    found: list[np.ndarray] = []
    have = 0
    for _ in range(max_rounds):
        m = int((n - have) / fill * 1.2) + 16
        xy = rng.uniform((x0, y0), (x1, y1), size=(m, 2))
        xy = xy[shapely.contains_xy(polygon, xy[:, 0], xy[:, 1])]
        found.append(xy)
        have += len(xy)
        if have >= n:
            return np.concatenate(found)[:n]
    raise RuntimeError(f"could only place {have} of {n} points inside the polygon")


def voronoi_cells(polygon: BaseGeometry, seeds: np.ndarray) -> list[BaseGeometry]:
    """Clip the Voronoi cells of ``seeds`` to ``polygon``.

    Parameters
    ----------
    polygon : shapely.Polygon or shapely.MultiPolygon
        The area to partition.
    seeds : numpy.ndarray
        ``(n, 2)`` distinct points, normally inside ``polygon``.

    Returns
    -------
    list of shapely.Polygon or shapely.MultiPolygon
        One cell per seed, in seed order. A cell is a MultiPolygon when the polygon's shape
        cuts it in pieces. A seed inside the polygon always gets a non-empty cell.

    Examples
    --------
    >>> import numpy as np, shapely
    >>> cells = voronoi_cells(shapely.box(0, 0, 2, 1), np.array([[0.5, 0.5], [1.5, 0.5]]))
    >>> [c.area for c in cells]
    [1.0, 1.0]
    """
    seeds = np.asarray(seeds, dtype=float)
    if len(seeds) == 1:
        return [_polygonal(polygon)]
    # ``extend_to`` makes the outer cells reach past the polygon so clipping loses nothing;
    # ``ordered`` keeps the cells in the order of the seeds (GEOS sorts them otherwise).
    diagram = shapely.voronoi_polygons(
        shapely.multipoints(seeds), extend_to=polygon.envelope.buffer(1.0), ordered=True
    )
    cells = shapely.get_parts(diagram)
    if len(cells) != len(seeds):
        raise ValueError("seeds must be distinct points")
    return [_polygonal(c) for c in shapely.intersection(cells, polygon)]


def centroidal_seeds(
    polygon: BaseGeometry,
    n: int,
    rng: np.random.Generator,
    density: Density | None = None,
    lloyd_iterations: int = 3,
    seeds: np.ndarray | None = None,
    samples_per_cell: int = 30,
) -> np.ndarray:
    """Choose ``n`` seeds whose Voronoi cells hold about equal density mass.

    A dense sample of the polygon stands in for the continuous density: Lloyd's step moves
    each seed to the density-weighted mean of the sample points nearest to it (one k-means
    step), then snaps it to the nearest of those points so that it stays inside the polygon
    even when the polygon is not convex.

    Parameters
    ----------
    polygon : shapely.Polygon or shapely.MultiPolygon
        The area to partition.
    n : int
        Number of seeds (cells).
    rng : numpy.random.Generator
        Source of randomness.
    density : callable, optional
        ``density(x, y) -> weights``; uniform when omitted.
    lloyd_iterations : int, default 3
        Relaxation steps; 0 keeps the initial seeds.
    seeds : numpy.ndarray, optional
        ``(n, 2)`` initial seeds (for example hand-placed town centres); drawn from the
        density when omitted. Seeds outside the polygon move to the nearest sample point.
    samples_per_cell : int, default 30
        Size of the sample per seed; more is smoother and slower.

    Returns
    -------
    numpy.ndarray
        ``(n, 2)`` distinct seeds inside ``polygon``.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    pool = sample_points(polygon, max(samples_per_cell * n, 200), rng)
    weight = np.ones(len(pool)) if density is None else np.asarray(density(pool[:, 0], pool[:, 1]))
    if not np.all(np.isfinite(weight)) or weight.min() < 0 or weight.sum() <= 0:
        raise ValueError("density must be finite, non-negative and not all zero")
    if seeds is None:
        chosen = rng.choice(len(pool), size=n, replace=False, p=weight / weight.sum())
    else:
        if len(seeds) != n:
            raise ValueError("len(seeds) must equal n")
        chosen = _nearest(np.asarray(seeds, dtype=float), pool)
        if len(np.unique(chosen)) != n:
            raise ValueError("initial seeds are too close together for the sample")
    for _ in range(lloyd_iterations):
        chosen = _lloyd_step(pool, weight, chosen)
    return pool[chosen]


def partition_polygon(
    polygon: BaseGeometry,
    n: int,
    rng: np.random.Generator,
    density: Density | None = None,
    lloyd_iterations: int = 3,
    seeds: np.ndarray | None = None,
    connected: bool = True,
) -> list[BaseGeometry]:
    """Split a polygon into ``n`` non-overlapping cells whose union is the polygon.

    Parameters
    ----------
    polygon : shapely.Polygon or shapely.MultiPolygon
        The area to partition (holes and several parts are fine).
    n : int
        Number of cells.
    rng : numpy.random.Generator
        Source of randomness; the same generator state gives the same cells.
    density : callable, optional
        ``density(x, y) -> weights``: cells are smaller where it is higher.
    lloyd_iterations : int, default 3
        Lloyd relaxation steps (more gives rounder, more even cells).
    seeds : numpy.ndarray, optional
        ``(n, 2)`` initial seeds; cell ``i`` grows around ``seeds[i]``.
    connected : bool, default True
        Give the stray pieces of a cell (a Voronoi cell cut in two by a bay of a non-convex
        polygon) to the neighbour they share the longest edge with, so that cells are
        contiguous. Pieces that touch no other cell (islands) stay.

    Returns
    -------
    list of shapely.Polygon or shapely.MultiPolygon
        ``n`` non-empty cells. Their union equals ``polygon`` and they overlap only along
        shared edges (up to floating-point rounding).

    Examples
    --------
    >>> import numpy as np, shapely
    >>> square = shapely.box(0, 0, 10, 10)
    >>> cells = partition_polygon(square, 4, np.random.default_rng(1))
    >>> len(cells), round(sum(c.area for c in cells), 9)
    (4, 100.0)
    """
    polygon = _polygonal(shapely.make_valid(polygon))
    chosen = centroidal_seeds(polygon, n, rng, density, lloyd_iterations, seeds)
    cells = voronoi_cells(polygon, chosen)
    return _attach_strays(cells, chosen) if connected else cells


def _attach_strays(cells: list[BaseGeometry], seeds: np.ndarray) -> list[BaseGeometry]:
    """Move each cell's pieces other than the one nearest its seed to the neighbour that
    shares the longest edge with them (one pass; later moves see earlier ones)."""
    cells = np.array(cells, dtype=object)
    for i, seed in enumerate(seeds):
        if cells[i].geom_type != "MultiPolygon":
            continue
        parts = shapely.get_parts(cells[i])
        keep = np.zeros(len(parts), dtype=bool)
        keep[np.argmin(shapely.distance(parts, shapely.Point(seed)))] = True
        for piece in parts[~keep]:
            near = np.flatnonzero(shapely.intersects(cells, piece))
            near = near[near != i]
            shared = shapely.length(shapely.intersection(shapely.boundary(cells[near]), piece.boundary))
            if len(near) and shared.max() > 0:
                j = near[np.argmax(shared)]
                cells[j] = _polygonal(shapely.union(cells[j], piece))
            else:  # an island of the polygon: it stays with this cell
                keep[np.flatnonzero(parts == piece)] = True
        kept = parts[keep]
        cells[i] = kept[0] if len(kept) == 1 else shapely.MultiPolygon(list(kept))
    return list(cells)


def snap_coverage(cells, grid_size: float) -> np.ndarray:
    """Snap a polygonal coverage to a precision grid without opening gaps or overlaps.

    Snapping each cell on its own (``shapely.set_precision``) moves a corner that lies on a
    neighbour's edge off that edge, which leaves slivers between the two. Here all edges are
    noded and snap-rounded together, the linework is polygonised, and each face goes back to
    the cell that contains it, so neighbours share exactly the same snapped edges.

    Parameters
    ----------
    cells : sequence of shapely.Polygon or shapely.MultiPolygon
        Cells that tile an area (touching along edges, overlapping by rounding at most).
    grid_size : float
        The precision grid, in the units of the coordinates.

    Returns
    -------
    numpy.ndarray of shapely.Polygon or shapely.MultiPolygon
        One snapped cell per input cell, in input order; a cell smaller than the grid may
        come back empty.

    Examples
    --------
    >>> import shapely
    >>> left, right = shapely.box(0, 0, 0.51, 1), shapely.box(0.51, 0, 1, 1)
    >>> [c.area for c in snap_coverage([left, right], 0.1)]
    [0.5, 0.5]
    """
    cells = np.asarray(cells, dtype=object)
    lines = shapely.union_all(shapely.boundary(cells), grid_size=grid_size)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(lines)))
    probe = shapely.point_on_surface(faces)
    face_idx, cell_idx = shapely.STRtree(cells).query(probe, predicate="within")
    owner = np.full(len(faces), -1, dtype=np.intp)
    owner[face_idx] = cell_idx
    lost = np.flatnonzero(owner < 0)  # a sliver face between unsnapped cells
    if len(lost):
        owner[lost] = _nearest_geom(probe[lost], cells)
    out = np.empty(len(cells), dtype=object)
    out[:] = shapely.Polygon()
    order = np.argsort(owner, kind="stable")
    cuts = np.flatnonzero(np.diff(owner[order])) + 1
    for group in np.split(order, cuts):
        i = owner[group[0]]
        out[i] = faces[group[0]] if len(group) == 1 else shapely.union_all(
            faces[group], grid_size=grid_size
        )
    return out


def _nearest_geom(points: np.ndarray, geoms: np.ndarray) -> np.ndarray:
    """Index of the nearest geometry for every point."""
    pairs = shapely.STRtree(geoms).query_nearest(points, all_matches=False)
    out = np.empty(len(points), dtype=np.intp)
    out[pairs[0]] = pairs[1]
    return out


def apportion(
    total: int, weights, lo: int = 0, hi: int | None = None
) -> np.ndarray:
    """Split an integer total into parts proportional to ``weights`` (largest remainder).

    Used to share people among cells and cells among parents so that the parts add up
    exactly, which rounding each share on its own would not.

    Parameters
    ----------
    total : int
        The amount to share.
    weights : array_like
        Non-negative weights, not all zero.
    lo, hi : int, optional
        Bounds on every part. Parts below ``lo`` are raised to it first; parts are capped at
        ``hi`` and the excess goes to the others. When ``hi * len(weights) < total`` every
        part is ``hi`` and the sum falls short of ``total``.

    Returns
    -------
    numpy.ndarray
        int64 parts, summing to ``total`` (unless capped as above).

    Examples
    --------
    >>> apportion(10, [1, 1, 1]).tolist()
    [4, 3, 3]
    >>> apportion(10, [5, 1, 0], lo=1, hi=6).tolist()
    [6, 3, 1]
    """
    w = np.asarray(weights, dtype=float)
    if w.min() < 0 or w.sum() <= 0:
        raise ValueError("weights must be non-negative and not all zero")
    cap = np.full(len(w), np.iinfo(np.int64).max if hi is None else hi, dtype=np.int64)
    out = np.full(len(w), lo, dtype=np.int64)
    target = int(total) if hi is None else min(int(total), int(hi) * len(w))
    while (rest := target - int(out.sum())) > 0:
        free = out < cap
        wf = np.where(free, w, 0.0)
        if wf.sum() <= 0:  # only zero-weight parts have room left: share evenly
            wf = free.astype(float)
        share = rest * wf / wf.sum()
        add = np.minimum(np.floor(share).astype(np.int64), cap - out)
        if add.sum() == 0:  # hand out the last units one each, largest remainder first
            order = np.argsort(~free * 1e18 - (share - np.floor(share)), kind="stable")
            add[order[: min(rest, int(free.sum()))]] = 1
        out += add
    return out


def _lloyd_step(pool: np.ndarray, weight: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """One Lloyd (weighted k-means) step on the sample; returns new seed indices into pool."""
    n = len(chosen)
    owner = _nearest(pool, pool[chosen])
    mass = np.bincount(owner, weights=weight, minlength=n)
    safe = np.where(mass > 0, mass, 1.0)
    centre = np.column_stack(
        [
            np.bincount(owner, weights=weight * pool[:, 0], minlength=n) / safe,
            np.bincount(owner, weights=weight * pool[:, 1], minlength=n) / safe,
        ]
    )
    # Snap each centre to the nearest sample point *of its own cell*: cells are disjoint, so
    # the new seeds stay distinct, and sample points lie inside the polygon even where the
    # centre of a crescent-shaped cell would not.
    d2 = ((pool - centre[owner]) ** 2).sum(axis=1)
    order = np.lexsort((d2, owner))
    cells, first = np.unique(owner[order], return_index=True)
    moved = chosen.copy()
    keep_mass = mass[cells] > 0  # a seed whose cell holds no mass stays where it is
    moved[cells[keep_mass]] = order[first[keep_mass]]
    return moved


def _nearest(points: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Index of the nearest target for every point (ties go to the lower index)."""
    if len(targets) > 256:
        # many targets: an STRtree keeps this O(m log n)
        tree = shapely.STRtree(shapely.points(targets))
        pairs = tree.query_nearest(shapely.points(points), all_matches=False)
        out = np.empty(len(points), dtype=np.intp)
        out[pairs[0]] = pairs[1]
        return out
    # few targets: brute force in chunks is faster than building geometries
    out = np.empty(len(points), dtype=np.intp)
    step = max(1, 4_000_000 // len(targets))
    for i in range(0, len(points), step):
        p = points[i : i + step]
        d2 = (p[:, None, 0] - targets[None, :, 0]) ** 2 + (p[:, None, 1] - targets[None, :, 1]) ** 2
        out[i : i + step] = np.argmin(d2, axis=1)
    return out


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    """Keep only the polygonal parts of ``geom`` (clipping may add slivers of lines/points)."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    polys = [q for p in parts for q in shapely.get_parts(p)]
    if not polys:
        return shapely.Polygon()
    return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)
