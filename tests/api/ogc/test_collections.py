"""Collections from the registry: extents from the database, links, queryables."""

from __future__ import annotations

from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from layers.catalog import default_registry

SERVED = ["towns", "villages", "grids", "key-sites", "hazards", "cases", "persons", "persons-by-grid",
          "persons-by-village", "persons-by-town", "hotspots", "index-villages", "index-towns",
          "patrol-routes", "patrol-stops",  # saved patrol plans (issue 9)
          "hotspot-results"]  # the caller's own process results (issue 7)
TILESETS = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"


def test_every_served_layer_and_nothing_else(client: TestClient) -> None:
    ids = [c["id"] for c in client.get("/ogc/collections").json()["collections"]]
    assert ids == SERVED
    assert [layer.id for layer in default_registry().served()] == SERVED
    assert client.get("/ogc/collections/nothing").status_code == 404
    assert client.get("/ogc/collections/nothing/items").status_code == 404


def test_titles_follow_the_language(client: TestClient) -> None:
    assert client.get("/ogc/collections/hazards").json()["title"] == "风险隐患"
    assert client.get("/ogc/collections/hazards?lang=en").json()["title"] == "Risk hazards"
    english = client.get("/ogc/collections/hazards", headers={"Accept-Language": "en"})
    assert english.json()["title"] == "Risk hazards"


def test_spatial_extent_is_the_data_in_crs84(client: TestClient, count) -> None:
    ext = client.get("/ogc/collections/hazards").json()["extent"]
    ((xmin, ymin, xmax, ymax),) = ext["spatial"]["bbox"]
    assert ext["spatial"]["crs"].endswith("/OGC/1.3/CRS84")
    outside = count(
        "SELECT count(*) FROM pingan.hazards WHERE NOT ST_Intersects(geom, "
        "ST_MakeEnvelope(:a, :b, :c, :d, 4490))",
        a=xmin,
        b=ymin,
        c=xmax,
        d=ymax,
    )
    assert outside == 0
    assert 120 < xmin < xmax < 121 and 27 < ymin < ymax < 29  # Ouhai, lon/lat order


def test_temporal_extent_from_the_datetime_property(client: TestClient, count) -> None:
    ((begin, end),) = client.get("/ogc/collections/hazards").json()["extent"]["temporal"]["interval"]
    first = count("SELECT extract(epoch FROM min(found_at))::bigint FROM pingan.hazards")
    last = count("SELECT extract(epoch FROM max(found_at))::bigint FROM pingan.hazards")
    assert int(datetime.fromisoformat(begin).timestamp()) == first
    assert int(datetime.fromisoformat(end).timestamp()) == last
    assert "temporal" not in client.get("/ogc/collections/towns").json()["extent"]


@pytest.mark.parametrize("cid", SERVED)
def test_collection_links(client: TestClient, cid: str) -> None:
    doc = client.get(f"/ogc/collections/{cid}").json()
    links = {(link["rel"], link["type"]): link["href"] for link in doc["links"]}
    assert links[("items", "application/geo+json")].endswith(f"/ogc/collections/{cid}/items?f=json")
    assert links[("http://www.opengis.net/def/rel/ogc/1.0/queryables", "application/schema+json")]
    assert links[(TILESETS, "application/json")].endswith(f"/ogc/collections/{cid}/tiles")
    assert doc["storageCrs"] == "http://www.opengis.net/def/crs/EPSG/0/4490"
    assert "http://www.opengis.net/def/crs/EPSG/0/3857" in doc["crs"]


def test_queryables_come_from_the_registry(client: TestClient) -> None:
    r = client.get("/ogc/collections/hazards/queryables")
    assert r.status_code == 200 and r.headers["content-type"] == "application/schema+json"
    props = r.json()["properties"]
    layer = default_registry()["hazards"]
    assert set(props) == {"geometry", *(p.name for p in layer.properties)}
    assert props["level"] == {"title": "等级", "type": "string", "enum": ["general", "major", "severe"]}
    assert props["found_at"]["format"] == "date-time"
    assert props["found_at"]["x-ogc-role"] == "primary-instant"
    assert props["geometry"]["x-ogc-role"] == "primary-geometry"
    english = client.get("/ogc/collections/hazards/queryables?lang=en").json()["properties"]
    assert english["level"]["title"] == "Level"
    towns = client.get("/ogc/collections/towns/queryables").json()["properties"]
    assert towns["population"]["type"] == "integer" and towns["code"]["x-ogc-role"] == "id"


@pytest.mark.parametrize(
    "path",
    [
        "/ogc/collections/nowhere",
        "/ogc/collections/nowhere/items",
        "/ogc/collections/nowhere/queryables",
        "/ogc/collections/nowhere/items/1",
    ],
)
def test_unknown_collection_is_a_404(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert r.json()["code"] == "NotFound" and "description" in r.json()
