"""The coordinate reference systems of the OGC API (Features Part 2), by URI.

Geometries are stored in EPSG:4490 (CGCS2000). Output defaults to CRS84 (longitude, latitude).
EPSG:4490 and EPSG:4326 are *latitude, longitude* in OGC APIs (their EPSG axis order), so
coordinates of those two are flipped on the way out and on the way in (``bbox``, filter
geometries). SQL gets integer SRIDs only: PostGIS resolves a text CRS through PROJ for each row
(~55 ms a row here, against ~9 µs with an SRID).

CGCS2000 and WGS 84 agree to a few centimetres and PROJ knows no transformation between EPSG:4490
and EPSG:4326 but a null ("ballpark") one, so ``ST_Transform(geom, 4326)`` returns the stored
coordinates unchanged (checked on every demo feature) — while costing ~100 µs a point here, i.e.
most of a 1,000-feature page. Geographic CRSs therefore skip ST_Transform (``same_datum``); only
EPSG:3857 is transformed.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.ogc.errors import InvalidParameterError

STORAGE_SRID = 4490
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
_MERC = 20037508.342789244


@dataclass(frozen=True)
class Crs:
    uri: str
    srid: int
    lat_first: bool
    bounds: tuple[float, float, float, float]  # in this CRS's own axis order
    decimals: int  # ~1 cm: 7 decimals of a degree, 2 of a metre

    @property
    def same_datum(self) -> bool:
        """Coordinates equal to the stored ones (no ST_Transform needed); see the module doc."""
        return self.srid in (4326, STORAGE_SRID)


SUPPORTED: dict[str, Crs] = {
    c.uri: c
    for c in (
        Crs(CRS84, 4326, False, (-180.0, -90.0, 180.0, 90.0), 7),
        Crs(EPSG + "4490", 4490, True, (-90.0, -180.0, 90.0, 180.0), 7),
        Crs(EPSG + "4326", 4326, True, (-90.0, -180.0, 90.0, 180.0), 7),
        Crs(EPSG + "3857", 3857, False, (-_MERC, -_MERC, _MERC, _MERC), 2),
    )
}
URIS = tuple(SUPPORTED)
STORAGE_URI = EPSG + str(STORAGE_SRID)


def lookup(uri: str | None, parameter: str) -> Crs:
    """The CRS named by ``uri`` (CRS84 when absent); 400 when this server does not offer it."""
    if uri is None or uri == "":
        return SUPPORTED[CRS84]
    try:
        return SUPPORTED[uri]
    except KeyError:
        raise InvalidParameterError(
            f"{parameter}: {uri[:200]!r} is not supported; use one of {', '.join(URIS)}"
        ) from None


def envelope_xy(bbox: tuple[float, float, float, float], crs: Crs) -> tuple[float, float, float, float]:
    """``bbox`` as given in ``crs`` → (xmin, ymin, xmax, ymax) with x = easting/longitude."""
    if crs.lat_first:
        return bbox[1], bbox[0], bbox[3], bbox[2]
    return bbox
