"""Grid assignment by point in polygon (etl.locate): the grid, village and town of each point,
the lower code on a shared border, and no grid outside the district."""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import text

from etl import locate


def test_points_get_their_grid_village_and_town(demo_engine) -> None:
    with demo_engine.connect() as conn:
        # a vertex two grids share lies in both: the lower code wins; a point inside a grid;
        # a point in the sea; a row that was never placed
        low, high, bx, by = conn.execute(text(
            "SELECT a.code, b.code, ST_X(p.geom), ST_Y(p.geom) FROM pingan.grids a "
            "JOIN pingan.grids b ON a.code < b.code AND ST_Touches(a.geom, b.geom), "
            "LATERAL ST_DumpPoints(ST_Intersection(a.geom, b.geom)) AS p "
            "ORDER BY a.code, b.code LIMIT 1")).one()
        code, village, town, ix, iy = conn.execute(text(
            "SELECT g.code, g.village_code, v.town_code, ST_X(p), ST_Y(p) FROM pingan.grids g "
            "JOIN pingan.villages v ON v.code = g.village_code, ST_PointOnSurface(g.geom) AS p "
            "WHERE g.code <> :low ORDER BY g.code DESC LIMIT 1"), {"low": low}).one()
        tree = locate._grids(conn).tree
        assert len(tree.query(shapely.Point(bx, by), predicate="intersects")) >= 2  # truly on both
        f = pd.DataFrame({"title": ["border", "inside", "sea", "unplaced"]})
        geo = pd.DataFrame({
            "x": [bx, ix, 122.5, np.nan], "y": [by, iy, 27.0, np.nan], "src_datum": "cgcs2000",
            "loc_method": "coordinates", "geocode_level": None, "geocode_score": np.nan,
        })
        frame, outside = locate._assign(locate._grids(conn), f, geo, pd.Series([True, True, True, False]))
    assert frame["grid_code"].tolist() == [low, code, None, None]
    assert frame["village_code"].tolist() == [low[:12], village, None, None]
    assert frame["town_code"].tolist() == [low[:9], town, None, None]
    assert outside.tolist() == [False, False, True, False]
    assert high > low
