"""What tiles hold, decoded and compared with counts the database makes independently."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import text

from layers.catalog import CASES, GRIDS, HAZARDS
from layers.registry import Registry
from tests.tiles.conftest import make_client
from tests.tiles.reference import (
    codes_in_tile,
    count_in_tile,
    decode,
    densest_tile,
    district_tiles,
    tile_url,
)
from tiles.tms import HALF_WORLD, TILE_SIZE

MVT = "application/vnd.mapbox-vector-tile"


def test_dense_z14_tile_holds_every_hazard(client, demo_engine) -> None:
    tile = densest_tile(demo_engine, "hazards", 14)
    expected = codes_in_tile(demo_engine, "hazards", tile)
    assert len(expected) > 1000, "the demo should have a dense hot spot"
    r = client.get(tile_url("hazards", tile))
    assert r.status_code == 200 and r.headers["content-type"] == MVT
    features = decode(r.content)["hazards"]
    assert len(features) == len(expected)
    assert {f["properties"]["code"] for f in features} == expected
    props = features[0]["properties"]
    assert set(props) == set(HAZARDS.tiles.properties)
    assert props["found_at"].endswith("Z") and "T" in props["found_at"]
    assert all(f["geometry"]["type"] == "Point" for f in features)


def test_dense_z14_cases(client, demo_engine) -> None:
    tile = densest_tile(demo_engine, "cases", 14)
    features = decode(client.get(tile_url("cases", tile)).content)["cases"]
    assert {f["properties"]["code"] for f in features} == codes_in_tile(demo_engine, "cases", tile)


@pytest.mark.parametrize("layer", ["hazards", "cases"])
@pytest.mark.parametrize("z", [10, 11])
def test_whole_district_is_aggregated_and_small(client, demo_engine, layer, z) -> None:
    total = 0
    for tile in district_tiles(demo_engine, z):
        r = client.get(tile_url(layer, tile))
        assert r.status_code == 200
        assert len(r.content) < 100_000
        features = decode(r.content).get(layer, []) if r.content else []
        assert all(f["properties"]["aggregated"] is True for f in features)
        for f in features:  # the per-state counts add up to the cell's count
            p = f["properties"]
            assert sum(v for k, v in p.items() if k.startswith("count_")) == p["count"]
        in_tile = sum(f["properties"]["count"] for f in features)
        assert in_tile == count_in_tile(demo_engine, layer, tile)
        total += in_tile
    with demo_engine.connect() as conn:  # every row is counted in exactly one tile
        assert total == conn.execute(text(f"SELECT count(*) FROM pingan.{layer}")).scalar_one()  # noqa: S608


def test_grid_polygons_at_z13(client, demo_engine) -> None:
    """Every z13 tile of the district holds exactly the grids intersecting it (a bounding-box
    test alone would add grids whose box, but not shape, reaches into the tile)."""
    assert count_in_tile(demo_engine, "grids", densest_tile(demo_engine, "hazards", 13)) > 100
    for tile in district_tiles(demo_engine, 13):
        r = client.get(tile_url("grids", tile))
        features = decode(r.content).get("grids", []) if r.content else []
        assert {f["properties"]["code"] for f in features} == codes_in_tile(demo_engine, "grids", tile), tile
        assert {f["geometry"]["type"] for f in features} <= {"Polygon", "MultiPolygon"}


def _vertices(geometry: dict) -> int:
    coords = geometry["coordinates"]
    rings = coords if geometry["type"] == "Polygon" else [r for poly in coords for r in poly]
    return sum(len(ring) for ring in rings)


def test_simplification_reduces_vertices_at_low_zoom(client, demo_engine) -> None:
    tiles = district_tiles(demo_engine, 8)
    with demo_engine.connect() as conn:
        stored = conn.execute(text("SELECT sum(ST_NPoints(geom)) FROM pingan.towns")).scalar_one()
    drawn, codes = 0, set()
    for tile in tiles:
        for f in decode(client.get(tile_url("towns", tile)).content).get("towns", []):
            drawn += _vertices(f["geometry"])
            codes.add(f["properties"]["code"])
    assert len(codes) == 13  # simplified, but no town dropped
    assert drawn < stored / 3
    # and at z14 a town keeps its detail: more vertices per town than at z8
    z14 = densest_tile(demo_engine, "towns", 14)
    detailed = decode(client.get(tile_url("towns", z14)).content)["towns"]
    assert sum(_vertices(f["geometry"]) for f in detailed) > 0


def test_only_polygons_below_a_pixel_are_dropped(client, demo_engine) -> None:
    z = GRIDS.tiles.minzoom
    tile = densest_tile(demo_engine, "grids", z)
    pixel = (2 * HALF_WORLD / 2**z / TILE_SIZE) ** 2
    features = decode(client.get(tile_url("grids", tile)).content)["grids"]
    big = codes_in_tile(demo_engine, "grids", tile, f"ST_Area(ST_Transform(geom, 3857)) >= {pixel}")
    assert len(big) < count_in_tile(demo_engine, "grids", tile)  # the demo has sub-pixel grids at z10
    assert {f["properties"]["code"] for f in features} == big


def test_max_features_fallback_aggregates(demo_url, demo_engine) -> None:
    small = Registry().register(
        dataclasses.replace(HAZARDS, tiles=dataclasses.replace(HAZARDS.tiles, max_features=100)),
        # 0: every grid tile is past the cap, so the partition of grids among tiles is checkable
        dataclasses.replace(GRIDS, tiles=dataclasses.replace(GRIDS.tiles, max_features=0)),
    )
    dense = densest_tile(demo_engine, "hazards", 14)
    with make_client(demo_url, registry=small) as c:
        r = c.get(tile_url("hazards", dense))
        # small: the cells only, not the 1,000+ points beside them (decode would merge two
        # layers of one name, so the size is what shows it)
        assert len(r.content) < 10_000
        features = decode(r.content)["hazards"]
        assert features and all(f["properties"]["aggregated"] for f in features)
        assert sum(f["properties"]["count"] for f in features) == count_in_tile(demo_engine, "hazards", dense)
        # a sparse tile under the cap stays detailed
        sparse = next(t for t in district_tiles(demo_engine, 14)
                      if 0 < count_in_tile(demo_engine, "hazards", t) <= 100)
        detailed = decode(c.get(tile_url("hazards", sparse)).content)["hazards"]
        assert not any(f["properties"].get("aggregated") for f in detailed)
        assert len(detailed) == count_in_tile(demo_engine, "hazards", sparse)
        # polygons past the cap: counted once each, in the tile holding their point on surface
        grids = decode(c.get(tile_url("grids", densest_tile(demo_engine, "hazards", 13))).content)["grids"]
        assert grids and all(f["properties"]["aggregated"] for f in grids)
        total = 0
        for tile in district_tiles(demo_engine, 12):
            r = c.get(tile_url("grids", tile))
            total += sum(f["properties"]["count"] for f in decode(r.content).get("grids", []))
    assert total == 2500


def test_multi_layer_tile(client, demo_engine) -> None:
    z, x, y = densest_tile(demo_engine, "hazards", 13)
    wanted = ["towns", "villages", "grids", "hazards", "cases", "key-sites"]
    r = client.get(f"/ogc/tiles/WebMercatorQuad/{z}/{y}/{x}?collections={','.join(wanted)}")
    assert r.status_code == 200 and r.headers["content-type"] == MVT
    layers = decode(r.content)
    assert set(layers) == set(wanted)
    grids = {f["properties"]["code"] for f in layers["grids"]}
    assert grids == codes_in_tile(demo_engine, "grids", (z, x, y))
    assert all(f["properties"]["aggregated"] for f in layers["hazards"])  # z13 < detail_zoom 14
    # two layers only
    two = decode(client.get(f"/ogc/tiles/WebMercatorQuad/{z}/{y}/{x}?collections=towns,cases").content)
    assert set(two) == {"towns", "cases"}
    # grids start at z10: a z8 dataset tile leaves them out instead of failing
    z8 = district_tiles(demo_engine, 8)[0]
    r8 = client.get(f"/ogc/tiles/WebMercatorQuad/8/{z8[2]}/{z8[1]}?collections=towns,grids")
    assert r8.status_code == 200 and "grids" not in (decode(r8.content) if r8.content else {})


def test_property_filter(client, demo_engine) -> None:
    tile = densest_tile(demo_engine, "hazards", 14)
    r = client.get(tile_url("hazards", tile, "?state=found,assigned"))
    codes = {f["properties"]["code"] for f in decode(r.content).get("hazards", [])}
    expected = codes_in_tile(demo_engine, "hazards", tile, "state IN ('found', 'assigned')")
    assert codes == expected and 0 < len(expected) < len(codes_in_tile(demo_engine, "hazards", tile))
    repeated = client.get(tile_url("hazards", tile, "?state=found&state=assigned"))
    assert {f["properties"]["code"] for f in decode(repeated.content)["hazards"]} == expected


def test_empty_tile_outside_the_district(client) -> None:
    r = client.get("/ogc/collections/hazards/tiles/WebMercatorQuad/14/0/0")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-type"] == MVT



@pytest.mark.parametrize("layer", [HAZARDS, CASES], ids=lambda layer: layer.id)
def test_dense_point_tiles_are_complete_or_aggregated_and_bounded(client, demo_engine, layer) -> None:
    """With the catalog's own settings: a z14 tile holds every point up to ``max_features`` and
    aggregated cells past it, never a silent subset; and a tile at the cap stays under 400 KB."""
    cap = layer.tiles.max_features
    tile = densest_tile(demo_engine, layer.id, 14)
    expected = count_in_tile(demo_engine, layer.id, tile)
    r = client.get(tile_url(layer.id, tile))
    features = decode(r.content)[layer.id]
    if expected <= cap:
        assert len(features) == expected and not any(f["properties"].get("aggregated") for f in features)
    else:
        assert all(f["properties"]["aggregated"] for f in features)
        assert sum(f["properties"]["count"] for f in features) == expected
    # bytes per drawn point on the densest tile (unique codes and timestamps dominate), at the cap
    assert len(r.content) / len(features) * cap < 400_000
