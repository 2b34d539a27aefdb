"""Bad input is a 400 (or 404) with an OGC exception body; never a 500."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

ITEMS = "/ogc/collections/hazards/items"


@pytest.mark.parametrize(
    "query, words",
    [
        ("bbox=120,27,121", "4 or 6"),
        ("bbox=a,b,c,d", "4 or 6"),
        ("bbox=120,27,200,28", "outside"),  # longitude out of range
        ("bbox=120,-95,121,28", "outside"),  # latitude out of range
        ("bbox=120,28,121,27", "north"),  # upside down
        ("bbox=121,27,120,28", "antimeridian"),
        ("bbox=nan,27,121,28", "4 or 6"),
        ("bbox=-2e8,0,1,1&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/3857", "outside"),
        ("bbox-crs=http://www.opengis.net/def/crs/EPSG/0/4326", "without bbox"),
        ("limit=10001", "at most 10000"),
        ("limit=0", "at least 1"),
        ("limit=-5", "at least 1"),
        ("limit=ten", "integer"),
        ("offset=-1", "at least 0"),
        ("offset=99999999999999999999999", "too large"),
        ("sortby=nosuch", "unknown property"),
        ("properties=code,nosuch", "unknown property"),
        ("skipGeometry=maybe", "true or false"),
        ("filter=", "not valid"),
        ("crs=http://www.opengis.net/def/crs/EPSG/0/27700", "not supported"),
    ],
)
def test_bad_parameters(client: TestClient, query: str, words: str | None) -> None:
    for native in (True, False):  # the same 400 whichever path would have served the page
        client.app.state.ogc.native_items = native
        try:
            r = client.get(f"{ITEMS}?{query}")
        finally:
            client.app.state.ogc.native_items = True
        assert r.status_code == 400, (query, r.text)
        body = r.json()
        assert body["code"] == "InvalidParameterValue"
        if words:
            assert words in body["description"], body


def test_equality_parameter_of_the_wrong_type(client: TestClient) -> None:
    r = client.get("/ogc/collections/towns/items?population=many")
    assert r.status_code == 400 and "integer" in r.json()["description"]


def test_errors_leak_nothing(client: TestClient) -> None:
    deep = client.get(ITEMS + "?filter=" + "level = 'a' AND " * 300 + "level = 'b'")
    assert deep.status_code == 400 and "nested" in deep.json()["description"]
    r = client.get(ITEMS + "?filter=" + "(" * 500 + "nosuch = 'a'" + ")" * 500)
    assert r.status_code == 400
    text = r.text.lower()
    assert "traceback" not in text and "select " not in text and "psycopg" not in text
