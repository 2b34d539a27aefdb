"""The tile API over HTTP: cache, ETag and invalidation, errors, tilesets and TileJSON."""

from __future__ import annotations

import time

import pytest

from layers import versions
from layers.catalog import HAZARDS, default_registry
from tests.tiles.conftest import make_client
from tests.tiles.reference import decode, densest_tile, district_tiles, tile_url


def test_second_request_is_a_cache_hit_with_the_same_etag(client, demo_engine) -> None:
    url = tile_url("cases", densest_tile(demo_engine, "cases", 14))
    stats = client.app.state.tiles.stats
    first = client.get(url)
    hits, misses = stats.hits, stats.misses
    second = client.get(url)
    assert first.headers["x-cache"] == "MISS" and second.headers["x-cache"] == "HIT"
    assert (stats.hits, stats.misses) == (hits + 1, misses)
    assert second.content == first.content
    assert second.headers["etag"] == first.headers["etag"]
    # cases depend on who asks: no shared cache may keep them; the towns are the same for all
    assert first.headers["cache-control"] == "private, max-age=60"
    assert first.headers["vary"] == "Authorization, Cookie"
    towns = client.get("/ogc/collections/towns/tiles/WebMercatorQuad/10/409/857")
    assert towns.headers["cache-control"] == "public, max-age=60" and "vary" not in towns.headers
    assert stats.entries >= 1 and stats.bytes >= len(first.content)


def test_if_none_match_gives_304(client, demo_engine) -> None:
    url = tile_url("hazards", densest_tile(demo_engine, "hazards", 14))
    etag = client.get(url).headers["etag"]
    assert etag.startswith('"') and not etag.startswith('W/')
    r = client.get(url, headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b""
    assert r.headers["etag"] == etag
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    # another tile has another ETag
    other = tile_url("hazards", densest_tile(demo_engine, "cases", 13))
    assert client.get(other).headers["etag"] != etag


def test_bumping_the_layer_version_invalidates(demo_url, demo_engine) -> None:
    url = tile_url("hazards", densest_tile(demo_engine, "hazards", 12))
    with make_client(demo_url, version_ttl_s=0.3) as c:
        before = c.get(url)
        assert c.get(url).headers["x-cache"] == "HIT"
        with demo_engine.begin() as conn:
            versions.bump(conn, ["hazards"])
        time.sleep(0.35)  # the version read is trusted for 0.3 s
        after = c.get(url)
        assert after.headers["x-cache"] == "MISS"
        assert after.headers["etag"] != before.headers["etag"]
        assert c.get(url, headers={"If-None-Match": before.headers["etag"]}).status_code == 200
        # a layer whose version did not move keeps its cached tile
        cases = tile_url("cases", densest_tile(demo_engine, "cases", 12))
        c.get(cases)
        with demo_engine.begin() as conn:
            versions.bump(conn, ["grids"])
        time.sleep(0.35)
        assert c.get(cases).headers["x-cache"] == "HIT"
        # counts of persons per village are made from the persons: a load of persons (which
        # bumps "persons", not the view's own id) makes new tiles of them
        counts = tile_url("persons-by-village", densest_tile(demo_engine, "villages", 10))
        first = c.get(counts)
        assert first.status_code == 200 and c.get(counts).headers["x-cache"] == "HIT"
        with demo_engine.begin() as conn:
            versions.bump(conn, ["persons"])
        time.sleep(0.35)
        again = c.get(counts)
        assert again.headers["x-cache"] == "MISS" and again.headers["etag"] != first.headers["etag"]


def test_cache_off_always_renders(demo_url, demo_engine) -> None:
    url = tile_url("hazards", densest_tile(demo_engine, "hazards", 14))
    with make_client(demo_url, cache_enabled=False) as c:
        first, second = c.get(url), c.get(url)
        assert first.headers["x-cache"] == second.headers["x-cache"] == "MISS"
        assert first.headers["etag"] == second.headers["etag"]
        assert c.app.state.tiles.stats.entries == 0
        assert len(decode(second.content)["hazards"]) == len(decode(first.content)["hazards"])


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/ogc/collections/nope/tiles/WebMercatorQuad/14/6866/13683", 404),
        ("/ogc/collections/nothing/tiles/WebMercatorQuad/14/6866/13683", 404),
        ("/ogc/collections/nothing/tiles", 404),
        ("/ogc/collections/hazards/tiles/WorldCRS84Quad/14/6866/13683", 404),
        ("/ogc/collections/hazards/tiles/WorldCRS84Quad", 404),
        ("/ogc/tileMatrixSets/Nope", 404),
        ("/ogc/collections/hazards/tiles/WebMercatorQuad/4/1/1", 404),  # below minzoom 8
        ("/ogc/collections/hazards/tiles/WebMercatorQuad/19/1/1", 404),  # above maxzoom 18
        ("/ogc/collections/hazards/tiles/WebMercatorQuad/23/0/0", 400),  # no such tile matrix
        ("/ogc/collections/hazards/tiles/WebMercatorQuad/-1/0/0", 400),
        ("/ogc/collections/hazards/tiles/WebMercatorQuad/10/1024/0", 400),  # row out of range
        ("/ogc/collections/hazards/tiles/WebMercatorQuad/10/0/1024", 400),  # column out of range
        ("/ogc/collections/hazards/tiles/WebMercatorQuad/10/-1/0", 400),
        ("/ogc/collections/hazards/tiles/WebMercatorQuad/ten/0/0", 400),
        ("/ogc/collections/hazards/tiles/WebMercatorQuad/10/1.5/0", 400),
        ("/ogc/collections/hazards/tiles/WebMercatorQuad/10/0/0?f=png", 400),
        ("/ogc/collections/hazards/tiles/WebMercatorQuad/10/0/0?colour=red", 400),  # no such property
        ("/ogc/collections/grids/tiles/WebMercatorQuad/13/3433/6841?name=a%00b", 400),  # NUL in a value
        ("/ogc/tiles/WebMercatorQuad/10/0/0?collections=hazards,nope", 404),
        ("/ogc/tiles/WebMercatorQuad/10/0/0?collections=nothing", 404),
        ("/ogc/tiles/WebMercatorQuad/10/0/0?collections=", 404),
        ("/ogc/tiles/WebMercatorQuad/99/0/0", 400),
        ("/ogc/tiles/Nope/10/0/0", 404),
        ("/ogc/tiles/WebMercatorQuad/tilejson.json?collections=nope", 404),
        ("/ogc/tiles/WebMercatorQuad/tilejson.json?collections=", 404),
        ("/ogc/tiles?collections=nothing", 404),
    ],
)
def test_bad_input_gives_an_ogc_exception(client, path, status) -> None:
    r = client.get(path)
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"code", "description"} and body["description"]


def test_tile_matrix_sets(client) -> None:
    listed = client.get("/ogc/tileMatrixSets").json()
    assert [t["id"] for t in listed["tileMatrixSets"]] == ["WebMercatorQuad"]
    tms = client.get(listed["tileMatrixSets"][0]["links"][0]["href"]).json()
    assert tms["crs"] == "http://www.opengis.net/def/crs/EPSG/0/3857"
    assert [m["id"] for m in tms["tileMatrices"]] == [str(z) for z in range(23)]
    m0 = tms["tileMatrices"][0]
    assert m0["cellSize"] == pytest.approx(156543.03392804097)
    assert m0["scaleDenominator"] == pytest.approx(559082264.0287178)
    assert tms["tileMatrices"][14]["matrixWidth"] == 16384


def test_collection_tilesets_and_metadata(client) -> None:
    listed = client.get("/ogc/collections/hazards/tiles").json()
    (summary,) = listed["tilesets"]
    assert summary["dataType"] == "vector"
    meta = client.get(summary["links"][0]["href"]).json()
    template = next(link for link in meta["links"] if link["rel"] == "item")
    assert template["href"] == ("http://testserver/ogc/collections/hazards/tiles/WebMercatorQuad/"
                                "{tileMatrix}/{tileRow}/{tileCol}")
    assert template["type"] == "application/vnd.mapbox-vector-tile" and template["templated"]
    (layer,) = meta["layers"]
    assert (layer["id"], layer["minTileMatrix"], layer["maxTileMatrix"]) == ("hazards", "8", "18")
    assert set(HAZARDS.tiles.properties) <= set(layer["propertiesSchema"]["properties"])
    limits = {m["tileMatrix"]: m for m in meta["tileMatrixSetLimits"]}
    assert set(limits) == {str(z) for z in range(8, 19)}
    assert limits["14"]["minTileCol"] <= 13683 <= limits["14"]["maxTileCol"]


def test_tilejson_lists_the_registry_fields(client) -> None:
    tj = client.get("/ogc/collections/hazards/tiles/WebMercatorQuad/tilejson.json").json()
    assert tj["tilejson"] == "3.0.0"
    assert tj["tiles"] == ["http://testserver/ogc/collections/hazards/tiles/WebMercatorQuad/{z}/{y}/{x}"]
    assert (tj["minzoom"], tj["maxzoom"]) == (8, 18)
    (vl,) = tj["vector_layers"]
    assert vl["id"] == "hazards"
    assert {k: vl["fields"][k] for k in ("code", "state", "count", "aggregated", "count_closed")} == {
        "code": "String", "state": "String", "count": "Number", "aggregated": "Boolean",
        "count_closed": "Number"}
    west, south, east, north = tj["bounds"]
    assert 120.2 < west < east < 120.9 and 27.7 < south < north < 28.2


def test_dataset_tilejson_and_tileset(client) -> None:
    served = [layer.id for layer in default_registry().served()]
    tj = client.get("/ogc/tiles/WebMercatorQuad/tilejson.json").json()
    assert [v["id"] for v in tj["vector_layers"]] == served and "persons" in served  # as command
    picked = client.get("/ogc/tiles/WebMercatorQuad/tilejson.json?collections=grids,hazards").json()
    assert [v["id"] for v in picked["vector_layers"]] == ["grids", "hazards"]
    assert picked["tiles"][0].endswith("/ogc/tiles/WebMercatorQuad/{z}/{y}/{x}?collections=grids,hazards")
    messy = client.get("/ogc/tiles/WebMercatorQuad/tilejson.json?collections=grids,,hazards,grids").json()
    assert messy["tiles"] == picked["tiles"]  # links carry the validated ids, not the raw query
    meta = client.get("/ogc/tiles/WebMercatorQuad").json()
    assert [layer["id"] for layer in meta["layers"]] == served
    assert client.get("/ogc/tiles").json()["tilesets"][0]["dataType"] == "vector"


def test_a_tile_from_the_tilejson_template(client, demo_engine) -> None:
    tj = client.get("/ogc/tiles/WebMercatorQuad/tilejson.json?collections=towns,hazards").json()
    z, x, y = district_tiles(demo_engine, 10)[0]
    url = tj["tiles"][0].replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))
    r = client.get(url.removeprefix("http://testserver"))
    assert r.status_code == 200
