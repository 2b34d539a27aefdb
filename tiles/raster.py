"""Colour PNG tiles (WebMercatorQuad, 256 x 256 RGBA) of a stored raster (layers/rasters.py).

A tile is rendered from the raster's COG: the COG is decoded once per raster into its full
resolution, its overviews and coarser halvings (:class:`RasterSource`, kept in an LRU per raster
id and checksum); the coarsest level whose cells are no larger than the tile's pixels on the
ground is resampled bilinearly into the tile, from the raster's CRS to EPSG:3857
(:meth:`RasterSource.warp`: what ``rasterio.warp.reproject`` gives, without its per-call setup);
the values are coloured by a sequential ramp scaled by the raster's stored percentiles:
transparent below ``FLOOR`` of the scale, then yellow, orange and red with rising opacity
(ColorBrewer YlOrRd). The PNG is encoded here (zlib, no filter), which is faster than a round
trip through GDAL's PNG driver for a 256 x 256 tile.

Rasters are immutable (a refresh stores a new id), so a decoded source and a rendered tile keyed
by (raster id, checksum, ramp version, tile) never go stale. Returns bytes; knows nothing of HTTP.
"""

from __future__ import annotations

import asyncio
import math
import struct
import threading
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tiles.cache import TileCache
from tiles.tms import TILE_SIZE, get_tms

RAMP_VERSION = 1
FLOOR = 0.02  # values below this fraction of the scale's top are transparent (zero included)
# (fraction of the scale's top, (r, g, b, alpha)): ColorBrewer YlOrRd, more opaque as it rises
RAMP: tuple[tuple[float, tuple[int, int, int, int]], ...] = (
    (FLOOR, (255, 255, 178, 90)),
    (0.25, (254, 204, 92, 150)),
    (0.50, (253, 141, 60, 185)),
    (0.75, (240, 59, 32, 210)),
    (1.00, (189, 0, 38, 230)),
)
_LUT_SIZE = 1024
SCALE_PERCENTILE = "p99"  # the top of the colour scale: the 99th percentile of the cells above zero


def _lut() -> np.ndarray:
    t = np.linspace(0.0, 1.0, _LUT_SIZE)
    xs = [s for s, _ in RAMP]
    lut = np.stack([np.interp(t, xs, [c[i] for _, c in RAMP]) for i in range(4)], axis=1)
    lut[t < FLOOR] = 0
    return np.round(lut).astype(np.uint8)


_LUT = _lut()


def scale_top(stats: dict[str, Any]) -> float | None:
    """The value coloured as the top of the ramp (raster units), or None for an all-zero raster."""
    pct = (stats.get("percentiles_positive") or {}).get(SCALE_PERCENTILE)
    top = pct if pct else stats.get("max")
    return float(top) if top and top > 0 and math.isfinite(top) else None


def legend(stats: dict[str, Any], factor: float = 1.0) -> list[dict[str, Any]]:
    """The ramp's stops as values in display units (raster value x ``factor``) with their colours:
    what a map legend draws. Values at or above the last stop take its colour."""
    top = scale_top(stats)
    if top is None:
        return []
    return [{"value": frac * top * factor, "color": "#{:02x}{:02x}{:02x}".format(*rgba[:3]),
             "opacity": round(rgba[3] / 255, 3)} for frac, rgba in RAMP]


def colourise(values: np.ndarray, top: float) -> np.ndarray:
    """RGBA (h, w, 4) uint8 of ``values`` on the ramp scaled to ``top``; NaN is transparent."""
    scaled = values * np.float32((_LUT_SIZE - 1) / top)
    idx = np.clip(np.nan_to_num(scaled, nan=0.0), 0, _LUT_SIZE - 1).astype(np.intp)
    return _LUT[idx]


def encode_png(rgba: np.ndarray, level: int = 3) -> bytes:
    """A PNG (8-bit RGBA, no interlace, no row filter) of ``rgba`` (h, w, 4) uint8.

    zlib level 3: a fully coloured tile is ~55 KB against ~48 KB at level 6, in half the time.
    """
    h, w, _ = rgba.shape
    raw = np.zeros((h, w * 4 + 1), dtype=np.uint8)  # each row: filter type 0, then the pixels
    raw[:, 1:] = rgba.reshape(h, w * 4)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)  # 8-bit RGBA
    body = zlib.compress(raw.tobytes(), level)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


EMPTY_PNG = encode_png(np.zeros((TILE_SIZE, TILE_SIZE, 4), dtype=np.uint8))


@dataclass(frozen=True)
class Level:
    """One resolution of a raster: full (factor 1) or an overview."""

    values: np.ndarray  # float32 (h, w)
    transform: Any  # affine.Affine
    cell: float  # cell side in CRS units


_CONTROL = 17  # control points per tile side of the coordinate mapping (see RasterSource.warp)
_COARSEST = 64  # levels are halved down to this many cells on the shorter side


def _halve(level: Level) -> Level:
    """The level at half the resolution: each cell the mean of the (up to) four it covers."""
    v = level.values
    h, w = v.shape
    padded = np.full((h + h % 2, w + w % 2), np.nan, dtype=np.float32)
    padded[:h, :w] = v
    blocks = padded.reshape(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2)
    n = np.isfinite(blocks).sum(axis=(1, 3))
    mean = np.nansum(blocks, axis=(1, 3)) / np.maximum(n, 1)
    t = level.transform
    transform = type(t)(t.a * 2, t.b, t.c, t.d, t.e * 2, t.f)
    return Level(mean.astype(np.float32), transform, level.cell * 2)


class RasterSource:
    """A decoded COG: its levels (full resolution first, then its overviews, then levels halved
    from the last down to ~64 cells, coarser and coarser), its CRS and its bounds in EPSG:3857.

    Sampling a level bilinearly is close to what GDAL's bilinear warp gives only while the level's
    cells are no smaller than half the tile's pixels; a coarse level per zoom keeps it so (and
    is the overview a low zoom reads, as gdalwarp does)."""

    def __init__(self, cog: bytes) -> None:
        from pyproj import Transformer
        from rasterio.io import MemoryFile
        from rasterio.warp import transform_bounds

        levels = []
        with MemoryFile(cog) as mem:
            with mem.open() as src:
                self.crs = src.crs
                levels.append(Level(src.read(1).astype(np.float32), src.transform, abs(src.transform.a)))
                n_overviews = len(src.overviews(1))
                bounds = src.bounds
            for i in range(n_overviews):
                with mem.open(OVERVIEW_LEVEL=i) as ovr:
                    levels.append(Level(ovr.read(1).astype(np.float32), ovr.transform, abs(ovr.transform.a)))
        while min(levels[-1].values.shape) > _COARSEST:  # the COG's overviews stop at one block
            levels.append(_halve(levels[-1]))
        self.levels = tuple(levels)
        self.bounds_3857 = transform_bounds(self.crs, "EPSG:3857", *bounds, densify_pts=21)
        self.nbytes = sum(level.values.nbytes for level in self.levels)
        epsg = self.crs.to_epsg()
        # built once per raster: a PROJ transformation costs milliseconds to set up
        self._to_source = Transformer.from_crs("EPSG:3857", f"EPSG:{epsg}" if epsg else self.crs.to_wkt(),
                                               always_xy=True)

    def level_for(self, ground_pixel: float) -> Level:
        """The coarsest level whose cells are no larger than ``ground_pixel`` (else the finest)."""
        chosen = self.levels[0]
        for level in self.levels[1:]:
            if level.cell <= ground_pixel:
                chosen = level
        return chosen

    def warp(self, level: Level, bounds: tuple[float, float, float, float], size: int = TILE_SIZE
             ) -> np.ndarray:
        """``level`` resampled (bilinear) onto a ``size`` x ``size`` grid over ``bounds`` (EPSG:3857);
        NaN where the raster does not reach.

        The same as ``rasterio.warp.reproject(..., resampling=bilinear)`` (tests/tiles/test_raster.py
        compares them), done in numpy: the exact transformation at a 17 x 17 grid of control points,
        interpolated linearly in between (GDAL's approximate transformer does the same), then a
        bilinear read of the cells. GDAL's warper set up an in-memory dataset and a PROJ
        transformation on every call, which cost 5-40 ms per tile here against ~3 ms.
        """
        xmin, ymin, xmax, ymax = bounds
        k = _CONTROL
        gx, gy = np.meshgrid(np.linspace(xmin, xmax, k), np.linspace(ymax, ymin, k))
        sx, sy = self._to_source.transform(gx, gy)
        inv = ~level.transform
        sx, sy = np.asarray(sx), np.asarray(sy)
        cols, rows = inv.a * sx + inv.b * sy + inv.c, inv.d * sx + inv.e * sy + inv.f
        # from cell edges to cell centres; float32 is exact to 1e-4 cell here and halves the work
        cols, rows = (cols - 0.5).astype(np.float32), (rows - 0.5).astype(np.float32)
        u = (np.arange(size) + 0.5) / size * (k - 1)  # destination pixel centres, in control units
        i0 = np.minimum(u.astype(np.intp), k - 2)
        f = (u - i0).astype(np.float32)

        def interpolate(a: np.ndarray) -> np.ndarray:
            by_row = a[i0] * (1 - f)[:, None] + a[i0 + 1] * f[:, None]
            return by_row[:, i0] * (1 - f)[None, :] + by_row[:, i0 + 1] * f[None, :]

        c, r = interpolate(cols), interpolate(rows)
        h, w = level.values.shape
        # a cell's outer half beyond the last centre takes the edge value (as GDAL does)
        inside = (c >= -0.5) & (c <= w - 0.5) & (r >= -0.5) & (r <= h - 0.5)
        c, r = np.clip(c, 0, max(w - 1, 0)), np.clip(r, 0, max(h - 1, 0))
        # the upper-left cell of each 2 x 2 neighbourhood and the fractions, all in float32
        cf, rf = np.minimum(np.floor(c), max(w - 2, 0)), np.minimum(np.floor(r), max(h - 2, 0))
        fc, fr = c - cf, r - rf
        i00 = rf.astype(np.intp) * w + cf.astype(np.intp)  # flat indices: one gather per corner
        dx, dy = (1 if w > 1 else 0), (w if h > 1 else 0)
        flat = level.values.ravel()
        top = flat.take(i00) * (1 - fc) + flat.take(i00 + dx) * fc
        bottom = flat.take(i00 + dy) * (1 - fc) + flat.take(i00 + dy + dx) * fc
        return np.where(inside, top * (1 - fr) + bottom * fr, np.float32(np.nan))

    def render(self, z: int, x: int, y: int, top: float) -> bytes | None:
        """The PNG of tile (z, x, y) coloured up to ``top``; None when nothing in it has colour."""
        xmin, ymin, xmax, ymax = get_tms("WebMercatorQuad").bounds(z, x, y)
        bx0, by0, bx1, by1 = self.bounds_3857
        if xmin >= bx1 or xmax <= bx0 or ymin >= by1 or ymax <= by0:
            return None
        # a Mercator metre is cos(latitude) metres on the ground (at the tile's centre)
        lat = math.atan(math.sinh((ymin + ymax) / 2 / 6378137.0))
        level = self.level_for((xmax - xmin) / TILE_SIZE * math.cos(lat))
        rgba = colourise(self.warp(level, (xmin, ymin, xmax, ymax)), top)
        if not rgba[:, :, 3].any():
            return None
        return encode_png(rgba)


class RasterTiles:
    """Decoded sources in an LRU (by count and bytes) and rendered PNGs in a byte-bounded LRU.

    ``tile`` runs on the event loop; decoding and rendering run in worker threads, and concurrent
    requests for a source not yet decoded wait for the one decode in flight.
    """

    def __init__(self, max_sources: int = 16, source_bytes: int = 256 * 1024 * 1024,
                 cache_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_sources = max_sources
        self.source_bytes = source_bytes
        self._sources: OrderedDict[Hashable, RasterSource] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[Hashable, asyncio.Future[RasterSource]] = {}
        self.png_cache = TileCache(cache_bytes)

    def cached_source(self, key: Hashable) -> RasterSource | None:
        with self._lock:
            src = self._sources.get(key)
            if src is not None:
                self._sources.move_to_end(key)
            return src

    def _keep(self, key: Hashable, src: RasterSource) -> None:
        with self._lock:
            self._sources[key] = src
            # bounded by count and by bytes (a job's raster may be large); the newest always stays
            while len(self._sources) > 1 and (len(self._sources) > self.max_sources or sum(
                    s.nbytes for s in self._sources.values()) > self.source_bytes):
                self._sources.popitem(last=False)

    async def source(self, key: Hashable, fetch: Callable[[], Awaitable[bytes]]) -> RasterSource:
        """The decoded source of ``key``, fetching the COG with ``fetch`` when not cached."""
        src = self.cached_source(key)
        if src is not None:
            return src
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[RasterSource] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            src = await asyncio.to_thread(RasterSource, await fetch())
            self._keep(key, src)
            future.set_result(src)
            return src
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody logs it as lost
            raise
        finally:
            del self._loading[key]

    async def tile(self, raster_id: int, sha256: str, stats: dict[str, Any], z: int, x: int, y: int,
                   fetch: Callable[[], Awaitable[bytes]]) -> tuple[bytes, bool]:
        """(PNG, whether it came from the cache) of tile (z, x, y) of a raster. A tile with no
        colour in it is the shared transparent tile."""
        top = scale_top(stats)
        if top is None:
            return EMPTY_PNG, False
        key = (raster_id, sha256, RAMP_VERSION, z, x, y)
        png = self.png_cache.get(key)
        if png is not None:
            return png, True
        src = await self.source((raster_id, sha256), fetch)
        png = await asyncio.to_thread(src.render, z, x, y, top) or EMPTY_PNG
        self.png_cache.put(key, png)
        return png, False
