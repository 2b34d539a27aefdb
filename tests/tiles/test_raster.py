"""Monthly density rasters stored as COGs (etl/density.py, layers/rasters.py) and their colour
tiles (tiles/raster.py), on the demo district."""

from __future__ import annotations

import asyncio
import math
import warnings
from collections.abc import Iterator
from datetime import date

import numpy as np
import pytest
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile
from rasterio.transform import Affine
from rasterio.warp import Resampling, reproject
from sqlalchemy import Engine, text

from etl.density import refresh_density
from gis.hotspots.kde import kernel_density
from layers.rasters import RasterError, get_raster, list_rasters, read_cog, save_raster
from tiles.raster import (
    EMPTY_PNG,
    FLOOR,
    RAMP,
    RasterSource,
    RasterTiles,
    colourise,
    encode_png,
    legend,
    scale_top,
)
from tiles.tms import get_tms

TZ = "Asia/Shanghai"


@pytest.fixture(scope="module")
def monthly(demo_engine: Engine) -> Iterator[dict[str, int]]:
    """The monthly density of each event layer, as the refresh stores it (removed afterwards)."""
    ids = {r.layer: r.raster_id for r in refresh_density(demo_engine)}
    yield ids
    with demo_engine.begin() as c:
        c.execute(text("DELETE FROM pingan.rasters WHERE id = ANY(:ids)"), {"ids": list(ids.values())})


def decode_png(png: bytes) -> np.ndarray:
    """RGBA (h, w, 4) of a PNG, decoded by GDAL's PNG driver (not by our encoder's code)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # a PNG has no georeference
        with MemoryFile(png) as mem, mem.open() as src:
            assert src.driver == "PNG" and src.count == 4
            return np.moveaxis(src.read(), 0, -1)


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int, int, int]:
    """(z, x, y) of the WebMercatorQuad tile holding a point, and the pixel (col, row) in it."""
    n = 1 << z
    fx = (lon + 180.0) / 360.0 * n
    fy = (1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n
    return z, int(fx), int(fy), int((fx % 1) * 256), int((fy % 1) * 256)


def _events(engine: Engine, layer: str, column: str, start: str, end: str) -> np.ndarray:
    with engine.connect() as c:
        rows = c.execute(text(
            f"SELECT ST_X(ST_Transform(geom, 4549)), ST_Y(ST_Transform(geom, 4549)) FROM pingan.{layer}"  # noqa: S608
            f" WHERE {column} >= CAST(:s AS timestamp) AT TIME ZONE '{TZ}'"
            f" AND {column} < CAST(:e AS timestamp) AT TIME ZONE '{TZ}'"), {"s": start, "e": end}).all()
    return np.asarray(rows, dtype=float)


def test_refresh_takes_the_newest_complete_month(demo_engine: Engine, monthly) -> None:
    with demo_engine.connect() as c:
        expected = c.execute(text(
            f"SELECT date_trunc('month', max(found_at) AT TIME ZONE '{TZ}')::date FROM pingan.hazards"  # noqa: S608
            f" WHERE found_at < date_trunc('month', now() AT TIME ZONE '{TZ}') AT TIME ZONE '{TZ}'")
        ).scalar_one()
        latest = {i.layer: i for i in list_rasters(c, kind="density", latest=True)}
    assert set(latest) == {"hazards", "cases"}
    hz = latest["hazards"]
    assert hz.id == monthly["hazards"] and hz.period == expected
    months = expected.year * 12 + expected.month - 1 - 2  # a window of 3 months ending with it
    assert hz.params["start"] == date(months // 12, months % 12 + 1, 1).isoformat()
    assert hz.audience == "district" and hz.owner == "system" and hz.crs == "EPSG:4549"
    # the district lies around 120.5 E, 28 N (Wenzhou)
    w, s, e, n = hz.bounds_crs84
    assert 119 < w < e < 122 and 27 < s < n < 29


def test_stored_cog_is_a_cog_equal_to_a_direct_kernel_density(demo_engine: Engine, monthly) -> None:
    with demo_engine.connect() as c:
        info = get_raster(c, monthly["hazards"])
        cog = read_cog(c, info.id)
    with MemoryFile(cog) as mem, mem.open() as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert src.overviews(1) and src.profile["tiled"] and src.crs.to_epsg() == 4549
        assert (src.width, src.height) == (info.width, info.height)
        stored = src.read(1).astype(np.float64)
        x0, y1 = src.transform.c, src.transform.f
    p = info.params
    xy = _events(demo_engine, "hazards", "found_at", p["start"], p["end"])
    assert len(xy) == p["n_events"] > 100
    direct = kernel_density(xy, extent=tuple(p["extent"]), cell_size=p["cell_size_m"], kernel="quartic",
                            bandwidth="arcgis")
    assert (direct.x0, direct.y1) == (x0, y1) and direct.shape == stored.shape
    assert direct.bandwidth == pytest.approx(p["bandwidth_m"], rel=1e-12)
    inside = stored > 0
    # 1e-6 relative; the FFT's round-off (~1e-16 of the peak, in another order of the events) aside
    np.testing.assert_allclose(stored[inside], direct.values[inside], rtol=1e-6, atol=1e-12 * stored.max())
    # the cells set to zero are outside the district (checked by PostGIS at a sample of them)
    rows, cols = np.nonzero(~inside & (direct.values > 0.05 * direct.values.max()))
    pick = np.random.default_rng(1).choice(len(rows), min(50, len(rows)), replace=False)
    cx, cy = x0 + (cols[pick] + 0.5) * 50.0, y1 - (rows[pick] + 0.5) * 50.0
    with demo_engine.connect() as c:
        covered = c.execute(text(
            "SELECT count(*) FROM unnest(CAST(:x AS float8[]), CAST(:y AS float8[])) AS t(x, y)"
            " WHERE EXISTS (SELECT 1 FROM pingan.towns WHERE ST_Intersects(geom,"
            " ST_Transform(ST_SetSRID(ST_MakePoint(x, y), 4549), 4490)))"),
            {"x": cx.tolist(), "y": cy.tolist()}).scalar_one()
    assert covered == 0
    assert inside.sum() > 0.3 * inside.size
    # and the density is the quartic kernel sum itself (the binned method's error is small)
    top = np.unravel_index(np.argmax(stored), stored.shape)
    centre = np.array([x0 + (top[1] + 0.5) * 50.0, y1 - (top[0] + 0.5) * 50.0])
    h = p["bandwidth_m"]
    d2 = ((xy - centre) ** 2).sum(axis=1)
    exact = (3 / (math.pi * h * h) * (1 - d2[d2 < h * h] / (h * h)) ** 2).sum()
    assert stored[top] == pytest.approx(exact, rel=0.01)


def test_refresh_replaces_the_month(demo_engine: Engine, monthly) -> None:
    count = "SELECT count(*) FROM pingan.rasters WHERE audience = 'district'"
    with demo_engine.connect() as c:
        before = c.execute(text(count)).scalar_one()
        old = get_raster(c, monthly["hazards"])
        version = c.execute(text(
            "SELECT version FROM pingan.layer_versions WHERE layer_id = 'density'")).scalar()
    again = {r.layer: r.raster_id for r in refresh_density(demo_engine)}
    monthly.update(again)  # the module's rasters are now these
    with demo_engine.connect() as c:
        assert c.execute(text(count)).scalar_one() == before  # the month's raster replaced, not added
        assert get_raster(c, old.id) is None
        new = get_raster(c, again["hazards"])
        assert c.execute(text(
            "SELECT version FROM pingan.layer_versions WHERE layer_id = 'density'")).scalar() > version
    assert new.id != old.id and new.period == old.period
    assert new.sha256 == old.sha256  # the same events make the same bytes


def test_save_raster_refuses_bad_input(demo_engine: Engine) -> None:
    grid = kernel_density([[0.0, 0.0], [10.0, 5.0]], extent=(-50, -50, 50, 50), cell_size=10, bandwidth=30)
    with demo_engine.connect() as c:
        with pytest.raises(RasterError, match="kind"):
            save_raster(c, grid, crs=4549, kind="heat", layer="hazards", title="t", params={})
        with pytest.raises(RasterError, match="CRS"):
            save_raster(c, grid, crs="EPSG:999999", kind="density", layer="hazards", title="t", params={})


def test_colour_ramp() -> None:
    stats = {"percentiles_positive": {"p99": 2.0}, "max": 5.0}
    assert scale_top(stats) == 2.0 and scale_top({"max": 0.0, "percentiles_positive": {"p99": None}}) is None
    rgba = colourise(np.array([[0.0, FLOOR * 2.0 * 0.5, 1.0, 2.0, 9.0, np.nan]], dtype=np.float32), 2.0)
    assert rgba[0, 0, 3] == 0 and rgba[0, 1, 3] == 0 and rgba[0, 5, 3] == 0  # zero, below the floor, NaN
    assert tuple(rgba[0, 3]) == tuple(rgba[0, 4]) == RAMP[-1][1]  # the top and above: the last colour
    assert 0 < rgba[0, 2, 3] < rgba[0, 3, 3] and rgba[0, 2, 1] > rgba[0, 3, 1]  # less red, less opaque
    stops = legend(stats, factor=1e6)
    assert [s["value"] for s in stops] == pytest.approx([f * 2e6 for f, _ in RAMP])
    assert stops[-1]["color"] == "#bd0026"


def test_png_encoder_decodes_with_gdal() -> None:
    rgba = np.random.default_rng(3).integers(0, 256, (256, 256, 4), dtype=np.uint8)
    assert (decode_png(encode_png(rgba)) == rgba).all()
    assert (decode_png(EMPTY_PNG) == 0).all()


def test_warp_equals_rasterio_reproject(demo_engine: Engine, monthly) -> None:
    """Where a level's cells are no smaller than the tile's pixels (which GDAL's bilinear does not
    smooth further), our warp gives what rasterio.warp.reproject gives."""
    with demo_engine.connect() as c:
        info = get_raster(c, monthly["hazards"])
        src = RasterSource(read_cog(c, info.id))
    assert [lv.cell for lv in src.levels][:4] == pytest.approx([50, 100, 200, 400], rel=0.01)
    lon = (info.bounds_crs84[0] + info.bounds_crs84[2]) / 2
    lat = (info.bounds_crs84[1] + info.bounds_crs84[3]) / 2
    compared = 0
    for z in (9, 12, 14):
        _, x, y, _, _ = tile_of(lon, lat, z)
        bounds = get_tms("WebMercatorQuad").bounds(z, x, y)
        side = (bounds[2] - bounds[0]) / 256  # (rasterio's from_bounds warns under affine 3)
        ground = side * math.cos(math.radians(lat))
        chosen = src.level_for(ground)  # the coarsest level no coarser than the tile's pixels
        assert chosen is src.levels[0] if ground < 50 else chosen.cell <= ground < 2.01 * chosen.cell
        for level in (lv for lv in src.levels if lv.cell >= ground):
            ours = src.warp(level, bounds)
            ref = np.full((256, 256), np.nan, dtype=np.float32)
            reproject(level.values, ref, src_transform=level.transform, src_crs=src.crs, src_nodata=np.nan,
                      dst_transform=Affine(side, 0, bounds[0], 0, -side, bounds[3]), dst_crs="EPSG:3857",
                      dst_nodata=np.nan, resampling=Resampling.bilinear)
            both = np.isfinite(ours) & np.isfinite(ref)
            assert both.sum() > 0.95 * np.isfinite(ref).sum() > 0
            # both interpolate the coordinate transformation between control points (GDAL to 1/8
            # pixel): a few thousandths of the peak at most, at z9, where a pixel is 270 m
            diff, peak = np.abs(ours[both] - ref[both]), float(np.nanmax(ref))
            assert diff.max() <= 5e-3 * peak and diff.mean() <= 1e-4 * peak
            compared += 1
    assert compared >= 5


def test_tile_is_coloured_at_the_hottest_cell_and_empty_far_away(demo_engine: Engine, monthly) -> None:
    with demo_engine.connect() as c:
        info = get_raster(c, monthly["hazards"])
        cog = read_cog(c, info.id)
    src = RasterSource(cog)
    full = src.levels[0]
    row, col = np.unravel_index(np.argmax(full.values), full.values.shape)
    t = full.transform
    x, y = t.c + (col + 0.5) * t.a, t.f + (row + 0.5) * t.e
    with rasterio.Env():
        from rasterio.warp import transform as transform_points

        (lon,), (lat,) = transform_points(src.crs, "OGC:CRS84", [x], [y])
    top = scale_top(info.stats)
    for zoom in (10, 13):
        z, tx, ty, px, py = tile_of(lon, lat, zoom)
        rgba = decode_png(src.render(z, tx, ty, top))
        assert tuple(rgba[py, px]) == RAMP[-1][1]  # the hottest place has the top colour
    # a tile 1 degree east of the district has nothing to draw
    z, tx, ty, _, _ = tile_of(info.bounds_crs84[2] + 1.0, lat, 12)
    assert src.render(z, tx, ty, top) is None
    # the tile right past the raster's east edge is inside the bounds' tile range but transparent
    east = (info.bounds_crs84[2] + 180.0) / 360.0 * (1 << 12)
    tile = src.render(12, int(east) + 1, ty, top)
    assert tile is None or (decode_png(tile)[:, :, 3] == 0).all()


def test_tile_service_decodes_once_and_caches(demo_engine: Engine, monthly) -> None:
    with demo_engine.connect() as c:
        infos = [get_raster(c, monthly[layer]) for layer in ("hazards", "cases")]
        cogs = {i.id: read_cog(c, i.id) for i in infos}
    fetched: list[int] = []

    def fetcher(rid: int):  # noqa: ANN202
        async def fetch() -> bytes:
            fetched.append(rid)
            await asyncio.sleep(0.05)  # the others arrive while this one is in flight
            return cogs[rid]
        return fetch

    hz, cs = infos
    z, x, y, _, _ = tile_of((hz.bounds_crs84[0] + hz.bounds_crs84[2]) / 2,
                            (hz.bounds_crs84[1] + hz.bounds_crs84[3]) / 2, 11)

    async def scenario() -> None:
        service = RasterTiles(max_sources=1)
        first = await asyncio.gather(*(service.tile(hz.id, hz.sha256, hz.stats, z, x + i, y, fetcher(hz.id))
                                       for i in range(3)))
        assert fetched == [hz.id] and not any(hit for _, hit in first)
        again, hit = await service.tile(hz.id, hz.sha256, hz.stats, z, x, y, fetcher(hz.id))
        assert hit and again == first[0][0]
        await service.tile(cs.id, cs.sha256, cs.stats, z, x, y, fetcher(cs.id))
        assert service.cached_source((hz.id, hz.sha256)) is None  # one source kept: the newest
        assert service.cached_source((cs.id, cs.sha256)) is not None

    asyncio.run(scenario())
