"""Item pages: paging and its links, counts, sorting, property selection, single items."""

from __future__ import annotations

from fastapi.testclient import TestClient

BBOX = "120.55,27.95,120.70,28.10"
IN_BBOX = (
    "SELECT count(*) FROM pingan.{t} WHERE ST_Intersects(geom, "
    "ST_MakeEnvelope(120.55, 27.95, 120.70, 28.10, 4490))"
)


def link(doc: dict, rel: str) -> str | None:
    return next((x["href"] for x in doc["links"] if x["rel"] == rel), None)


def test_a_page_with_counts_and_links(client: TestClient, count, exact_counts: None) -> None:
    r = client.get(f"/ogc/collections/cases/items?limit=50&offset=100&bbox={BBOX}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/geo+json"
    assert r.headers["content-crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    doc = r.json()
    assert doc["type"] == "FeatureCollection"
    assert doc["numberReturned"] == len(doc["features"]) == 50
    assert doc["numberMatched"] == count(IN_BBOX.format(t="cases"))
    assert f"offset=150&limit=50&bbox={BBOX}" in link(doc, "next")
    assert f"offset=50&limit=50&bbox={BBOX}" in link(doc, "prev")
    assert link(doc, "collection").endswith("/ogc/collections/cases")
    feature = doc["features"][0]
    assert feature["type"] == "Feature" and feature["geometry"]["type"] == "Point"
    assert set(feature["properties"]) >= {"code", "kind", "state", "accepted_at", "town_code"}
    assert feature["properties"]["accepted_at"].endswith("+00:00")


def test_following_next_links_brings_every_feature_once(client: TestClient, count) -> None:
    url, ids = f"/ogc/collections/cases/items?limit=1000&bbox={BBOX}", []
    while url:
        doc = client.get(url).json()
        ids += [f["id"] for f in doc["features"]]
        url = link(doc, "next")
    assert len(ids) == len(set(ids)) == count(IN_BBOX.format(t="cases"))


def test_default_limit_and_whole_collection_count(client: TestClient, count) -> None:
    doc = client.get("/ogc/collections/villages/items").json()
    assert doc["numberReturned"] == 100
    assert doc["numberMatched"] == count("SELECT count(*) FROM pingan.villages")
    last = client.get(f"/ogc/collections/villages/items?offset={doc['numberMatched'] - 3}").json()
    assert last["numberReturned"] == 3 and link(last, "next") is None


def test_offset_past_the_end(client: TestClient, count) -> None:
    doc = client.get("/ogc/collections/towns/items?offset=500").json()
    assert doc["features"] == [] and doc["numberReturned"] == 0
    assert doc["numberMatched"] == count("SELECT count(*) FROM pingan.towns")


def test_sortby_and_properties(client: TestClient) -> None:
    url = "/ogc/collections/hazards/items?limit=20&sortby=-found_at&properties=code,found_at,code"
    doc = client.get(url).json()
    times = [f["properties"]["found_at"] for f in doc["features"]]
    assert times == sorted(times, reverse=True)
    assert all(set(f["properties"]) == {"code", "found_at"} for f in doc["features"])
    # '+' not percent-encoded arrives as a space: still ascending
    up = client.get("/ogc/collections/towns/items?sortby=+population&properties=population").json()
    pops = [f["properties"]["population"] for f in up["features"]]
    assert pops == sorted(pops)


def test_queryables_as_query_parameters_and_skip_geometry(client: TestClient, count) -> None:
    doc = client.get(
        "/ogc/collections/hazards/items?level=severe&state=closed&skipGeometry=true&limit=1"
    ).json()
    assert doc["numberMatched"] == count(
        "SELECT count(*) FROM pingan.hazards WHERE level = 'severe' AND state = 'closed'"
    )
    assert doc["features"][0]["geometry"] is None


def test_single_item(client: TestClient) -> None:
    first = client.get("/ogc/collections/hazards/items?limit=1").json()["features"][0]
    r = client.get(f"/ogc/collections/hazards/items/{first['id']}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    item = r.json()
    assert item["id"] == first["id"] and item["properties"] == first["properties"]
    assert item["geometry"] == first["geometry"]
    assert any(x["rel"] == "collection" for x in item["links"])
    town = client.get("/ogc/collections/towns/items/330304001").json()
    assert town["id"] == "330304001" and town["geometry"]["type"] == "MultiPolygon"


def test_unknown_items_are_404(client: TestClient) -> None:
    for path in (
        "/ogc/collections/hazards/items/999999999",
        "/ogc/collections/hazards/items/abc",
        "/ogc/collections/hazards/items/4%C2%B9",  # "4¹": str.isdigit() says digits, int() refuses
        "/ogc/collections/hazards/items/1e5",
        "/ogc/collections/towns/items/nowhere",
        "/ogc/collections/hazards/items/99999999999999999999999",
    ):
        r = client.get(path)
        assert r.status_code == 404, path
        assert r.json()["code"] == "NotFound"


def test_html_pages(client: TestClient) -> None:
    for path in (
        "/ogc?f=html",
        "/ogc/collections/hazards?f=html",
        f"/ogc/collections/hazards/items?f=html&limit=5&bbox={BBOX}",
        "/ogc/collections/towns/items/330304001?f=html",
        "/ogc/collections/towns/queryables?f=html",
    ):
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/html")


def test_json_ld_does_not_fail(client: TestClient) -> None:
    assert client.get("/ogc/collections/towns/items?f=jsonld&limit=2").status_code == 200
