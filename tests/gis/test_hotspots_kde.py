"""Kernel density against scikit-learn and a brute-force sum, and the COG writer."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
from sklearn.neighbors import KernelDensity

from gis.hotspots import bandwidth_rule, kernel_density, write_cog

EXTENT = (-600.0, -500.0, 1400.0, 1300.0)


@pytest.fixture(scope="module")
def events() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(21)
    pts = np.vstack([rng.normal(0, 250, (900, 2)), rng.normal([800, 700], 90, (300, 2)),
                     rng.uniform(-700, 1500, (100, 2))])
    return pts, rng.uniform(0.5, 3.0, len(pts))


def _cells(grid) -> np.ndarray:
    x, y = grid.centres()
    xx, yy = np.meshgrid(x, y)
    return np.column_stack([xx.ravel(), yy.ravel()])


def test_gaussian_equals_scikit_learn(events) -> None:
    pts, w = events
    grid = kernel_density(pts, extent=EXTENT, cell_size=30.0, bandwidth=120.0, kernel="gaussian",
                          weights=w, method="exact")
    kde = KernelDensity(kernel="gaussian", bandwidth=120.0).fit(pts, sample_weight=w)
    ref = np.exp(kde.score_samples(_cells(grid))).reshape(grid.shape)
    ours = grid.values / w.sum()  # sklearn reports a probability density
    assert ref.min() > 0
    np.testing.assert_allclose(ours, ref, rtol=1e-6)


def test_quartic_equals_brute_force_sum(events) -> None:
    pts, w = events
    h = 150.0
    grid = kernel_density(pts, extent=EXTENT, cell_size=25.0, bandwidth=h, kernel="quartic",
                          weights=w, method="exact")
    cells = _cells(grid)
    ref = np.zeros(len(cells))
    for (px, py), wi in zip(pts, w, strict=True):  # one event at a time, straight from the formula
        d2 = (cells[:, 0] - px) ** 2 + (cells[:, 1] - py) ** 2
        inside = d2 < h * h
        ref[inside] += wi * 3 / (math.pi * h * h) * (1 - d2[inside] / (h * h)) ** 2
    ref = ref.reshape(grid.shape)
    covered = ref > 1e-3 * ref.max()
    np.testing.assert_allclose(grid.values[covered], ref[covered], rtol=1e-6)
    np.testing.assert_allclose(grid.values, ref, rtol=0, atol=1e-12 * ref.max())


@pytest.mark.parametrize("kernel", ["quartic", "gaussian"])
def test_binned_fft_is_close_to_exact(events, kernel: str) -> None:
    pts, w = events
    kwargs = {"extent": EXTENT, "cell_size": 20.0, "bandwidth": 120.0, "kernel": kernel, "weights": w}
    exact = kernel_density(pts, method="exact", **kwargs)
    binned = kernel_density(pts, method="binned", **kwargs)
    assert binned.method == "binned"
    err = np.abs(binned.values - exact.values).max() / exact.values.max()
    assert err < 1e-2  # bandwidth = 6 cells: below 1 % of the peak, as documented
    # coarser cells relative to the bandwidth: the error grows as (cell / h)^2
    coarse = {**kwargs, "cell_size": 40.0}
    err2 = (np.abs(kernel_density(pts, method="binned", **coarse).values
                   - kernel_density(pts, method="exact", **coarse).values).max()
            / exact.values.max())
    assert err < err2 < 25 * err


@pytest.mark.parametrize("kernel", ["quartic", "gaussian"])
def test_mass_is_kept(kernel: str) -> None:
    rng = np.random.default_rng(22)
    pts = rng.normal(0, 50, (2000, 2))
    grid = kernel_density(pts, extent=(-1000, -1000, 1000, 1000), cell_size=5.0, bandwidth=40.0,
                          kernel=kernel, method="binned")
    # exact up to the kernel's sampling at cell centres (h = 8 cells here)
    assert grid.values.sum() * grid.cell_size**2 == pytest.approx(len(pts), rel=1e-3)


def test_raster_orientation_and_extent() -> None:
    grid = kernel_density([[12.0, 88.0]], extent=(0, 0, 100, 100), cell_size=10.0, bandwidth=15.0)
    assert grid.shape == (10, 10)
    row, col = np.unravel_index(np.argmax(grid.values), grid.shape)
    assert (row, col) == (1, 1)  # row 1 from the north, column 1: the cell centred on (15, 85)
    x, y = grid.centres()
    assert (x[0], y[0]) == (5.0, 95.0)
    assert grid.transform == (10.0, 0.0, 0.0, 0.0, -10.0, 100.0)


def test_default_extent_cell_size_and_auto_method() -> None:
    pts = np.random.default_rng(23).uniform(0, 1000, (500, 2))
    grid = kernel_density(pts, bandwidth=50.0)
    assert grid.x0 == pytest.approx(pts[:, 0].min() - 50)
    assert min(grid.shape) == 250
    assert grid.method == "binned"  # 500 x 250 x 250 > 2e7
    small = kernel_density(pts[:20], bandwidth=50.0, cell_size=20.0)
    assert small.method == "exact"


def test_bandwidth_rules() -> None:
    rng = np.random.default_rng(24)
    pts = rng.normal(0, 100, (5000, 2))
    # Scott: sigma n^(-1/6) with sigma the per-axis standard deviation
    assert bandwidth_rule(pts, "scott") == pytest.approx(100 * 5000 ** (-1 / 6), rel=0.03)
    # ArcGIS: 0.9 min(SD, sqrt(1/ln2) Dm) n^-0.2; for a 2-D normal SD = 100 sqrt 2, Dm = 100 sqrt(2 ln 2)
    sd, dm = 100 * math.sqrt(2), 100 * math.sqrt(2 * math.log(2))
    expected = 0.9 * min(sd, math.sqrt(1 / math.log(2)) * dm) * 5000 ** -0.2
    assert bandwidth_rule(pts) == pytest.approx(expected, rel=0.03)
    # weights act as repeated points
    few = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 30.0]])
    rep = np.repeat(few, [1, 2, 3], axis=0)
    assert bandwidth_rule(few, "scott", weights=[1, 2, 3]) == pytest.approx(bandwidth_rule(rep, "scott"))
    assert bandwidth_rule(few, "arcgis", weights=[1, 2, 3]) == pytest.approx(bandwidth_rule(rep, "arcgis"))


def test_write_cog(tmp_path: Path) -> None:
    rng = np.random.default_rng(25)
    pts = rng.normal(500_000, 2000, (3000, 2)) + [0, 3_000_000]
    grid = kernel_density(pts, cell_size=10.0, bandwidth=300.0)
    assert min(grid.shape) > 1000
    # a numpy float bandwidth (as grids built elsewhere carry) is tagged as a plain number
    numpy_bandwidth = replace(grid, bandwidth=np.float64(300.0))
    path = write_cog(tmp_path / "kde.tif", numpy_bandwidth, "EPSG:4547", blocksize=256)
    with rasterio.open(path) as src:
        assert src.driver == "GTiff"
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert src.profile["tiled"] and src.block_shapes == [(256, 256)]
        assert src.overviews(1) == [2, 4, 8][: len(src.overviews(1))] and len(src.overviews(1)) >= 2
        assert src.crs.to_epsg() == 4547
        assert tuple(src.transform)[:6] == pytest.approx(grid.transform)
        assert src.tags()["kernel"] == "quartic" and src.tags()["bandwidth"] == "300.0"
        np.testing.assert_allclose(src.read(1), grid.values.astype("float32"))
    with open(path, "rb") as fh:
        head = fh.read(2000)
    assert b"GDAL_STRUCTURAL_METADATA" in head and b"LAYOUT=IFDS_BEFORE_DATA" in head


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"points": [[0, 0]], "bandwidth": -1}, "bandwidth"),
        ({"points": [[0, 0]], "bandwidth": 1, "kernel": "box"}, "kernel"),
        ({"points": [[0, 0]], "bandwidth": 1, "method": "fast"}, "method"),
        ({"points": [[0, 0]], "bandwidth": 1, "extent": (0, 0, 0, 1)}, "extent"),
        ({"points": [[0, 0]], "bandwidth": 1, "weights": [-1]}, "weights"),
        ({"points": [[0, 0]], "bandwidth": 1, "cell_size": 1e-6}, "too large"),
        ({"points": np.zeros((0, 2)), "bandwidth": 1}, "empty"),
        ({"points": [[0, 0], [0, 0]]}, "no spread"),
    ],
)
def test_bad_input(kwargs, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        kernel_density(**kwargs)


def test_write_cog_bad_crs(tmp_path: Path) -> None:
    grid = kernel_density([[0, 0]], extent=(-5, -5, 5, 5), cell_size=1.0, bandwidth=2.0)
    with pytest.raises(ValueError, match="CRS"):
        write_cog(tmp_path / "x.tif", grid, "EPSG:99999999")
