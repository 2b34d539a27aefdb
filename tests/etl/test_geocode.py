"""etl.geocode against the real PostGIS with the demo district (scale 1, seed 42).

The demo's records carry addresses '浙江省温州市瓯海区{town}{village}{road}{n}号' and a point;
the village the database puts the point in (ST_Contains) is the answer the geocoder must give.
Standard addresses are inserted in transactions that are rolled back.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Connection, Engine, text

import etl.geocode
from etl.geocode import GazetteerError, geocode_frame, load_gazetteer
from gis.address import normalize

COLUMNS = ["lon", "lat", "level", "score", "town_code", "village_code", "reason"]


@pytest.fixture
def demo_conn(demo_engine: Engine) -> Iterator[Connection]:
    """A connection to the demo database inside a transaction that is rolled back."""
    with demo_engine.connect() as c:
        tx = c.begin()
        try:
            yield c
        finally:
            tx.rollback()


def records(conn: Connection, table: str) -> pd.DataFrame:
    """A table's addresses with the village and town that contain each record's point."""
    return pd.DataFrame(conn.execute(text(f"""
        SELECT r.address, v.code AS village_code, v.town_code
        FROM pingan.{table} AS r
        CROSS JOIN LATERAL (SELECT code, town_code FROM pingan.villages AS v
                            WHERE ST_Contains(v.geom, r.geom) ORDER BY code LIMIT 1) AS v
        WHERE r.address IS NOT NULL""")).all())  # noqa: S608 (table names are literals below)


def test_load_gazetteer(demo_conn: Connection) -> None:
    gaz = load_gazetteer(demo_conn)
    assert (gaz.province, gaz.city, gaz.county) == ("浙江省", "温州市", "瓯海区")
    assert (len(gaz.towns), len(gaz.villages), len(gaz.points)) == (13, 197, 0)
    assert {t[1] for t in gaz.towns} >= {"梧田街道", "茶山街道", "泽雅镇"}
    # representative points lie inside their own polygons
    for table, rows in (("towns", gaz.towns), ("villages", gaz.villages)):
        outside = demo_conn.execute(text(f"""
            SELECT count(*) FROM unnest(CAST(:codes AS text[]), CAST(:lon AS float8[]),
                                        CAST(:lat AS float8[])) AS p(code, lon, lat)
            JOIN pingan.{table} AS a ON a.code = p.code
            WHERE NOT ST_Contains(a.geom, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4490))"""),  # noqa: S608
            {"codes": [r[0] for r in rows], "lon": [r[-2] for r in rows],
             "lat": [r[-1] for r in rows]}).scalar_one()
        assert outside == 0, table


def test_load_gazetteer_needs_one_known_district(
    demo_conn: Connection, conn: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(GazetteerError, match="0 districts"):
        load_gazetteer(conn)  # the empty test database
    gaz = load_gazetteer(demo_conn, "330304", names=("浙江省", "温州市", "瓯海区"))
    assert len(gaz.villages) == 197
    monkeypatch.delitem(etl.geocode.COUNTY_NAMES, "330304")
    with pytest.raises(GazetteerError, match="names of district 330304"):
        load_gazetteer(demo_conn)


@pytest.mark.parametrize("table", ["persons", "hazards", "key_sites"])
def test_demo_addresses_geocode_to_the_village_the_database_assigns(
    demo_conn: Connection, table: str
) -> None:
    rec = records(demo_conn, table)
    assert len(rec) > 100, "the demo's records must be readable"
    out = geocode_frame(demo_conn, rec["address"])
    at_village = (out["level"] == "village") & (out["village_code"] == rec["village_code"])
    assert at_village.mean() >= 0.95, pd.concat([out, rec.add_suffix("_db")], axis=1)[~at_village].head(10)
    # whatever is placed is placed in the right town, and nothing is placed without a reason
    placed = out["level"].notna()
    assert (out.loc[placed, "town_code"] == rec.loc[placed, "town_code"]).all()
    assert out.loc[~placed, "reason"].notna().all()


def insert_point(conn: Connection, address: str, road: str, number: str, grid_code: str,
                 lon: float, lat: float, source_id: str) -> None:
    conn.execute(text("""
        INSERT INTO pingan.address_points (address, normalized, road, number, grid_code,
            village_code, town_code, geom, source, source_id)
        VALUES (:address, :normalized, :road, :number, :grid, left(:grid, 12), left(:grid, 9),
                ST_SetSRID(ST_MakePoint(:lon, :lat), 4490), 'test', :sid)"""),
        {"address": address, "normalized": normalize(address), "road": road, "number": number,
         "grid": grid_code, "lon": lon, "lat": lat, "sid": source_id})


def test_door_level_from_address_points(demo_conn: Connection) -> None:
    grid = demo_conn.execute(text("""
        SELECT g.code, v.name AS village, t.name AS town,
               ST_X(ST_PointOnSurface(g.geom)) AS lon, ST_Y(ST_PointOnSurface(g.geom)) AS lat
        FROM pingan.grids g JOIN pingan.villages v ON v.code = g.village_code
        JOIN pingan.towns t ON t.code = v.town_code
        WHERE t.name = '梧田街道' ORDER BY g.code LIMIT 1""")).one()
    base = f"浙江省温州市瓯海区{grid.town}{grid.village}"
    for n, dx in ((10, 0.0), (12, 0.0002), (11, -0.0002)):
        insert_point(demo_conn, f"{base}测试路{n}号", "测试路", str(n), grid.code,
                     grid.lon + dx, grid.lat, f"door-{n}")
    short_town = grid.town.removesuffix("街道")
    addresses = pd.Series(
        [f"{base}测试路12号",  # exact
         f"{short_town}{grid.village}测试路１２号",  # town shortened, full-width digits
         f"{base}测试路16号",  # fuzzy: 12 is the nearest even number, 4 away
         f"{base}测试路99号",  # too far from any number: the village
         f"{base}另一路10号",  # another road: the village
         "杭州市西湖区测试路12号"],  # elsewhere
        index=[101, 102, 103, 104, 105, 106])
    out = geocode_frame(demo_conn, addresses)
    assert list(out.columns) == COLUMNS and list(out.index) == list(addresses.index)
    assert list(out["level"].fillna("-")) == ["door", "door", "door", "village", "village", "-"]
    assert np.allclose(out["score"], [1.0, 1.0, 0.86, 0.7, 0.7, 0.0])
    assert np.allclose(out.loc[[101, 102, 103], "lon"], grid.lon + 0.0002)
    assert (out.loc[101:105, "village_code"] == grid.code[:12]).all()
    assert out.loc[106, "reason"].startswith("address is outside 温州市瓯海区")


def test_a_demo_address_becomes_a_door_once_it_is_a_standard_address(demo_conn: Connection) -> None:
    row = demo_conn.execute(text("""
        SELECT address, grid_code, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM pingan.hazards
        WHERE address IS NOT NULL ORDER BY id LIMIT 1""")).one()
    before = geocode_frame(demo_conn, pd.Series([row.address]))
    insert_point(demo_conn, row.address, None, None, row.grid_code, row.lon, row.lat, "hazard-1")
    after = geocode_frame(demo_conn, pd.Series([row.address]))
    assert (before.loc[0, "level"], after.loc[0, "level"], after.loc[0, "score"]) == (
        "village", "door", 1.0)
    assert (after.loc[0, "lon"], after.loc[0, "lat"]) == pytest.approx((row.lon, row.lat))


def test_a_memo_parses_each_address_once_across_calls(demo_conn: Connection, monkeypatch) -> None:
    """A file geocoded a chunk at a time parses each distinct address once (the memo), with the
    same answers as without it, and the memo holds at most MEMO_SIZE addresses."""
    from gis import address

    gaz = load_gazetteer(demo_conn)
    texts = demo_conn.execute(
        text("SELECT DISTINCT address FROM pingan.hazards WHERE address IS NOT NULL ORDER BY 1 LIMIT 40")
    ).scalars().all()
    parsed: list[str] = []
    one = address._geocode_one
    monkeypatch.setattr(address, "_geocode_one", lambda t, idx: (t and parsed.append(t)) or one(t, idx))
    memo: dict = {}
    first = geocode_frame(None, pd.Series(texts[:30]), gaz, memo)
    assert len(parsed) == 30 and len(memo) == 30
    second = geocode_frame(None, pd.Series(texts[10:]), gaz, memo)
    assert len(parsed) == 40  # only the 10 new ones
    plain = geocode_frame(None, pd.Series(texts[10:]), gaz)
    pd.testing.assert_frame_equal(second, plain)
    pd.testing.assert_frame_equal(first.iloc[10:].reset_index(drop=True), plain.iloc[:20])
    monkeypatch.setattr(address, "MEMO_SIZE", 35)
    geocode_frame(None, pd.Series(texts), gaz, memo := {})
    assert len(memo) == 35


def test_a_third_name_is_read_after_two() -> None:
    """Up to three names are read one after another (gis.address._Names, one compiled name read
    again where the last ended): a town written twice still reaches its village, and a third name
    that is another town is a contradiction, as when the three were one regex."""
    from gis.address import Gazetteer, parse

    towns = [("330304002", "梧田街道", 120.67, 27.97), ("330304004", "茶山街道", 120.70, 27.93)]
    gaz = Gazetteer(towns=towns,
                    villages=[("330304002001", "330304002", "白象村", 120.66, 27.96)],
                    province="浙江省", city="温州市", county="瓯海区")
    p = parse("梧田街道梧田白象村白象路12号", gaz)
    assert (p.town_code, p.village_code, p.road, p.issue) == ("330304002", "330304002001", "白象路", None)
    p = parse("梧田街道梧田茶山街道白象路12号", gaz)
    assert p.issue == "address names two towns, 梧田街道 and 茶山街道 (address contradicts itself)"
    p = parse("地址：梧田街道梧田白象村", gaz)  # after noise: read from the first full name
    assert (p.village_code, p.issue) == ("330304002001", None)
