"""The native item pages answer exactly what the pygeoapi path answers (docs/ogc-api.md)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

QUERIES = [
    "limit=3",
    "limit=7&offset=5&bbox=120.55,27.95,120.70,28.10",
    "limit=4&crs=http://www.opengis.net/def/crs/EPSG/0/4326&sortby=-found_at&properties=code,level",
    "limit=4&crs=http://www.opengis.net/def/crs/EPSG/0/3857",
    "limit=5&datetime=2025-01-01T00:00:00Z/..&filter="
    + quote("level='major' AND T_AFTER(found_at, DATE('2025-06-01'))"),
    "limit=2&skipGeometry=true&level=severe&lang=en",
    "limit=10&offset=29995&bbox=27.95,120.55,28.10,120.70&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/4326",
    "limit=250&sortby=+state,-code",
]


def fetch(client: TestClient, url: str, *, native: bool) -> tuple[dict, dict]:
    client.app.state.ogc.native_items = native
    try:
        r = client.get(url, headers={"Accept": "*/*"})
    finally:
        client.app.state.ogc.native_items = True
    assert r.status_code == 200, r.text
    body = r.json()
    body.pop("timeStamp")
    headers = {k: v for k, v in r.headers.items() if k not in ("content-length", "date")}
    return body, headers


@pytest.mark.parametrize("query", QUERIES)
def test_native_and_pygeoapi_answer_the_same(client: TestClient, query: str) -> None:
    url = f"/ogc/collections/hazards/items?{query}"
    native, native_headers = fetch(client, url, native=True)
    engine, engine_headers = fetch(client, url, native=False)
    assert native == engine
    assert native_headers == engine_headers
    assert native_headers["content-type"] == "application/geo+json"
