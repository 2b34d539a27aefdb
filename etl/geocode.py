"""Offline geocoding for ETL: the district's gazetteer from the database, and a Series geocoder.

The matching itself is :mod:`gis.address`; this module only reads its inputs from PostGIS:
towns and villages with a representative point (``ST_PointOnSurface``, which lies inside the
polygon, unlike a centroid of a crescent-shaped village), and the standard addresses
(``pingan.address_points``). Everything is EPSG:4490, as stored.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Connection, text

from gis.address import Gazetteer, geocode

#: Province, city and county names by county code (national statistical division codes, 2023).
#: The schema keeps only the county's code, and addresses spell the names: Wenzhou's counties
#: are listed; another district passes ``names`` to :func:`load_gazetteer`.
COUNTY_NAMES: dict[str, tuple[str, str, str]] = {
    code: ("浙江省", "温州市", name)
    for code, name in {
        "330302": "鹿城区", "330303": "龙湾区", "330304": "瓯海区", "330305": "洞头区",
        "330324": "永嘉县", "330326": "平阳县", "330327": "苍南县", "330328": "文成县",
        "330329": "泰顺县", "330381": "瑞安市", "330382": "乐清市", "330383": "龙港市",
    }.items()
}

_COUNTIES = text("SELECT DISTINCT county_code FROM pingan.towns ORDER BY county_code")
_TOWNS = text("""
    SELECT code, name, ST_X(p) AS lon, ST_Y(p) AS lat
    FROM (SELECT code, name, ST_PointOnSurface(geom) AS p
          FROM pingan.towns WHERE county_code = :county) AS t
    ORDER BY code""")
_VILLAGES = text("""
    SELECT code, town_code, name, ST_X(p) AS lon, ST_Y(p) AS lat
    FROM (SELECT v.code, v.town_code, v.name, ST_PointOnSurface(v.geom) AS p
          FROM pingan.villages AS v JOIN pingan.towns AS t ON t.code = v.town_code
          WHERE t.county_code = :county) AS v
    ORDER BY code""")
_POINTS = text("""
    SELECT a.normalized, a.road, a.number, a.village_code, ST_X(a.geom) AS lon, ST_Y(a.geom) AS lat
    FROM pingan.address_points AS a JOIN pingan.towns AS t ON t.code = a.town_code
    WHERE t.county_code = :county
    ORDER BY a.id""")


class GazetteerError(ValueError):
    """The database does not define one district that addresses can be matched against."""


def load_gazetteer(
    conn: Connection, county_code: str | None = None, *, names: tuple[str, str, str] | None = None
) -> Gazetteer:
    """The gazetteer of one district: its towns, villages and standard addresses.

    Parameters
    ----------
    conn : sqlalchemy.Connection
        A connection to the Pingan database.
    county_code : str, optional
        The district's 6-digit code; by default the only district that has towns.
    names : (province, city, county), optional
        The district's names as addresses write them; by default from :data:`COUNTY_NAMES`.

    Raises
    ------
    GazetteerError
        If the database holds no district or several (and ``county_code`` is not given), or
        the district's names are not known.

    Examples
    --------
    >>> gaz = load_gazetteer(conn)  # doctest: +SKIP
    >>> gaz  # doctest: +SKIP
    Gazetteer(浙江省温州市瓯海区: 13 towns, 197 villages, 0 address points)
    """
    if county_code is None:
        found = conn.execute(_COUNTIES).scalars().all()
        if len(found) != 1:
            raise GazetteerError(
                f"the database holds {len(found)} districts ({', '.join(found) or 'none'}): "
                "say which one to geocode against")
        county_code = found[0]
    names = names or COUNTY_NAMES.get(county_code)
    if names is None:
        raise GazetteerError(f"the names of district {county_code} are not known: pass "
                             "names=(province, city, county)")
    binds = {"county": county_code}
    province, city, county = names
    return Gazetteer(
        towns=conn.execute(_TOWNS, binds).all(),
        villages=conn.execute(_VILLAGES, binds).all(),
        points=conn.execute(_POINTS, binds).all(),
        province=province, city=city, county=county,
    )


def geocode_frame(
    conn: Connection | None, addresses: pd.Series, gazetteer: Gazetteer | None = None,
    memo: dict | None = None,
) -> pd.DataFrame:
    """Geocode a Series of addresses; one row per address, on the Series' index.

    Columns: ``lon``, ``lat`` (EPSG:4490; NaN when unplaced), ``level`` ('door', 'village',
    'town'), ``score`` (0 when unplaced), ``town_code``, ``village_code`` and ``reason`` (why a
    row is unplaced); the text columns are pandas strings, missing (NA) where
    :class:`gis.address.GeocodeResult` has None. Pass ``gazetteer`` to reuse one across
    batches; otherwise it is loaded from ``conn`` with :func:`load_gazetteer`. ``memo``: see
    :func:`gis.address.geocode`.

    Examples
    --------
    >>> geocode_frame(conn, pd.Series(["梧田街道白象村白象路12号"]))  # doctest: +SKIP
             lon        lat    level  score  town_code village_code reason
    0  120.67...  27.96...  village    0.7  330304002  330304002...   None
    """
    gaz = gazetteer if gazetteer is not None else load_gazetteer(conn)
    result = geocode(addresses.tolist(), gaz, memo)
    return pd.DataFrame(
        {name: getattr(result, name)
         for name in ("lon", "lat", "level", "score", "town_code", "village_code", "reason")},
        index=addresses.index,
    )
