"""Landing page, conformance, the OpenAPI document and format negotiation."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.ogc.crs import URIS


def rels(doc: dict) -> dict[str, str]:
    """rel -> href of the first link with that rel."""
    out: dict[str, str] = {}
    for link in doc["links"]:
        out.setdefault(link["rel"], link["href"])
    return out


def test_landing_page_links_what_qgis_needs(client: TestClient) -> None:
    r = client.get("/ogc", headers={"Accept": "application/json"})
    assert r.status_code == 200
    links = rels(r.json())
    assert links["service-desc"].endswith("/ogc/openapi")
    assert links["data"].endswith("/ogc/collections")
    assert links["conformance"].endswith("/ogc/conformance")
    hrefs = [link["href"] for link in r.json()["links"]]
    assert any(h.split("?")[0].endswith("/ogc/processes") for h in hrefs)  # api/ogc/processes serves them
    assert any(h.split("?")[0].endswith("/ogc/jobs") for h in hrefs)
    assert any(h.endswith("/ogc/tileMatrixSets?f=json") for h in hrefs)
    assert "x-powered-by" not in r.headers


def test_conformance_declares_the_parts_served(client: TestClient) -> None:
    classes = set(client.get("/ogc/conformance").json()["conformsTo"])
    for suffix in (
        "ogcapi-features-1/1.0/conf/core",
        "ogcapi-features-1/1.0/conf/geojson",
        "ogcapi-features-1/1.0/conf/oas30",
        "ogcapi-features-1/1.0/conf/html",
        "ogcapi-features-2/1.0/conf/crs",
        "ogcapi-features-3/1.0/conf/filter",
        "ogcapi-features-3/1.0/conf/features-filter",
        "ogcapi-features-3/1.0/conf/queryables",
        "cql2/1.0/conf/cql2-text",
        "cql2/1.0/conf/cql2-json",
        "cql2/1.0/conf/basic-cql2",
        "cql2/1.0/conf/spatial-functions",
        "cql2/1.0/conf/temporal-functions",
        "ogcapi-features-8/1.0/conf/sorting",
        "ogcapi-tiles-1/1.0/conf/mvt",
        "ogcapi-tiles-1/1.0/conf/tilesets-list",
    ):
        assert f"http://www.opengis.net/spec/{suffix}" in classes
    assert not any("ogcapi-features-4" in c or "ogcapi-features-5" in c for c in classes)


def test_openapi_gives_qgis_its_page_size(client: TestClient) -> None:
    r = client.get("/ogc/openapi")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    doc = r.json()
    assert doc["openapi"].startswith("3.0")
    limit = doc["components"]["parameters"]["limit"]["schema"]
    assert (limit["default"], limit["maximum"]) == (100, 10_000)
    assert "/collections/hazards/items" in doc["paths"]
    assert "/collections/nothing/items" not in doc["paths"]
    text = r.text
    assert '"$ref":"http' not in text.replace(" ", ""), "every $ref is local"
    crs = doc["components"]["parameters"]["crs"]["schema"]["enum"]
    assert crs == list(URIS)


def test_openapi_html_is_swagger(client: TestClient) -> None:
    r = client.get("/ogc/openapi?f=html")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]


def test_accept_negotiation(client: TestClient) -> None:
    # OWSLib sends Accept: */* and no f: it must get JSON; a browser gets HTML.
    assert (
        client.get("/ogc/collections", headers={"Accept": "*/*"}).headers["content-type"]
        == "application/json"
    )
    html = client.get("/ogc/collections", headers={"Accept": "text/html,application/xhtml+xml"})
    assert html.headers["content-type"].startswith("text/html")
    assert client.get("/ogc/collections?f=html").headers["content-type"].startswith("text/html")
    assert client.get("/ogc/conformance?f=html").headers["content-type"].startswith("text/html")


def test_unknown_format_is_a_400(client: TestClient) -> None:
    r = client.get("/ogc/collections/hazards/items?f=xml")
    assert r.status_code == 400
    assert r.json()["code"] == "InvalidParameterValue"
