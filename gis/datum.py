"""Datum conversion between WGS84/CGCS2000, GCJ-02 (Amap, Tencent) and BD-09 (Baidu).

Every function takes lon and lat in degrees as anything ``np.asarray`` accepts (scalars,
lists, arrays), broadcasts them, and returns a ``(lon, lat)`` pair of float64 arrays of the
broadcast shape. A NaN coordinate stays NaN (its partner may turn NaN too) and nothing
raises on one: the ``etl/`` readers reject such rows with a reason.

GCJ-02 has no closed-form inverse: the "one-step" inverse of most libraries (subtract the
shift taken at the shifted point) is metres off, so the inverses here iterate until their
error bound is below ``tol`` degrees.
"""

from __future__ import annotations

import functools
import math
import unicodedata
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

FloatArray = npt.NDArray[np.float64]
LonLat = tuple[FloatArray, FloatArray]
_Forward = Callable[[FloatArray, FloatArray], LonLat]

DATUMS: tuple[str, ...] = ("wgs84", "cgcs2000", "gcj02", "bd09")
# What Chinese exports write for each datum, as :func:`datum_name` compares them (NFKC, lower
# case, no spaces: "ＷＧＳ 84" is "wgs84"). Only unambiguous names: "北京54" or "西安80" need
# parameters no export carries, and a Gauss-Krüger zone is named by its EPSG code.
_NAMES: dict[str, tuple[str, ...]] = {
    "wgs84": ("wgs84", "wgs-84", "gps", "wgs84坐标系", "epsg:4326"),
    "cgcs2000": ("cgcs2000", "cgcs-2000", "2000", "国家2000", "国家2000坐标系", "2000国家大地坐标系",
                 "国家2000大地坐标系", "cgcs2000坐标系", "epsg:4490"),
    "gcj02": ("gcj02", "gcj-02", "amap", "tencent", "高德", "高德坐标", "腾讯", "腾讯坐标", "火星",
              "火星坐标", "火星坐标系"),
    "bd09": ("bd09", "bd-09", "bd09ll", "baidu", "百度", "百度坐标", "百度坐标系"),
}
_ALIASES: dict[str, str] = {alias: name for name, aliases in _NAMES.items() for alias in aliases}
# EPSG codes an export may write without "EPSG:": WGS84, CGCS2000 and the CGCS2000 Gauss-Krüger
# zones (4491-4512 six-degree, 4513-4554 three-degree; with or without the zone number in x).
# Any other code needs its "EPSG:": a bare number is otherwise anyone's guess.
_BARE_EPSG = frozenset({4326, 4490, *range(4491, 4555)})
#: The accepted names, as error messages list them.
ACCEPTED = ", ".join([*DATUMS, *(a for a in _ALIASES if a not in DATUMS),
                      "epsg:NNNN (4326 and 4490-4554 also without 'epsg:')"])

# GCJ-02 scales its shift with the Krasovsky 1940 ellipsoid (the old Beijing 1954 one), not
# with WGS84's: some libraries use WGS84's axis here and are off by up to 1.6 cm.
_KRASOVSKY_A = 6378245.0
_KRASOVSKY_E2 = 0.00669342162296594323
_DEG_LAT = 180.0 / (_KRASOVSKY_A * (1.0 - _KRASOVSKY_E2) * math.pi)
_DEG_LON = 180.0 / (_KRASOVSKY_A * math.pi)
# The rectangle inside which GCJ-02 shifts points (it includes some neighbours of China);
# outside it, GCJ-02 coordinates are WGS84 coordinates.
_CHINA_LON = (72.004, 137.8347)
_CHINA_LAT = (0.8293, 55.8271)
# BD-09 is GCJ-02 nudged in polar coordinates around (0, 0), then offset by a constant.
_BD_K = math.pi * 3000.0 / 180.0
_BD_DLON, _BD_DLAT = 0.0065, 0.006
# Lipschitz constants L (max-norm, degrees per degree) of the shift itself, measured on fine
# grids (GCJ-02 over its rectangle: 7.4e-3; BD-09 over the globe: 2.9e-2), rounded up. The
# iteration x <- x - (forward(x) - target) contracts by L per step, so the error after a step
# is at most L / (1 - L) times that step: the stopping test. (Right at 105 E, sqrt|lon - 105|
# in GCJ-02 has no bounded slope, but adds < 1e-9 deg once the steps are below 1e-7 deg.)
_GCJ_LIPSCHITZ = 0.01
_BD_LIPSCHITZ = 0.035
_BLOCK = 32768


class UnknownDatumError(ValueError):
    """The datum name is not one that :func:`to_cgcs2000` knows."""


def _as_arrays(lon: npt.ArrayLike, lat: npt.ArrayLike) -> LonLat:
    x, y = np.broadcast_arrays(np.asarray(lon, np.float64), np.asarray(lat, np.float64))
    return np.array(x), np.array(y)  # own, writable, contiguous copies


def _gcj_forward(lon: FloatArray, lat: FloatArray) -> LonLat:
    """WGS84 to GCJ-02 without the out-of-China test."""
    x = lon - 105.0
    y = lat - 35.0
    # sin(3t) = 3 sin t - 4 sin^3 t saves three of the ten sines, the bulk of the cost.
    s = np.sin(2.0 * math.pi * x)
    wave = s * (4.0 - 4.0 * s * s) * (40.0 / 3.0)  # 2/3 (20 sin 6 pi x + 20 sin 2 pi x)
    s = np.sin(math.pi / 3.0 * y)
    dlat = s * (3.0 - 4.0 * s * s) * (40.0 / 3.0) + s * (80.0 / 3.0)
    dlat += np.sin(math.pi / 12.0 * y) * (320.0 / 3.0)
    dlat += np.sin(math.pi / 30.0 * y) * (640.0 / 3.0)
    s = np.sin(math.pi / 3.0 * x)
    dlon = s * (3.0 - 4.0 * s * s) * (40.0 / 3.0) + s * (80.0 / 3.0)
    dlon += np.sin(math.pi / 12.0 * x) * 100.0
    dlon += np.sin(math.pi / 30.0 * x) * 200.0
    root = np.sqrt(np.abs(x))
    xy = x * y
    dlat += wave + (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * xy + 0.2 * root)
    dlon += wave + (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * xy + 0.1 * root)
    # Metres on the Krasovsky ellipsoid to degrees at this latitude; cos from sin is cheaper
    # than a second transcendental and exact enough for |lat| < 90.
    s = np.sin(np.radians(lat))
    s *= s
    magic = 1.0 - _KRASOVSKY_E2 * s
    root = np.sqrt(magic)
    dlat *= magic * root * _DEG_LAT
    dlon *= root / np.sqrt(1.0 - s) * _DEG_LON
    dlon += lon
    dlat += lat
    return dlon, dlat


def _bd_forward(lon: FloatArray, lat: FloatArray) -> LonLat:
    r = np.hypot(lon, lat) + 2e-5 * np.sin(_BD_K * lat)
    theta = np.arctan2(lat, lon) + 3e-6 * np.cos(_BD_K * lon)
    return r * np.cos(theta) + _BD_DLON, r * np.sin(theta) + _BD_DLAT


def _invert(forward: _Forward, lon: FloatArray, lat: FloatArray, start: LonLat,
            lipschitz: float, tol: float, max_iter: int) -> LonLat:
    """Solve forward(x) = (lon, lat) by fixed-point iteration from ``start``.

    Each point stops after its own first step within ``tol``, so its result does not depend on
    the other points of the array: a file gives the same coordinates to the bit in any chunking
    (stopping when the whole array's largest step was within ``tol`` gave a point another
    iteration in some arrays than in others, and a reload a spurious "updated")."""
    x, y = start
    bound = lipschitz / (1.0 - lipschitz)
    active = None  # the points still iterating (None: all)
    for _ in range(max_iter):
        fx, fy = forward(x, y)
        fx -= lon
        fy -= lat
        if active is not None:
            fx[~active] = 0.0
            fy[~active] = 0.0
        x -= fx
        y -= fy
        # NaN compares False: a NaN point is done at once (it just stays NaN)
        going = np.fmax(np.abs(fx), np.abs(fy)) * bound > tol
        active = going if active is None else active & going
        if not active.any():
            break
    return x, y


def _convert(func: _Forward, lon: npt.ArrayLike, lat: npt.ArrayLike,
             china_only: bool = False) -> LonLat:
    """Broadcast, then apply ``func`` block by block (to the points in China only, if asked)."""
    x, y = _as_arrays(lon, lat)
    flat_x, flat_y = x.reshape(-1), y.reshape(-1)  # views of the copies: written in place
    inside = None
    if china_only:
        # NaN compares False, so NaN counts as inside and simply propagates through func.
        outside = ((flat_x < _CHINA_LON[0]) | (flat_x > _CHINA_LON[1])
                   | (flat_y < _CHINA_LAT[0]) | (flat_y > _CHINA_LAT[1]))
        if outside.any():
            inside = np.flatnonzero(~outside)
            flat_x, flat_y = flat_x[inside], flat_y[inside]  # copies, scattered back below
    # Blocks that fit in the CPU cache make the ~40 temporaries per block cheap (25% faster
    # than whole 1M-point arrays), and memory stays flat however many points come in.
    with np.errstate(invalid="ignore"):  # +-inf inputs give NaN, without a warning
        for i in range(0, flat_x.size, _BLOCK):
            block = slice(i, i + _BLOCK)
            flat_x[block], flat_y[block] = func(flat_x[block], flat_y[block])
    if inside is not None:
        x.reshape(-1)[inside], y.reshape(-1)[inside] = flat_x, flat_y
    return x, y


def wgs84_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> LonLat:
    """Shift WGS84 to GCJ-02; points outside China are returned unchanged.

    Examples
    --------
    >>> lon, lat = wgs84_to_gcj02(120.64, 27.97)
    >>> round(float(lon - 120.64), 5), round(float(lat - 27.97), 5)
    (0.00395, -0.00339)
    """
    return _convert(_gcj_forward, lon, lat, china_only=True)


def gcj02_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike, tol: float = 1e-9,
                   max_iter: int = 10) -> LonLat:
    """Exact inverse of :func:`wgs84_to_gcj02`, iterated until the error is below ``tol``.

    Parameters
    ----------
    lon, lat : array_like
        GCJ-02 longitude and latitude in degrees; points outside China are returned as given.
    tol : float, default 1e-9
        Largest error allowed, in degrees (1e-9 deg is about 0.1 mm). The iteration stops
        once the error bound of every point is below it: three or four shift evaluations.
    max_iter : int, default 10
        Safety cap on the iterations (the shift contracts by 100 per step, so never reached).

    Returns
    -------
    lon, lat : ndarray of float64
        WGS84 longitude and latitude, in the broadcast shape of the inputs.

    Examples
    --------
    >>> lon, lat = gcj02_to_wgs84(*wgs84_to_gcj02(120.64, 27.97))
    >>> abs(float(lon) - 120.64) < 1e-9 and abs(float(lat) - 27.97) < 1e-9
    True
    """
    def solve(x: FloatArray, y: FloatArray) -> LonLat:
        return _invert(_gcj_forward, x, y, (x.copy(), y.copy()), _GCJ_LIPSCHITZ, tol, max_iter)

    return _convert(solve, lon, lat, china_only=True)


def gcj02_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> LonLat:
    """Convert GCJ-02 to BD-09 (everywhere, outside China too, as Baidu's formula does).

    Examples
    --------
    >>> lon, lat = gcj02_to_bd09(120.6444, 27.9674)
    >>> round(float(lon), 5), round(float(lat), 5)
    (120.65096, 27.97315)
    """
    return _convert(_bd_forward, lon, lat)


def bd09_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike, tol: float = 1e-9,
                  max_iter: int = 10) -> LonLat:
    """Invert :func:`gcj02_to_bd09` to ``tol`` degrees (its one-step inverse is ~0.2 m off).

    Examples
    --------
    >>> lon, lat = bd09_to_gcj02(*gcj02_to_bd09(120.6444, 27.9674))
    >>> abs(float(lon) - 120.6444) < 1e-9 and abs(float(lat) - 27.9674) < 1e-9
    True
    """
    def solve(x: FloatArray, y: FloatArray) -> LonLat:
        start = (x - _BD_DLON, y - _BD_DLAT)
        return _invert(_bd_forward, x, y, start, _BD_LIPSCHITZ, tol, max_iter)

    return _convert(solve, lon, lat)


def wgs84_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> LonLat:
    """Convert WGS84 to BD-09 (through GCJ-02).

    Examples
    --------
    >>> lon, lat = wgs84_to_bd09(120.64, 27.97)
    >>> round(float(lon), 5), round(float(lat), 5)
    (120.65051, 27.97238)
    """
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike, tol: float = 1e-9,
                  max_iter: int = 10) -> LonLat:
    """Invert :func:`wgs84_to_bd09`: both steps iterate to ``tol`` degrees.

    Examples
    --------
    >>> lon, lat = bd09_to_wgs84(*wgs84_to_bd09(120.64, 27.97))
    >>> abs(float(lon) - 120.64) < 1e-8 and abs(float(lat) - 27.97) < 1e-8
    True
    """
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat, tol, max_iter), tol, max_iter)


def _canonical(datum: str) -> str:
    name = "".join(unicodedata.normalize("NFKC", str(datum)).lower().split())
    if name.isdigit() and int(name) in _BARE_EPSG:
        name = f"epsg:{name}"
    if name.startswith("epsg:") and name[5:].isdigit():
        name = f"epsg:{int(name[5:])}"  # "EPSG:04490" is EPSG:4490
        return _ALIASES.get(name, name)
    if name in _ALIASES:
        return _ALIASES[name]
    raise UnknownDatumError(f"unknown datum {datum!r}; accepted: {ACCEPTED}")


def datum_name(datum: object) -> str | None:
    """The canonical name of a coordinate system as an export writes it: one of :data:`DATUMS`,
    or ``epsg:N`` for a CRS that PROJ knows and that has horizontal coordinates; None for any
    other value (what :func:`to_cgcs2000` would refuse).

    Examples
    --------
    >>> datum_name("2000国家大地坐标系"), datum_name("EPSG:4549"), datum_name("4549")
    ('cgcs2000', 'epsg:4549', 'epsg:4549')
    >>> datum_name("百度坐标"), datum_name("gcj2") is None
    ('bd09', True)
    """
    try:
        return check_datum(datum)
    except UnknownDatumError:
        return None


def check_datum(datum: object) -> str:
    """The canonical name of ``datum`` (see :func:`datum_name`).

    Raises
    ------
    UnknownDatumError
        With the value and the accepted names, if ``datum`` is none of them.
    """
    name = _canonical(str(datum))
    if name not in DATUMS:
        try:
            _transformer(name)  # an EPSG code PROJ knows, with horizontal coordinates
        except UnknownDatumError as exc:
            why = f"unknown datum {datum!r}: {exc}; accepted: {ACCEPTED}"
            raise UnknownDatumError(why) from None
    return name


@functools.lru_cache(maxsize=32)
def _transformer(code: str) -> Transformer:
    try:
        crs = CRS.from_user_input(code)
    except CRSError as exc:
        raise UnknownDatumError(f"PROJ does not know {code}: {exc}") from exc
    if not (crs.is_geographic or crs.is_projected):
        raise UnknownDatumError(f"{code} ({crs.name}) has no horizontal lon/lat or x/y")
    # always_xy: lon/lat and easting/northing in, lon/lat out, whatever the EPSG axis order.
    # Sharing one cached Transformer across threads is safe since pyproj 3.1.
    return Transformer.from_crs(crs, "EPSG:4490", always_xy=True)


def to_cgcs2000(lon: npt.ArrayLike, lat: npt.ArrayLike, datum: str) -> LonLat:
    """Convert coordinates in ``datum`` to CGCS2000 (EPSG:4490) lon/lat.

    Parameters
    ----------
    lon, lat : array_like
        Longitude/latitude in degrees, or x/y (easting/northing) for a projected EPSG CRS.
    datum : str
        One of :data:`DATUMS` or a name exports write for one (``amap``, ``高德``, ``百度坐标``,
        ``国家2000``, ``GPS``, ``epsg:4326``, ``4490``...: :data:`ACCEPTED`), case-insensitive,
        or ``epsg:NNNN`` for any other CRS (through pyproj), e.g. ``epsg:4549`` (or ``4549``)
        for CGCS2000 3-degree Gauss-Krüger CM 120E.

    Returns
    -------
    lon, lat : ndarray of float64
        CGCS2000 longitude and latitude, in the broadcast shape of the inputs.

    Raises
    ------
    UnknownDatumError
        If ``datum`` is not a known name nor a usable EPSG code.

    Examples
    --------
    >>> lon, lat = to_cgcs2000([562969.76], [3095282.12], "EPSG:4549")
    >>> round(float(lon[0]), 6), round(float(lat[0]), 6)
    (120.64, 27.97)
    """
    name = check_datum(datum)
    if name in ("wgs84", "cgcs2000"):
        # Treated as identical. The two frames agree to centimetres at epoch 2000.0 and their
        # ellipsoids (WGS84, GRS80) differ by 0.1 mm; only plate motion (about 3 cm a year
        # here) separates a WGS84 fix taken today from CGCS2000, which is fixed at 2000.0.
        # Our sources (phones, Amap/Baidu pickers, digitised maps) are metres accurate, and
        # PROJ itself offers only a null "ballpark" transformation between them.
        return _as_arrays(lon, lat)
    if name == "gcj02":
        return gcj02_to_wgs84(lon, lat)
    if name == "bd09":
        return bd09_to_wgs84(lon, lat)
    transformer = _transformer(name)
    x, y = _as_arrays(lon, lat)
    out_x, out_y = transformer.transform(x, y)
    return _as_arrays(out_x, out_y)
