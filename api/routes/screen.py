"""The command-centre map screen (issue 8): one page, its script and style, MapLibre GL from npm.

``GET /`` answers the page to a logged-in caller (others go to ``/login?next=/``); everything
it loads comes from this service: ``/static/...`` (our script and style),
``/static/vendor/maplibre/...`` (MapLibre GL JS, installed by ``npm ci`` under the assets
directory) and ``/static/glyphs/...`` (label glyphs that ``npm ci`` builds from the Noto Sans
font of the npm package @fontsource/noto-sans: scripts/build-glyphs.mjs; Chinese is drawn from
the system's CJK font). The page draws the project's own vector tiles; no basemap, font or
script comes from elsewhere, so it works with no internet at all, unless the deployment sets an
external basemap (``PINGAN_BASEMAP_URL``), whose origin alone the page's CSP then allows.

The page embeds a small JSON document (``<script id="boot" type="application/json">``) with
what its first view needs — the caller, the collections it may read, the index's months and the
district's extent — so the map starts without a round trip first (docs/map-screen.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api.auth import optional_principal
from api.auth.credentials import csrf_token
from api.hardening import content_security_policy
from api.ogc.config import TILESETS_VECTOR
from layers.db import Principal, atransaction

log = logging.getLogger(__name__)
router = APIRouter(tags=["map screen"])
STATIC = resources.files("api").joinpath("static")
TEXTS = {
    "zh": {"title": "平安一张图", "lang": "zh-CN", "loading": "正在加载地图…", "other": "English",
           "other_href": "/?lang=en"},
    "en": {"title": "Pingan Map", "lang": "en", "loading": "Loading the map…", "other": "中文",
           "other_href": "/?lang=zh"},
}
TMS = "WebMercatorQuad"
_RANGE = re.compile(r"^(\d{1,5})-(\d{1,5})\.pbf$")


def _empty_glyphs(stack: str, start: int) -> bytes:
    """A glyph PBF with no glyph (MapLibre then draws nothing for those code points, without an
    error): glyphs { stacks { name, range } }."""
    def field(n: int, data: bytes) -> bytes:
        return bytes([n << 3 | 2]) + _varint(len(data)) + data

    inner = field(1, stack.encode()) + field(2, f"{start}-{start + 255}".encode())
    return field(1, inner)


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 127:
        out.append(n & 127 | 128)
        n >>= 7
    out.append(n)
    return bytes(out)


@router.get("/static/glyphs/{fontstack}/{name}", summary="Label glyphs (SDF PBF, 256 code points)",
            include_in_schema=False)
async def glyphs(request: Request, fontstack: str, name: str) -> Response:
    m = _RANGE.match(name)
    if not m or int(m.group(1)) % 256 or int(m.group(2)) != int(m.group(1)) + 255 or int(m.group(2)) > 65535:
        raise HTTPException(404, "not a glyph range")
    stack = fontstack.split(",")[0].strip()  # MapLibre joins a text-font list with commas
    root: Path | None = request.app.state.glyphs_dir
    headers = {"Cache-Control": "public, max-age=86400"}
    if root is None or not re.fullmatch(r"[A-Za-z0-9 _-]{1,64}", stack):
        raise HTTPException(404, "no such font")
    path = root / stack / name
    if path.is_file():
        return Response(path.read_bytes(), media_type="application/x-protobuf", headers=headers)
    if (root / stack).is_dir():  # a range the font does not cover: empty, not an error
        return Response(_empty_glyphs(stack, int(m.group(1))), media_type="application/x-protobuf",
                        headers=headers)
    raise HTTPException(404, "no such font")


_FIRST_VIEW = """
SELECT (SELECT min(period) FROM pingan.index_villages) AS first,
       (SELECT max(period) FROM pingan.index_villages) AS last,
       ST_XMin(e) AS x0, ST_YMin(e) AS y0, ST_XMax(e) AS x1, ST_YMax(e) AS y1
FROM (SELECT ST_Extent(geom) AS e FROM pingan.towns) s
"""
_TOWN_LABELS = ("SELECT code, name, ST_X(p), ST_Y(p) FROM (SELECT code, name, ST_PointOnSurface(geom) AS p"
                " FROM pingan.towns) s ORDER BY code")
# The map's size in CSS pixels on the two wall screens (as measured with map.css at 1920x1080
# and 3840x2160), until the page has reported its own (cookie pingan_view).
_MAP_SIZES = ((1258, 1019), (2036, 2038))


async def _boot(request: Request, principal: Principal, language: str) -> dict[str, Any]:
    """What the first view needs, so the page starts the map without asking first: the caller,
    the collections its role may read (from the registry, as /ogc/collections lists them), the
    index's months and the district's extent (one cheap query, in the caller's transaction)."""
    app = request.app
    settings = app.state.settings
    me: dict[str, Any] = {"user": principal.user, "role": principal.role, "areas": list(principal.areas)}
    if getattr(request.state, "auth_method", None) == "session":
        me["csrf_token"] = csrf_token(request.state.session_id)
    registry = app.state.registry
    collections = [{"id": layer.id, "title": layer.title_en if language == "en" else layer.title_zh,
                    "links": [{"rel": TILESETS_VECTOR}]}
                   for layer in registry.served() if layer.readable_by(principal.role)]
    async with atransaction(app.state.pool, principal) as conn:
        row = await (await conn.execute(_FIRST_VIEW)).fetchone()
    first, last, *box = row
    months = [[f"{first.isoformat()}T00:00:00Z", f"{last.isoformat()}T00:00:00Z"]] if first else None
    index = ({"extent": {"temporal": {"interval": months}}}
             if months and any(c["id"] == "index-villages" for c in collections) else None)
    bbox = [float(v) for v in box] if box[0] is not None else None
    async with atransaction(app.state.pool, principal) as conn:  # one label point per town
        towns = await (await conn.execute(_TOWN_LABELS)).fetchall()
    if bbox and index:
        _warm_first_view(app, principal, last.isoformat(), bbox, _view_size(request))
    return {
        "me": me, "collections": collections, "index": index, "bbox": bbox,
        "towns": [[code, name, round(x, 6), round(y, 6)] for code, name, x, y in towns],
        "rasters": True,  # /api/rasters (api/routes/rasters.py) lists the monthly densities
        "basemap": ({"url": settings.basemap_url, "attribution": settings.basemap_attribution}
                    if settings.basemap_url else None),
    }


def _merc_y(lat: float) -> float:
    r = math.radians(lat)
    return (1 - math.log(math.tan(r) + 1 / math.cos(r)) / math.pi) / 2


def first_view_tiles(bbox: list[float], sizes: tuple[tuple[int, int], ...] = _MAP_SIZES,
                     padding: int = 20) -> list[tuple[int, int, int]]:
    """The (z, x, y) tiles of 512 px that MapLibre asks for when it fits ``bbox`` into maps of
    these sizes: z = floor of the fitted zoom (vector sources of 512-px tiles)."""
    x0, y0, x1, y1 = bbox
    w0 = (x1 - x0) / 360 * 512
    h0 = (_merc_y(y0) - _merc_y(y1)) * 512
    out: list[tuple[int, int, int]] = []
    for width, height in sizes:
        zoom = math.log2(min((width - 2 * padding) / w0, (height - 2 * padding) / h0))
        levels = {math.floor(zoom)}
        if zoom % 1 > 0.95 or zoom % 1 < 0.05:  # too close to call: the neighbour level too
            levels.add(round(zoom) - (1 if zoom % 1 < 0.05 else 0))
        for z in sorted(max(0, min(16, z)) for z in levels):
            n = 2 ** z
            for x in range(int((x0 + 180) / 360 * n), int((x1 + 180) / 360 * n) + 1):
                for y in range(int(_merc_y(y1) * n), int(_merc_y(y0) * n) + 1):
                    if (z, x, y) not in out:
                        out.append((z, x, y))
    return out


def _view_size(request: Request) -> tuple[int, int]:
    """The map's size the page last reported (cookie ``pingan_view``; set by map.js), else the
    1920x1080 wall screen's."""
    m = re.fullmatch(r"(\d{2,5})x(\d{2,5})", request.cookies.get("pingan_view", ""))
    return (int(m.group(1)), int(m.group(2))) if m else _MAP_SIZES[0]


def _warm_first_view(app: FastAPI, principal: Principal, period: str, bbox: list[float],
                     size: tuple[int, int]) -> None:
    """Render (into the tile cache, keyed on the caller's role and areas) the index and base
    tiles of the first view while the browser is still loading the scripts: the map's first
    tile requests then hit the cache or join the render in flight."""
    tiles = first_view_tiles(bbox, (size,))
    seen: set[tuple] = app.state.__dict__.setdefault("_warmed", set())
    key = (principal.role, principal.areas, period, tuple(bbox), size)
    if key in seen or len(tiles) > 64:
        return
    seen.add(key)

    async def warm() -> None:
        service, pool = app.state.tiles, app.state.pool
        try:
            for z, x, y in tiles:
                index = await service.collection_key(pool, principal, "index-villages", TMS, z, x, y,
                                                     {"period": [period]})
                base = await service.dataset_key(pool, principal, ["towns", "villages"], TMS, z, x, y)
                await asyncio.gather(service.tile(pool, principal, index),
                                     service.tile(pool, principal, base))
        except Exception:  # a warm-up is an optimisation: never an error for anyone
            log.warning("warming the first view's tiles failed", exc_info=True)
            seen.discard(key)

    task = asyncio.get_running_loop().create_task(warm())
    pending: set = app.state.__dict__.setdefault("_warming", set())
    pending.add(task)
    task.add_done_callback(pending.discard)


@router.get("/", summary="The command-centre map screen", response_class=HTMLResponse)
async def map_page(request: Request, lang: str | None = None) -> Response:
    principal = await optional_principal(request)
    language = "en" if (lang or "").lower().startswith("en") else "zh"
    if principal is None:
        return RedirectResponse(f"/login?next=/&lang={language}", status_code=303)
    t = TEXTS[language]
    page = STATIC.joinpath("index.html").read_text(encoding="utf-8")
    for key, value in t.items():
        page = page.replace("{{" + key + "}}", escape(value))
    boot = json.dumps(await _boot(request, principal, language), ensure_ascii=False, separators=(",", ":"))
    boot = boot.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")  # safe in <script>
    page = page.replace("{{boot}}", boot)
    headers = {"Cache-Control": "no-store"}
    basemap = request.app.state.settings.basemap_url
    if basemap:
        parts = urlsplit(basemap)
        headers["Content-Security-Policy"] = content_security_policy((f"{parts.scheme}://{parts.netloc}",))
    return HTMLResponse(page, headers=headers)


def mount_static(app: FastAPI, assets_dir: Path | None) -> None:
    """Our own static files, MapLibre GL's build and the label glyphs from the npm assets directory."""
    app.mount("/static/app", StaticFiles(directory=str(STATIC)), name="static-app")
    maplibre = (assets_dir / "maplibre-gl" / "dist") if assets_dir else None
    if maplibre is not None and maplibre.is_dir():
        app.mount("/static/vendor/maplibre", StaticFiles(directory=str(maplibre)), name="maplibre")
    glyphs_dir = (assets_dir / "pingan-glyphs") if assets_dir else None
    app.state.glyphs_dir = glyphs_dir if glyphs_dir is not None and glyphs_dir.is_dir() else None
    if app.state.glyphs_dir is None:
        log.warning("no label glyphs under %s: run npm ci (scripts/build-glyphs.mjs)", assets_dir)
