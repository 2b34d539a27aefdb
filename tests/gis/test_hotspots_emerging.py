"""Emerging hot spots: Mann-Kendall against scipy, the space-time Gi*, and every category."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse, stats

from gis.hotspots import (
    CATEGORIES,
    classify_emerging,
    emerging_hotspots,
    gi_star,
    mann_kendall,
    month_steps,
    space_time_cube,
    space_time_weights,
    square_grid,
)

# ------------------------------------------------------------------ Mann-Kendall


def _brute_mk(x: np.ndarray) -> tuple[float, float]:
    n = len(x)
    s = sum(np.sign(x[j] - x[i]) for i in range(n) for j in range(i + 1, n))
    _, counts = np.unique(x, return_counts=True)
    var = (n * (n - 1) * (2 * n + 5) - sum(t * (t - 1) * (2 * t + 5) for t in counts)) / 18
    return float(s), float(var)


def test_mann_kendall_agrees_with_scipy_kendalltau() -> None:
    rng = np.random.default_rng(31)
    t = np.arange(24)
    series = np.vstack([
        0.3 * t + rng.normal(0, 2, (40, 24)),        # upward
        -0.2 * t + rng.normal(0, 2, (40, 24)),       # downward
        rng.normal(0, 2, (40, 24)),                  # none
        np.round(rng.normal(0, 1, (40, 24))),         # many ties
    ])
    mk = mann_kendall(series, continuity=False)
    mk_cc = mann_kendall(series)
    for k, y in enumerate(series):
        ref = stats.kendalltau(t, y, method="asymptotic")
        assert mk.tau[k] == pytest.approx(ref.statistic, abs=1e-12)
        assert mk.p[k] == pytest.approx(ref.pvalue, rel=1e-9)
        assert np.sign(mk.z[k]) == np.sign(ref.statistic)
        assert np.sign(mk_cc.z[k]) in (0.0, np.sign(ref.statistic))
        assert mk_cc.p[k] >= mk.p[k] - 1e-15  # the continuity correction only makes it more careful
        s, var = _brute_mk(y)
        assert (mk.s[k], mk.var[k]) == pytest.approx((s, var))
        assert mk_cc.z[k] == pytest.approx((s - np.sign(s)) / np.sqrt(var))
    assert (mk_cc.p[:40] < 0.05).mean() > 0.9 and (mk_cc.z[:40] > 0).all()
    assert (mk_cc.z[40:80] < 0).mean() > 0.9
    assert (mk_cc.p[80:120] < 0.05).mean() < 0.15


def test_mann_kendall_constant_series_has_no_trend() -> None:
    mk = mann_kendall(np.full(12, 3.0))
    assert (float(mk.s), float(mk.z), float(mk.p)) == (0.0, 0.0, 1.0)


# ------------------------------------------------------------------ cube and weights


def test_space_time_cube_counts_events() -> None:
    cells = np.array([0, 0, 2, 2, 2, 5, 1])
    steps = np.array([0, 0, 1, 1, 3, 0, 9])
    cube = space_time_cube(cells, steps, n_cells=4, n_steps=4)
    assert cube.shape == (4, 4)
    assert cube[0, 0] == 2 and cube[1, 2] == 2 and cube[3, 2] == 1
    assert cube.sum() == 5  # cell 5 and step 9 are outside


def test_month_steps_from_timestamps() -> None:
    times = np.array(["2024-11-30T23:59", "2025-01-01", "2025-12-31", "2024-11-01"], dtype="datetime64[s]")
    steps, first = month_steps(times)
    assert steps.tolist() == [0, 2, 13, 0] and str(first) == "2024-11"
    steps, _ = month_steps(times, start="2025-01")
    assert steps.tolist() == [-2, 0, 11, -2]  # before the start: left out of the cube
    cube = space_time_cube([0, 1, 1, 0], steps, n_cells=2, n_steps=12)
    assert cube.sum() == 2 and cube[11, 1] == 1
    with pytest.raises(ValueError, match="times"):
        month_steps(["not a date"])
    with pytest.raises(ValueError, match="missing"):
        month_steps(np.array(["2025-01-01", "NaT"], dtype="datetime64[D]"))


def test_space_time_weights_structure() -> None:
    spatial = square_grid((0, 0, 3, 1), 1.0).neighbours("rook")  # 0 - 1 - 2
    stw = space_time_weights(spatial, n_steps=3, time_window=1).toarray()
    n = 3

    def nb(t, i):
        return {(int(k) // n, int(k) % n) for k in np.flatnonzero(stw[t * n + i])}

    assert nb(0, 0) == {(0, 0), (0, 1)}
    assert nb(2, 1) == {(2, 0), (2, 1), (2, 2), (1, 0), (1, 1), (1, 2)}
    assert nb(1, 2) == {(1, 1), (1, 2), (0, 1), (0, 2)}
    none = space_time_weights(spatial, 3, time_window=0)
    assert (none != sparse.kron(sparse.eye_array(3), spatial + sparse.eye_array(3))).nnz == 0


@pytest.mark.parametrize("window", [0, 1, 2, 30])
def test_space_time_gi_star_is_gi_star_on_the_flattened_cube(window: int) -> None:
    grid = square_grid((0, 0, 6, 5), 1.0)
    w = grid.neighbours("queen")
    cube = np.random.default_rng(32).poisson(4, (12, len(grid))).astype(float)
    res = emerging_hotspots(cube, w, time_window=window)
    direct = gi_star(cube.ravel(), space_time_weights(w, 12, window))
    np.testing.assert_allclose(res.z.ravel(), direct.z)
    np.testing.assert_allclose(res.trend.z, mann_kendall(res.z.T).z)


# ------------------------------------------------------------------ categories


def _category_fixture() -> tuple[np.ndarray, sparse.csr_array, dict[int, int]]:
    """A 24 x 16 grid of background counts ~10 with 16 3x3 patches, one per category."""
    steps = 20
    grid = square_grid((0, 0, 24, 16), 1.0)
    rng = np.random.default_rng(7)
    cube = 10.0 + rng.integers(-2, 3, (steps, len(grid))).astype(float)
    t = np.arange(steps)
    hot, cold = 40.0, 0.0

    def only(at, value):  # value at the listed steps, background elsewhere
        return np.where(np.isin(t, at), value, np.nan)

    def swap(p):
        q = p.copy()
        q[p == hot], q[p == cold] = cold, hot
        return q

    hot_patterns = {
        1: only([steps - 1], hot),                                # new
        2: only(t[-3:], hot),                                    # consecutive
        3: np.linspace(25, 60, steps),                           # intensifying
        4: hot + np.tile([0, 2, -1, 1], steps // 4),             # persistent
        5: np.linspace(60, 25, steps),                           # diminishing
        6: only([3, 8, 13, 19], hot),                            # sporadic
        7: np.where(np.isin(t, [2, 6]), cold, only([12, 19], hot)),  # oscillating
        8: only(t[:-2], hot),                                    # historical
    }
    patterns = dict(hot_patterns)
    for code, p in hot_patterns.items():
        patterns[-code] = {3: np.linspace(4, 0, steps), 5: np.linspace(0, 4, steps),
                           4: 1 + np.tile([0, 0.5, -0.5, 0.25], steps // 4)}.get(code, swap(p))
    sites = {}
    centres = [(2 + 6 * a, 2 + 4 * b) for b in range(4) for a in range(4)]
    for (code, p), (ci, cj) in zip(patterns.items(), centres, strict=True):
        patch = (np.abs(grid.i - ci) <= 1) & (np.abs(grid.j - cj) <= 1)
        for k in range(steps):
            if not np.isnan(p[k]):
                cube[k, patch] = p[k]
        sites[code] = int(np.flatnonzero((grid.i == ci) & (grid.j == cj))[0])
    return cube, grid.neighbours("queen"), sites


def test_constructed_cube_reaches_every_category() -> None:
    cube, w, sites = _category_fixture()
    res = emerging_hotspots(cube, w)  # ArcGIS defaults: one previous step, 95 % bins
    got = {code: CATEGORIES[int(res.category[i])] for code, i in sites.items()}
    assert got == {code: CATEGORIES[code] for code in sites}
    assert set(np.unique(res.category)) == set(CATEGORIES)  # all 17, "no pattern" included
    assert res.names[sites[3]] == "intensifying hot spot"
    assert res.trend.z[sites[3]] > 0 > res.trend.z[sites[5]]


@pytest.mark.parametrize(
    ("series", "trend", "expected"),
    [
        ("...................H", 0, 1),
        ("......C............H", 0, 7),   # was cold before: oscillating, not new
        ("................HHHH", 0, 2),
        (".........H......HHHH", 0, 6),   # hot before the final run: sporadic
        ("HHHHHHHHHHHHHHHHHHHH", 1, 3),
        ("HHHHHHHHHHHHHHHHHHHH", 0, 4),
        ("HHHHHHHHHHHHHHHHHHHH", -1, 5),
        ("HH.HHHHHHHHHHHHHHHHH", 0, 4),   # 95 % is enough
        ("HH.HHHHHH.HHHHHHHHHH", 0, 4),   # 18 of 20 = 90 %: still persistent
        ("HHHHHHHHHHHHHHHHHHH.", 0, 8),
        ("HHHHHHHHHHHHHHHHHHHC", 0, -7),  # final cold after a hot history: oscillating cold
        ("HHHHHHHHHHHHHHHHHH..", 0, 8),
        ("HHHHHHHHH.HHHHHHHH..", 0, 0),   # 17 of 20: not historical, and not hot now
        ("C..................C", 0, -6),
        ("....................", 0, 0),
        ("H...................", 0, 0),   # long ago and once: no pattern
    ],
)
def test_classification_rules(series: str, trend: int, expected: int) -> None:
    z = np.array([3.0 if c == "H" else -3.0 if c == "C" else 0.5 for c in series])[:, None]
    p = np.where(np.abs(z) > 1, 0.001, 0.6)
    tz = np.array([3.0 * trend])
    tp = np.array([0.001 if trend else 0.7])
    code = int(classify_emerging(z, p, tz, tp)[0])
    assert code == expected, CATEGORIES[code]
    # the cold mirror
    mirror = int(classify_emerging(-z, p, -tz, tp)[0])
    assert mirror == -expected


def test_fdr_option_judges_bins_by_adjusted_p() -> None:
    cube = np.random.default_rng(33).normal(10, 2, (12, 150))
    w = square_grid((0, 0, 15, 10), 1.0).neighbours("queen")
    raw = emerging_hotspots(cube, w)
    fdr = emerging_hotspots(cube, w, fdr=True)
    assert (raw.category != 0).sum() > 0  # noise alone makes "sporadic" and "new" spots
    assert (fdr.category != 0).sum() < (raw.category != 0).sum()
    assert (fdr.bins == 0).all()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda w: emerging_hotspots(np.ones((2, 4)), w), "steps >= 3"),
        (lambda w: emerging_hotspots(np.random.default_rng(0).random((5, 3)), w), "match"),
        (lambda w: emerging_hotspots(np.random.default_rng(0).random((5, 4)), w, time_window=-1),
         "time_window"),
        (lambda w: emerging_hotspots(np.random.default_rng(0).random((5, 4)), w, alpha=5), "alpha"),
        (lambda w: mann_kendall([1.0, 2.0]), "3 time steps"),
        (lambda w: space_time_cube([0, 1], [0], 2, 2), "same length"),
    ],
)
def test_bad_input(call, message: str) -> None:
    w = square_grid((0, 0, 2, 2), 1.0).neighbours("rook")
    with pytest.raises(ValueError, match=message):
        call(w)
