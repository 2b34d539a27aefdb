"""Raster products (issue 7): density surfaces stored as Cloud-Optimised GeoTIFFs in PostgreSQL.

``save_raster`` writes a :class:`gis.hotspots.kde.KdeGrid` as a COG (``gis.hotspots.kde.write_cog``)
and stores it with its metadata in ``pingan.rasters`` (migration 0012); the read functions return
the metadata (:class:`RasterInfo`), the COG bytes or a byte range of them. Why the bytes live in
the database, and who may read which raster: docs/rasters.md.

The SQL is written once, with psycopg's ``%(name)s`` placeholders, and run both on a SQLAlchemy
connection (ETL, the process runner, tests: ``exec_driver_sql``) and on an asyncio psycopg
connection (the API's hot paths: the ``a*`` functions). Every read runs under the caller's
transaction (``layers.db.transaction``/``atransaction``): row-level security decides which
rasters exist for it.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np
from psycopg import AsyncConnection
from sqlalchemy import Connection

from gis.hotspots.kde import KdeGrid, write_cog

KINDS = ("density",)
UNITS = {"density": "events per km²"}
# Raster values are events per square CRS unit (m² in a metric CRS); shown per km².
DISPLAY_FACTOR = {"density": 1e6}
PERCENTILES = (50, 75, 90, 95, 99, 99.9)

_COLUMNS = ("id, kind, layer, period, title, params, crs, bounds, bounds_crs84, width, height,"
            " cell_size, stats, units, audience, owner, job_id, created, sha256, size_bytes")

_INSERT = (
    "INSERT INTO pingan.rasters (kind, layer, period, title, params, crs, bounds, bounds_crs84, width,"
    " height, cell_size, stats, units, audience, owner, job_id, sha256, size_bytes, cog)"
    " VALUES (%(kind)s, %(layer)s, %(period)s, %(title)s, %(params)s::jsonb, %(crs)s, %(bounds)s,"
    " %(bounds_crs84)s, %(width)s, %(height)s, %(cell_size)s, %(stats)s::jsonb, %(units)s,"
    " %(audience)s, %(owner)s, %(job_id)s, %(sha256)s, %(size_bytes)s, %(cog)s) RETURNING id"
)
_CALLER = "SELECT pingan.ctx_user(), pingan.ctx_role()"
_GET = f"SELECT {_COLUMNS} FROM pingan.rasters WHERE id = %(id)s"  # noqa: S608 - fixed columns
_COG = "SELECT cog FROM pingan.rasters WHERE id = %(id)s"
# substring() of an EXTERNAL (uncompressed, out-of-line) bytea reads only the TOAST chunks it needs
_RANGE = "SELECT substring(cog FROM %(start)s FOR %(length)s) FROM pingan.rasters WHERE id = %(id)s"
_LIST = (
    f"SELECT {_COLUMNS} FROM pingan.rasters"  # noqa: S608 - fixed columns
    " WHERE (%(kind)s::text IS NULL OR kind = %(kind)s) AND (%(layer)s::text IS NULL OR layer = %(layer)s)"
    " AND (%(period)s::date IS NULL OR period = %(period)s)"
    " ORDER BY created DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s"
)
# the newest monthly (district) raster of each kind and layer
_LATEST = (
    f"SELECT DISTINCT ON (kind, layer) {_COLUMNS} FROM pingan.rasters"  # noqa: S608 - fixed columns
    " WHERE audience = 'district' AND (%(kind)s::text IS NULL OR kind = %(kind)s)"
    " AND (%(layer)s::text IS NULL OR layer = %(layer)s)"
    " ORDER BY kind, layer, period DESC, id DESC"
)
_DELETE_MONTHLY = (
    "DELETE FROM pingan.rasters WHERE audience = 'district' AND kind = %(kind)s AND layer = %(layer)s"
    " AND period = %(period)s"
)


class RasterError(ValueError):
    """A raster that cannot be stored as asked (bad kind, grid, CRS or parameters)."""


@dataclass(frozen=True)
class RasterInfo:
    """A stored raster's metadata (everything but the bytes)."""

    id: int
    kind: str
    layer: str
    period: date | None
    title: str
    params: dict[str, Any]
    crs: str
    bounds: tuple[float, float, float, float]
    bounds_crs84: tuple[float, float, float, float]
    width: int
    height: int
    cell_size: float
    stats: dict[str, Any]
    units: str
    audience: str
    owner: str
    job_id: UUID | None
    created: datetime
    sha256: str
    size_bytes: int

    @property
    def etag(self) -> str:
        return f'"{self.sha256[:32]}"'

    @property
    def display_factor(self) -> float:
        """Multiply a raster value by this to get it in :attr:`units`."""
        return DISPLAY_FACTOR.get(self.kind, 1.0)


def _info(row: Any) -> RasterInfo:
    (rid, kind, layer, period, title, params, crs, bounds, b84, width, height, cell, stats, units,
     audience, owner, job_id, created, sha, size) = row
    return RasterInfo(rid, kind, layer, period, title, params, crs, tuple(bounds), tuple(b84), width,
                      height, cell, stats, units, audience, owner, job_id, created, sha, size)


def raster_stats(values: np.ndarray) -> dict[str, Any]:
    """Minimum, maximum, mean and percentiles of the cells (percentiles of the cells above zero,
    which the colour scale uses; a density is zero over most of a sparse map)."""
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    positive = finite[finite > 0]
    out: dict[str, Any] = {
        "min": float(finite.min()) if finite.size else None,
        "max": float(finite.max()) if finite.size else None,
        "mean": float(finite.mean()) if finite.size else None,
        "sum": float(finite.sum()),
        "cells": int(v.size),
        "cells_positive": int(positive.size),
    }
    pcts = np.percentile(positive, PERCENTILES) if positive.size else [None] * len(PERCENTILES)
    out["percentiles_positive"] = {f"p{p:g}": (None if q is None else float(q))
                                   for p, q in zip(PERCENTILES, pcts, strict=True)}
    return out


def _crs84_bounds(crs: str, bounds: tuple[float, float, float, float]) -> tuple[float, ...]:
    from rasterio.warp import transform_bounds

    return tuple(float(b) for b in transform_bounds(crs, "OGC:CRS84", *bounds, densify_pts=21))


def _cog_bytes(grid: KdeGrid, crs: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="pingan-cog-") as tmp:
        path = write_cog(Path(tmp) / "raster.tif", grid, crs, blocksize=256)
        return path.read_bytes()


def save_raster(conn: Connection, grid: KdeGrid, *, crs: str | int, kind: str, layer: str, title: str,
                params: dict, period: date | None = None, job_id: str | UUID | None = None,
                owner: str | None = None) -> int:
    """Store ``grid`` as a COG in ``pingan.rasters`` in the caller's transaction; return its id.

    The owner is ``owner``, else the caller stated on the transaction (``pingan.ctx_user()``),
    else ``"system"`` (the ETL, acting as itself). A raster made without a job by the system (the
    monthly refresh) is a district product that staff and analysts read (audience ``district``);
    any other raster is private to its owner and admins (audience ``owner``).
    """
    if kind not in KINDS:
        raise RasterError(f"unknown raster kind {kind!r}; expected one of {', '.join(KINDS)}")
    values = np.asarray(grid.values)
    if values.ndim != 2 or 0 in values.shape or not np.isfinite(values).all():
        raise RasterError("the grid must be a non-empty 2-D array of finite values")
    if period is not None:
        if not isinstance(period, date):
            raise RasterError(f"period must be a date, got {period!r}")
        period = date(period.year, period.month, 1)
    crs_text = f"EPSG:{crs}" if isinstance(crs, int) else str(crs)
    try:
        cog = _cog_bytes(grid, crs_text)
    except ValueError as exc:  # an unusable CRS
        raise RasterError(str(exc)) from None
    height, width = values.shape
    bounds = (grid.x0, grid.y1 - height * grid.cell_size, grid.x0 + width * grid.cell_size, grid.y1)
    caller, role = conn.exec_driver_sql(_CALLER).one()
    owner = owner or caller or "system"
    audience = "district" if job_id is None and role in (None, "system") and owner == "system" else "owner"
    return int(conn.exec_driver_sql(_INSERT, {
        "kind": kind, "layer": layer, "period": period, "title": title,
        "params": json.dumps(params, default=str, allow_nan=False), "crs": crs_text,
        "bounds": [float(b) for b in bounds], "bounds_crs84": list(_crs84_bounds(crs_text, bounds)),
        "width": width, "height": height, "cell_size": float(grid.cell_size),
        "stats": json.dumps(raster_stats(values), allow_nan=False), "units": UNITS[kind],
        "audience": audience, "owner": owner, "job_id": None if job_id is None else str(job_id),
        "sha256": hashlib.sha256(cog).hexdigest(), "size_bytes": len(cog), "cog": cog,
    }).scalar_one())


def delete_monthly(conn: Connection, kind: str, layer: str, period: date) -> int:
    """Delete the district raster of ``kind``/``layer`` for ``period``; return how many went."""
    return conn.exec_driver_sql(_DELETE_MONTHLY, {"kind": kind, "layer": layer, "period": period}).rowcount


def get_raster(conn: Connection, raster_id: int) -> RasterInfo | None:
    row = conn.exec_driver_sql(_GET, {"id": raster_id}).first()
    return None if row is None else _info(row)


def read_cog(conn: Connection, raster_id: int) -> bytes | None:
    row = conn.exec_driver_sql(_COG, {"id": raster_id}).first()
    return None if row is None else bytes(row[0])


def list_rasters(conn: Connection, *, kind: str | None = None, layer: str | None = None,
                 period: date | None = None, latest: bool = False, limit: int = 100,
                 offset: int = 0) -> list[RasterInfo]:
    """Rasters the caller may read, newest first; with ``latest``, the newest monthly raster of
    each kind and layer."""
    params = {"kind": kind, "layer": layer, "period": period, "limit": limit, "offset": offset}
    rows = conn.exec_driver_sql(_LATEST if latest else _LIST, params).all()
    return [_info(r) for r in rows]


# -- the same reads on an asyncio psycopg connection (the API) -----------------------------------
async def aget_raster(conn: AsyncConnection, raster_id: int) -> RasterInfo | None:
    cur = await conn.execute(_GET, {"id": raster_id})
    row = await cur.fetchone()
    return None if row is None else _info(row)


async def aread_cog(conn: AsyncConnection, raster_id: int) -> bytes | None:
    cur = await conn.execute(_COG, {"id": raster_id})
    row = await cur.fetchone()
    return None if row is None else bytes(row[0])


async def aread_range(conn: AsyncConnection, raster_id: int, start: int, length: int) -> bytes | None:
    """Bytes ``start .. start + length - 1`` (0-based) of the COG."""
    cur = await conn.execute(_RANGE, {"id": raster_id, "start": start + 1, "length": length})
    row = await cur.fetchone()
    return None if row is None else bytes(row[0])


async def alist_rasters(conn: AsyncConnection, *, kind: str | None = None, layer: str | None = None,
                        period: date | None = None, latest: bool = False, limit: int = 100,
                        offset: int = 0) -> list[RasterInfo]:
    params = {"kind": kind, "layer": layer, "period": period, "limit": limit, "offset": offset}
    cur = await conn.execute(_LATEST if latest else _LIST, params)
    return [_info(r) for r in await cur.fetchall()]


