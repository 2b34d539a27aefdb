"""Global and local Moran's I against esda's Moran and Moran_Local."""

from __future__ import annotations

import esda
import numpy as np
import pytest
from libpysal.weights import WSP

from gis.hotspots import distance_band, hex_grid, k_nearest, local_moran, moran, square_grid

# esda's conditional randomisation warns that its default alternative will change.
ESDA_ALTERNATIVE = "ignore:The alternative hypothesis:DeprecationWarning"


def _fixture(seed: int = 0):
    grid = hex_grid((0, 0, 400, 300), 10.0)
    rng = np.random.default_rng(seed)
    x, y = grid.centres.T
    trend = np.where(x < 150, 4.0, 0.0) + np.where((x > 280) & (y > 180), -2.0, 0.0)
    return grid, rng.normal(10 + trend, 1.5)


def _w(w):
    return WSP(w).to_W(silence_warnings=True)


@pytest.mark.parametrize("transform", ["R", "B"])
@pytest.mark.parametrize("kind", ["contiguity", "knn", "distance"])
def test_global_moran_equals_esda(transform: str, kind: str) -> None:
    grid, y = _fixture(1)
    w = {"contiguity": grid.neighbours(), "knn": k_nearest(grid.centres, 5),
         "distance": distance_band(grid.centres, 40.0)}[kind]
    ours = moran(y, w, transform=transform)
    ref = esda.Moran(y, _w(w), transformation=transform.lower(), permutations=0)
    assert abs(ours.I - ref.I) < 1e-12
    assert ours.expected == pytest.approx(ref.EI, abs=1e-15)
    assert ours.z_norm == pytest.approx(ref.z_norm, abs=1e-9)
    assert ours.z_rand == pytest.approx(ref.z_rand, abs=1e-9)
    assert ours.p_norm == pytest.approx(ref.p_norm, rel=1e-9)
    assert ours.p_rand == pytest.approx(ref.p_rand, rel=1e-9)
    assert ours.z_norm > 5


def test_global_moran_permutations_agree_with_normal_inference() -> None:
    grid, y = _fixture(2)
    res = moran(y, grid.neighbours(), permutations=199, seed=3)
    assert res.p_sim == pytest.approx(1 / 200)  # far beyond every permutation
    noise = np.random.default_rng(4).normal(size=len(y))
    null = moran(noise, grid.neighbours(), permutations=499, seed=5)
    assert null.p_sim > 0.01 and abs(null.z_norm) < 3
    again = moran(noise, grid.neighbours(), permutations=499, seed=5)
    assert again.p_sim == null.p_sim


@pytest.mark.filterwarnings(ESDA_ALTERNATIVE)
@pytest.mark.parametrize("transform", ["R", "B"])
def test_local_moran_statistics_and_quadrants_equal_esda(transform: str) -> None:
    grid, y = _fixture(6)
    w = grid.neighbours()
    ours = local_moran(y, w, transform=transform, permutations=0)
    ref = esda.Moran_Local(y, _w(w), transformation=transform.lower(), permutations=0)
    np.testing.assert_allclose(ours.Is, ref.Is, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ours.q, ref.q)
    assert set(np.unique(ours.q)) == {1, 2, 3, 4}


@pytest.mark.filterwarnings(ESDA_ALTERNATIVE)
def test_local_moran_pseudo_p_values_are_statistically_consistent_with_esda() -> None:
    grid, y = _fixture(7)
    w = grid.neighbours()
    perms = 999
    ours = local_moran(y, w, permutations=perms, seed=11)
    ref = esda.Moran_Local(y, _w(w), permutations=perms, seed=11)
    np.testing.assert_array_equal(ours.q, ref.q)
    # Two independent estimates of the same p: their difference has sd sqrt(2 p (1 - p) / perms).
    p = (ours.p_sim + ref.p_sim) / 2
    bound = 5 * np.sqrt(2 * p * (1 - p) / perms) + 2 / (perms + 1)
    assert (np.abs(ours.p_sim - ref.p_sim) <= bound).all()
    assert np.corrcoef(ours.p_sim, ref.p_sim)[0, 1] > 0.98
    agree = ((ours.p_sim < 0.05) == (ref.p_sim < 0.05)).mean()
    assert agree > 0.93


@pytest.mark.filterwarnings(ESDA_ALTERNATIVE)
def test_conditional_permutations_match_esda_analytical_conditional_moments() -> None:
    """Mean and variance of our permutation distribution against esda's closed forms (EIc, VIc)."""
    grid = square_grid((0, 0, 15, 12), 1.0)
    y = np.random.default_rng(8).gamma(2.0, 2.0, len(grid))
    w = grid.neighbours("queen")
    perms = 20_000
    ours = local_moran(y, w, permutations=perms, seed=12)
    ref = esda.Moran_Local(y, _w(w), permutations=0)
    se = np.sqrt(ref.VIc / perms)
    assert (np.abs(ours.EI_sim - ref.EIc) < 5 * se).all()
    np.testing.assert_allclose(ours.VI_sim, ref.VIc, rtol=0.1)


def test_local_moran_seed_reproducible_and_labels() -> None:
    grid, y = _fixture(9)
    w = grid.neighbours()
    a = local_moran(y, w, permutations=199, seed=1)
    b = local_moran(y, w, permutations=199, seed=1)
    c = local_moran(y, w, permutations=199, seed=2)
    np.testing.assert_array_equal(a.p_sim, b.p_sim)
    assert not np.array_equal(a.p_sim, c.p_sim)
    sig = a.p_sim < 0.05
    names = {1: "HH", 2: "LH", 3: "LL", 4: "HL"}
    assert all(lab == names[q] for lab, q in zip(a.labels[sig], a.q[sig], strict=True))
    assert (a.labels[~sig] == "ns").all()
    x = grid.centres[:, 0]
    assert (a.labels[(x < 100)] == "HH").mean() > 0.5  # the planted high block
    assert a.p_sim.min() == pytest.approx(1 / 200)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda w: moran([1, 1, 1, 1], w), "all equal"),
        (lambda w: local_moran([1, 1, 1, 1], w), "all equal"),
        (lambda w: moran([1, 2, 3, 4], w, permutations=-1), "permutations"),
        (lambda w: local_moran([1, 2, 3, 4], w, alpha=2), "alpha"),
        (lambda w: moran([1, 2, 3, 4], w, transform="V"), "transform"),
        (lambda w: moran([1, 2, 3, 4], w * 0), "no neighbours"),
    ],
)
def test_bad_input(call, message: str) -> None:
    w = square_grid((0, 0, 2, 2), 1.0).neighbours("rook")
    with pytest.raises(ValueError, match=message):
        call(w)
