"""Saved patrol plans for the people who plan and walk them (issue 9).

``GET /api/patrol/plans`` (the plans the caller may read, newest first), ``GET
/api/patrol/plans/{id}`` (totals, coverage, routes, the stops left out and why) and ``GET
/api/patrol/plans/{id}/export?format=gpx|kml|geojson|csv&datum=wgs84|gcj02`` (a file for the
patrol's device: GPX for GPS receivers in WGS84, GCJ-02 for Amap-based phone apps).

Every read runs in a transaction stating the caller, so row-level security decides which plans
exist (migration 0013): a town user asking for another town's plan gets 404, as for a plan that
does not exist. Analysts and the public never see plans (403). Bad parameters answer 400.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response

from api.deps import EngineDep, PrincipalDep
from gis.patrol import DATUMS, FORMATS, export
from layers.db import transaction
from layers.patrol import list_plans, load_plan, plan_summary

router = APIRouter(prefix="/api/patrol", tags=["patrol"])
STAFF = frozenset({"admin", "command", "town", "grid", "system"})
MEDIA_TYPES = {
    "gpx": "application/gpx+xml",
    "kml": "application/vnd.google-earth.kml+xml",
    "geojson": "application/geo+json",
    "csv": "text/csv; charset=utf-8",
}
_PRIVATE = {"Cache-Control": "no-store"}


def _staff(role: str) -> None:
    if role not in STAFF:
        raise HTTPException(403, f"role {role!r} does not see patrol plans")


def _int(name: str, value: str | None, default: int, lo: int, hi: int) -> int:
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()) or not lo <= int(value) <= hi:
        raise HTTPException(400, f"{name} must be an integer from {lo} to {hi}")
    return int(value)


def _plan_id(value: str) -> int:
    return _int("the plan id", value, 0, 1, 2**62)


def _choice(name: str, value: str | None, default: str, allowed: tuple[str, ...]) -> str:
    got = default if value is None else value.strip().lower()
    if got not in allowed:
        raise HTTPException(400, f"{name} must be one of {', '.join(allowed)}")
    return got


@router.get("/plans", summary="Saved patrol plans the caller may read, newest first")
def plans(engine: EngineDep, principal: PrincipalDep, town: str | None = None, limit: str | None = None,
          offset: str | None = None) -> JSONResponse:
    _staff(principal.role)
    if town is not None and not (town.isascii() and town.isdigit() and len(town) == 9):
        raise HTTPException(400, "town must be a 9-digit town code")
    n, skip = _int("limit", limit, 100, 1, 1000), _int("offset", offset, 0, 0, 10_000_000)
    with transaction(engine, principal) as conn:
        rows: list[dict[str, Any]] = list_plans(conn, town=town, limit=n, offset=skip)
    return JSONResponse(jsonable_encoder({"plans": rows, "limit": n, "offset": skip}), headers=_PRIVATE)


@router.get("/plans/{plan_id}", summary="One saved plan: totals, coverage, routes, stops left out")
def plan(engine: EngineDep, principal: PrincipalDep, plan_id: str) -> JSONResponse:
    _staff(principal.role)
    pid = _plan_id(plan_id)
    with transaction(engine, principal) as conn:
        summary = plan_summary(conn, pid)
    if summary is None:
        raise HTTPException(404, f"no patrol plan {pid}")
    links = [{"rel": "alternate", "type": MEDIA_TYPES[f], "title": f"{f.upper()} ({d})",
              "href": f"/api/patrol/plans/{pid}/export?format={f}&datum={d}"}
             for f in FORMATS for d in DATUMS]
    return JSONResponse(jsonable_encoder({**summary, "links": links}), headers=_PRIVATE)


@router.get("/plans/{plan_id}/export", summary="A saved plan as GPX, KML, GeoJSON or CSV for a device")
def plan_export(engine: EngineDep, principal: PrincipalDep, plan_id: str, format: str | None = None,  # noqa: A002
                datum: str | None = None) -> Response:
    _staff(principal.role)
    pid = _plan_id(plan_id)
    fmt = _choice("format", format, "gpx", FORMATS)
    dat = _choice("datum", None if datum is None else datum.replace("-", ""), "wgs84", DATUMS)
    with transaction(engine, principal) as conn:
        geo = load_plan(conn, pid)
    if geo is None:
        raise HTTPException(404, f"no patrol plan {pid}")
    body = export(geo, fmt, dat)
    filename = f"patrol-plan-{pid}-{dat}.{fmt}"
    return Response(body.encode("utf-8"), media_type=MEDIA_TYPES[fmt],
                    headers={**_PRIVATE, "Content-Disposition": f'attachment; filename="{filename}"'})
