"""The command-centre map screen (issue 8): one page, its script and style, MapLibre GL from npm.

``GET /`` answers the page to a logged-in caller (others go to ``/login?next=/``); everything
it loads comes from this service: ``/static/...`` (our script and style) and
``/static/vendor/maplibre/...`` (MapLibre GL JS, installed by ``npm ci`` under the assets
directory). The page draws the project's own vector tiles; no basemap, font or script comes
from elsewhere, so it works with no internet at all.
"""

from __future__ import annotations

from html import escape
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api.auth import optional_principal

router = APIRouter(tags=["map screen"])
STATIC = resources.files("api").joinpath("static")
TEXTS = {
    "zh": {"title": "平安一张图", "lang": "zh-CN", "loading": "正在加载地图…", "other": "English",
           "other_href": "/?lang=en"},
    "en": {"title": "Pingan Map", "lang": "en", "loading": "Loading the map…", "other": "中文",
           "other_href": "/?lang=zh"},
}


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
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


def mount_static(app: FastAPI, assets_dir: Path | None) -> None:
    """Our own static files, and MapLibre GL's build from the npm assets directory."""
    app.mount("/static/app", StaticFiles(directory=str(STATIC)), name="static-app")
    maplibre = (assets_dir / "maplibre-gl" / "dist") if assets_dir else None
    if maplibre is not None and maplibre.is_dir():
        app.mount("/static/vendor/maplibre", StaticFiles(directory=str(maplibre)), name="maplibre")
