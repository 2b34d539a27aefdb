"""What the database says about each served layer: extents and the id column's type.

Read once, on the first OGC request (not at startup: the service must start, and /healthz
answer, while the database is down). The spatial extent is the layer's box in its storage
CRS transformed to CRS84 corner by corner (four points, not every row); the temporal extent is
min/max of the layer's ``datetime_property`` (both index-backed).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime

from psycopg import AsyncConnection, sql

from api.ogc.crs import STORAGE_SRID
from layers.registry import Layer

log = logging.getLogger(__name__)
_INTEGER_TYPES = ("smallint", "integer", "bigint")


@dataclass(frozen=True)
class CollectionInfo:
    layer: Layer
    bbox: tuple[float, float, float, float] | None  # CRS84; None for an empty layer
    interval: tuple[datetime | None, datetime | None] | None  # None: no temporal property
    id_is_integer: bool


def _utc(t: datetime | date | None) -> datetime | None:
    """A timestamp in UTC; a date (monthly layers: the index, hot spots) as its midnight UTC."""
    if t is None:
        return None
    if isinstance(t, datetime):
        return t.astimezone(UTC)
    return datetime(t.year, t.month, t.day, tzinfo=UTC)


async def collection_info(conn: AsyncConnection, layer: Layer) -> CollectionInfo:
    schema, _, name = layer.table.partition(".")
    table = sql.Identifier(schema, name)
    geom = sql.Identifier(layer.geometry_column)
    extent = sql.SQL(
        "SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM (SELECT ST_Transform("
        "ST_SetSRID(ST_Extent({})::geometry, {}), 4326) AS b FROM {}) AS e"
    ).format(geom, sql.Literal(STORAGE_SRID), table)
    row = await (await conn.execute(extent)).fetchone()
    bbox = tuple(float(v) for v in row) if row and row[0] is not None else None
    interval = None
    if layer.datetime_property is not None:
        prop = layer.get_property(layer.datetime_property)
        col = sql.Identifier(prop.column or prop.name)
        cur = await conn.execute(sql.SQL("SELECT min({}), max({}) FROM {}").format(col, col, table))
        # in UTC, as the features' timestamps are (the session's zone is the server's default)
        interval = tuple(_utc(t) for t in await cur.fetchone())
    cur = await conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s",
        (schema, name),
    )
    columns = dict(await cur.fetchall())
    missing = [p.column or p.name for p in layer.properties if (p.column or p.name) not in columns]
    if missing:  # a registry/schema mismatch: every page of this layer would fail
        raise RuntimeError(f"layer {layer.id}: columns {missing} are not in {layer.table}")
    return CollectionInfo(layer, bbox, interval, columns.get(layer.id_column) in _INTEGER_TYPES)  # type: ignore[arg-type]
