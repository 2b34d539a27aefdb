"""Getis-Ord Gi*: esda's G_Local(star=True) as the reference, FDR and ArcGIS bins."""

from __future__ import annotations

import esda
import numpy as np
import pytest
from libpysal.graph import Graph
from libpysal.weights import WSP, DistanceBand
from scipy import stats

from gis.hotspots import (
    confidence_bins,
    distance_band,
    fdr_adjust,
    gi_star,
    hex_grid,
    k_nearest,
    square_grid,
)


def _clustered_values(grid, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x, y = grid.centres.T
    bump = 8 * np.exp(-((x - x.mean()) ** 2 + (y - y.mean()) ** 2) / (2 * (0.15 * np.ptp(x)) ** 2))
    return rng.poisson(3 + bump).astype(float)


def _esda(y, w, transform: str, as_graph: bool):
    """esda's G_Local(star=True). ``star=1.0`` puts 1 on the diagonal (what ``star=True`` does
    for binary weights) without the warning that ``star=True`` raises for transform "R"."""
    weights = Graph.from_sparse(w) if as_graph else WSP(w).to_W(silence_warnings=True)
    return esda.G_Local(y, weights, transform=transform, star=1.0, permutations=0)


@pytest.mark.parametrize("as_graph", [False, True])
@pytest.mark.parametrize(
    "make_weights",
    [
        lambda g: g.neighbours(),  # hexagon contiguity
        lambda g: distance_band(g.centres, 3.2 * 10.0),  # fixed distance, ~30 neighbours
        lambda g: k_nearest(g.centres, 8),  # asymmetric
    ],
)
def test_binary_z_equals_esda(make_weights, as_graph: bool) -> None:
    grid = hex_grid((0, 0, 600, 450), 10.0)
    y = _clustered_values(grid, 5)
    w = make_weights(grid)
    ours = gi_star(y, w, transform="B")
    ref = _esda(y, w, "B", as_graph)
    np.testing.assert_allclose(ours.z, ref.Zs, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.gi, ref.Gs, rtol=1e-12)
    np.testing.assert_allclose(ours.expected, ref.EGs, rtol=1e-12)
    np.testing.assert_allclose(ours.variance, ref.VGs, rtol=1e-9)
    np.testing.assert_allclose(ours.p, 2 * ref.p_norm, rtol=1e-9)  # esda's p_norm is one-sided
    assert np.abs(ours.z).max() > 3  # the fixture has a real hot spot


@pytest.mark.parametrize("as_graph", [False, True])
def test_row_standardised_z_equals_esda_with_esda_moments(as_graph: bool) -> None:
    grid = square_grid((0, 0, 30, 25), 1.0)
    y = _clustered_values(grid, 6)
    w = grid.neighbours("queen")
    ours = gi_star(y, w, transform="R", moments="esda")
    ref = _esda(y, w, "R", as_graph)
    np.testing.assert_allclose(ours.z, ref.Zs, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.gi, ref.Gs, rtol=1e-12)


def test_esda_docstring_example() -> None:
    """The numbers printed in esda's own G_Local docstring (binary and row-standardised)."""
    pts = [(10, 10), (20, 10), (40, 10), (15, 20), (30, 20), (30, 30)]
    y = [2, 3, 3.2, 5, 8, 7]
    w = DistanceBand(pts, threshold=15, silence_warnings=True).sparse
    assert np.abs(gi_star(y, w).z - [-1.39727626, -0.28917762, 0.65064964, -0.28917762, 1.23452088,
                                      2.02424331]).max() < 1e-6
    assert np.abs(gi_star(y, w, transform="R", moments="esda").z
                  - [-0.62488094, -0.09144599, 0.41150696, -0.09144599, 0.24690418,
                     1.28024388]).max() < 1e-6


def test_exact_moments_match_permutations_for_general_weights() -> None:
    """The exact moments are those of sum_j w_ij x_j under random permutation of the values."""
    rng = np.random.default_rng(7)
    pts = rng.uniform(0, 100, (40, 2))
    w = distance_band(pts, 35.0, binary=False)  # inverse distance
    y = rng.gamma(2.0, 3.0, 40)
    res = gi_star(y, w, transform="O")
    wd = res_weights = w.toarray()
    np.fill_diagonal(res_weights, 1.0)
    perms = np.array([rng.permutation(y) for _ in range(40_000)])
    lags = perms @ wd.T  # (perms, n)
    total = y.sum()
    g = lags / total
    se_mean = g.std(axis=0) / np.sqrt(len(perms))
    assert (np.abs(g.mean(axis=0) - res.expected) < 5 * se_mean).all()
    np.testing.assert_allclose(g.var(axis=0), res.variance, rtol=0.05)
    # and z-scores computed from the permutation moments agree with ours
    z_perm = (res.gi - g.mean(axis=0)) / g.std(axis=0)
    np.testing.assert_allclose(z_perm, res.z, atol=0.05)


def test_esda_moments_understate_row_standardised_z() -> None:
    """What ``moments="exact"`` fixes: with row standardisation esda divides by the wrong spread."""
    grid = hex_grid((0, 0, 400, 300), 10.0)
    y = _clustered_values(grid, 8)
    w = grid.neighbours()
    exact_r = gi_star(y, w, transform="R")
    np.testing.assert_allclose(exact_r.z, gi_star(y, w, transform="B").z, atol=1e-9)  # row-invariant
    esda_r = gi_star(y, w, transform="R", moments="esda")
    interior = exact_r.n_neighbours == 7
    ratio = exact_r.z[interior] / esda_r.z[interior]
    n = len(y)
    assert np.allclose(ratio, np.sqrt((n - 1) / (n / 7 - 1)))  # ~ sqrt(k + 1)


def test_fdr_adjust_equals_scipy() -> None:
    p = np.random.default_rng(9).uniform(0, 1, 5000) ** 3
    np.testing.assert_allclose(fdr_adjust(p), stats.false_discovery_control(p, method="bh"), rtol=1e-12)


def test_fdr_threshold_equals_esda_fdr() -> None:
    p = np.random.default_rng(10).uniform(0, 1, 3000) ** 4
    for alpha in (0.01, 0.05, 0.1):
        threshold = esda.fdr(p, alpha)
        assert set(np.flatnonzero(fdr_adjust(p) <= alpha)) == set(np.flatnonzero(p <= threshold))


def test_pure_noise_fdr_marks_nothing_uncorrected_marks_many() -> None:
    """Without any pattern, uncorrected Gi* still finds 'hot spots'; FDR does not."""
    grid = hex_grid((0, 0, 900, 700), 10.0)
    w = grid.neighbours()
    n_raw, n_fdr_runs = [], 0
    for seed in range(20):
        y = np.random.default_rng(seed).normal(10.0, 2.0, len(grid))
        raw = gi_star(y, w, fdr=False)
        fdr = gi_star(y, w, fdr=True)
        np.testing.assert_array_equal(raw.z, fdr.z)
        n_raw.append(int((raw.bins != 0).sum()))
        n_fdr_runs += int((fdr.bins != 0).any())
        if seed == 0:
            assert (fdr.bins == 0).all()
    # ~10 % of the cells are "significant" at 90 % by chance every time ...
    assert min(n_raw) > 0.05 * len(grid)
    # ... while BH keeps P(any false discovery) near its 10 % level.
    assert n_fdr_runs <= 5


def test_fdr_still_finds_a_real_hot_spot() -> None:
    grid = hex_grid((0, 0, 900, 700), 10.0)
    rng = np.random.default_rng(11)
    y = rng.normal(10.0, 2.0, len(grid))
    x, yy = grid.centres.T
    r2 = (x - 450) ** 2 + (yy - 350) ** 2
    spot = r2 < 60**2
    y[spot] += 6.0
    res = gi_star(y, grid.neighbours(), fdr=True)
    assert (res.bins[r2 < 40**2] == 3).mean() > 0.9
    assert (res.bins[spot] > 0).mean() > 0.8
    assert (res.bins[~spot] > 0).sum() < 0.05 * spot.sum() + 30  # only the spot's rim


def test_confidence_bins_thresholds() -> None:
    z = np.array([3.0, -3.0, 2.0, -2.0, 1.7, -1.7, 1.0, 2.58, 2.57])
    p = 2 * stats.norm.sf(np.abs(z))
    assert confidence_bins(z, p).tolist() == [3, -3, 2, -2, 1, -1, 0, 3, 2]
    # adjusted p-values may equal the level
    assert confidence_bins(np.array([1.0, -1.0]), np.array([0.05, 0.1]), adjusted=True).tolist() == [2, -1]


def test_gi_bins_follow_z_thresholds_as_arcgis() -> None:
    grid = hex_grid((0, 0, 400, 300), 10.0)
    res = gi_star(_clustered_values(grid, 12), grid.neighbours(), fdr=False)
    z = res.z
    expected = np.select([z > 2.5758, z > 1.96, z > 1.6449, z < -2.5758, z < -1.96, z < -1.6449],
                         [3, 2, 1, -3, -2, -1], 0)
    assert (res.bins == expected).all()


def test_kept_diagonal_and_isolated_cells() -> None:
    pts = np.array([[0, 0], [1, 0], [2, 0], [3, 0], [100, 100]], dtype=float)
    w = distance_band(pts, 1.5)
    res = gi_star([1.0, 2.0, 3.0, 4.0, 10.0], w)
    assert res.n_neighbours.tolist() == [2, 3, 3, 2, 1]
    assert np.isfinite(res.z).all()


@pytest.mark.parametrize(
    ("values", "weights", "kwargs", "message"),
    [
        ([1, 1, 1, 1], np.ones((4, 4)), {}, "all equal"),
        ([1, 2, 3], np.ones((4, 4)), {}, "shape"),
        ([1, 2], np.ones((2, 2)), {}, "at least 3"),
        ([1, 2, np.nan], np.ones((3, 3)), {}, "finite"),
        ([1, 2, 3], -np.ones((3, 3)), {}, "non-negative"),
        ([1, 2, 3], np.ones((3, 3)), {"transform": "X"}, "transform"),
        ([1, 2, 3], np.ones((3, 3)), {"moments": "approx"}, "moments"),
        ([1, 2, 3], np.ones((3, 3)), {"self_weight": 0}, "self_weight"),
        (["a", "b", "c"], np.ones((3, 3)), {}, "numbers"),
    ],
)
def test_bad_input(values, weights, kwargs, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        gi_star(values, weights, **kwargs)
