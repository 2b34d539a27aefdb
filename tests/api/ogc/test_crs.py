"""Part 2: CRS84 by default, EPSG:4490/4326 latitude first, EPSG:3857; bbox-crs; Content-Crs."""

from __future__ import annotations

import math

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.usefixtures("exact_counts")  # compared with exact database counts


EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def first_point(client: TestClient, crs: str | None) -> tuple[list[float], str]:
    url = "/ogc/collections/key-sites/items?limit=1&sortby=code" + (f"&crs={crs}" if crs else "")
    r = client.get(url)
    assert r.status_code == 200
    return r.json()["features"][0]["geometry"]["coordinates"], r.headers["content-crs"]


def test_axis_order_of_each_crs(client: TestClient) -> None:
    (lon, lat), header = first_point(client, None)
    assert header == f"<{CRS84}>" and 120 < lon < 121 and 27 < lat < 29
    for code in ("4326", "4490"):  # latitude first in OGC APIs
        coords, header = first_point(client, EPSG + code)
        assert coords == [lat, lon] and header == f"<{EPSG}{code}>"
    (x, y), header = first_point(client, EPSG + "3857")
    assert header == f"<{EPSG}3857>"
    assert x == pytest.approx(6378137 * math.radians(lon), abs=0.05)
    assert y == pytest.approx(6378137 * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)), abs=0.05)


def test_single_item_in_another_crs(client: TestClient) -> None:
    r = client.get(f"/ogc/collections/key-sites/items/1?crs={EPSG}4326")
    assert r.status_code == 200 and r.headers["content-crs"] == f"<{EPSG}4326>"
    lat, lon = r.json()["geometry"]["coordinates"]
    assert 27 < lat < 29 and 120 < lon < 121


@pytest.mark.parametrize(
    "bbox_crs, bbox",
    [
        (CRS84, "120.55,27.95,120.70,28.10"),
        (EPSG + "4326", "27.95,120.55,28.10,120.70"),
        (EPSG + "4490", "27.95,120.55,28.10,120.70"),
    ],
)
def test_bbox_crs_means_the_same_box(client: TestClient, count, bbox_crs: str, bbox: str) -> None:
    doc = client.get(f"/ogc/collections/hazards/items?limit=1&bbox={bbox}&bbox-crs={bbox_crs}").json()
    assert doc["numberMatched"] == count(
        "SELECT count(*) FROM pingan.hazards WHERE ST_Intersects(geom, "
        "ST_MakeEnvelope(120.55, 27.95, 120.70, 28.10, 4490))"
    )


def test_bbox_in_web_mercator(client: TestClient, count) -> None:
    def merc(lon: float, lat: float) -> tuple[float, float]:
        return 6378137 * math.radians(lon), 6378137 * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))

    (x1, y1), (x2, y2) = merc(120.55, 27.95), merc(120.70, 28.10)
    doc = client.get(
        f"/ogc/collections/hazards/items?limit=1&bbox={x1},{y1},{x2},{y2}&bbox-crs={EPSG}3857"
    ).json()
    expected = count(
        "SELECT count(*) FROM pingan.hazards WHERE ST_Intersects(geom, "
        "ST_MakeEnvelope(120.55, 27.95, 120.70, 28.10, 4490))"
    )
    assert abs(doc["numberMatched"] - expected) <= 2  # float round trip at the edges


@pytest.mark.parametrize(
    "query",
    [
        f"crs={EPSG}2000",
        "crs=EPSG:4326",
        f"bbox-crs={EPSG}9999&bbox=1,2,3,4",
        f"filter-crs={EPSG}32651&filter=level='major'",
    ],
)
def test_unsupported_crs_is_a_400(client: TestClient, query: str) -> None:
    r = client.get(f"/ogc/collections/hazards/items?{query}")
    assert r.status_code == 400
    assert r.json()["code"] == "InvalidParameterValue"
    assert client.get(f"/ogc/collections/hazards/items/1?crs={EPSG}2000").status_code == 400
