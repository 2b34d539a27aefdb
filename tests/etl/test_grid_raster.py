"""The lookup raster of the grids (etl.locate._Raster) gives every point the grid GEOS gives it:
the lowest code among the grids the point intersects (a shared border goes to the lower code),
none outside them. Compared with an exact computation of its own here (an STRtree over the
grids in code order, ``intersects``, the lowest index), on random points and on points put
exactly on the grids' vertices, on their edges and on the raster's cell lines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import text

from etl import locate


def _reference(codes: list[str], geoms: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each point's grid code (None for none), computed independently of etl.locate."""
    order = np.argsort(np.array(codes, dtype=object), kind="stable")
    tree = shapely.STRtree(np.asarray(geoms, dtype=object)[order])
    pt, grid = tree.query(shapely.points(x, y), predicate="intersects")
    best = np.full(len(x), len(codes), dtype=np.int64)
    np.minimum.at(best, pt, grid)
    ordered = np.array(codes, dtype=object)[order]
    return np.where(best < len(codes), ordered[np.minimum(best, len(codes) - 1)], None)


def _found(grids: locate._Grids, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    idx = grids.find(x, y)
    return np.where(idx >= 0, grids.codes[np.maximum(idx, 0)], None)


def _probes(geoms: np.ndarray, rng: np.random.Generator, n_random: int) -> tuple[np.ndarray, np.ndarray]:
    """Random points over the grids' box and around it; every vertex; points along every edge
    (a quarter, half and three quarters along: on it up to rounding); the box's corners and
    sides; and a NaN."""
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    w, h = maxx - minx, maxy - miny
    rx = rng.uniform(minx - 0.05 * w, maxx + 0.05 * w, n_random)
    ry = rng.uniform(miny - 0.05 * h, maxy + 0.05 * h, n_random)
    rings = shapely.get_rings(shapely.get_parts(geoms))
    xy, which = shapely.get_coordinates(rings, return_index=True)
    same = which[1:] == which[:-1]
    a, b = xy[:-1][same], xy[1:][same]
    along = [a + (b - a) * t for t in (0.25, 0.5, 0.75)]
    corners = np.array([[minx, miny], [maxx, maxy], [minx, maxy], [maxx, miny],
                        [(minx + maxx) / 2, maxy], [maxx, (miny + maxy) / 2], [np.nan, np.nan]])
    pts = np.concatenate([np.column_stack([rx, ry]), xy, *along, corners])
    return pts[:, 0].copy(), pts[:, 1].copy()


def _on_cell_lines(raster: locate._Raster, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Points exactly on the raster's cell lines (x0 + i dx, y0 + j dy) and their corners."""
    ny, nx = raster.cells.shape
    i, j = rng.integers(0, nx + 1, n), rng.integers(0, ny + 1, n)
    gx, gy = raster.x0 + i * raster.dx, raster.y0 + j * raster.dy
    fx = rng.uniform(raster.x0, raster.x0 + nx * raster.dx, n)
    fy = rng.uniform(raster.y0, raster.y0 + ny * raster.dy, n)
    return np.concatenate([gx, gx, fx]), np.concatenate([gy, fy, gy])


def _demo_grids(engine) -> tuple[list[str], np.ndarray]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT code, ST_AsBinary(geom) AS wkb FROM pingan.grids")).all()
    return [r.code for r in rows], shapely.from_wkb([bytes(r.wkb) for r in rows])


@pytest.mark.parametrize("cells_per_grid", [1024, 16])
def test_raster_gives_every_point_the_grid_geos_gives(demo_engine, monkeypatch, cells_per_grid) -> None:
    monkeypatch.setattr(locate, "RASTER_CELLS_PER_GRID", cells_per_grid)
    codes, geoms = _demo_grids(demo_engine)
    grids = locate.grids_of(codes, geoms).with_raster()
    raster = grids.raster
    assert raster is not None
    rng = np.random.default_rng(8)
    x, y = _probes(geoms, rng, 200_000)
    lx, ly = _on_cell_lines(raster, rng, 20_000)
    x, y = np.concatenate([x, lx]), np.concatenate([y, ly])
    expected = _reference(codes, geoms, x, y)
    got = _found(grids, x, y)
    assert (got == expected).all(), f"{int((got != expected).sum())} points differ"
    # every way through the raster was taken: a cell's own answer, a border cell's candidates
    # (shared vertices among them, where the lower code wins), no grid, and off the raster
    ny, nx = raster.cells.shape
    fx, fy = np.floor((x - raster.x0) / raster.dx), np.floor((y - raster.y0) / raster.dy)
    on = (fx >= 0) & (fx < nx) & (fy >= 0) & (fy < ny)
    value = np.full(len(x), -9)
    value[on] = raster.cells[fy[on].astype(int), fx[on].astype(int)]
    assert (value >= 0).sum() > 10_000 and (value <= -2).sum() > 10_000 and (value == -1).sum() > 1_000
    assert (~on).sum() > 1_000 and (got == None).sum() > 1_000  # noqa: E711
    tree = shapely.STRtree(geoms)
    vertices = shapely.points(shapely.get_coordinates(geoms))
    shared = np.bincount(tree.query(vertices, predicate="intersects")[0], minlength=len(vertices)) >= 2
    assert shared.sum() > 1_000


def test_overlaps_holes_and_islands() -> None:
    """Grids that overlap (the lower code wins inside the overlap too, away from any border), a
    grid with a hole and another grid in the hole, a grid of two parts, a degenerate one."""
    box = shapely.box
    x0, y0 = 120.4, 27.9
    geoms = np.array([
        box(x0, y0, x0 + 0.02, y0 + 0.02),  # "...002" overlaps "...001"
        box(x0 + 0.01, y0 + 0.01, x0 + 0.03, y0 + 0.03),
        shapely.Polygon(box(x0 + 0.03, y0, x0 + 0.06, y0 + 0.03).exterior.coords,
                        [box(x0 + 0.04, y0 + 0.01, x0 + 0.05, y0 + 0.02).exterior.coords]),
        box(x0 + 0.042, y0 + 0.012, x0 + 0.048, y0 + 0.018),  # in the hole
        shapely.MultiPolygon([box(x0, y0 + 0.04, x0 + 0.01, y0 + 0.05),
                              box(x0 + 0.05, y0 + 0.04, x0 + 0.06, y0 + 0.05)]),
        shapely.Polygon(),  # empty
    ], dtype=object)
    codes = ["330000000000002", "330000000000001", "330000000000004", "330000000000003",
             "330000000000005", "330000000000006"]
    grids = locate.grids_of(codes, geoms).with_raster()
    assert grids.raster is not None
    rng = np.random.default_rng(1)
    x, y = _probes(geoms[:-1], rng, 100_000)
    lx, ly = _on_cell_lines(grids.raster, rng, 20_000)
    x, y = np.concatenate([x, lx]), np.concatenate([y, ly])
    expected = _reference(codes, geoms, x, y)
    assert (_found(grids, x, y) == expected).all()
    inside_overlap = (x > x0 + 0.012) & (x < x0 + 0.018) & (y > y0 + 0.012) & (y < y0 + 0.018)
    assert inside_overlap.sum() > 100 and (expected[inside_overlap] == "330000000000001").all()


def test_no_grids_and_unplaced_rows() -> None:
    """An empty grids table: no raster, every placed point is outside; rows never placed (NaN)
    get no grid and are not "outside"; each row's geom is its x + iy."""
    empty = locate.grids_of([], np.array([], dtype=object)).with_raster()
    assert empty.raster is None
    f = pd.DataFrame({"title": ["a", "b"]})
    geo = pd.DataFrame({"x": [120.5, np.nan], "y": [27.9, np.nan], "src_datum": "cgcs2000",
                        "loc_method": "coordinates", "geocode_level": None, "geocode_score": np.nan})
    frame, outside = locate._assign(empty, f, geo, pd.Series([True, False]))
    assert outside.tolist() == [True, False]
    assert frame["grid_code"].tolist() == [None, None]
    assert frame["geom"].to_numpy()[0] == complex(120.5, 27.9)


def test_assign_with_the_raster_equals_assign_without(demo_engine) -> None:
    """``_assign`` (codes, villages, towns, outside, geom) is the same with and without the
    raster, NaN rows and rows not placed included."""
    codes, geoms = _demo_grids(demo_engine)
    rng = np.random.default_rng(5)
    x, y = _probes(geoms, rng, 50_000)
    n = len(x)
    f = pd.DataFrame({"title": np.arange(n).astype(str)})
    geo = pd.DataFrame({"x": x, "y": y, "src_datum": "cgcs2000", "loc_method": "coordinates",
                        "geocode_level": None, "geocode_score": np.nan})
    placed = pd.Series(~np.isnan(x) & (rng.random(n) < 0.95))
    plain = locate._assign(locate.grids_of(codes, geoms), f, geo, placed)
    fast = locate._assign(locate.grids_of(codes, geoms).with_raster(), f, geo, placed)
    pd.testing.assert_frame_equal(plain[0], fast[0])
    pd.testing.assert_series_equal(plain[1], fast[1])
    expected = _reference(codes, geoms, x, y)
    assert (plain[0]["grid_code"].to_numpy()[placed] == expected[placed]).all()
    assert (plain[0]["grid_code"][~placed].isna()).all()
    geom = plain[0]["geom"].to_numpy()
    assert geom.dtype == np.complex128
    assert np.array_equal(geom.real, x, equal_nan=True) and np.array_equal(geom.imag, y, equal_nan=True)


def test_a_load_with_the_raster_stores_the_grid_postgis_finds(databases, monkeypatch, tmp_path) -> None:
    """End to end: a load that builds the raster (its row threshold set to 0) stores, for every
    row, the lowest code among the grids PostGIS's ``ST_Intersects`` finds for the stored point
    (rows put on shared vertices among them), and the rows outside are rejects."""
    from etl.demo.samples import hazards_export
    from etl.pipeline import load_file
    from layers.db import make_engine
    from layers.settings import DatabaseSettings

    monkeypatch.setattr(locate, "RASTER_MIN_ROWS", 0)
    monkeypatch.setattr(locate, "_GRIDS", {})
    built = []
    monkeypatch.setattr(locate, "_raster", lambda tree, make=locate._raster: built.append(1) or make(tree))
    engine = make_engine(DatabaseSettings(database_url=databases.demo()))
    try:
        with engine.connect() as conn:
            df = pd.read_sql(text(
                "SELECT source_id, title, category, state, found_at, assigned_at, deadline, rectified_at, "
                "verified_at, closed_at, address, ST_X(geom) AS x, ST_Y(geom) AS y "
                "FROM pingan.hazards ORDER BY id LIMIT 3000"), conn)
            vx, vy = zip(*conn.execute(text(
                "SELECT ST_X(p.geom), ST_Y(p.geom) FROM pingan.grids a JOIN pingan.grids b "
                "ON a.code < b.code AND ST_Touches(a.geom, b.geom), "
                "LATERAL ST_DumpPoints(ST_Intersection(a.geom, b.geom)) AS p LIMIT 1000")).all(), strict=True)
        rng = np.random.default_rng(4)
        n = len(vx) + 200
        extra = df.sample(n, replace=True, random_state=1).reset_index(drop=True)
        extra["source_id"] = [f"V{i}" for i in range(n)]
        extra["x"] = [*vx, *rng.uniform(121.0, 121.5, 200)]  # on shared vertices; east of the district
        extra["y"] = [*vy, *rng.uniform(27.9, 28.1, 200)]
        path = tmp_path / "hazards.csv"
        rows = pd.concat([df, extra], ignore_index=True)
        hazards_export(rows, rows["source_id"], "WGS84").to_csv(path, index=False)
        result = load_file(engine, path, "hazards", source="raster")
        assert result.status == "done" and built, result
        assert result.reasons == {"outside the district: the point falls in no grid": 200}, result.reasons
        with engine.connect() as conn:
            wrong, total = conn.execute(text(
                "SELECT count(*) FILTER (WHERE h.grid_code IS DISTINCT FROM (SELECT min(g.code) "
                "FROM pingan.grids g WHERE ST_Intersects(g.geom, h.geom))), count(*) "
                "FROM pingan.hazards h WHERE h.source = 'raster'")).one()
        assert (wrong, total) == (0, len(df) + len(vx))
    finally:
        engine.dispose()
