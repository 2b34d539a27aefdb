"""Raster products (issue 7): kernel-density COGs as metadata, downloads and colour tiles.

- ``GET /api/rasters`` lists the rasters the caller may read (``?kind=density&latest=1``: the
  newest monthly density of each event layer, which the map screen draws), each with its tile
  URL template, CRS84 bounds and legend;
- ``GET /api/rasters/{id}``: one raster's metadata;
- ``GET /api/rasters/{id}/cog.tif``: the Cloud-Optimised GeoTIFF (ETag, byte ranges, so GDAL's
  ``/vsicurl/`` reads only what it needs);
- ``GET /api/rasters/{id}/tiles/WebMercatorQuad/{z}/{y}/{x}.png``: 256 x 256 RGBA PNG tiles
  (z/y/x in OGC order); ``.../tilejson.json`` for map clients.

Every read runs in the caller's transaction, so row-level security decides (migration 0012): a
raster the caller may not read does not exist for it (404); a role with no access to rasters at
all (public) gets 403. A valid tile with nothing to draw, inside the raster or not, is the shared
transparent PNG (200): map clients request whole tile pyramids, and a 404 would be an error in
their console. A malformed or out-of-range z/y/x is 400. See docs/rasters.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from psycopg.errors import InsufficientPrivilege
from psycopg_pool import PoolTimeout

from api.deps import PoolDep, PrincipalDep
from layers.db import Principal, atransaction
from layers.rasters import RasterInfo, aget_raster, alist_rasters, aread_cog, aread_range
from tiles.errors import InvalidTileError
from tiles.raster import RAMP_VERSION, RasterTiles, legend, scale_top
from tiles.tms import get_tms

PNG = "image/png"
COG = "image/tiff; application=geotiff; profile=cloud-optimized"
# Rasters are never public: a shared cache must not keep them; ids are immutable, so a private
# cache may keep them a while.
CACHE_CONTROL = "private, max-age=3600"
_VARY = "Authorization, Cookie"
_MAP_MAXZOOM = 15  # past this the map overscales; tiles are served to the end of the matrix set


class RasterRoute(APIRoute):
    """Validation errors are 400 (not FastAPI's 422); a role without access to rasters is 403; a
    database that is down is 503. Never a traceback."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                described = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                return JSONResponse({"detail": described}, status_code=400)
            except InvalidTileError as exc:
                return JSONResponse({"detail": str(exc)}, status_code=400)
            except InsufficientPrivilege:
                return JSONResponse({"detail": "this role does not see rasters"}, status_code=403)
            except (psycopg.OperationalError, PoolTimeout):
                return JSONResponse({"detail": "the database is unavailable; retry later"}, status_code=503)

        return guarded


router = APIRouter(prefix="/api/rasters", route_class=RasterRoute, tags=["rasters"])


async def get_raster_tiles(request: Request) -> RasterTiles:
    """The process's raster tile renderer and its caches (made on first use)."""
    tiles = getattr(request.app.state, "raster_tiles", None)
    if tiles is None:
        tiles = request.app.state.raster_tiles = RasterTiles()
    return tiles


RasterTilesDep = Annotated[RasterTiles, Depends(get_raster_tiles)]
RasterId = Annotated[int, Path(ge=1, le=2**62, description="a raster id")]
TmsId = Annotated[Literal["WebMercatorQuad"], Path(description="only WebMercatorQuad")]


def _base(request: Request) -> str:
    public = request.app.state.settings.public_url
    return (public or str(request.base_url)).rstrip("/")


def _not_modified(request: Request, etag: str) -> bool:
    given = request.headers.get("if-none-match")
    if not given:
        return False
    tags = {t.strip().removeprefix("W/") for t in given.split(",")}
    return "*" in tags or etag in tags


def describe(info: RasterInfo, base: str) -> dict[str, Any]:
    """A raster's metadata as the API shows it: with its links, tile template and legend."""
    href = f"{base}/api/rasters/{info.id}"
    top = scale_top(info.stats)
    return {
        "id": info.id, "kind": info.kind, "layer": info.layer, "period": info.period, "title": info.title,
        "title_zh": info.params.get("title_zh"), "params": info.params, "crs": info.crs,
        "bounds": info.bounds_crs84, "bounds_crs": info.bounds, "width": info.width, "height": info.height,
        "cell_size": info.cell_size, "units": info.units, "stats": info.stats,
        "access": info.audience, "owner": info.owner if info.audience == "owner" else None,
        "job_id": info.job_id, "created": info.created, "size_bytes": info.size_bytes,
        "legend": {"units": info.units, "stops": legend(info.stats, info.display_factor),
                   "scale_top": None if top is None else top * info.display_factor},
        "tiles": f"{href}/tiles/WebMercatorQuad/{{z}}/{{y}}/{{x}}.png",
        "tile_size": 256, "minzoom": 0, "maxzoom": _MAP_MAXZOOM,
        "links": [
            {"rel": "self", "type": "application/json", "href": href},
            {"rel": "enclosure", "type": COG, "title": "Cloud-Optimised GeoTIFF", "href": f"{href}/cog.tif"},
            {"rel": "item", "type": PNG, "templated": True,
             "href": f"{href}/tiles/WebMercatorQuad/{{z}}/{{y}}/{{x}}.png"},
            {"rel": "describedby", "type": "application/json",
             "href": f"{href}/tiles/WebMercatorQuad/tilejson.json"},
        ],
    }


async def _raster(pool: PoolDep, principal: Principal, raster_id: int) -> RasterInfo:
    async with atransaction(pool, principal) as conn:
        info = await aget_raster(conn, raster_id)
    if info is None:
        raise HTTPException(404, f"no raster {raster_id}")
    return info


@router.get("", summary="Rasters the caller may read")
async def list_rasters(request: Request, pool: PoolDep, principal: PrincipalDep,
                       kind: Annotated[Literal["density"] | None, Query()] = None,
                       layer: Annotated[str | None, Query(pattern="^[a-z][a-z0-9_-]{0,63}$")] = None,
                       latest: Annotated[bool, Query(description="newest monthly raster per layer")] = False,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                       offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> JSONResponse:
    async with atransaction(pool, principal) as conn:
        infos = await alist_rasters(conn, kind=kind, layer=layer, latest=latest, limit=limit, offset=offset)
    base = _base(request)
    body = {"rasters": [describe(i, base) for i in infos], "latest": latest, "limit": limit, "offset": offset}
    return JSONResponse(jsonable_encoder(body), headers={"Cache-Control": "private, no-cache", "Vary": _VARY})


@router.get("/{raster_id}", summary="A raster's metadata")
async def raster(request: Request, pool: PoolDep, principal: PrincipalDep,
                 raster_id: RasterId) -> JSONResponse:
    info = await _raster(pool, principal, raster_id)
    return JSONResponse(jsonable_encoder(describe(info, _base(request))),
                        headers={"Cache-Control": "private, no-cache", "Vary": _VARY})


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a single ``Range: bytes=a-b``; None for the whole file. A range
    that cannot be satisfied raises 416."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if m is None or m.group(1) == m.group(2) == "":
        return None  # malformed or several ranges: RFC 9110 lets us answer with the whole file
    if m.group(1) == "":  # the last n bytes
        start, end = max(size - int(m.group(2)), 0), size - 1
    else:
        start = int(m.group(1))
        end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    if start >= size or end < start:
        raise HTTPException(416, "range not satisfiable", headers={"Content-Range": f"bytes */{size}"})
    return start, end


@router.get("/{raster_id}/cog.tif", summary="The raster as a Cloud-Optimised GeoTIFF",
            response_class=Response,
            responses={200: {"content": {COG: {}}}, 206: {"description": "a byte range"},
                       304: {"description": "not modified"}})
async def download(request: Request, pool: PoolDep, principal: PrincipalDep, raster_id: RasterId) -> Response:
    async with atransaction(pool, principal) as conn:
        info = await aget_raster(conn, raster_id)
        if info is None:
            raise HTTPException(404, f"no raster {raster_id}")
        name = f"{info.kind}-{info.layer}-{info.period:%Y-%m}" if info.period else f"{info.kind}-{info.id}"
        headers = {"ETag": info.etag, "Cache-Control": CACHE_CONTROL, "Vary": _VARY, "Accept-Ranges": "bytes",
                   "Content-Disposition": f'attachment; filename="{name}.tif"'}
        if _not_modified(request, info.etag):
            return Response(status_code=304, headers=headers)
        span = _byte_range(request.headers.get("range"), info.size_bytes)
        if span is not None and request.headers.get("if-range", info.etag) == info.etag:
            start, end = span
            body = await aread_range(conn, raster_id, start, end - start + 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{info.size_bytes}"
            return Response(body, status_code=206, media_type=COG, headers=headers)
        body = await aread_cog(conn, raster_id)
    return Response(body, media_type=COG, headers=headers)


@router.get("/{raster_id}/tiles/{tileMatrixSetId}/tilejson.json", summary="TileJSON of a raster's tiles")
async def tilejson(request: Request, pool: PoolDep, principal: PrincipalDep, raster_id: RasterId,
                   tms_id: Annotated[TmsId, Path(alias="tileMatrixSetId")]) -> JSONResponse:
    info = await _raster(pool, principal, raster_id)
    doc = describe(info, _base(request))
    body = {"tilejson": "3.0.0", "name": info.title, "description": doc["title_zh"] or info.title,
            "tiles": [doc["tiles"]], "bounds": list(info.bounds_crs84), "minzoom": 0, "maxzoom": _MAP_MAXZOOM,
            "scheme": "xyz", "legend": doc["legend"]}
    return JSONResponse(jsonable_encoder(body), headers={"Cache-Control": "private, no-cache", "Vary": _VARY})


@router.get("/{raster_id}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}.png",
            summary="A colour tile of a raster (PNG, 256 x 256 RGBA)", response_class=Response,
            responses={200: {"content": {PNG: {}}}, 304: {"description": "not modified"}})
async def tile(request: Request, pool: PoolDep, principal: PrincipalDep, tiles: RasterTilesDep,
               raster_id: RasterId, tms_id: Annotated[TmsId, Path(alias="tileMatrixSetId")],
               z: Annotated[int, Path(alias="tileMatrix")], y: Annotated[int, Path(alias="tileRow")],
               x: Annotated[int, Path(alias="tileCol")]) -> Response:
    get_tms(tms_id).validate(z, x, y)  # 400 outside the matrix set
    info = await _raster(pool, principal, raster_id)  # RLS first, even for a cached tile
    etag = f'"{info.sha256[:24]}.{RAMP_VERSION}"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": _VARY}
    if _not_modified(request, etag):
        return Response(status_code=304, headers=headers)

    async def fetch() -> bytes:
        async with atransaction(pool, principal) as conn:
            cog = await aread_cog(conn, raster_id)
        if cog is None:  # deleted since the metadata was read
            raise HTTPException(404, f"no raster {raster_id}")
        return cog

    body, hit = await tiles.tile(info.id, info.sha256, info.stats, z, x, y, fetch)
    headers["X-Cache"] = "HIT" if hit else "MISS"
    return Response(body, media_type=PNG, headers=headers)
