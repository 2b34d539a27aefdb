"""Real clients against the app served by uvicorn: GDAL's OAPIF driver and OWSLib."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from owslib.ogcapi.features import Features
from owslib.util import Authentication

pytestmark = pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="GDAL command-line tools missing")
BBOX = [120.55, 27.95, 120.70, 28.10]


@pytest.fixture(autouse=True, scope="module")
def _credentials(logins) -> None:
    """GDAL and OWSLib log in as the command centre, with HTTP Basic as analysts configure them."""
    login = logins["command"]
    _AUTH.update(user=login.name, password=login.password)


_AUTH: dict[str, str] = {}


def gdal(*args: str) -> str:
    done = subprocess.run(
        list(args),
        capture_output=True,
        text=True,
        timeout=300,
        env={"GDAL_HTTP_TIMEOUT": "120", "PATH": "/usr/bin:/bin",
             "GDAL_HTTP_USERPWD": f"{_AUTH['user']}:{_AUTH['password']}", "GDAL_HTTP_AUTH": "BASIC"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def feature_count(ogrinfo_output: str) -> int:
    return int(re.search(r"^Feature Count: (\d+)$", ogrinfo_output, re.M).group(1))


def test_ogrinfo_counts_the_collection(server: str, count) -> None:
    out = gdal("ogrinfo", "-ro", "-so", f"OAPIF:{server}/ogc/collections/hazards", "hazards")
    assert feature_count(out) == count("SELECT count(*) FROM pingan.hazards")
    assert "Geometry: Point" in out and "TITLE=风险隐患" in out
    xmin, ymin, xmax, ymax = map(
        float, re.search(r"^Extent: \(([\d.]+), ([\d.]+)\) - \(([\d.]+), ([\d.]+)\)$", out, re.M).groups()
    )
    assert 120.3 < xmin < xmax < 120.8 and 27.8 < ymin < ymax < 28.2


def test_ogr2ogr_brings_every_feature(server: str, count, tmp_path: Path) -> None:
    out = tmp_path / "hazards.gpkg"
    gdal(
        "ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{server}/ogc/collections/hazards", "-oo", "PAGE_SIZE=1000"
    )
    assert feature_count(gdal("ogrinfo", "-so", str(out), "hazards")) == count(
        "SELECT count(*) FROM pingan.hazards"
    )
    codes = gdal("ogrinfo", "-q", "-sql", "SELECT count(DISTINCT code) AS n FROM hazards", str(out))
    assert f"n (Integer) = {count('SELECT count(*) FROM pingan.hazards')}" in codes


def test_ogr2ogr_with_a_spatial_filter(server: str, count, tmp_path: Path) -> None:
    out = tmp_path / "cases.gpkg"
    gdal(
        "ogr2ogr",
        "-f",
        "GPKG",
        str(out),
        f"OAPIF:{server}/ogc/collections/cases",
        "-oo",
        "PAGE_SIZE=1000",
        "-spat",
        *map(str, BBOX),
    )
    expected = count(
        "SELECT count(*) FROM pingan.cases WHERE ST_Intersects(geom, "
        "ST_MakeEnvelope(120.55, 27.95, 120.70, 28.10, 4490))"
    )
    assert feature_count(gdal("ogrinfo", "-so", str(out), "cases")) == expected


def test_owslib(server: str, count) -> None:
    api = Features(f"{server}/ogc", auth=Authentication(_AUTH["user"], _AUTH["password"]))
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in api.conformance()["conformsTo"]
    assert [c["id"] for c in api.collections()["collections"]] == [
        "towns",
        "villages",
        "grids",
        "key-sites",
        "hazards",
        "cases",
        "persons",
        "persons-by-grid",
        "persons-by-village",
        "persons-by-town",
        "hotspots",
        "index-villages",
        "index-towns",
        "patrol-routes",  # saved patrol plans (issue 9)
        "patrol-stops",
        "hotspot-results",  # the caller's own process results (issue 7)
    ]
    assert "level" in api.collection_queryables("hazards")["properties"]
    assert api.collection("cases")["id"] == "cases"
    page = api.collection_items("cases", limit=1000, bbox=BBOX)
    expected = count(
        "SELECT count(*) FROM pingan.cases WHERE ST_Intersects(geom, "
        "ST_MakeEnvelope(120.55, 27.95, 120.70, 28.10, 4490))"
    )
    assert page["numberMatched"] == expected
    # OWSLib does not follow links: do it as a client would, from the returned next links
    ids = [f["id"] for f in page["features"]]
    nxt = next((x["href"] for x in page["links"] if x["rel"] == "next"), None)
    while nxt:
        offset = int(re.search(r"[?&]offset=(\d+)", nxt).group(1))
        page = api.collection_items("cases", limit=1000, bbox=BBOX, offset=offset)
        ids += [f["id"] for f in page["features"]]
        nxt = next((x["href"] for x in page["links"] if x["rel"] == "next"), None)
    assert len(ids) == len(set(ids)) == expected
