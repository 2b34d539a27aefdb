"""What the command-centre map screen reads beside the map (issue 8).

- ``GET /api/warnings?town=CODE``: the open 预警/抄告/督办/挂牌 items (``layers.index.open_warnings``)
  with where each place is, for the warning list; staff only (the ladder is granted to admin,
  command, town and grid: migration 0007), row-level security decides which items.
- ``GET /api/kpis?period=YYYY-MM[&town=CODE]``: the KPI panels (``layers.dashboard.kpis``).
- ``GET /api/places/{code}?period=YYYY-MM``: a village's or town's index with each indicator's
  contribution, and its open ladder items.
- ``GET /api/hazards/{id}/history``, ``GET /api/cases/{id}/history``: a record's state history
  (id or code); 404 when row-level security hides it, 403 for roles that never see individuals.
- ``GET /api/labels?period=YYYY-MM``: one label point per village with its score (GeoJSON): a
  polygon's label drawn from tiles would repeat in every tile the polygon crosses.
- ``GET /api/versions``: layer data versions, which the page polls to reload what changed.

Everything runs in the caller's transaction (``layers.db.transaction``), so the database's
privileges and policies decide what a role sees; nothing here filters by hand except the
published index (which has no row-level security) by the caller's areas.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from api.deps import EngineDep, PrincipalDep
from layers import dashboard
from layers.db import transaction
from layers.versions import versions as layer_versions

router = APIRouter(prefix="/api", tags=["map screen"])
LADDER_ROLES = frozenset({"admin", "command", "town", "grid"})
STEPS = {1: ("预警", "warning"), 2: ("抄告", "notice"), 3: ("督办", "supervision"), 4: ("挂牌", "listing")}
TownQuery = Annotated[str | None, Query(pattern=r"^\d{9}$", description="a town code (9 digits)")]
PeriodQuery = Annotated[str | None, Query(max_length=10,
                                          description="the month, YYYY-MM (default: the latest)")]
_NO_STORE = {"Cache-Control": "no-store"}


def _json(body: Any) -> JSONResponse:
    return JSONResponse(jsonable_encoder(body), headers=_NO_STORE)


def _period(conn, value: str | None):  # noqa: ANN001, ANN202 - a Connection; a date
    try:
        if value:
            return dashboard.parse_period(value)
    except dashboard.DashboardInputError as exc:
        raise HTTPException(400, str(exc)) from None
    latest = dashboard.latest_period(conn)
    if latest is None:
        raise HTTPException(404, "no index has been computed yet (pingan index compute)")
    return latest


def _places(conn, codes: set[str]) -> dict[str, dict[str, Any]]:  # noqa: ANN001
    """Where each village or town is: a point inside it and its bounding box (CRS84)."""
    if not codes:
        return {}
    rows = conn.execute(text(
        "SELECT code, ST_X(p) AS lon, ST_Y(p) AS lat, ST_XMin(b) AS x0, ST_YMin(b) AS y0, ST_XMax(b) AS x1,"
        " ST_YMax(b) AS y1 FROM (SELECT code, ST_PointOnSurface(geom) AS p, ST_Envelope(geom) AS b"
        " FROM pingan.villages WHERE code = ANY (:c) UNION ALL SELECT code, ST_PointOnSurface(geom),"
        " ST_Envelope(geom) FROM pingan.towns WHERE code = ANY (:c)) s"), {"c": sorted(codes)}).mappings()
    return {r["code"]: {"lon": r["lon"], "lat": r["lat"], "bbox": [r["x0"], r["y0"], r["x1"], r["y1"]]}
            for r in rows}


def _warning_items(conn, rows: list) -> list[dict[str, Any]]:  # noqa: ANN001
    items = [dict(r._mapping) for r in rows]
    where = _places(conn, {i["code"] for i in items})
    for item in items:
        zh, en = STEPS.get(int(item["step"]), ("", ""))
        item["step_zh"], item["step_en"] = zh, en
        item["place"] = where.get(item["code"])
    return items


@router.get("/warnings", summary="Open ladder items (预警/抄告/督办/挂牌), most severe first")
def warnings(engine: EngineDep, principal: PrincipalDep, town: TownQuery = None) -> JSONResponse:
    from layers.index import open_warnings

    if principal.role not in LADDER_ROLES:
        raise HTTPException(403, f"role {principal.role!r} does not see the accountability ladder")
    with transaction(engine, principal) as conn:
        items = _warning_items(conn, open_warnings(conn, town))
    return _json({"town": town, "count": len(items), "overdue": sum(bool(i.get("overdue")) for i in items),
                  "items": items})


@router.get("/kpis", summary="The KPI panels of a month, for the caller's jurisdiction")
def kpis(engine: EngineDep, principal: PrincipalDep, period: PeriodQuery = None,
         town: TownQuery = None) -> JSONResponse:
    with transaction(engine, principal) as conn:
        month = _period(conn, period)
        body = dashboard.kpis(conn, principal, month, town)
    return _json(body)


@router.get("/places/{code}", summary="A village's or town's index with each indicator's contribution")
def place(engine: EngineDep, principal: PrincipalDep,
          code: Annotated[str, Path(pattern=r"^(\d{9}|\d{12})$")],
          period: PeriodQuery = None) -> JSONResponse:
    from layers.index import open_warnings

    if principal.role == "public":
        raise HTTPException(403, "the public sees the published index only (/ogc/collections/index-villages)")
    with transaction(engine, principal) as conn:
        month = _period(conn, period)
        body = dashboard.breakdown(conn, code, month)
        if body is None:
            raise HTTPException(404, f"no index for {code} in {month.isoformat()[:7]}")
        if principal.role in LADDER_ROLES:
            rows = [r for r in open_warnings(conn, code[:9]) if r._mapping["code"] == code]
            body["warnings"] = _warning_items(conn, rows)
        else:
            body["warnings"] = None
    return _json(body)


def _history(engine, principal, kind: str, ref: str) -> JSONResponse:  # noqa: ANN001
    if principal.role not in dashboard.STAFF:
        raise HTTPException(403, f"role {principal.role!r} does not see individual {kind}s")
    with transaction(engine, principal) as conn:
        body = dashboard.history(conn, kind, ref)
    if body is None:
        raise HTTPException(404, f"no {kind} {ref}")
    return _json(body)


Ref = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="the record's id or code")]


@router.get("/hazards/{ref}/history", summary="A hazard's state history (发现→交办→处置→反馈→核查→销号)")
def hazard_history(engine: EngineDep, principal: PrincipalDep, ref: Ref) -> JSONResponse:
    return _history(engine, principal, "hazard", ref)


@router.get("/cases/{ref}/history", summary="A case's state history (受理→调解→化解/移交→结案)")
def case_history(engine: EngineDep, principal: PrincipalDep, ref: Ref) -> JSONResponse:
    return _history(engine, principal, "case", ref)


_LABELS = """
SELECT s.code, s.name, s.score, s.class, ST_X(p) AS x, ST_Y(p) AS y
FROM (SELECT v.code, ST_PointOnSurface(v.geom) AS p FROM pingan.villages v) v
JOIN pingan.index_villages s ON s.code = v.code AND s.period = :p
ORDER BY s.code
"""


# Label points of a month, kept per (month, versions of the villages and the index): every role
# reads the same published index, and a point on each village's surface costs a pass over all the
# polygons (~0.3 s at 30,000 villages), so it is computed once per change, not per request.
_LABEL_CACHE: dict[tuple, bytes] = {}
_LABEL_CACHE_SIZE = 16


@router.get("/labels", summary="One label point per village with its index of the month (GeoJSON)")
def labels(engine: EngineDep, principal: PrincipalDep, period: PeriodQuery = None) -> Response:
    with transaction(engine, principal) as conn:
        month = _period(conn, period)
        seen = layer_versions(conn)
        key = (engine.url.render_as_string(), month, seen.get("villages", 0), seen.get("index-villages", 0))
        body = _LABEL_CACHE.get(key)
        if body is None:
            rows = conn.execute(text(_LABELS), {"p": month}).mappings().all()
            features = [{"type": "Feature",
                         "geometry": {"type": "Point", "coordinates": [round(r["x"], 6), round(r["y"], 6)]},
                         "properties": {k: r[k] for k in ("code", "name", "score", "class")}} for r in rows]
            doc = {"type": "FeatureCollection", "period": month.isoformat()[:7], "features": features}
            body = json.dumps(doc, ensure_ascii=False, default=float).encode("utf-8")
            while len(_LABEL_CACHE) >= _LABEL_CACHE_SIZE:
                _LABEL_CACHE.pop(next(iter(_LABEL_CACHE)))
            _LABEL_CACHE[key] = body
    return Response(body, media_type="application/json", headers={"Cache-Control": "private, max-age=60"})


@router.get("/versions", summary="Layer data versions (the map screen reloads what changed)")
def versions(engine: EngineDep, principal: PrincipalDep) -> JSONResponse:
    with transaction(engine, principal) as conn:
        body = layer_versions(conn)
    return _json({"versions": body})
