"""Load batches and their rejected rows, for the people who run the ETL (issue 5).

``GET /api/etl/batches`` (staff: what was loaded, when, with which counts) and
``GET /api/etl/batches/{id}/rejects`` (admins: the rejected rows with row number, column, reason
and the raw row, in which person data is masked by the loader). The database enforces the same
(migration 0005: ``etl_rejects`` is granted to admins only).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from api.deps import PoolDep, PrincipalDep
from layers.db import atransaction

router = APIRouter(prefix="/api/etl", tags=["ETL"])
STAFF = frozenset({"admin", "command", "town", "grid"})
_BATCH_COLUMNS = ("id, source, layer, file_name, file_hash, status, started_at, finished_at,"
                  " n_read, n_loaded, n_updated, n_unchanged, n_rejected, error, seconds")


def _rows(cur_rows: list[tuple], names: list[str]) -> list[dict[str, Any]]:
    return [dict(zip(names, row, strict=True)) for row in cur_rows]


@router.get("/batches", summary="Load batches, newest first")
async def batches(pool: PoolDep, principal: PrincipalDep,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                  offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                  layer: Annotated[str | None, Query(max_length=64)] = None,
                  status: Annotated[str | None, Query(pattern="^(running|done|failed)$")] = None,
                  ) -> JSONResponse:
    if principal.role not in STAFF:
        raise HTTPException(403, f"role {principal.role!r} does not see load batches")
    async with atransaction(pool, principal) as conn:
        cur = await conn.execute(
            f"SELECT {_BATCH_COLUMNS} FROM pingan.etl_batches"  # noqa: S608 - fixed columns
            " WHERE (%(layer)s::text IS NULL OR layer = %(layer)s)"
            " AND (%(status)s::text IS NULL OR status = %(status)s)"
            " ORDER BY id DESC LIMIT %(limit)s OFFSET %(offset)s",
            {"layer": layer, "status": status, "limit": limit, "offset": offset})
        rows = _rows(await cur.fetchall(), [d.name for d in cur.description])
    return JSONResponse(jsonable_encoder({"batches": rows, "limit": limit, "offset": offset}))


@router.get("/batches/{batch_id}/rejects", summary="The rejected rows of a batch (admins)")
async def rejects(pool: PoolDep, principal: PrincipalDep, batch_id: Annotated[int, Path(ge=1, le=2**62)],
                  limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
                  offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> JSONResponse:
    if principal.role != "admin":
        raise HTTPException(403, "rejected rows keep the source row: admins only")
    async with atransaction(pool, principal) as conn:
        cur = await conn.execute(f"SELECT {_BATCH_COLUMNS} FROM pingan.etl_batches WHERE id = %s",  # noqa: S608
                                 (batch_id,))
        batch = await cur.fetchone()
        if batch is None:
            raise HTTPException(404, f"no batch {batch_id}")
        names = [d.name for d in cur.description]
        cur = await conn.execute(
            "SELECT row_number, column_name, reason, raw FROM pingan.etl_rejects WHERE batch_id = %s"
            " ORDER BY row_number NULLS FIRST, id LIMIT %s OFFSET %s", (batch_id, limit, offset))
        rows = _rows(await cur.fetchall(), [d.name for d in cur.description])
        cur = await conn.execute(
            "SELECT reason, count(*) FROM pingan.etl_rejects WHERE batch_id = %s GROUP BY 1 ORDER BY 2 DESC",
            (batch_id,))
        by_reason = {r: n for r, n in await cur.fetchall()}
    body = {"batch": dict(zip(names, batch, strict=True)), "by_reason": by_reason, "rejects": rows,
            "limit": limit, "offset": offset}
    return JSONResponse(jsonable_encoder(body))
