"""Tests for gis.datum.

Reference values were computed once with prcoords 1.0.2 (a public-domain, independent
implementation of the same public algorithms) and with pyproj for the projected points, then
written down here as literals.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyproj import Geod

from gis.datum import (
    DATUMS,
    UnknownDatumError,
    bd09_to_gcj02,
    bd09_to_wgs84,
    check_datum,
    datum_name,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    to_cgcs2000,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

CM = 0.01
WENZHOU = (120.64, 27.97)  # Ouhai district government, WGS84
_GEOD = Geod(ellps="WGS84")

# (WGS84 lon, lat) -> (GCJ-02 lon, lat), (BD-09 lon, lat), from prcoords.
REFERENCE = [
    ((120.64, 27.97), (120.64394503068539, 27.966614983437708),
     (120.65050760484927, 27.97237511207202)),
    ((116.391, 39.907), (116.39724095859891, 39.9084011088464),
     (116.40361442376565, 39.91474390075958)),
    ((121.4737, 31.2304), (121.47822305927693, 31.22845773757727),
     (121.484781468503, 31.234310593689997)),
    ((113.2644, 23.1291), (113.26972959210308, 23.126423339922844),
     (113.27615075157122, 23.13271125723948)),
    ((87.6168, 43.8256), (87.61964994946926, 43.82680539311119),
     (87.62609977081571, 43.83294979479328)),
    ((91.1322, 29.6604), (91.1337433248789, 29.657679589949623),
     (91.14034276218612, 29.663425674028154)),
]

# (120.64 E, 27.97 N) projected once with pyproj to CGCS2000 3-degree Gauss-Krüger:
# EPSG:4549 (CM 120E, no zone prefix) and EPSG:4528 (zone 40, zone number in the easting).
GK_4549 = (562969.759897739, 3095282.121070849)
GK_4528 = (40562969.75989774, 3095282.121070849)


def _distance_m(lon1, lat1, lon2, lat2) -> np.ndarray:
    return np.asarray(_GEOD.inv(lon1, lat1, lon2, lat2)[2])


def _china_sample(n: int = 200_000, seed: int = 20240501) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(73.5, 135.0, n), rng.uniform(18.2, 53.5, n)


def _wenzhou_sample(n: int = 50_000, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(119.6, 121.3, n), rng.uniform(27.0, 28.6, n)


def _one_step_gcj02_to_wgs84(lon, lat):
    """The usual inverse: subtract the shift taken at the shifted point."""
    glon, glat = wgs84_to_gcj02(lon, lat)
    return 2 * np.asarray(lon) - glon, 2 * np.asarray(lat) - glat


def _one_step_bd09_to_wgs84(lon, lat):
    k = math.pi * 3000.0 / 180.0
    x, y = np.asarray(lon) - 0.0065, np.asarray(lat) - 0.006
    r = np.hypot(x, y) - 2e-5 * np.sin(y * k)
    theta = np.arctan2(y, x) - 3e-6 * np.cos(x * k)
    return _one_step_gcj02_to_wgs84(r * np.cos(theta), r * np.sin(theta))


@pytest.mark.parametrize(("wgs", "gcj", "bd"), REFERENCE)
def test_forward_matches_reference(wgs, gcj, bd):
    np.testing.assert_allclose(wgs84_to_gcj02(*wgs), gcj, rtol=0, atol=1e-9)
    np.testing.assert_allclose(wgs84_to_bd09(*wgs), bd, rtol=0, atol=1e-9)
    np.testing.assert_allclose(gcj02_to_bd09(*gcj), bd, rtol=0, atol=1e-9)


def test_forward_is_vectorised_like_the_scalar_path():
    wgs = np.array([r[0] for r in REFERENCE])
    gcj = np.array([r[1] for r in REFERENCE])
    lon, lat = wgs84_to_gcj02(wgs[:, 0], wgs[:, 1])
    np.testing.assert_allclose(np.column_stack([lon, lat]), gcj, rtol=0, atol=1e-9)


def test_gcj02_shift_at_wenzhou_has_the_known_sign_and_size():
    lon, lat = wgs84_to_gcj02(*WENZHOU)
    dlon, dlat = float(lon) - WENZHOU[0], float(lat) - WENZHOU[1]
    assert 0.003 < dlon < 0.0046
    assert -0.0035 < dlat < -0.0022
    assert 300 < _distance_m(*WENZHOU, lon, lat) < 700


@pytest.mark.parametrize("sample", [_china_sample, _wenzhou_sample])
def test_gcj02_round_trip_within_1cm(sample):
    lon, lat = sample()
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert _distance_m(lon, lat, *back).max() < CM


@pytest.mark.parametrize("sample", [_china_sample, _wenzhou_sample])
def test_bd09_round_trip_within_1cm(sample):
    lon, lat = sample()
    assert _distance_m(lon, lat, *bd09_to_wgs84(*wgs84_to_bd09(lon, lat))).max() < CM
    assert _distance_m(lon, lat, *bd09_to_gcj02(*gcj02_to_bd09(lon, lat))).max() < CM


def test_round_trip_at_wenzhou_and_across_105e():
    # sqrt(|lon - 105|) in the shift has no bounded slope at 105 E: check it still converges.
    lon = np.array([WENZHOU[0], 104.9999999, 105.0, 105.0000001])
    lat = np.array([WENZHOU[1], 30.0, 30.0, 30.0])
    for forward, inverse in ((wgs84_to_gcj02, gcj02_to_wgs84), (wgs84_to_bd09, bd09_to_wgs84)):
        back_lon, back_lat = inverse(*forward(lon, lat))
        np.testing.assert_allclose(back_lon, lon, rtol=0, atol=1e-9)
        np.testing.assert_allclose(back_lat, lat, rtol=0, atol=1e-9)


@pytest.mark.parametrize(("forward", "inverse", "one_step"), [
    (wgs84_to_gcj02, gcj02_to_wgs84, _one_step_gcj02_to_wgs84),
    (wgs84_to_bd09, bd09_to_wgs84, _one_step_bd09_to_wgs84),
])
def test_iterative_inverse_beats_one_step(forward, inverse, one_step):
    lon, lat = _wenzhou_sample()
    shifted = forward(lon, lat)
    assert _distance_m(lon, lat, *one_step(*shifted)).max() > 1.0
    assert _distance_m(lon, lat, *inverse(*shifted)).max() < CM


@pytest.mark.parametrize("point", [(-0.1276, 51.5072), (151.2093, -33.8688)])
def test_outside_china_is_not_shifted_by_gcj02(point):
    for func in (wgs84_to_gcj02, gcj02_to_wgs84):
        lon, lat = func(*point)
        assert (float(lon), float(lat)) == point


@pytest.mark.parametrize(("inside", "outside"), [
    ((72.01, 30.0), (72.0, 30.0)),
    ((137.83, 40.0), (137.84, 40.0)),
    ((110.0, 0.83), (110.0, 0.82)),
    ((110.0, 55.82), (110.0, 55.83)),
])
def test_gcj02_rectangle_edges(inside, outside):
    # The standard rectangle 72.004-137.8347 E, 0.8293-55.8271 N, edges included.
    assert _distance_m(*inside, *wgs84_to_gcj02(*inside)) > 100
    lon, lat = wgs84_to_gcj02(*outside)
    assert (float(lon), float(lat)) == outside


def test_outside_test_is_per_point():
    lon = np.array([-0.1276, WENZHOU[0], 151.2093])
    lat = np.array([51.5072, WENZHOU[1], -33.8688])
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert glon[[0, 2]].tolist() == lon[[0, 2]].tolist()
    assert glat[[0, 2]].tolist() == lat[[0, 2]].tolist()
    assert glon[1] == pytest.approx(REFERENCE[0][1][0], abs=1e-9)
    back_lon, back_lat = gcj02_to_wgs84(glon, glat)
    np.testing.assert_allclose(back_lon, lon, rtol=0, atol=1e-9)
    np.testing.assert_allclose(back_lat, lat, rtol=0, atol=1e-9)


@pytest.mark.parametrize("func", [wgs84_to_gcj02, gcj02_to_wgs84, gcj02_to_bd09, bd09_to_gcj02,
                                  wgs84_to_bd09, bd09_to_wgs84])
def test_nan_propagates_without_warning(func):
    lon = np.array([np.nan, WENZHOU[0], np.nan, -0.1276])
    lat = np.array([27.97, np.nan, np.nan, 51.5072])
    out_lon, out_lat = func(lon, lat)
    assert np.isnan(out_lon[[0, 2]]).all() and np.isnan(out_lat[[1, 2]]).all()
    assert np.isfinite(out_lon[3]) and np.isfinite(out_lat[3])
    all_nan = func([np.nan, np.nan], [np.nan, np.nan])
    assert np.isnan(all_nan).all()
    assert not np.isfinite(func([np.inf, -np.inf], [30.0, np.inf])[0]).any()  # and no warning


@pytest.mark.parametrize("datum", [*DATUMS, "epsg:4549"])
def test_to_cgcs2000_keeps_nan(datum):
    lon, lat = to_cgcs2000([np.nan, 120.0, np.nan], [28.0, np.nan, np.nan], datum)
    assert np.isnan(lon[[0, 2]]).all() and np.isnan(lat[[1, 2]]).all()


def test_scalars_lists_and_broadcasting():
    lon, lat = gcj02_to_wgs84(120.6439, 27.9666)
    assert lon.shape == () and lat.shape == ()
    assert lon.dtype == np.float64 and lat.dtype == np.float64
    lon, lat = wgs84_to_gcj02([120, 121], [28, 28])  # ints in, float64 out
    assert lon.dtype == np.float64 and lon.shape == (2,)
    lon, lat = bd09_to_wgs84(120.65, np.full((3, 4), 27.97))
    assert lon.shape == (3, 4) and lat.shape == (3, 4)
    assert np.ptp(lon) == 0.0


def test_inputs_are_not_modified():
    lon, lat = _wenzhou_sample(1000)
    lon0, lat0 = lon.copy(), lat.copy()
    for func in (wgs84_to_gcj02, gcj02_to_wgs84, bd09_to_wgs84, wgs84_to_bd09):
        func(lon, lat)
    assert np.array_equal(lon, lon0) and np.array_equal(lat, lat0)


def test_datums_are_the_canonical_names():
    assert DATUMS == ("wgs84", "cgcs2000", "gcj02", "bd09")


@pytest.mark.parametrize(("datum", "expected"), [
    ("wgs84", REFERENCE[0][0]),
    ("CGCS2000", REFERENCE[0][0]),
    ("EPSG:4326", REFERENCE[0][0]),
    (" epsg:4490 ", REFERENCE[0][0]),
    ("gcj02", REFERENCE[0][1]),
    ("Amap", REFERENCE[0][1]),
    ("TENCENT", REFERENCE[0][1]),
    ("bd09", REFERENCE[0][2]),
    ("baidu", REFERENCE[0][2]),
])
def test_to_cgcs2000_names_and_aliases(datum, expected):
    lon, lat = to_cgcs2000(*expected, datum)
    np.testing.assert_allclose([lon, lat], REFERENCE[0][0], rtol=0, atol=1e-9)


@pytest.mark.parametrize(("datum", "xy"), [("EPSG:4549", GK_4549), ("epsg:4528", GK_4528)])
def test_to_cgcs2000_from_gauss_kruger(datum, xy):
    lon, lat = to_cgcs2000(*xy, datum)
    assert float(lon) == pytest.approx(120.64, abs=1e-9)
    assert float(lat) == pytest.approx(27.97, abs=1e-9)
    lon, lat = to_cgcs2000(np.full((2, 2), xy[0]), np.full((2, 2), xy[1]), datum)
    assert lon.shape == (2, 2) and lon.dtype == np.float64


@pytest.mark.parametrize("datum", ["gcj-2", "mars", "", "epsg:", "epsg:999999", "epsg:4978"])
def test_unknown_datum_raises(datum):
    with pytest.raises(UnknownDatumError) as info:
        to_cgcs2000(120.0, 28.0, datum)
    assert isinstance(info.value, ValueError)
    assert repr(datum) in str(info.value)


def test_unknown_datum_message_lists_accepted_names():
    with pytest.raises(UnknownDatumError, match="accepted: wgs84, cgcs2000, gcj02, bd09, .*baidu"):
        to_cgcs2000(120.0, 28.0, "google")


# -- the names Chinese exports write (坐标系 columns, the load's datum option) -----------------------
@pytest.mark.parametrize(("value", "expected"), [
    ("CGCS2000", "cgcs2000"), ("国家2000坐标系", "cgcs2000"), ("2000国家大地坐标系", "cgcs2000"),
    ("国家2000", "cgcs2000"), ("2000", "cgcs2000"), ("4490", "cgcs2000"), ("EPSG:4490", "cgcs2000"),
    ("WGS-84", "wgs84"), ("GPS", "wgs84"), ("WGS 84", "wgs84"), ("4326", "wgs84"),
    ("百度坐标", "bd09"), ("百度", "bd09"), ("BD09LL", "bd09"),
    ("火星坐标", "gcj02"), ("高德", "gcj02"), ("腾讯坐标", "gcj02"),
    ("EPSG:4549", "epsg:4549"), ("4549", "epsg:4549"), ("epsg: 4549", "epsg:4549"),
    ("ＥＰＳＧ：４５４９", "epsg:4549"),  # full-width, as a Chinese input method types it
    ("4491", "epsg:4491"), ("4554", "epsg:4554"), ("EPSG:3857", "epsg:3857"),
])
def test_names_exports_write(value, expected):
    assert datum_name(value) == expected
    assert check_datum(value) == expected


# ambiguous or unusable: a bare number outside CGCS2000's and WGS84's codes, old datums whose
# parameters no export carries, a projection without its zone, a geocentric CRS, a typo
@pytest.mark.parametrize("value", ["3857", "4555", "4489", "北京54", "西安80", "高斯克吕格", "EPSG:4978",
                                   "4978", "gcj2", "mars", "", "nan"])
def test_ambiguous_or_unknown_names_are_refused(value):
    assert datum_name(value) is None
    with pytest.raises(UnknownDatumError, match="accepted: wgs84, cgcs2000, gcj02, bd09, .*百度坐标") as info:
        check_datum(value)
    assert repr(value) in str(info.value)


def test_a_gauss_kruger_zone_by_its_bare_code_converts_as_with_epsg():
    bare, prefixed = to_cgcs2000(*GK_4549, "4549"), to_cgcs2000(*GK_4549, "EPSG:4549")
    assert np.array_equal(np.array(bare), np.array(prefixed))
    lon, lat = to_cgcs2000(*GK_4549, "4549")
    assert float(lon) == pytest.approx(120.64, abs=1e-9) and float(lat) == pytest.approx(27.97, abs=1e-9)


@pytest.mark.parametrize("inverse", ["gcj02_to_wgs84", "bd09_to_gcj02", "bd09_to_wgs84"])
def test_an_inverse_gives_each_point_the_same_bits_in_any_batch(inverse: str) -> None:
    """A point's inverse does not depend on the other points converted with it: loading a file
    in other chunks (or one row again) gives the same coordinates to the bit."""
    from gis import datum

    f = getattr(datum, inverse)
    rng = np.random.default_rng(7)
    lon, lat = 120.4 + rng.random(2000) * 0.5, 27.7 + rng.random(2000) * 0.5
    bx, by = f(lon, lat)
    for lo in range(0, 2000, 1):
        x, y = f(lon[lo : lo + 1], lat[lo : lo + 1])
        assert (x[0], y[0]) == (bx[lo], by[lo]), lo
    hx, hy = f(lon[:999], lat[:999])
    assert np.array_equal(hx, bx[:999]) and np.array_equal(hy, by[:999])
