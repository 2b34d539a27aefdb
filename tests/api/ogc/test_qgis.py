"""QGIS 3.22 (Debian's python3-qgis, headless) loads our OAPIF layers with every feature and the
right extent, and renders our vector tiles. The PNGs are kept under test-artifacts/ to look at."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "tests/clients/qgis_check.py"
ARTIFACTS = ROOT / "test-artifacts"
SYSTEM_PYTHON = "/usr/bin/python3"


def qgis_available() -> bool:
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import qgis.core"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.fixture(scope="module")
def qgis_report(server: str, logins) -> dict:
    """QGIS with a Basic auth configuration (as analysts set it up), the command centre's login:
    the OAPIF layers and the vector tiles both go through it."""
    if not qgis_available():
        # make test installs python3-qgis (scripts/system-deps.sh --test): missing it is a failure
        pytest.fail("python3-qgis is not installed; run `make test-deps`")
    ARTIFACTS.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env |= {"QT_QPA_PLATFORM": "offscreen", "PINGAN_QGIS_COLLECTIONS": "towns,grids,hazards,cases"}
    out = subprocess.run(
        [SYSTEM_PYTHON, str(SCRIPT), server, str(ARTIFACTS), logins["command"].name,
         logins["command"].password],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    assert lines, (
        f"QGIS printed no report (exit {out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    )
    return json.loads(lines[-1])


@pytest.mark.parametrize("collection", ["towns", "grids", "hazards", "cases"])
def test_qgis_loads_every_feature_with_the_right_extent(qgis_report, count, collection) -> None:
    assert qgis_report["qgis"].startswith("3.22"), qgis_report["qgis"]
    layer = qgis_report["layers"][collection]
    assert layer["valid"], qgis_report["messages"]
    table = {"towns": "towns", "grids": "grids", "hazards": "hazards", "cases": "cases"}[collection]
    n = count(f"SELECT count(*) FROM pingan.{table}")
    assert layer["iterated"] == n
    assert layer["featureCount"] == n
    xmin, ymin, xmax, ymax = (
        count(f"SELECT {agg}({f}(geom)) FROM pingan.{table}")
        for agg, f in (("min", "ST_XMin"), ("min", "ST_YMin"), ("max", "ST_XMax"), ("max", "ST_YMax"))
    )
    got = layer["extent"]
    # within 1e-4 degrees (~10 m): the collection's extent is rounded outwards, never inwards
    want = [xmin, ymin, xmax, ymax]
    assert all(abs(a - b) < 1e-4 for a, b in zip(got, want, strict=True)), (got, want)
    assert got[0] <= xmin and got[1] <= ymin and got[2] >= xmax and got[3] >= ymax, (got, want)


@pytest.mark.parametrize("collection", ["towns", "hazards"])
def test_qgis_renders_vector_tiles(qgis_report, collection) -> None:
    layer = qgis_report["layers"][collection]
    assert layer["tiles_valid"]
    assert layer["drawn_pixels_sampled"] > 200, layer  # something was drawn, not a blank image
    assert Path(layer["tile_png"]).stat().st_size > 1000
