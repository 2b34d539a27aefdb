"""Liveness with a database check."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import EngineDep
from layers.migrate import current_revision, head_revision

router = APIRouter()
log = logging.getLogger(__name__)


@router.get("/healthz", tags=["service"], summary="Liveness and database check")
def healthz(engine: EngineDep) -> JSONResponse:
    """200 when the database answers and its schema is at the revision this code expects."""
    try:
        with engine.connect() as conn:
            postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
        revision = current_revision(engine)
    except SQLAlchemyError as exc:
        # The cause goes to the log, never to the client (it may name hosts or roles).
        log.warning("health check: database unreachable: %s", exc.__class__.__name__)
        return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
    head = head_revision()
    body = {"status": "ok", "database": "ok", "postgis": postgis, "schema": revision}
    if revision != head:
        body |= {"status": "error", "database": f"schema at {revision}, expected {head}"}
        return JSONResponse(body, status_code=503)
    return JSONResponse(body)
