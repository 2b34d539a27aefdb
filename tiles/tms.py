"""Tile matrix sets: WebMercatorQuad (OGC 2D Tile Matrix Set 2.0), the one the service serves.

A tile is addressed as (z, x, y) here — column ``x`` from the west, row ``y`` from the north, as
in XYZ/TMS-less web maps and ``ST_TileEnvelope``. OGC URLs put it as ``{z}/{y}/{x}``
(tileMatrix/tileRow/tileCol); the API layer swaps the order, nothing below it does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tiles.errors import InvalidTileError, UnknownTileMatrixSetError

# Half the equator of the spherical Mercator (EPSG:3857) in metres: the square world spans
# [-HALF, HALF] on both axes.
HALF_WORLD = 20037508.342789244
TILE_SIZE = 256  # pixels per tile side in WebMercatorQuad; "tile pixels" in the registry are these
MVT_EXTENT = 4096  # MVT integer coordinates per tile side
MVT_BUFFER = 64  # MVT units kept beyond each tile edge so strokes join across tiles
# OGC's standardised rendering pixel (0.28 mm) turns cell sizes into scale denominators.
_PIXEL_M = 0.00028


@dataclass(frozen=True)
class TileMatrixSet:
    """A quadtree tile matrix set over a square CRS extent, top-left origin."""

    id: str
    title: str
    uri: str
    crs_uri: str
    srid: int
    well_known_scale_set: str
    min_zoom: int = 0
    max_zoom: int = 22

    def validate(self, z: int, x: int, y: int) -> None:
        """Raise :class:`InvalidTileError` unless (z, x, y) addresses a tile of this set."""
        if not self.min_zoom <= z <= self.max_zoom:
            raise InvalidTileError(f"tileMatrix {z} is outside {self.min_zoom}..{self.max_zoom}")
        n = 1 << z
        if not 0 <= x < n:
            raise InvalidTileError(f"tileCol {x} is outside 0..{n - 1} at tileMatrix {z}")
        if not 0 <= y < n:
            raise InvalidTileError(f"tileRow {y} is outside 0..{n - 1} at tileMatrix {z}")

    def tile_width(self, z: int) -> float:
        """The side of a tile at zoom ``z`` in CRS units (metres)."""
        return 2 * HALF_WORLD / (1 << z)

    def bounds(self, z: int, x: int, y: int) -> tuple[float, float, float, float]:
        """The tile's (xmin, ymin, xmax, ymax) in EPSG:3857; the same as ``ST_TileEnvelope``."""
        self.validate(z, x, y)
        w = self.tile_width(z)
        xmin = -HALF_WORLD + x * w
        ymax = HALF_WORLD - y * w  # rows count down from the north edge
        return xmin, ymax - w, xmin + w, ymax

    def tile_range(self, z: int, lonlat_bbox: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
        """(min_col, min_row, max_col, max_row) of the tiles covering a lon/lat bbox at ``z``."""
        west, south, east, north = lonlat_bbox
        x0, y1 = lonlat_to_mercator(west, south)
        x1, y0 = lonlat_to_mercator(east, north)
        w = self.tile_width(z)
        last = (1 << z) - 1

        def clamp(v: float) -> int:
            return min(max(int(math.floor(v)), 0), last)

        return (clamp((x0 + HALF_WORLD) / w), clamp((HALF_WORLD - y0) / w),
                clamp((x1 + HALF_WORLD) / w), clamp((HALF_WORLD - y1) / w))

    def definition(self) -> dict[str, Any]:
        """The tile matrix set as OGC 2D Tile Matrix Set 2.0 JSON (without links)."""
        matrices = []
        for z in range(self.min_zoom, self.max_zoom + 1):
            cell = self.tile_width(z) / TILE_SIZE
            matrices.append({
                "id": str(z),
                "scaleDenominator": cell / _PIXEL_M,
                "cellSize": cell,
                "cornerOfOrigin": "topLeft",
                "pointOfOrigin": [-HALF_WORLD, HALF_WORLD],
                "tileWidth": TILE_SIZE,
                "tileHeight": TILE_SIZE,
                "matrixWidth": 1 << z,
                "matrixHeight": 1 << z,
            })
        return {
            "id": self.id,
            "title": self.title,
            "uri": self.uri,
            "crs": self.crs_uri,
            "orderedAxes": ["X", "Y"],
            "wellKnownScaleSet": self.well_known_scale_set,
            "tileMatrices": matrices,
        }


def lonlat_to_mercator(lon: float, lat: float) -> tuple[float, float]:
    """Spherical Mercator of a lon/lat point (latitude clamped to the square world)."""
    lat = max(min(lat, 85.0511287798066), -85.0511287798066)
    x = math.radians(lon) * HALF_WORLD / math.pi
    y = math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) * HALF_WORLD / math.pi
    return x, y


WEB_MERCATOR_QUAD = TileMatrixSet(
    id="WebMercatorQuad",
    title="Google Maps Compatible for the World",
    uri="http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad",
    crs_uri="http://www.opengis.net/def/crs/EPSG/0/3857",
    srid=3857,
    well_known_scale_set="http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible",
)

# The registry of tile matrix sets (STYLE.md habit 7); the SQL assumes EPSG:3857 quadtrees, so a
# new set here needs its own envelope function in tiles.sql as well.
TILE_MATRIX_SETS: Mapping[str, TileMatrixSet] = {WEB_MERCATOR_QUAD.id: WEB_MERCATOR_QUAD}


def get_tms(tms_id: str) -> TileMatrixSet:
    """The tile matrix set called ``tms_id``; :class:`UnknownTileMatrixSetError` otherwise."""
    try:
        return TILE_MATRIX_SETS[tms_id]
    except KeyError:
        raise UnknownTileMatrixSetError(f"tile matrix set {tms_id!r} is not served; "
                                   f"try {', '.join(TILE_MATRIX_SETS)}") from None
