"""What the database says a tile should hold, computed independently of tiles/.

The tile service filters by transforming the tile envelope to EPSG:4490; these counts transform
the rows to EPSG:3857 and test them against ``ST_TileEnvelope`` instead, so an error in either
side's geometry shows up as a difference.
"""

from __future__ import annotations

import mapbox_vector_tile
from sqlalchemy import Engine, text

TileXYZ = tuple[int, int, int]


def densest_tile(engine: Engine, table: str, z: int) -> TileXYZ:
    """The (z, x, y) tile holding the most rows of ``table`` (polygons by their point on surface)."""
    sql = text(f"""
        WITH p AS (SELECT ST_Transform(ST_PointOnSurface(geom), 3857) AS g FROM pingan.{table}),
        t AS (SELECT floor((ST_X(g) + 20037508.342789244) / (40075016.68557849 / 2 ^ :z))::int AS x,
                     floor((20037508.342789244 - ST_Y(g)) / (40075016.68557849 / 2 ^ :z))::int AS y
              FROM p)
        SELECT x, y FROM t GROUP BY x, y ORDER BY count(*) DESC, x, y LIMIT 1""")  # noqa: S608
    with engine.connect() as conn:
        x, y = conn.execute(sql, {"z": z}).one()
    return z, x, y


def codes_in_tile(engine: Engine, table: str, tile: TileXYZ, where: str = "true") -> set[str]:
    """Codes of the rows whose geometry (in 3857) intersects the tile's envelope."""
    sql = text(f"SELECT code FROM pingan.{table} WHERE {where} AND "  # noqa: S608
               "ST_Intersects(ST_Transform(geom, 3857), ST_TileEnvelope(:z, :x, :y))")
    z, x, y = tile
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(sql, {"z": z, "x": x, "y": y})}


def count_in_tile(engine: Engine, table: str, tile: TileXYZ, where: str = "true") -> int:
    return len(codes_in_tile(engine, table, tile, where))


def district_tiles(engine: Engine, z: int) -> list[TileXYZ]:
    """Every tile at ``z`` touching the district (the towns' extent)."""
    sql = text("""
        WITH e AS (SELECT ST_Transform(ST_SetSRID(ST_Extent(geom)::geometry, 4490), 3857) AS g
                   FROM pingan.towns),
        w AS (SELECT 40075016.68557849 / 2 ^ :z AS w, 20037508.342789244 AS h)
        SELECT floor((ST_XMin(g) + h) / w)::int, floor((ST_XMax(g) + h) / w)::int,
               floor((h - ST_YMax(g)) / w)::int, floor((h - ST_YMin(g)) / w)::int
        FROM e, w""")
    with engine.connect() as conn:
        x0, x1, y0, y1 = conn.execute(sql, {"z": z}).one()
    return [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def decode(content: bytes) -> dict[str, list[dict]]:
    """Layer name to its features (each with ``properties`` and ``geometry``)."""
    return {name: layer["features"] for name, layer in mapbox_vector_tile.decode(content).items()}


def tile_url(layer: str, tile: TileXYZ, query: str = "") -> str:
    z, x, y = tile
    return f"/ogc/collections/{layer}/tiles/WebMercatorQuad/{z}/{y}/{x}{query}"
