"""Tests for gis.address on a small literal gazetteer; every expected answer worked out by hand.

Towns: 梧田街道 (W), 茶山街道 (C), 泽雅镇 (Z). 河头村 is in both W and C; 茶山 is both C's short
name and the stem of 茶山村. Standard addresses: 白象路 12, 14 (even side) and 15 (odd side)
in 白象村; 温瑞大道 100 in W's 河头村 (unique in the district); 前街 5 in both 河头村s
(ambiguous without the village); one without road and number (parsed from its text); and
锦园小区3幢 (no road or number at all: exact matches only).
"""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

import gis.address
from gis.address import (
    NO_PLACE,
    Gazetteer,
    GeocodeResult,
    canonical_village_name,
    geocode,
    normalize,
    parse,
)

W, C, Z = "330304002", "330304004", "330304108"
BAIXIANG, HETOU_W, CHASHAN, HETOU_C, DONGOU, ZHIYUAN = (
    W + "001", W + "002", C + "001", C + "002", C + "003", Z + "001")
TOWNS = [(W, "梧田街道", 120.67, 27.97), (C, "茶山街道", 120.70, 27.93), (Z, "泽雅镇", 120.50, 28.00)]
VILLAGES = [
    (BAIXIANG, W, "白象村委会", 120.660, 27.960),  # committee name, read as 白象村
    (HETOU_W, W, "河头村", 120.665, 27.965),
    (CHASHAN, C, "茶山村", 120.700, 27.930),
    (HETOU_C, C, "河头村", 120.705, 27.935),
    (DONGOU, C, "东瓯社区居委会", 120.710, 27.940),  # read as 东瓯社区
    (ZHIYUAN, Z, "纸源村", 120.500, 28.000),
]
P12, P14, P15 = (120.6612, 27.9612), (120.6614, 27.9614), (120.6615, 27.9605)
POINTS = [
    ("浙江省温州市瓯海区梧田街道白象村白象路12号", "白象路", "12", BAIXIANG, *P12),
    ("梧田街道白象村白象路14号", "白象路", "14号", BAIXIANG, *P14),
    ("梧田街道白象村白象路15号", "白象路", "十五号", BAIXIANG, *P15),
    ("梧田街道河头村温瑞大道100号", "温瑞大道", "100", HETOU_W, 120.6655, 27.9655),
    ("梧田街道河头村前街5号", "前街", "5", HETOU_W, 120.6651, 27.9651),
    ("茶山街道河头村前街5号", "前街", "5", HETOU_C, 120.7051, 27.9351),
    ("茶山街道茶山村茶山路8号", None, None, CHASHAN, 120.7008, 27.9308),
    ("锦园小区3幢", None, None, CHASHAN, 120.7020, 27.9320),
]


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return Gazetteer(towns=TOWNS, villages=VILLAGES, points=POINTS,
                     province="浙江省", city="温州市", county="瓯海区")


# (address, level, score, town_code, village_code, (lon, lat) or None)
PLACED = [
    # door: exact, however the address is written
    ("浙江省温州市瓯海区梧田街道白象村白象路12号", "door", 1.0, W, BAIXIANG, P12),
    ("温州市瓯海区梧田街道白象村白象路12号", "door", 1.0, W, BAIXIANG, P12),
    ("梧田街道白象村白象路12号", "door", 1.0, W, BAIXIANG, P12),
    ("中国浙江温州瓯海梧田白象村白象路12号", "door", 1.0, W, BAIXIANG, P12),
    ("梧田街道 白象村 白象路１４號", "door", 1.0, W, BAIXIANG, P14),  # full-width, 號, blanks
    ("梧田街道白象村白象路十四号", "door", 1.0, W, BAIXIANG, P14),
    ("梧田街道白象村委会白象路14号", "door", 1.0, W, BAIXIANG, P14),
    ("梧田白象村白象路14号", "door", 1.0, W, BAIXIANG, P14),  # town shortened
    ("梧田白象白象路14号", "door", 1.0, W, BAIXIANG, P14),  # village shortened too
    ("白象村白象路015号", "door", 1.0, W, BAIXIANG, P15),  # village alone; number with a 0
    ("梧田街道白象路14号", "door", 1.0, W, BAIXIANG, P14),  # no village: searched in the town
    ("梧田街道白象村白象路14号3幢2单元501室", "door", 1.0, W, BAIXIANG, P14),
    ("茶山茶山村茶山路8号", "door", 1.0, C, CHASHAN, (120.7008, 27.9308)),  # point parsed
    ("瓯海区锦园小区3幢", "door", 1.0, C, CHASHAN, (120.7020, 27.9320)),  # exact only
    ("瓯海区温瑞大道100号", "door", 0.9, W, HETOU_W, (120.6655, 27.9655)),  # district-unique
    # door, fuzzy: nearest number on the same side, 0.9 - 0.01 * gap
    ("梧田街道白象村白象路16号", "door", 0.88, W, BAIXIANG, P14),
    ("梧田街道白象村白象路13号", "door", 0.88, W, BAIXIANG, P15),
    ("梧田街道白象村白象路22号", "door", 0.82, W, BAIXIANG, P14),
    ("梧田街道白象村白象路12-3号", "door", 0.9, W, BAIXIANG, P12),
    # village
    ("梧田街道白象村白象路40号", "village", 0.7, W, BAIXIANG, (120.660, 27.960)),  # gap 26
    ("梧田街道白象村", "village", 0.7, W, BAIXIANG, (120.660, 27.960)),
    ("白象村委会", "village", 0.7, W, BAIXIANG, (120.660, 27.960)),
    ("瓯海区梧田白象", "village", 0.7, W, BAIXIANG, (120.660, 27.960)),
    ("地址：梧田街道白象村", "village", 0.7, W, BAIXIANG, (120.660, 27.960)),  # noise first
    ("茶山街道东瓯社区居委会", "village", 0.7, C, DONGOU, (120.710, 27.940)),
    ("东瓯居委会", "village", 0.7, C, DONGOU, (120.710, 27.940)),
    ("东瓯社区幸福路3号", "village", 0.7, C, DONGOU, (120.710, 27.940)),
    ("梧田白象市场", "village", 0.7, W, BAIXIANG, (120.660, 27.960)),  # a market, not a city
    ("茶山河头村", "village", 0.7, C, HETOU_C, (120.705, 27.935)),  # ambiguous name, town given
    ("梧田街道河头村前街7号", "door", 0.88, W, HETOU_W, (120.6651, 27.9651)),
    ("茶山街道茶山", "village", 0.7, C, CHASHAN, (120.700, 27.930)),  # 茶山 after a town: village
    ("茶山村", "village", 0.7, C, CHASHAN, (120.700, 27.930)),
    # town
    ("浙江省温州市瓯海区泽雅镇", "town", 0.4, Z, None, (120.50, 28.00)),
    ("泽雅纸源路3号", "town", 0.4, Z, None, (120.50, 28.00)),  # 纸源路 is a road, not 纸源村
    ("梧田街道李家村5号", "town", 0.4, W, None, (120.67, 27.97)),  # unknown village in a town
    ("茶山大学城", "town", 0.4, C, None, (120.70, 27.93)),
]

REJECTED = [
    ("茶山街道白象村白象路12号", "village 白象村 is not in town 茶山街道 (address contradicts itself)"),
    ("梧田街道茶山街道", "address names two towns, 梧田街道 and 茶山街道 (address contradicts itself)"),
    ("河头村前街5号", "ambiguous village name 河头村 in 2 towns; no town given"),
    ("浙江省温州市鹿城区五马街道解放街1号", "address is outside 温州市瓯海区: it names 鹿城区"),
    ("杭州市西湖区文三路1号", "address is outside 温州市瓯海区: it names 杭州市西湖区"),
    ("浙江省杭州市白象村", "address is outside 温州市瓯海区: it names 杭州市"),
    ("瑞安市塘下镇罗凤村", "address is outside 温州市瓯海区: it names 瑞安市"),
    ("瓯海区塘下镇罗凤村", "town 塘下镇 is not in 温州市瓯海区"),
    ("瓯海区李家村5号", "village 李家村 is not in 温州市瓯海区"),
    ("瓯海区前街5号", NO_PLACE),  # in two villages: no door without the village
    ("温瑞大道100号", NO_PLACE),  # does not even name the district
    ("瓯海大道88号", NO_PLACE),  # 瓯海 here starts a road
    ("asdf!!", NO_PLACE),
    ("12345", NO_PLACE),
    ("", "empty address"),
    ("  ，。 ", "empty address"),
]


def test_placed_addresses(gaz: Gazetteer) -> None:
    addresses = [row[0] for row in PLACED]
    r = geocode(addresses, gaz)
    for k, (address, level, score, town, village, xy) in enumerate(PLACED):
        got = (r.level[k], round(r.score[k], 6), r.town_code[k], r.village_code[k], r.reason[k])
        assert got == (level, score, town, village, None), address
        assert (r.lon[k], r.lat[k]) == pytest.approx(xy), address


def test_rejected_addresses(gaz: Gazetteer) -> None:
    r = geocode([row[0] for row in REJECTED], gaz)
    assert list(r.reason) == [row[1] for row in REJECTED]
    assert np.isnan(r.lon).all() and np.isnan(r.lat).all()
    assert list(r.level) == [None] * len(REJECTED)
    assert list(r.town_code) == list(r.village_code) == [None] * len(REJECTED)
    assert (r.score == 0).all() and not r.placed.any()


def test_result_arrays_align_with_input_and_repeat_rows(gaz: Gazetteer) -> None:
    addresses = ["白象村", None, "白象村", math.nan, "杭州市西湖区", "白象村"]
    r = geocode(addresses, gaz)
    assert isinstance(r, GeocodeResult) and len(r) == 6
    assert r.lon.dtype == np.float64 and r.score.dtype == np.float64 and r.level.dtype == object
    assert list(r.village_code) == [BAIXIANG, None, BAIXIANG, None, None, BAIXIANG]
    assert list(r.reason[[1, 3]]) == ["empty address", "empty address"]
    assert list(r.placed) == [True, False, True, False, False, True]


def test_empty_input(gaz: Gazetteer) -> None:
    r = geocode([], gaz)
    assert len(r) == 0 and r.lon.dtype == np.float64 and r.reason.dtype == object


def test_parse_components(gaz: Gazetteer) -> None:
    p = parse("浙江省温州市瓯海区梧田白象村委会白象路１２号3幢2单元501室(东门)", gaz)
    assert (p.province, p.city, p.county, p.town, p.village) == (
        "浙江省", "温州市", "瓯海区", "梧田街道", "白象村")
    assert (p.town_code, p.village_code, p.issue) == (W, BAIXIANG, None)
    assert (p.road, p.number, p.building, p.unit, p.room, p.remainder) == (
        "白象路", "12", "3", "2", "501", "东门")
    assert p.normalized == "梧田白象村委会白象路12号3幢2单元501室东门"


def test_parse_lanes_and_sub_numbers(gaz: Gazetteer) -> None:
    p = parse("梧田街道白象路88弄5号", gaz)
    assert (p.town, p.village, p.road, p.number) == ("梧田街道", None, "白象路88弄", "5")
    p = parse("茶山街道东瓯社区幸福路12-03号", gaz)
    assert (p.village_code, p.road, p.number) == (DONGOU, "幸福路", "12-3")
    p = parse("泽雅镇纸源村18", gaz)  # no 号 at the very end
    assert (p.village, p.road, p.number) == ("纸源村", None, "18")


def test_parse_leaves_roads_named_after_places_alone(gaz: Gazetteer) -> None:
    p = parse("瓯海大道88号", gaz)
    assert (p.county, p.town, p.road, p.number) == (None, None, "瓯海大道", "88")
    p = parse("梧田大道1号", gaz)
    assert (p.town, p.road) == (None, "梧田大道")
    p = parse("茶山白象东路3号", gaz)
    assert (p.town, p.village, p.road) == ("茶山街道", None, "白象东路")


def test_parse_reports_issues(gaz: Gazetteer) -> None:
    p = parse("河头村", gaz)
    assert (p.village, p.village_code, p.town) == (None, None, None)
    assert p.issue == "ambiguous village name 河头村 in 2 towns; no town given"
    assert parse("杭州市西湖区文三路1号", gaz).issue.startswith("address is outside 温州市瓯海区")


@pytest.mark.parametrize(("text", "expected"), [
    ("浙江省 温州市 瓯海区 梧田街道（白象村）", "浙江省温州市瓯海区梧田街道白象村"),
    ("白象路１２号Ａ座", "白象路12号A座"),
    ("白象路12號", "白象路12号"),
    ("白象路12#", "白象路12号"),
    ("白象路１２－３号", "白象路12-3号"),
    ("白象路十二号", "白象路12号"),
    ("白象路二百零五号", "白象路205号"),
    ("白象路一二三号", "白象路123号"),
    ("白象一巷二号三幢", "白象一巷2号3幢"),  # 一巷 is a name
    ("三垟街道十里河社区", "三垟街道十里河社区"),  # numerals in names stay
    ("白象路十百号", "白象路十百号"),  # malformed: left alone
    ("\u3000\t", ""),
])
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_normalize_drops_only_the_gazetteers_own_region(gaz: Gazetteer) -> None:
    assert normalize("中国浙江省温州市瓯海区梧田街道", gaz) == "梧田街道"
    assert normalize("温州瓯海梧田街道", gaz) == "梧田街道"
    assert normalize("浙江省杭州市西湖区", gaz) == "杭州市西湖区"
    assert normalize("瓯海大道1号", gaz) == "瓯海大道1号"


def test_canonical_village_names() -> None:
    assert canonical_village_name("白象村委会") == "白象村"
    assert canonical_village_name("白象村民委员会") == "白象村"
    assert canonical_village_name("东瓯社区居委会") == "东瓯社区"
    assert canonical_village_name("东瓯居委会") == "东瓯社区"
    assert canonical_village_name("南村村") == "南村村"


def test_gazetteer_is_frozen_and_takes_any_row_sequences(gaz: Gazetteer) -> None:
    with pytest.raises(AttributeError):
        gaz.county = "鹿城区"  # type: ignore[misc]
    rows = Gazetteer(towns=np.array(TOWNS, dtype=object), villages=[list(v) for v in VILLAGES],
                     province="浙江省", city="温州市", county="瓯海区")
    assert repr(rows) == "Gazetteer(浙江省温州市瓯海区: 3 towns, 6 villages, 0 address points)"
    assert geocode(["茶山河头村5号"], rows).village_code[0] == HETOU_C


def test_gazetteer_refuses_orphans() -> None:
    with pytest.raises(ValueError, match="lacks: 330304009"):
        Gazetteer(towns=TOWNS, villages=[*VILLAGES, ("330304009001", "330304009", "郭溪村", 1, 2)],
                  province="浙江省", city="温州市", county="瓯海区")
    with pytest.raises(ValueError, match="lacks: 330304009001"):
        Gazetteer(towns=TOWNS, villages=VILLAGES, points=[("郭溪村1号", "", "1", "330304009001", 1, 2)],
                  province="浙江省", city="温州市", county="瓯海区")


def test_standard_address_at_two_places_is_not_a_door(gaz: Gazetteer) -> None:
    twice = Gazetteer(
        towns=TOWNS, villages=VILLAGES, province="浙江省", city="温州市", county="瓯海区",
        points=[("白象村白象路12号", "白象路", "12", BAIXIANG, *P12),
                ("白象村白象路12号", "白象路", "12", BAIXIANG, *P14)])
    r = geocode(["梧田街道白象村白象路12号"], twice)
    assert (r.level[0], r.score[0]) == ("village", 0.7)


def test_docstring_examples() -> None:
    failures, tried = doctest.testmod(gis.address)
    assert (failures, tried > 5) == (0, True)
