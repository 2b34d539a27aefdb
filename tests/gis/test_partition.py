"""Tests for gis.partition on small literal polygons."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from gis.partition import (
    apportion,
    centroidal_seeds,
    partition_polygon,
    sample_points,
    snap_coverage,
    voronoi_cells,
)

SQUARE = shapely.box(0, 0, 1, 1)
L_SHAPE = shapely.Polygon([(0, 0), (3, 0), (3, 1), (1, 1), (1, 3), (0, 3)])
WITH_HOLE = shapely.Polygon(
    [(0, 0), (4, 0), (4, 4), (0, 4)], holes=[[(1.5, 1.5), (2.5, 1.5), (2.5, 2.5), (1.5, 2.5)]]
)
ISLANDS = shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(5, 0, 6, 2)])


def assert_partition(parent, cells, n: int) -> None:
    """n non-empty polygonal cells, no overlaps, union equal to the parent."""
    assert len(cells) == n
    assert all(c.geom_type in ("Polygon", "MultiPolygon") and not c.is_empty for c in cells)
    assert all(c.is_valid and c.area > 0 for c in cells)
    areas = np.array([c.area for c in cells])
    union = shapely.union_all(cells)
    # pairwise disjoint interiors <=> the areas add up to the area of the union
    assert abs(areas.sum() - union.area) <= 1e-9 * parent.area
    assert shapely.symmetric_difference(union, parent).area <= 1e-6 * parent.area


@pytest.mark.parametrize(
    ("parent", "n"), [(SQUARE, 7), (L_SHAPE, 5), (WITH_HOLE, 6), (ISLANDS, 4), (SQUARE, 1)]
)
def test_cells_partition_the_parent(parent, n) -> None:
    cells = partition_polygon(parent, n, np.random.default_rng(3))
    assert_partition(parent, cells, n)


# a square with a thin slot cut in from the right: the cell of a seed just above the slot
# reaches across it, so plain clipped Voronoi cells come out in two pieces
SLOTTED = shapely.box(0, 0, 3, 3).difference(shapely.box(0.5, 1.4, 3, 1.6))
SLOT_SEEDS = np.array([[2.0, 1.7], [2.0, 0.5], [0.2, 2.8], [2.8, 2.9]])


def test_stray_pieces_join_a_neighbour() -> None:
    loose = partition_polygon(SLOTTED, 4, np.random.default_rng(0), lloyd_iterations=0,
                              seeds=SLOT_SEEDS, connected=False)
    assert any(c.geom_type == "MultiPolygon" for c in loose)
    tidy = partition_polygon(SLOTTED, 4, np.random.default_rng(0), lloyd_iterations=0,
                             seeds=SLOT_SEEDS)
    assert all(c.geom_type == "Polygon" for c in tidy)
    assert_partition(SLOTTED, tidy, 4)


def test_hole_stays_empty() -> None:
    cells = partition_polygon(WITH_HOLE, 6, np.random.default_rng(0))
    hole = shapely.box(1.5, 1.5, 2.5, 2.5)
    assert sum(c.intersection(hole).area for c in cells) == pytest.approx(0, abs=1e-12)


def test_islands_are_both_covered() -> None:
    cells = partition_polygon(ISLANDS, 2, np.random.default_rng(1))
    for island in ISLANDS.geoms:
        assert sum(c.intersection(island).area for c in cells) == pytest.approx(island.area)


def test_deterministic_for_a_seed() -> None:
    a = partition_polygon(L_SHAPE, 5, np.random.default_rng(11))
    b = partition_polygon(L_SHAPE, 5, np.random.default_rng(11))
    c = partition_polygon(L_SHAPE, 5, np.random.default_rng(12))
    assert all(x.equals_exact(y, 0) for x, y in zip(a, b, strict=True))
    assert not all(x.equals_exact(y, 1e-9) for x, y in zip(a, c, strict=True))


def test_voronoi_cells_by_hand() -> None:
    # two seeds mirrored about x = 1 split the 2 x 1 rectangle into its two unit squares
    cells = voronoi_cells(shapely.box(0, 0, 2, 1), np.array([[0.5, 0.5], [1.5, 0.5]]))
    assert cells[0].equals(shapely.box(0, 0, 1, 1))
    assert cells[1].equals(shapely.box(1, 0, 2, 1))


def test_cells_follow_their_seeds() -> None:
    seeds = np.array([[0.2, 0.2], [0.8, 0.2], [0.5, 0.8]])
    cells = partition_polygon(SQUARE, 3, np.random.default_rng(0), lloyd_iterations=0, seeds=seeds)
    for cell, (x, y) in zip(cells, seeds, strict=True):
        assert cell.buffer(1e-9).contains(shapely.Point(x, y))


def test_density_makes_small_cells_where_it_is_high() -> None:
    def density(x, y):
        return np.exp(4 * x)  # 55 times denser at x = 1 than at x = 0

    cells = partition_polygon(SQUARE, 30, np.random.default_rng(5), density=density)
    x = np.array([c.centroid.x for c in cells])
    area = np.array([c.area for c in cells])
    assert area[x > 0.6].mean() < area[x < 0.4].mean() / 2


def test_lloyd_evens_out_cells() -> None:
    rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
    rough = partition_polygon(SQUARE, 20, rng_a, lloyd_iterations=0)
    relaxed = partition_polygon(SQUARE, 20, rng_b, lloyd_iterations=5)
    assert np.std([c.area for c in relaxed]) < np.std([c.area for c in rough])


def test_sample_points_inside() -> None:
    pts = sample_points(L_SHAPE, 500, np.random.default_rng(2))
    assert pts.shape == (500, 2)
    assert shapely.contains_xy(L_SHAPE, pts[:, 0], pts[:, 1]).all()


def test_seeds_are_distinct_and_inside() -> None:
    seeds = centroidal_seeds(L_SHAPE, 12, np.random.default_rng(4))
    assert len(np.unique(seeds, axis=0)) == 12
    assert shapely.contains_xy(L_SHAPE, seeds[:, 0], seeds[:, 1]).all()


def test_bad_input() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="at least 1"):
        partition_polygon(SQUARE, 0, rng)
    with pytest.raises(ValueError, match="density"):
        partition_polygon(SQUARE, 3, rng, density=lambda x, y: np.zeros_like(x))
    with pytest.raises(ValueError, match="without area"):
        sample_points(shapely.LineString([(0, 0), (1, 1)]), 3, rng)


def test_snap_coverage_by_hand() -> None:
    # the shared edge at x = 0.51 snaps to 0.5 in both cells: no gap, no overlap
    left, right = shapely.box(0, 0, 0.51, 1), shapely.box(0.51, 0, 1, 1)
    out = snap_coverage([left, right], 0.1)
    assert out[0].equals(shapely.box(0, 0, 0.5, 1))
    assert out[1].equals(shapely.box(0.5, 0, 1, 1))


def test_snap_coverage_keeps_a_clean_coverage() -> None:
    cells = partition_polygon(L_SHAPE, 9, np.random.default_rng(8))
    snapped = snap_coverage(cells, 1e-3)
    assert_partition(L_SHAPE, list(snapped), 9)
    assert shapely.coverage_is_valid(snapped)
    coords = shapely.get_coordinates(snapped) / 1e-3
    assert np.allclose(coords, np.round(coords), atol=1e-6)
    # each neighbour pair shares exactly the same edge, so the union has no slivers or holes
    union = shapely.union_all(snapped)
    assert union.geom_type == "Polygon" and len(union.interiors) == 0


def test_apportion_by_hand() -> None:
    assert apportion(10, [1, 1, 1]).tolist() == [4, 3, 3]  # remainder to the first tie
    assert apportion(100, [1, 2, 7]).tolist() == [10, 20, 70]
    assert apportion(10, [5, 1, 0], lo=1, hi=6).tolist() == [6, 3, 1]
    assert apportion(7, [0, 0, 1], hi=3).tolist() == [2, 2, 3]  # the overflow goes on
    assert apportion(960_000, [1, 1, 1, 1]).tolist() == [240_000] * 4
    assert apportion(2000, [100, 1, 1], hi=999).tolist() == [999, 501, 500]  # cap holds


def test_apportion_sums_and_bounds() -> None:
    w = np.random.default_rng(0).lognormal(0, 1, 197)
    parts = apportion(2500, w, lo=1, hi=999)
    assert parts.sum() == 2500 and parts.min() >= 1
    skewed = apportion(25_000, w**4, lo=1, hi=999)  # big weights hit the cap, the rest spills
    assert skewed.sum() == 25_000 and skewed.max() == 999 and skewed.min() >= 1
    capped = apportion(250_000, w, lo=1, hi=999)  # more than 197 x 999 cannot fit
    assert (capped == 999).all()
    with pytest.raises(ValueError, match="weights"):
        apportion(5, [0, 0])
