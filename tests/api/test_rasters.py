"""The raster API (api/routes/rasters.py) on the demo district, as the web service runs it (role
pingan_service, row-level security deciding who reads which raster)."""

from __future__ import annotations

import math
import subprocess
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile
from sqlalchemy import Engine, text

from api.app import create_app
from api.settings import ApiSettings
from etl.density import refresh_density
from gis.hotspots.kde import kernel_density
from layers.db import Principal, transaction
from layers.rasters import read_cog, save_raster
from layers.settings import DatabaseSettings

TILES = "/api/rasters/{id}/tiles/WebMercatorQuad/{z}/{y}/{x}.png"
TMP = Path("/tmp/raster-helper")


@pytest.fixture(scope="module")
def monthly(demo_engine: Engine) -> Iterator[dict[str, int]]:
    ids = {r.layer: r.raster_id for r in refresh_density(demo_engine)}
    yield ids
    with demo_engine.begin() as c:
        c.execute(text("DELETE FROM pingan.rasters WHERE id = ANY(:ids)"), {"ids": list(ids.values())})


@pytest.fixture(scope="module")
def job_raster(svc: Engine, demo_engine: Engine, logins) -> Iterator[int]:
    """A raster made by an analyst's job, stored the way the processes runner stores it: by the
    web service acting for the analyst."""
    owner = logins["analyst"]
    job_id = uuid.uuid4()
    with demo_engine.begin() as c:  # the job row (migration 0011) the raster belongs to
        c.execute(text(
            "INSERT INTO pingan.jobs (id, process_id, owner, owner_role, mode, status, runner)"
            " VALUES (:id, 'kernel-density', :o, 'analyst', 'sync', 'running', 1)"),
            {"id": job_id, "o": owner.name})
    points = [[550_000.0, 3_095_000.0], [551_000.0, 3_095_500.0]]
    grid = kernel_density(points, cell_size=100.0, bandwidth=800.0)
    with transaction(svc, Principal(owner.name, "analyst")) as c:
        rid = save_raster(c, grid, crs=4549, kind="density", layer="hazards", title="an analyst's density",
                          params={"note": "test"}, job_id=job_id)
    yield rid
    with demo_engine.begin() as c:
        c.execute(text("DELETE FROM pingan.jobs WHERE id = :id"), {"id": job_id})


@pytest.fixture(scope="module")
def app(demo_service_url: str, monthly, job_raster):  # noqa: ANN201
    return create_app(ApiSettings(environment="test"), DatabaseSettings(database_url=demo_service_url))


@pytest.fixture(scope="module")
def client(app) -> Iterator[TestClient]:  # noqa: ANN001
    with TestClient(app) as c:
        yield c


def decode_png(png: bytes) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with MemoryFile(png) as mem, mem.open() as src:
            return np.moveaxis(src.read(), 0, -1)


def test_latest_monthly_list_for_the_map_screen(client: TestClient, logins, monthly) -> None:
    r = client.get("/api/rasters", params={"kind": "density", "latest": 1}, headers=logins["analyst"].headers)
    assert r.status_code == 200
    entries = {e["layer"]: e for e in r.json()["rasters"]}
    assert set(entries) == {"hazards", "cases"}
    hz = entries["hazards"]
    assert hz["id"] == monthly["hazards"] and hz["access"] == "district"
    assert hz["tiles"].endswith(f"/api/rasters/{hz['id']}/tiles/WebMercatorQuad/{{z}}/{{y}}/{{x}}.png")
    w, s, e, n = hz["bounds"]
    assert 119 < w < e < 122 and 27 < s < n < 29
    stops = hz["legend"]["stops"]
    assert len(stops) >= 3 and all(a["value"] < b["value"] for a, b in zip(stops, stops[1:], strict=False))
    assert hz["legend"]["units"] == "events per km²"
    # the top of the scale is the stored 99th percentile, in events per km²
    assert hz["legend"]["scale_top"] == pytest.approx(hz["stats"]["percentiles_positive"]["p99"] * 1e6)


def test_metadata(client: TestClient, logins, monthly) -> None:
    r = client.get(f"/api/rasters/{monthly['cases']}", headers=logins["command"].headers)
    assert r.status_code == 200
    doc = r.json()
    assert doc["crs"] == "EPSG:4549" and doc["layer"] == "cases" and doc["period"].endswith("-01")
    assert {link["rel"] for link in doc["links"]} >= {"self", "enclosure", "item"}
    tj = client.get(f"/api/rasters/{monthly['cases']}/tiles/WebMercatorQuad/tilejson.json",
                    headers=logins["command"].headers).json()
    assert tj["tiles"] == [doc["tiles"]] and tj["bounds"] == doc["bounds"]


def test_download_round_trips_byte_exact_and_gdal_sees_a_cog(client: TestClient, demo_engine: Engine,
                                                             logins, monthly) -> None:
    url = f"/api/rasters/{monthly['hazards']}/cog.tif"
    r = client.get(url, headers=logins["analyst"].headers)
    assert r.status_code == 200
    with demo_engine.connect() as c:
        stored = read_cog(c, monthly["hazards"])
    assert r.content == stored
    assert r.headers["content-disposition"].startswith('attachment; filename="density-hazards-')
    assert r.headers["cache-control"].startswith("private") and r.headers["etag"]
    again = client.get(url, headers={**logins["analyst"].headers, "If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and not again.content
    part = client.get(url, headers={**logins["analyst"].headers, "Range": "bytes=100-1123"})
    assert part.status_code == 206 and part.content == stored[100:1124]
    assert part.headers["content-range"] == f"bytes 100-1123/{len(stored)}"
    tail = client.get(url, headers={**logins["analyst"].headers, "Range": "bytes=-16"})
    assert tail.status_code == 206 and tail.content == stored[-16:]
    bad = client.get(url, headers={**logins["analyst"].headers, "Range": f"bytes={len(stored)}-"})
    assert bad.status_code == 416
    TMP.mkdir(exist_ok=True)
    path = TMP / f"download-{uuid.uuid4().hex}.tif"
    path.write_bytes(r.content)
    try:
        info = subprocess.run(["gdalinfo", str(path)], capture_output=True, text=True, check=True).stdout
    finally:
        path.unlink()
    assert "LAYOUT=COG" in info and "Overviews:" in info and "Block=256x256" in info


def test_tile_has_colour_where_dense_and_is_cacheable(client: TestClient, logins, monthly) -> None:
    hz = client.get(f"/api/rasters/{monthly['hazards']}", headers=logins["analyst"].headers).json()
    w, s, e, n = hz["bounds"]
    # the z9 tiles over the district: at least one coloured, the top colour somewhere
    z = 9
    xs = range(int((w + 180) / 360 * 512), int((e + 180) / 360 * 512) + 1)
    ys = range(int((1 - math.asinh(math.tan(math.radians(n))) / math.pi) / 2 * 512),
               int((1 - math.asinh(math.tan(math.radians(s))) / math.pi) / 2 * 512) + 1)
    alphas = []
    for x in xs:
        for y in ys:
            r = client.get(TILES.format(id=hz["id"], z=z, y=y, x=x), headers=logins["analyst"].headers)
            assert r.status_code == 200 and r.headers["content-type"] == "image/png"
            assert r.headers["cache-control"].startswith("private")
            rgba = decode_png(r.content)
            assert rgba.shape == (256, 256, 4)
            alphas.append(int(rgba[:, :, 3].max()))
    assert max(alphas) >= 200
    r = client.get(TILES.format(id=hz["id"], z=z, y=ys[0], x=xs[0]), headers=logins["analyst"].headers)
    assert r.headers["x-cache"] == "HIT"
    again = client.get(TILES.format(id=hz["id"], z=z, y=ys[0], x=xs[0]),
                       headers={**logins["analyst"].headers, "If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    # far outside the district (the other side of the world): a valid, transparent tile
    far = client.get(TILES.format(id=hz["id"], z=z, y=100, x=10), headers=logins["analyst"].headers)
    assert far.status_code == 200 and (decode_png(far.content)[:, :, 3] == 0).all()


@pytest.mark.parametrize("path", ["30/0/0", "3/8/0", "3/0/8", "3/-1/0", "a/0/0", "3/0/x"])
def test_bad_tile_address_is_400(client: TestClient, logins, monthly, path: str) -> None:
    r = client.get(f"/api/rasters/{monthly['hazards']}/tiles/WebMercatorQuad/{path}.png",
                   headers=logins["analyst"].headers)
    assert r.status_code == 400, r.text


def test_unknown_raster_is_404(client: TestClient, logins) -> None:
    for path in ("/api/rasters/999999999", "/api/rasters/999999999/cog.tif",
                 TILES.format(id=999999999, z=3, y=3, x=6)):
        assert client.get(path, headers=logins["command"].headers).status_code == 404
    assert client.get("/api/rasters/abc", headers=logins["command"].headers).status_code == 400


def test_anonymous_401_and_public_403(client: TestClient, logins, monthly) -> None:
    rid = monthly["hazards"]
    for path in ("/api/rasters?kind=density&latest=1", f"/api/rasters/{rid}", f"/api/rasters/{rid}/cog.tif",
                 TILES.format(id=rid, z=3, y=3, x=6)):
        assert client.get(path).status_code == 401
        assert client.get(path, headers=logins["public"].headers).status_code == 403


def test_job_raster_only_for_its_owner_and_admins(client: TestClient, logins, job_raster: int) -> None:
    def status(role: str, path: str = "") -> int:
        return client.get(f"/api/rasters/{job_raster}{path}", headers=logins[role].headers).status_code

    assert status("analyst") == 200 and status("admin") == 200
    assert status("analyst", "/cog.tif") == 200
    for other in ("command", "town", "grid"):
        assert status(other) == 404 and status(other, "/cog.tif") == 404
        assert status(other, "/tiles/WebMercatorQuad/3/3/6.png") == 404
        listed = client.get("/api/rasters", headers=logins[other].headers).json()["rasters"]
        assert job_raster not in {e["id"] for e in listed}
    mine = client.get("/api/rasters", headers=logins["analyst"].headers).json()["rasters"]
    entry = next(e for e in mine if e["id"] == job_raster)
    assert entry["access"] == "owner" and entry["owner"] == logins["analyst"].name and entry["job_id"]
    # the latest monthly list never carries a job's raster
    latest = client.get("/api/rasters?latest=1", headers=logins["analyst"].headers).json()["rasters"]
    assert job_raster not in {e["id"] for e in latest}


def test_service_side_may_not_store_district_rasters_or_for_others(svc: Engine, logins) -> None:
    """The service adds only its caller's own job rasters: a monthly (district) raster or one
    claimed for another owner is refused by the database."""
    from sqlalchemy.exc import ProgrammingError

    grid = kernel_density([[550_000.0, 3_095_000.0]], cell_size=100.0, bandwidth=500.0)
    with pytest.raises(ProgrammingError, match="row-level security"), \
            transaction(svc, Principal(logins["analyst"].name, "analyst")) as c:
        save_raster(c, grid, crs=4549, kind="density", layer="hazards", title="x", params={},
                    owner="someone-else", job_id=uuid.uuid4())
    with pytest.raises(ProgrammingError, match="row-level security"), \
            transaction(svc, Principal("system", "system")) as c:
        save_raster(c, grid, crs=4549, kind="density", layer="hazards", title="x", params={})
