"""`pingan etl load --layer towns|villages|grids`: boundary files keyed on statistical codes,
datums, repair, MultiPolygons, the hierarchy, idempotence and the layer versions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from sqlalchemy import text

from etl.pipeline import load_file
from layers import versions
from tests.etl.conftest import demo_areas


def scalar(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def test_boundaries_load_from_three_formats_and_datums(areas_engine, demo_engine) -> None:
    for layer, r in areas_engine.area_results.items():
        assert (r.status, r.rejected, r.updated) == ("done", 0, 0), (layer, r)
        assert r.loaded == scalar(demo_engine, f"SELECT count(*) FROM pingan.{layer}") > 0
        mine, theirs = demo_areas(areas_engine, layer), demo_areas(demo_engine, layer)
        assert list(mine["code"]) == list(theirs["code"])
        assert list(mine["name"]) == list(theirs["name"])  # GBK .dbf without .cpg read right
        assert (mine["population"] == theirs["population"]).all()
        # GCJ-02 and the Gauss-Krüger projection came back to the original vertices (< 1 cm)
        gap = shapely.hausdorff_distance(mine["geom"].to_numpy(), theirs["geom"].to_numpy())
        assert np.nanmax(gap) < 1e-7, layer
    assert scalar(areas_engine, "SELECT count(*) FROM pingan.villages WHERE town_code <> left(code, 9)") == 0
    assert scalar(areas_engine, "SELECT min(county_code) = max(county_code) FROM pingan.towns")
    assert scalar(areas_engine, "SELECT count(DISTINCT kind) FROM pingan.villages") == 2


def test_reload_changes_nothing_and_a_change_updates(areas_engine, area_files, tmp_path) -> None:
    with areas_engine.connect() as conn:
        before = versions.versions(conn)
    again = load_file(areas_engine, area_files["towns"], "towns", source="bureau")
    assert (again.loaded, again.updated, again.unchanged, again.rejected) == (0, 0, 13, 0)
    with areas_engine.connect() as conn:
        assert versions.versions(conn)["towns"] == before["towns"]  # nothing changed: tile caches stay
    doc = json.loads(area_files["towns"].read_text(encoding="utf-8"))
    doc["features"][0]["properties"]["常住人口"] += 100
    changed = tmp_path / "towns.geojson"
    changed.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    r = load_file(areas_engine, changed, "towns", source="bureau")
    assert (r.loaded, r.updated, r.unchanged) == (0, 1, 12)
    with areas_engine.connect() as conn:
        assert versions.versions(conn)["towns"] == before["towns"] + 1  # a change: tile caches drop
    code = doc["features"][0]["properties"]["统计用区划代码"]
    pop = scalar(areas_engine, "SELECT population FROM pingan.towns WHERE code = :c", c=code)
    assert pop == doc["features"][0]["properties"]["常住人口"]
    r = load_file(areas_engine, area_files["towns"], "towns", source="bureau")  # and back
    assert (r.loaded, r.updated, r.unchanged) == (0, 1, 12)


def _feature(props: dict, geom) -> dict:  # noqa: ANN001
    return {"type": "Feature", "properties": props, "geometry": json.loads(shapely.to_geojson(geom))}


def test_repairs_rejects_and_hierarchy(areas_engine, tmp_path) -> None:
    town_code, name = "330304001", "景山街道"
    town = shapely.from_wkb(bytes(scalar(areas_engine, "SELECT ST_AsBinary(geom) FROM pingan.towns "
                                          "WHERE code = :c", c=town_code)))
    p = town.representative_point()
    x, y, d = p.x, p.y, 0.0005
    bowtie = shapely.Polygon([(x - d, y - d), (x + d, y + d), (x + d, y - d), (x - d, y + d)])
    far = shapely.box(x + 1, y + 1, x + 1.01, y + 1.01)  # 100 km away: outside its town
    features = [
        _feature({"村社代码": town_code + "901", "村社名称": "测试一村"}, bowtie),
        _feature({"村社代码": town_code + "902", "村社名称": "测试二村"}, shapely.Point(x, y)),
        _feature({"村社代码": "12345", "村社名称": "测试三村"}, shapely.box(x, y, x + d, y + d)),
        _feature({"村社代码": "330304999001", "村社名称": "测试四村"}, shapely.box(x, y, x + d, y + d)),
        _feature({"村社代码": town_code + "905", "村社名称": "测试五社区"}, far),
        _feature({"村社代码": town_code + "906", "村社名称": "测试六"}, shapely.box(x, y, x + d, y + d)),
    ]
    path = tmp_path / "villages.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
                    encoding="utf-8")
    r = load_file(areas_engine, path, "villages", source="test-bad")
    assert (r.status, r.loaded, r.rejected) == ("done", 1, 5), r
    assert any("repaired" in w for w in r.warnings)
    geom_type, valid, parts = (
        scalar(areas_engine, f"SELECT {f}(geom) FROM pingan.villages WHERE code = :c", c=town_code + "901")
        for f in ("GeometryType", "ST_IsValid", "ST_NumGeometries")
    )
    assert (geom_type, valid, parts) == ("MULTIPOLYGON", True, 2)
    with areas_engine.connect() as conn:
        reasons = dict(conn.execute(text(
            "SELECT row_number, reason FROM pingan.etl_rejects WHERE batch_id = :b"),
            {"b": r.batch_id}).all())
    assert "not an area" in reasons[2] and "a point" in reasons[2]
    assert "12-digit statistical code" in reasons[3]
    assert "load the towns first" in reasons[4]
    assert "outside its 镇街 " + name in reasons[5]
    assert "类型 missing" in reasons[6]


def test_a_table_without_boundaries_fails_whole(areas_engine, tmp_path) -> None:
    path = tmp_path / "towns.csv"
    path.write_text("统计用区划代码,镇街名称\n330304001,景山街道\n", encoding="utf-8")
    r = load_file(areas_engine, path, "towns", source="csv")
    assert r.status == "failed" and "needs boundaries" in r.error


@pytest.mark.parametrize("layer", ["towns", "villages", "grids"])
def test_versions_are_bumped_by_every_area_load(areas_engine, layer) -> None:
    with areas_engine.connect() as conn:
        assert versions.versions(conn).get(layer, 0) >= 1


def test_an_unknown_datum_option_fails_an_area_load_once(areas_engine, area_files) -> None:
    """As for points: a --datum no name table knows fails the batch with the accepted names,
    instead of one reject per area."""
    r = load_file(areas_engine, area_files["towns"], "towns", source="bureau", datum="gcj2")
    assert (r.status, r.rejected) == ("failed", 0)
    assert "unknown datum 'gcj2'" in r.error and "国家2000" in r.error
