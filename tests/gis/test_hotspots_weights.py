"""Cells and spatial weights of gis.hotspots, checked against libpysal and shapely."""

from __future__ import annotations

import doctest
import importlib

import geopandas as gpd
import numpy as np
import pytest
import shapely
from libpysal.graph import Graph
from libpysal.weights import KNN, DistanceBand

from gis.hotspots import (
    aggregate_points,
    contiguity,
    distance_band,
    hex_grid,
    hex_size_for_area,
    k_nearest,
    row_standardize,
    set_diagonal,
    square_grid,
    symmetrize,
)
from gis.hotspots.cells import HexGrid


def _differences(a, b) -> int:
    return int((abs(a - b) > 1e-12).nnz)


@pytest.mark.parametrize(
    "module", ["cells", "weights", "gistar", "moran", "kde", "emerging", "optimized"]
)
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(f"gis.hotspots.{module}"))
    assert result.attempted > 0
    assert result.failed == 0


def _voronoi(n: int, seed: int) -> gpd.GeoSeries:
    pts = np.random.default_rng(seed).uniform(0, 100, (n, 2))
    box = shapely.box(0, 0, 100, 100)
    cells = shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=box).geoms
    return gpd.GeoSeries(list(cells)).clip(box).reset_index(drop=True)


def test_distance_band_equals_libpysal() -> None:
    pts = np.random.default_rng(1).uniform(0, 100, (400, 2))
    ref = DistanceBand(pts, 9.0, binary=True, silence_warnings=True).sparse
    assert _differences(distance_band(pts, 9.0), ref) == 0
    with np.errstate(divide="ignore"):  # libpysal raises its zero self-distances to -1
        ref_inv = DistanceBand(pts, 9.0, binary=False, alpha=-1.0, silence_warnings=True).sparse
    assert _differences(distance_band(pts, 9.0, binary=False), ref_inv) == 0


def test_k_nearest_equals_libpysal() -> None:
    pts = np.random.default_rng(2).uniform(0, 100, (300, 2))
    ours = k_nearest(pts, 6)
    assert _differences(ours, KNN.from_array(pts, k=6).sparse) == 0
    assert (np.diff(ours.indptr) == 6).all() and ours.diagonal().sum() == 0


def test_k_nearest_with_duplicate_points_never_lists_itself() -> None:
    pts = np.array([[0, 0], [0, 0], [0, 0], [5, 5], [6, 5]], dtype=float)
    w = k_nearest(pts, 2)
    assert w.diagonal().sum() == 0
    assert (np.diff(w.indptr) == 2).all()
    assert set(w[[0]].indices) == {1, 2}


@pytest.mark.parametrize("rook", [False, True])
def test_contiguity_equals_libpysal_on_voronoi_cells(rook: bool) -> None:
    cells = _voronoi(250, 3)
    ours = contiguity(cells, "rook" if rook else "queen")
    assert _differences(ours, Graph.build_contiguity(cells, rook=rook).sparse) == 0


def test_queen_and_rook_differ_on_squares_as_libpysal() -> None:
    grid = square_grid((0, 0, 7, 5), 1.0)
    polys = gpd.GeoSeries(grid.polygons())
    for kind, rook, per_inner_cell in (("queen", False, 8), ("rook", True, 4)):
        ours = contiguity(polys, kind)
        assert _differences(ours, Graph.build_contiguity(polys, rook=rook).sparse) == 0
        assert ours.sum(axis=1).max() == per_inner_cell
        assert _differences(ours, grid.neighbours(kind)) == 0


def test_hexagon_neighbours_equal_contiguity_and_distance() -> None:
    grid = hex_grid((0, 0, 500, 400), 17.0)
    lattice = grid.neighbours()
    assert lattice.sum(axis=1).max() == 6
    assert _differences(lattice, contiguity(grid.polygons(), "queen")) == 0
    assert _differences(lattice, contiguity(grid.polygons(), "rook")) == 0
    assert _differences(lattice, distance_band(grid.centres, np.sqrt(3) * 17.0 * 1.01)) == 0


def test_hexagons_tile_the_extent() -> None:
    extent = (10.0, -5.0, 410.0, 295.0)
    grid = hex_grid(extent, 12.5)
    polys = grid.polygons()
    assert np.allclose(shapely.area(polys), grid.cell_area)
    union = shapely.union_all(polys)
    box = shapely.box(*extent)
    assert union.contains(box.buffer(-1e-6))
    # no superfluous cell: each one overlaps the extent with some area
    assert (shapely.area(shapely.intersection(polys, box)) > 0).all()
    assert shapely.area(union) == pytest.approx(len(grid) * grid.cell_area, rel=1e-9)


def test_hex_grid_mask_keeps_only_overlapping_cells() -> None:
    mask = shapely.Point(200, 150).buffer(100)
    grid = hex_grid((0, 0, 400, 300), 10.0, mask=mask)
    polys = grid.polygons()
    assert shapely.intersects(mask, polys).all()
    full = hex_grid((0, 0, 400, 300), 10.0)
    assert len(grid) < len(full)
    assert shapely.union_all(polys).contains(mask.buffer(-1e-6))


@pytest.mark.parametrize("make", [lambda: hex_grid((0, 0, 300, 200), 9.0),
                                  lambda: square_grid((0, 0, 300, 200), 7.0)])
def test_locate_agrees_with_point_in_polygon(make) -> None:
    grid = make()
    pts = np.random.default_rng(4).uniform(-20, 320, (5000, 2))
    cell = grid.locate(pts)
    polys = grid.polygons()
    inside = cell >= 0
    assert shapely.contains_xy(polys[cell[inside]], pts[inside, 0], pts[inside, 1]).all()
    # points that found no cell are in none of the polygons
    tree = shapely.STRtree(polys)
    hits = tree.query(shapely.points(pts[~inside]), predicate="intersects")
    assert hits.size == 0


def test_aggregate_points_counts_and_weights() -> None:
    grid = hex_grid((0, 0, 100, 100), 10.0)
    pts = grid.centres[[0, 0, 5, 7, 7, 7]] + 0.1
    counts, outside = aggregate_points(grid, np.vstack([pts, [[1e6, 1e6]]]))
    assert outside == 1
    assert counts[0] == 2 and counts[5] == 1 and counts[7] == 3 and counts.sum() == 6
    sums, _ = aggregate_points(grid, pts, weights=[1, 2, 3, 4, 5, 6])
    assert sums[0] == 3 and sums[7] == 15


def test_hex_size_for_area() -> None:
    s = hex_size_for_area(1000.0)
    assert HexGrid(s, (0, 0), np.zeros(1, int), np.zeros(1, int)).cell_area == pytest.approx(1000.0)


def test_weight_helpers() -> None:
    w = k_nearest([[0, 0], [1, 0], [3, 0], [7, 0]], 1)
    sym = symmetrize(w)
    assert (sym != sym.T).nnz == 0
    r = row_standardize(distance_band([[0, 0], [1, 0], [2, 0], [50, 50]], 1.5))
    assert np.allclose(np.asarray(r.sum(axis=1)).ravel(), [1, 1, 1, 0])
    d = set_diagonal(w, 2.0)
    assert np.allclose(d.diagonal(), 2.0) and d.nnz == w.nnz + 4


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: distance_band([[0, 0], [1, 1]], -1), "threshold"),
        (lambda: distance_band([[0, 0, 0]], 1), "shape"),
        (lambda: distance_band([[0, np.nan], [1, 1]], 1), "finite"),
        (lambda: distance_band([[0, 0], [0, 0]], 1, binary=False), "coincident"),
        (lambda: k_nearest([[0, 0], [1, 1]], 2), "k must"),
        (lambda: contiguity([shapely.Point(0, 0), shapely.box(0, 0, 1, 1)]), "Polygon"),
        (lambda: contiguity([shapely.box(0, 0, 1, 1)], "bishop"), "kind"),
        (lambda: hex_grid((0, 0, -1, 1), 1), "extent"),
        (lambda: hex_grid((0, 0, 1, 1), 0), "size"),
        (lambda: hex_grid((0, 0, 10, 10), 1, mask=shapely.box(50, 50, 60, 60)), "no cell"),
        (lambda: aggregate_points(square_grid((0, 0, 2, 2), 1), [[0, 0]], weights=[1, 2]), "weights"),
    ],
)
def test_bad_input_is_a_clear_value_error(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
