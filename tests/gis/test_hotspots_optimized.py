"""Optimised hot-spot settings: incremental spatial autocorrelation, outliers, the report."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from gis.hotspots import (
    distance_band,
    gi_star,
    incremental_spatial_autocorrelation,
    locational_outliers,
    moran,
    optimized_gi_star,
    optimized_hot_spots,
    square_grid,
    value_outliers,
)


def _blocks(seed: int = 0):
    """5 x 5 blocks alternating high and low: autocorrelation peaks at short range."""
    grid = square_grid((0, 0, 40, 40), 1.0)
    rng = np.random.default_rng(seed)
    high = ((grid.i // 5) + (grid.j // 5)) % 2
    return grid, 10 + 6 * high + rng.normal(0, 1, len(grid))


def test_incremental_autocorrelation_is_moran_per_band_and_finds_the_peak() -> None:
    grid, y = _blocks()
    isa = incremental_spatial_autocorrelation(grid.centres, y)
    np.testing.assert_allclose(isa.distances, np.arange(1.0, 11.0))  # start: max NN, step: mean NN
    for d, z in zip(isa.distances, isa.z, strict=True):
        assert z == pytest.approx(moran(y, distance_band(grid.centres, d), transform="R").z_norm)
    assert isa.first_peak == 2.0
    assert isa.z[1] > isa.z[0] and isa.z[1] > isa.z[2]


def test_optimized_uses_the_peak_and_reports() -> None:
    grid, y = _blocks()
    res = optimized_gi_star(grid.centres, y)
    assert (res.distance, res.scale_source) == (2.0, "peak")
    expected = gi_star(y, distance_band(grid.centres, 2.0), fdr=True)
    np.testing.assert_array_equal(res.gi.bins, expected.bins)
    assert res.gi.fdr
    text = "\n".join(res.report)
    assert "peaks at 2" in text and "FDR" in text and "1600 features" in text
    high = ((grid.i // 5) + (grid.j // 5)) % 2 == 1
    assert (res.gi.bins[res.gi.bins != 0] > 0).sum() > 100
    assert ((res.gi.bins > 0) <= high).all()  # every hot cell is in a high block


def test_no_peak_falls_back_to_k_nearest_distance() -> None:
    grid = square_grid((0, 0, 40, 40), 1.0)
    y = np.random.default_rng(1).normal(0, 1, len(grid))
    res = optimized_gi_star(grid.centres, y)
    assert res.scale_source == "k-nearest"
    # K = clip(0.05 * 1600, 3, 30) = 30: the mean distance to the 30th neighbour on a unit lattice
    assert 3.0 < res.distance < 3.5
    assert "30th nearest" in " ".join(res.report)
    assert res.gi.n_hot == res.gi.n_cold == 0


def test_locational_outliers_do_not_stretch_the_bands() -> None:
    grid, y = _blocks()
    xy = np.vstack([grid.centres, [[500.0, 500.0], [-300.0, 20.0]]])
    values = np.concatenate([y, [12.0, 13.0]])
    nn, out = locational_outliers(xy)
    assert out.nonzero()[0].tolist() == [1600, 1601]
    isa = incremental_spatial_autocorrelation(xy, values)
    assert isa.distances[0] == 1.0
    res = optimized_gi_star(xy, values)
    assert res.locational_outliers == 2
    assert "2 locational outliers" in res.report[1]
    assert "2 features have no neighbour" in " ".join(res.report)


def test_value_outliers_are_counted_not_changed() -> None:
    grid, y = _blocks()
    y = y.copy()
    y[[0, 77]] = 500.0
    assert value_outliers(y).nonzero()[0].tolist() == [0, 77]
    res = optimized_gi_star(grid.centres, y, distance=2.0)
    assert res.value_outliers == 2 and res.scale_source == "given"
    np.testing.assert_allclose(res.gi.z, gi_star(y, distance_band(grid.centres, 2.0)).z)


def test_optimized_hot_spots_from_events() -> None:
    rng = np.random.default_rng(2)
    pts = np.vstack([rng.uniform(0, 10_000, (3000, 2)), rng.normal([3000, 7000], 300, (800, 2))])
    res = optimized_hot_spots(pts)
    assert res.grid is not None and res.counts is not None
    assert res.counts.sum() == len(pts)
    hot = res.grid.centres[res.gi.bins == 3]
    assert len(hot) > 5
    assert np.abs(hot.mean(axis=0) - [3000, 7000]).max() < 500
    assert res.report[0].startswith("Hexagon side")


def test_optimized_hot_spots_with_a_mask_counts_empty_cells() -> None:
    rng = np.random.default_rng(3)
    district = shapely.Point(5000, 5000).buffer(5000)
    pts = rng.normal([5000, 5000], 1500, (2000, 2))
    res = optimized_hot_spots(pts, mask=district, cell_size=400.0)
    assert res.grid is not None
    assert shapely.intersects(district, res.grid.polygons()).all()
    assert (res.counts == 0).sum() > 0  # cells without events inside the district stay in
    assert "given: 400" in res.report[0]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: optimized_gi_star(np.zeros((10, 2)), np.arange(10.0)), "at least 30"),
        (lambda: optimized_gi_star(np.random.default_rng(0).random((40, 2)), np.ones(40)), "all equal"),
        (lambda: optimized_gi_star(np.random.default_rng(0).random((40, 2)), np.arange(39.0)),
         "same length"),
        (lambda: optimized_hot_spots(np.zeros((5, 2))), "at least 30"),
        (lambda: optimized_hot_spots(np.zeros((50, 2))), "no area"),
        (lambda: incremental_spatial_autocorrelation(np.random.default_rng(0).random((40, 2)),
                                                     np.arange(40.0), distances=[1.0]), "three"),
    ],
)
def test_bad_input(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
