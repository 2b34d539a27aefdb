"""Grid assignment by point in polygon (etl.locate): the grid, village and town of each point,
the lower code on a shared border, and no grid outside the district."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer
from sqlalchemy import text

from etl import locate
from etl.pipeline import load_file
from etl.profile import apply_profile, builtin
from etl.readers import read_file
from gis.datum import UnknownDatumError
from tests.etl.test_pipeline import etl_engine, export, rows, sample  # noqa: F401 - fixtures


def test_points_get_their_grid_village_and_town(demo_engine) -> None:
    with demo_engine.connect() as conn:
        # a vertex two grids share lies in both: the lower code wins; a point inside a grid;
        # a point in the sea; a row that was never placed
        low, high, bx, by = conn.execute(text(
            "SELECT a.code, b.code, ST_X(p.geom), ST_Y(p.geom) FROM pingan.grids a "
            "JOIN pingan.grids b ON a.code < b.code AND ST_Touches(a.geom, b.geom), "
            "LATERAL ST_DumpPoints(ST_Intersection(a.geom, b.geom)) AS p "
            "ORDER BY a.code, b.code LIMIT 1")).one()
        code, village, town, ix, iy = conn.execute(text(
            "SELECT g.code, g.village_code, v.town_code, ST_X(p), ST_Y(p) FROM pingan.grids g "
            "JOIN pingan.villages v ON v.code = g.village_code, ST_PointOnSurface(g.geom) AS p "
            "WHERE g.code <> :low ORDER BY g.code DESC LIMIT 1"), {"low": low}).one()
        tree = locate._grids(conn).tree
        assert len(tree.query(shapely.Point(bx, by), predicate="intersects")) >= 2  # truly on both
        f = pd.DataFrame({"title": ["border", "inside", "sea", "unplaced"]})
        geo = pd.DataFrame({
            "x": [bx, ix, 122.5, np.nan], "y": [by, iy, 27.0, np.nan], "src_datum": "cgcs2000",
            "loc_method": "coordinates", "geocode_level": None, "geocode_score": np.nan,
        })
        frame, outside = locate._assign(locate._grids(conn), f, geo, pd.Series([True, True, True, False]))
    assert frame["grid_code"].tolist() == [low, code, None, None]
    assert frame["village_code"].tolist() == [low[:12], village, None, None]
    assert frame["town_code"].tolist() == [low[:9], town, None, None]
    assert outside.tolist() == [False, False, True, False]
    assert high > low


# -- 经度 0 and 纬度 0: no coordinates ------------------------------------------------------------
def test_zero_zero_is_no_coordinates(etl_engine, sample, tmp_path) -> None:  # noqa: F811
    """Exactly (0, 0) is "no position": such a row is placed by its address (or rejected as
    having neither); one coordinate 0 is still a wrong value. Every row of this CSV has text in
    经度 and 纬度, so the load reads the gazetteer only when a chunk needs it (_late_gazetteer)."""
    df = export(sample.head(6), "ZERO-")
    df.loc[0:3, ["经度", "纬度"]] = 0
    df.loc[3, "地址"] = None  # (0, 0) and no address
    df.loc[5, "经度"] = 0  # 0 and a latitude: outside China, as before
    path = tmp_path / "zero.csv"
    df.to_csv(path, index=False)
    result = load_file(etl_engine, path, "hazards", source="test-zero")
    assert (result.status, result.loaded, result.rejected) == ("done", 4, 2), result
    assert sorted(r.split(":")[0] for r in result.reasons) == ["coordinates outside China",
                                                                "no coordinates and no address"]
    got = dict(rows(etl_engine, "SELECT source_id, loc_method FROM pingan.hazards WHERE source = :s",
                    s="test-zero"))
    ids = df["事件编号"].tolist()
    assert got == {ids[0]: "geocoded", ids[1]: "geocoded", ids[2]: "geocoded", ids[4]: "coordinates"}


def test_zero_zero_rows_are_counted_in_the_warnings(demo_engine, sample, tmp_path) -> None:  # noqa: F811
    df = export(sample.head(3), "ZW-")
    df.loc[0:1, ["经度", "纬度"]] = 0
    path = tmp_path / "zero.xlsx"
    df.to_excel(path, index=False)
    raw = read_file(path)
    mapped = apply_profile(raw, builtin("hazards"))
    with demo_engine.connect() as conn:
        located, rejects = locate.locate(conn, mapped, raw, "wgs84")
    assert located.zeros == 2 and len(located.frame) == 3 and rejects.empty
    assert located.frame["loc_method"].tolist() == ["geocoded", "geocoded", "coordinates"]
    levels = located.frame["geocode_level"].tolist()[:2]  # placed by the sample's addresses
    assert located.warnings == locate.zeros_warning(2) + locate.coarse_warning(
        {"village": levels.count("village"), "town": levels.count("town")})
    assert "2 rows had 经度 0 and 纬度 0" in located.warnings[0]


# -- coordinate systems ---------------------------------------------------------------------------
def test_unknown_datum_option_fails_the_batch_not_each_row(etl_engine, sample, tmp_path) -> None:  # noqa: F811
    """A datum given for the whole file that no name matches fails the load with the accepted
    names; it does not reject every row (twice: as the datum, then as outside China)."""
    path = tmp_path / "option.csv"
    export(sample.head(5), "DOPT-").drop(columns=["坐标系"]).to_csv(path, index=False)
    result = load_file(etl_engine, path, "hazards", source="test-datum-option", datum="gcj2")
    assert (result.status, result.loaded, result.rejected) == ("failed", 0, 0), result
    assert "'gcj2'" in result.error and "accepted: wgs84, cgcs2000, gcj02, bd09" in result.error


def test_datum_option_takes_what_exports_write(etl_engine, sample, tmp_path) -> None:  # noqa: F811
    """The option takes the names of gis.datum: Chinese names, and a CGCS2000 Gauss-Krüger zone
    by its bare EPSG code."""
    to_gk = Transformer.from_crs("EPSG:4490", "EPSG:4549", always_xy=True)
    df = export(sample.head(5), "DGK-").drop(columns=["坐标系"])
    df["经度"], df["纬度"] = to_gk.transform(sample.head(5).x.to_numpy(), sample.head(5).y.to_numpy())
    path = tmp_path / "gk.csv"
    df.to_csv(path, index=False)
    result = load_file(etl_engine, path, "hazards", source="test-datum-gk", datum="4549")
    assert (result.status, result.loaded, result.rejected) == ("done", 5, 0), result
    moved = rows(etl_engine, "SELECT n.src_datum, ST_Distance(n.geom, o.geom) FROM pingan.hazards n "
                 "JOIN pingan.hazards o ON n.source_id = 'DGK-' || o.source_id "
                 "WHERE n.source = 'test-datum-gk' AND o.source = 'demo'")
    assert len(moved) == 5 and all(d == "epsg:4549" and m < 1e-8 for d, m in moved)
    path = tmp_path / "cn.csv"
    export(sample.head(5), "DCN-").drop(columns=["坐标系"]).to_csv(path, index=False)
    result = load_file(etl_engine, path, "hazards", source="test-datum-cn", datum="国家2000坐标系")
    assert (result.status, result.loaded, result.rejected) == ("done", 5, 0), result


def test_an_unknown_datum_in_locate_raises_before_any_row(demo_engine, sample, tmp_path) -> None:  # noqa: F811
    path = tmp_path / "rows.xlsx"
    export(sample.head(4), "DR-").to_excel(path, index=False)
    raw = read_file(path)
    mapped = apply_profile(raw, builtin("hazards"))
    mapped.frame.loc[mapped.frame.index[:2], "datum"] = "google"
    with demo_engine.connect() as conn, pytest.raises(UnknownDatumError, match="'google'; accepted"):
        locate.locate(conn, mapped, raw, "wgs84")
    with demo_engine.connect() as conn, pytest.raises(UnknownDatumError, match="'gcj2'"):
        locate.locate(conn, apply_profile(raw, builtin("hazards")), raw, "gcj2")  # the profile's default


# -- proposed with the etl/profile.py and etl/direct.py + etl/pipeline.py changes -----------------
def test_the_datum_column_takes_what_exports_write(etl_engine, sample, tmp_path) -> None:  # noqa: F811
    """坐标系 values as Chinese exports write them (gis.datum's names); an unknown one is one
    reject for its row, naming the value and the accepted names."""
    to_gk = Transformer.from_crs("EPSG:4490", "EPSG:4549", always_xy=True)
    df = export(sample.head(8), "DCOL-")
    gk = to_gk.transform(sample.x[:2].to_numpy(), sample.y[:2].to_numpy())
    df.loc[0:1, "经度"], df.loc[0:1, "纬度"] = gk
    df.loc[0:1, "坐标系"] = ["EPSG:4549", "4549"]
    df.loc[2:5, "坐标系"] = ["国家2000坐标系", "2000国家大地坐标系", "GPS", "WGS-84"]
    df.loc[6:7, "坐标系"] = ["gcj2", "北京54"]
    path = tmp_path / "columns.csv"
    df.to_csv(path, index=False)
    result = load_file(etl_engine, path, "hazards", source="test-datum-column")
    assert (result.status, result.loaded, result.rejected) == ("done", 6, 2), result
    why = rows(etl_engine, "SELECT reason FROM pingan.etl_rejects WHERE batch_id = :b ORDER BY row_number",
               b=result.batch_id)
    assert [r[0].split(" is not")[0] for r in why] == ["坐标系: gcj2", "坐标系: 北京54"]
    assert all("国家2000" in r[0] and "EPSG:4490-4554" in r[0] for r in why)


def test_zero_zero_rows_are_counted_in_the_batch_warnings(etl_engine, sample, tmp_path) -> None:  # noqa: F811
    df = export(sample.head(4), "ZB-")
    df.loc[0:2, ["经度", "纬度"]] = 0
    path = tmp_path / "zero.csv"
    df.to_csv(path, index=False)
    result = load_file(etl_engine, path, "hazards", source="test-zero-batch")
    assert (result.status, result.loaded, result.rejected) == ("done", 4, 0), result
    assert locate.zeros_warning(3)[0] in result.warnings


def test_a_declared_grid_other_than_the_place_is_listed_in_the_notes(etl_engine, sample, tmp_path) -> None:  # noqa: F811
    """An export's own 所属网格 (code, name, or name after its town) is compared with the grid the
    row's place falls in: the place decides, and the rows that name another grid are listed."""
    part = sample.head(5).reset_index(drop=True)
    names = dict(rows(etl_engine, "SELECT code, name FROM pingan.grids"))
    other = next(code for code in names if code not in set(part.grid_code))
    df = export(part, "DG-")
    df["所属网格"] = [part.grid_code[0], names[part.grid_code[1]], "梧田街道 " + names[part.grid_code[2]],
                   names[other], None]
    path = tmp_path / "declared.csv"
    df.to_csv(path, index=False)
    result = load_file(etl_engine, path, "hazards", source="test-declared-grid")
    assert (result.status, result.loaded, result.rejected) == ("done", 5, 0), result
    notes = [w for w in result.warnings if "所属网格" in w]
    assert notes == [locate.elsewhere_warning([5])[0]], result.warnings  # row 5: the 4th record
    assert "rows 5)" in notes[0]


def test_rows_placed_only_to_a_village_or_town_have_no_grid(etl_engine, sample, tmp_path) -> None:  # noqa: F811
    """An address that names only a village (or only a town) places the row at that area's
    representative point: the row gets that village and town (that town) and no grid, not the
    grid the point happens to fall in. A reload changes nothing."""
    part = sample.head(6).reset_index(drop=True)
    village, town, vname, tname = rows(
        etl_engine,
        "SELECT v.code, t.code, v.name, t.name FROM pingan.villages v JOIN pingan.towns t "
        "ON t.code = v.town_code ORDER BY v.code DESC LIMIT 1")[0]
    df = export(part, "CO-").astype(object)
    df.loc[:3, ["经度", "纬度", "坐标系"]] = None
    df.loc[:1, "地址"] = tname + vname  # the village
    df.loc[2:3, "地址"] = "温州市" + tname  # the town
    path = tmp_path / "coarse.csv"
    df.to_csv(path, index=False, encoding="gbk")
    for _ in range(2):
        result = load_file(etl_engine, path, "hazards", source="test-coarse")
    assert (result.status, result.unchanged, result.rejected) == ("done", 6, 0), result
    assert locate.coarse_warning({"village": 2, "town": 2})[0] in result.warnings
    got = rows(etl_engine, "SELECT source_id, geocode_level, grid_code, village_code, town_code "
               "FROM pingan.hazards WHERE source = 'test-coarse' ORDER BY source_id")
    by_id = {r[0]: r[1:] for r in got}
    ids = "CO-" + part.source_id
    want = [("village", None, village, town)] * 2 + [("town", None, None, town)] * 2
    assert [by_id[i] for i in ids[:4]] == want
    for i, grid in zip(ids[4:], part.grid_code[4:], strict=True):  # by coordinates: their grids
        assert by_id[i] == (None, grid, grid[:12], grid[:9])


def test_a_declared_grid_of_the_matched_area_places_a_coarse_row(etl_engine, sample, tmp_path) -> None:  # noqa: F811
    """A row whose address matched only its village (or town) and whose 所属网格 names a grid of
    that village (town), by code, by name or by its short name, is placed to that grid: level
    'grid', at the grid's representative point. One naming a grid elsewhere stays the village's,
    and the notes list it."""
    (v, vname, tname), = rows(etl_engine, "SELECT v.code, v.name, t.name FROM pingan.villages v JOIN "
                              "pingan.towns t ON t.code = v.town_code ORDER BY v.code DESC LIMIT 1")
    grids = rows(etl_engine, "SELECT code, name, ST_X(p), ST_Y(p) "
                 "FROM pingan.grids, ST_PointOnSurface(geom) p WHERE village_code = :v ORDER BY code", v=v)
    elsewhere = rows(etl_engine, "SELECT code FROM pingan.grids WHERE village_code <> :v LIMIT 1", v=v)[0][0]
    assert len(grids) >= 2
    part = sample.head(5).reset_index(drop=True)
    df = export(part, "DGC-").astype(object)
    df[["经度", "纬度", "坐标系"]] = None
    df["地址"] = [tname + vname] * 4 + [tname]
    short = grids[1][1].removeprefix(vname)
    assert short != grids[1][1]
    df["所属网格"] = [grids[0][0], short, tname + grids[1][1], elsewhere, grids[0][0]]
    path = tmp_path / "declared-coarse.csv"
    df.to_csv(path, index=False)
    result = load_file(etl_engine, path, "hazards", source="test-declared-coarse")
    assert (result.status, result.loaded, result.rejected) == ("done", 5, 0), result
    assert [w for w in result.warnings if "所属网格" in w] == (
        locate.elsewhere_warning([5]) + locate.coarse_warning({"grid": 4, "village": 1}))
    got = {r[0]: r[1:] for r in rows(
        etl_engine, "SELECT source_id, geocode_level, grid_code, village_code, ST_X(geom), ST_Y(geom) "
        "FROM pingan.hazards WHERE source = 'test-declared-coarse'")}
    ids = list("DGC-" + part.source_id)
    for i, g in zip(ids[:3], [grids[0], grids[1], grids[1]], strict=True):
        level, grid, village, x, y = got[i]
        assert (level, grid, village) == ("grid", g[0], v)
        assert (x, y) == pytest.approx((g[2], g[3]), abs=1e-9)
    assert got[ids[3]][:3] == ("village", None, v)  # a grid of another village: not taken
    assert got[ids[4]][:3] == ("grid", grids[0][0], v)  # the town's row, by the grid's code
