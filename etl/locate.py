"""Place each record: coordinates in any datum (or an address) → a CGCS2000 point → its grid,
village and town by point in polygon. A record that cannot be placed is a reject with a reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, Engine, text

from etl.profile import Mapped
from etl.readers import RawTable
from gis.datum import check_datum, to_cgcs2000
from layers.db import SYSTEM, set_principal

if TYPE_CHECKING:
    from gis.address import Gazetteer

# Mainland China with its islands, generously: anything outside is a wrong or swapped value.
LON_RANGE, LAT_RANGE = (73.0, 136.0), (3.0, 54.0)
GEOGRAPHIC = {"EPSG:4326", "EPSG:4490", "OGC:CRS84", "EPSG:4610", "EPSG:4214"}


@dataclass
class Located:
    frame: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    swapped: int = 0  # rows whose 经度 and 纬度 were swapped (and corrected)
    zeros: int = 0  # rows whose 经度 and 纬度 were both 0: taken as no coordinates
    elsewhere: list[int] = field(default_factory=list)  # rows whose 所属网格 is not where they were placed
    coarse: dict[str, int] = field(default_factory=dict)  # rows placed only to a grid, village, town


def swapped_warning(n: int) -> list[str]:
    return [f"{n} rows had 经度 and 纬度 swapped; corrected"] if n else []


def elsewhere_warning(rows: list[int]) -> list[str]:
    if not rows:
        return []
    shown = ", ".join(str(r) for r in sorted(rows)[:10]) + (", ..." if len(rows) > 10 else "")
    return [f"{len(rows)} rows name a 所属网格 other than the grid they were placed in (the place decides; "
            f"rows {shown})"]


def coarse_warning(levels: dict[str, int]) -> list[str]:
    """What the clerk should know of rows the address placed only to an area: where they stand,
    and that a village's or town's have no grid (the grids' statistics leave them out)."""
    out = []
    if levels.get("grid"):
        out.append(f"{levels['grid']} rows placed to the grid their 所属网格 names in the village or town "
                   "their address names, at the grid's point (the address named no door)")
    village, town = levels.get("village", 0), levels.get("town", 0)
    if village or town:
        out.append(f"{village + town} rows placed by their address only to a village ({village}) or a town "
                   f"({town}), at its point, with no grid: counted in that village's or town's statistics, "
                   "in no grid's; a 标准地址 (address_points) or a 所属网格 would place them closer")
    return out


def zeros_warning(n: int) -> list[str]:
    return [f"{n} rows had 经度 0 and 纬度 0, taken as no coordinates: placed by their address "
            "(rejected where they have none)"] if n else []


def located_notes(swapped: int, zeros: int, elsewhere: list[int], coarse: dict[str, int]) -> list[str]:
    """The notes of locating, from its counts (of one chunk, or summed over a file's chunks)."""
    return (swapped_warning(swapped) + zeros_warning(zeros) + elsewhere_warning(elsewhere)
            + coarse_warning(coarse))


@dataclass(frozen=True)
class Places:
    """What locating reads from the database, read once: the grids (point in polygon) and, when
    some row has only an address, the gazetteer. With it, :func:`locate` touches no connection,
    so a load can locate one chunk while the connection copies the one before."""

    grids: _Grids
    gazetteer: Gazetteer | None
    memo: dict = field(default_factory=dict)  # geocoded addresses, across the chunks of a file
    # to read the gazetteer late, on a connection of its own, for a chunk whose rows need it
    # though the file's text said no (经度 and 纬度 of 0, 0: no coordinates; see _coordinates)
    engine: Engine | None = None
    late: dict = field(default_factory=dict)


def places(
    conn: Connection,
    mapped: Mapped | None,
    raw: RawTable,
    default_datum: str,
    *,
    addresses: bool | None = None,
    rows: int | None = None,
) -> Places:
    """What :func:`locate` reads from the database, for the rows of ``mapped``; or, when a file
    is mapped a chunk at a time (``mapped`` None), for ``rows`` rows, of which some may have
    only an address (``addresses``: the gazetteer is read)."""
    if addresses is None:
        addresses = False
        if "address" in mapped.frame:
            lon, lat, *_ = _coordinates(mapped, raw, default_datum)
            addresses = bool((mapped.frame["address"].notna() & ~(lon.notna() & lat.notna())).any())
    gazetteer = None
    if addresses:
        from etl.geocode import load_gazetteer

        gazetteer = load_gazetteer(conn)
    grids = _grids(conn)
    if (len(mapped.frame) if rows is None else rows) >= RASTER_MIN_ROWS:
        grids.with_raster()  # once per grids version: it pays back on a big load only
    return Places(grids, gazetteer, engine=conn.engine)


OUTSIDE = "outside the district: the point falls in no grid"


def _reject(
    mapped: Mapped, raw: RawTable, mask: pd.Series, field: str, reason: str | pd.Series
) -> pd.DataFrame:
    """The rows of ``mask`` as rejects, as the profile's rejects are: the file's row as it was
    read (its headers, its text) and the column under the file's header (经度, 地址; ``geometry``
    for a spatial file's position), so a clerk finds the cell to mend."""
    column = "geometry" if field == "lon" and raw.geometry is not None else mapped.matched.get(field, field)
    return pd.DataFrame(
        {
            "row_number": mapped.row_numbers[mask].to_numpy(),
            "column_name": column,
            "reason": reason[mask].to_numpy() if isinstance(reason, pd.Series) else reason,
            "raw": raw.records(mapped.frame.index[mask.to_numpy()].to_numpy()) if mask.any() else [],
        }
    )


def _coordinates(
    mapped: Mapped, raw: RawTable, default_datum: str
) -> tuple[pd.Series, pd.Series, pd.Series, int, int]:
    """lon, lat (swapped back where they were swapped; NaN where both were 0), the datum of each
    row, how many rows were swapped and how many were (0, 0)."""
    f = mapped.frame
    datum = f["datum"] if "datum" in f else pd.Series(None, index=f.index, dtype=object)
    datum = datum.fillna(check_datum(default_datum))
    if raw.geometry is not None:
        geoms = raw.geometry.loc[f.index]
        is_point = geoms.geom_type == "Point"
        lon = pd.Series(np.where(is_point, geoms.x.where(is_point), np.nan), index=f.index)
        lat = pd.Series(np.where(is_point, geoms.y.where(is_point), np.nan), index=f.index)
        crs = (raw.crs or "EPSG:4326").upper()
        if crs not in GEOGRAPHIC:
            # a projected file (e.g. a CGCS2000 Gauss-Krüger zone): its CRS is its datum
            datum = pd.Series(crs.lower(), index=f.index)
        lon, lat, zeros = _no_zeros(lon, lat)
        return lon, lat, datum, 0, zeros
    lon = f["lon"] if "lon" in f else pd.Series(np.nan, index=f.index)
    lat = f["lat"] if "lat" in f else pd.Series(np.nan, index=f.index)
    lon, lat, zeros = _no_zeros(lon.astype(float), lat.astype(float))
    swapped = lon.between(*LAT_RANGE) & lat.between(*LON_RANGE) & ~lon.between(*LON_RANGE)
    if swapped.any():
        lon, lat = lon.where(~swapped, lat), lat.where(~swapped, lon)
    return lon, lat, datum, int(swapped.sum()), zeros


def _no_zeros(lon: pd.Series, lat: pd.Series) -> tuple[pd.Series, pd.Series, int]:
    """Exactly (0, 0) is what many exports write for "no position" (a point in the Gulf of
    Guinea in any datum, and no Gauss-Krüger point): no coordinates, so the address places it."""
    zero = (lon == 0) & (lat == 0)
    n = int(zero.sum())
    return (lon.mask(zero), lat.mask(zero), n) if n else (lon, lat, 0)


def locate(
    conn: Connection | None, mapped: Mapped, raw: RawTable, default_datum: str, where: Places | None = None
) -> tuple[Located, pd.DataFrame]:
    """Place the rows of ``mapped``; with ``where`` (:func:`places`) ``conn`` is not used.

    Raises
    ------
    UnknownDatumError
        If a datum of the rows is none that :func:`gis.datum.to_cgcs2000` knows. The values of
        a 坐标系 column were checked row by row when the file was mapped (etl/profile.py: one
        reject each); one unknown here was given for the whole file (the load's datum option,
        the profile's default, the file's own CRS), which no row can fix.
    """
    f = mapped.frame
    where = where or places(conn, mapped, raw, default_datum)
    lon, lat, datum, swapped, zeros = _coordinates(mapped, raw, default_datum)
    rejects = []
    has_xy = lon.notna() & lat.notna()
    names = {d: check_datum(d) for d in datum[has_xy].unique()}  # before any row is converted
    if any(name != canonical for name, canonical in names.items()):  # else no pass over the rows
        datum = datum.map(names).astype(object)  # object even when no row has coordinates
    x, y = lon.to_numpy(dtype=float).copy(), lat.to_numpy(dtype=float).copy()
    for d in names.values():
        m = (has_xy & (datum == d)).to_numpy()
        x[m], y[m] = to_cgcs2000(x[m], y[m], d)
    out_of_range = has_xy & ~(
        pd.Series(x, index=f.index).between(*LON_RANGE) & pd.Series(y, index=f.index).between(*LAT_RANGE)
    )
    if out_of_range.any():
        why = "coordinates outside China: " + lon.astype(str) + ", " + lat.astype(str)
        rejects.append(_reject(mapped, raw, out_of_range, "lon", why))
    placed = has_xy & ~out_of_range
    geo = pd.DataFrame(
        {
            "x": x,
            "y": y,
            "src_datum": datum.where(placed),
            "loc_method": "coordinates",
            "geocode_level": None,
            "geocode_score": np.nan,
        },
        index=f.index,
    )
    need = ~has_xy
    unsaid: list[int] = []
    if need.any():
        geo, more = _geocode(where, mapped, raw, need, geo)
        rejects.append(more)
        placed = placed | geo["x"].notna() & need
        if "area" in geo and "grid" in f:
            geo, unsaid = _declared_grids(where.grids, f, geo, mapped.row_numbers)
    frame, outside = _assign(where.grids, f, geo, placed)
    if outside.any():
        rejects.append(_reject(mapped, raw, outside, "lon", OUTSIDE))
    keep = placed & ~outside
    frame = frame[keep].assign(_row=mapped.row_numbers[keep].to_numpy())
    elsewhere = sorted(_elsewhere(where.grids, frame, frame["_row"]) + unsaid)
    coarse = {}
    if "area" in geo:  # rows geocoded to a grid, village or town (never outside the district)
        counts = geo["geocode_level"][need].value_counts()
        coarse = {k: int(counts[k]) for k in ("grid", "village", "town") if k in counts}
    notes = located_notes(swapped, zeros, elsewhere, coarse)
    located = Located(frame, notes, swapped, zeros, elsewhere, coarse)
    return located, pd.concat(rejects, ignore_index=True) if rejects else _empty()


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=["row_number", "column_name", "reason", "raw"])


def _geocode(
    where: Places, mapped: Mapped, raw: RawTable, need: pd.Series, geo: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    f = mapped.frame
    address = f["address"] if "address" in f else pd.Series(None, index=f.index, dtype=object)
    no_address = need & address.isna()
    rejects = [_reject(mapped, raw, no_address, "address", "no coordinates and no address: cannot be placed")]
    todo = need & address.notna()
    if todo.any():
        from etl.geocode import geocode_frame

        res = geocode_frame(None, address[todo], where.gazetteer or _late_gazetteer(where), where.memo)
        res.index = address[todo].index
        ok = res["lon"].notna()
        idx = res.index[ok]
        geo.loc[idx, "x"], geo.loc[idx, "y"] = res.loc[ok, "lon"], res.loc[ok, "lat"]
        geo.loc[idx, "src_datum"], geo.loc[idx, "loc_method"] = "cgcs2000", "geocoded"
        geo.loc[idx, "geocode_level"], geo.loc[idx, "geocode_score"] = (
            res.loc[ok, "level"],
            res.loc[ok, "score"],
        )
        village_level = (res["level"] == "village").to_numpy(dtype=bool, na_value=False)
        town_level = (res["level"] == "town").to_numpy(dtype=bool, na_value=False)
        if village_level.any() or town_level.any():  # placed to the area the address named, not
            at = np.flatnonzero(todo.to_numpy())  # to the grid its point is in (positions)
            area_town = np.full(len(geo), None, dtype=object)
            area_village = np.full(len(geo), None, dtype=object)
            both = village_level | town_level
            area_town[at[both]] = res["town_code"].to_numpy(dtype=object)[both]
            area_village[at[village_level]] = res["village_code"].to_numpy(dtype=object)[village_level]
            # object, not a string dtype pandas would infer (and convert both ways, 0.1 s per 1M)
            geo["area_town"] = pd.Series(area_town, index=geo.index, dtype=object)
            geo["area_village"] = pd.Series(area_village, index=geo.index, dtype=object)
            area = np.zeros(len(geo), dtype=bool)
            area[at[both]] = True
            geo["area"] = area  # the rows placed to an area
        failed = pd.Series(False, index=f.index)
        failed[res.index[~ok]] = True
        reason = pd.Series("", index=f.index, dtype=object)
        reason[res.index[~ok]] = "address not found: " + res.loc[~ok, "reason"].astype(str)
        rejects.append(_reject(mapped, raw, failed, "address", reason))
    return geo, pd.concat(rejects, ignore_index=True)


def _late_gazetteer(where: Places) -> Gazetteer:
    """The gazetteer :func:`places` did not read, read once on a connection of its own: the
    load's connection may be copying a chunk in another thread (etl/direct.py)."""
    if "gazetteer" not in where.late:
        from etl.geocode import load_gazetteer

        if where.engine is None:
            raise RuntimeError("rows need the gazetteer, and these places were read without it")
        with where.engine.connect() as conn:
            set_principal(conn, SYSTEM)
            where.late["gazetteer"] = load_gazetteer(conn)
    return where.late["gazetteer"]


# The lookup raster of the grids (see _Raster): about this many cells per grid, at most this many
# in all (the demo's 2,500 grids: 2.6M cells, 12.5 MB with the border cells' lists; 25,000 grids:
# 4M cells, 24 MB), built only for a load of at least this many rows (with scipy's import it costs
# 0.4-0.9 CPU-s, about what it saves on 250,000 points: ~1.8 µs each)
RASTER_CELLS_PER_GRID = 1024
RASTER_MAX_CELLS = 4_000_000
RASTER_MIN_ROWS = 250_000
_NONE = -1  # a raster cell's value: no grid; >= 0: a grid's index; <= -2: a border cell's number, -2 - k


@dataclass(frozen=True)
class _Raster:
    """A lookup raster over the grids' bounding box. A cell that no grid's boundary can pass
    through holds the answer for every point in it (the index of the lowest grid that holds
    it, or ``_NONE``); a border cell lists the grids whose bounding box reaches it, in
    ascending order, and its points are tested against those (prepared polygons, GEOS's
    ``intersects``; the first that holds the point wins, as the lowest code does).

    A point's cell is ``floor((x - x0) / dx)``, ``floor((y - y0) / dy)``, computed in float64
    the same way when the raster is built and when it is read. That map is monotone in x and in
    y, so the points of one cell form a rectangle (and two side-by-side cells' points together
    one too), and anything inside a box falls in the cells between its corners' cells. A cell
    is a border cell when a piece of some boundary (cut at most one cell long, its box widened
    by a margin far above rounding) reaches it: so no boundary point falls in another cell,
    each grid holds all or none of such a cell's points, and a region of such cells joined by
    their sides has one answer, taken at one cell's centre by the same test as the points off
    the raster (:func:`_exact`)."""

    x0: float
    y0: float
    dx: float
    dy: float
    cells: np.ndarray  # (ny, nx) int32: a grid's index, _NONE, or -2 - (a border cell's number)
    start: np.ndarray  # int64: border cell k's candidates are cand[start[k]:start[k + 1]]
    cand: np.ndarray  # int32 grid indexes, ascending within a cell
    bounds: np.ndarray  # (grids, 4) float64: each grid's bounding box
    geoms: np.ndarray  # the grids, prepared

    def find(self, x: np.ndarray, y: np.ndarray, tree: shapely.STRtree) -> np.ndarray:
        ny, nx = self.cells.shape
        fx, fy = np.floor((x - self.x0) / self.dx), np.floor((y - self.y0) / self.dy)
        on = (fx >= 0) & (fx < nx) & (fy >= 0) & (fy < ny)  # False for NaN
        found = np.full(len(x), _NONE, dtype=np.int64)
        found[on] = self.cells[fy[on].astype(np.intp), fx[on].astype(np.intp)]
        off = np.flatnonzero(~on)
        found[off] = _exact(tree, x[off], y[off])  # off the raster (on its far edge, say): GEOS
        near = np.flatnonzero(found <= -2)
        if len(near):
            found[near] = self._border(x[near], y[near], -2 - found[near])
        return found

    def _border(self, x: np.ndarray, y: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Points in border cells ``k``: the lowest of the cell's candidates that intersects each."""
        lo, n = self.start[k], self.start[k + 1] - self.start[k]
        point = np.repeat(np.arange(len(x)), n)  # each point with each candidate of its cell
        grid = self.cand[np.repeat(lo - np.cumsum(n) + n, n) + np.arange(int(n.sum()))]
        b, px, py = self.bounds[grid], x[point], y[point]
        near = (b[:, 0] <= px) & (px <= b[:, 2]) & (b[:, 1] <= py) & (py <= b[:, 3])
        point, grid = point[near], grid[near]
        # by grid: GEOS answers ~8x faster when one polygon's tests come together (its index stays hot)
        order = np.argsort(grid, kind="stable")
        hit = np.empty(len(grid), dtype=bool)
        hit[order] = shapely.intersects_xy(self.geoms[grid[order]], x[point[order]], y[point[order]])
        point, grid = point[hit], grid[hit]
        out = np.full(len(x), _NONE, dtype=np.int64)
        first = np.ones(len(point), dtype=bool)  # pairs go by point, then by ascending grid
        first[1:] = point[1:] != point[:-1]
        out[point[first]] = grid[first]
        return out


def _exact(tree: shapely.STRtree, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The index of the lowest grid each point intersects (a point on a shared border touches
    two: the lower code wins, deterministically), -1 for none: GEOS's test, one point each."""
    n = len(tree.geometries)
    best = np.full(len(x), n, dtype=np.int64)
    if len(x):
        hit_pt, hit_grid = tree.query(shapely.points(x, y), predicate="intersects")
        np.minimum.at(best, hit_pt, hit_grid)
    return np.where(best < n, best, _NONE)


def _raster(tree: shapely.STRtree) -> _Raster | None:
    """The lookup raster of the tree's geometries; None when they cover no area."""
    from scipy import ndimage

    geoms = tree.geometries
    ok = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    if not ok.any():
        return None
    minx, miny, maxx, maxy = (float(v) for v in shapely.total_bounds(geoms[ok]))
    w, h = maxx - minx, maxy - miny
    if not (w > 0 and h > 0):
        return None
    side = math.sqrt(w * h / min(RASTER_MAX_CELLS, RASTER_CELLS_PER_GRID * int(ok.sum())))
    nx, ny = max(1, math.ceil(w / side)), max(1, math.ceil(h / side))
    dx, dy = w / nx, h / ny
    margin = 1e-9 * max(1.0, abs(minx), abs(maxx), abs(miny), abs(maxy))  # ~0.1 mm; rounding ~1e-14

    def index(lo: np.ndarray, hi: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
        """The cells from the one of ``lo`` - margin to the one of ``hi`` + margin, on the raster."""
        origin, step, size = (minx, dx, nx) if axis == 0 else (miny, dy, ny)
        first = np.clip(np.floor((lo - margin - origin) / step), 0, size - 1).astype(np.intp)
        last = np.clip(np.floor((hi + margin - origin) / step), 0, size - 1).astype(np.intp)
        return first, last

    # every boundary as segments: the polygons' rings, and any other part (a line, a point) as is
    parts = shapely.get_parts(geoms[ok])
    polygon = shapely.get_type_id(parts) == 3
    lines = np.concatenate([shapely.get_rings(parts[polygon]), parts[~polygon]])
    xy, which = shapely.get_coordinates(lines, return_index=True)
    same = which[1:] == which[:-1]
    a = np.concatenate([xy[:-1][same], xy])  # the segments, and each vertex alone (a lone point)
    d = np.concatenate([xy[1:][same], xy]) - a
    # cut into pieces at most one cell long in x and in y; mark the cells each piece's box reaches
    k = np.maximum(1, np.ceil(np.maximum(np.abs(d[:, 0]) / dx, np.abs(d[:, 1]) / dy))).astype(np.int64)
    border = np.zeros((ny, nx), dtype=bool)
    ends = np.searchsorted(np.cumsum(k), np.arange(1, int(k.sum()) // 250_000 + 1) * 250_000)
    for part in np.split(np.arange(len(a)), ends):  # ~250,000 pieces at a time: a few MB
        kp = k[part]
        seg = np.repeat(part, kp)
        t = (np.arange(len(seg)) - np.repeat(np.cumsum(kp) - kp, kp)) / k[seg]
        p0 = a[seg] + d[seg] * t[:, None]
        p1 = a[seg] + d[seg] * (t + 1 / k[seg])[:, None]
        ix0, ix1 = index(np.minimum(p0[:, 0], p1[:, 0]), np.maximum(p0[:, 0], p1[:, 0]), 0)
        iy0, iy1 = index(np.minimum(p0[:, 1], p1[:, 1]), np.maximum(p0[:, 1], p1[:, 1]), 1)
        for ox in range(int((ix1 - ix0).max(initial=0)) + 1):
            for oy in range(int((iy1 - iy0).max(initial=0)) + 1):
                m = (ix0 + ox <= ix1) & (iy0 + oy <= iy1)
                border[iy0[m] + oy, ix0[m] + ox] = True
    # the open regions: one answer each, from the centre of one of its cells (any will do)
    labels, n = ndimage.label(~border)
    flat = labels.reshape(-1)
    one = np.zeros(n + 1, dtype=np.int64)
    one[flat] = np.arange(flat.size, dtype=np.int32)  # for each region, some cell of it
    del flat
    cy, cx = np.divmod(one[1:], nx)
    px, py = minx + (cx + 0.5) * dx, miny + (cy + 0.5) * dy
    if ((np.floor((px - minx) / dx) != cx) | (np.floor((py - miny) / dy) != cy)).any():
        return None  # a centre outside its own cell (a raster far too fine for float64): no raster
    answer = _exact(tree, px, py)
    cells = np.concatenate([[0], answer]).astype(np.int32)[labels]
    del labels
    # border cells: numbered, with the grids whose bounding box reaches them (a superset of the
    # grids that can hold one of their points), in ascending order
    numbered = np.full(border.shape, -1, dtype=np.int32)
    numbered[border] = np.arange(int(border.sum()), dtype=np.int32)
    cells[border] = -2 - numbered[border]
    bounds = shapely.bounds(geoms)
    grid = np.flatnonzero(ok)
    gx0, gx1 = index(bounds[grid, 0], bounds[grid, 2], 0)
    gy0, gy1 = index(bounds[grid, 1], bounds[grid, 3], 1)
    pairs_cell, pairs_grid = [], []
    area = (gx1 - gx0 + 1) * (gy1 - gy0 + 1)
    ends = np.searchsorted(np.cumsum(area), np.arange(1, int(area.sum()) // 250_000 + 1) * 250_000)
    for rows in np.split(np.arange(len(grid)), ends):  # ~250,000 (grid, cell) pairs at a time: a few MB
        wx, wy = gx1[rows] - gx0[rows] + 1, gy1[rows] - gy0[rows] + 1
        count = wx * wy
        g = np.repeat(np.arange(len(rows)), count)  # each grid (of these), once per cell of its box
        j = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        c = numbered[gy0[rows][g] + j // wx[g], gx0[rows][g] + j % wx[g]]
        pairs_cell.append(c[c >= 0])
        pairs_grid.append(grid[rows[g[c >= 0]]])
    pc, pg = np.concatenate(pairs_cell), np.concatenate(pairs_grid)
    order = np.lexsort((pg, pc))
    start = np.searchsorted(pc[order], np.arange(int(border.sum()) + 1))
    prepared = geoms.copy()
    shapely.prepare(prepared)
    return _Raster(minx, miny, dx, dy, cells, start.astype(np.int64), pg[order].astype(np.int32),
                   bounds, prepared)


@dataclass
class _Grids:
    codes: np.ndarray  # grid codes in ascending order, the order of the tree's geometries
    villages: np.ndarray  # each grid's village code (its first 12 digits)
    towns: np.ndarray  # and town code (9 digits)
    tree: shapely.STRtree
    raster: _Raster | None = None  # made by with_raster, for big loads
    names: np.ndarray | None = None  # each grid's name, where known (to read a file's 所属网格)
    _lookup: _NameLookup | None = None  # made by lookup(), once per grids version

    def lookup(self) -> _NameLookup:
        """The grids by code, their names without white space, and each village's and town's
        grids: for reading a file's 所属网格 (:func:`_elsewhere`, :func:`_declared_grids`)."""
        if self._lookup is None:
            members: dict[str, list[int]] = {}
            for i, (village, town) in enumerate(zip(self.villages, self.towns, strict=True)):
                members.setdefault(village, []).append(i)
                members.setdefault(town, []).append(i)
            names = [] if self.names is None else [_bare(n) if n is not None else "" for n in self.names]
            self._lookup = _NameLookup({c: i for i, c in enumerate(self.codes)}, names, members)
        return self._lookup

    def with_raster(self) -> _Grids:
        if self.raster is None and len(self.codes):
            self.raster = _raster(self.tree)
        return self

    def find(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The index of the lowest grid each point lies in or on, -1 for none: the raster's
        answer where it has one (see :class:`_Raster`), else GEOS's test."""
        if not len(self.codes):
            return np.full(len(x), _NONE, dtype=np.int64)
        if self.raster is None:
            return _exact(self.tree, x, y)
        return self.raster.find(x, y, self.tree)


_GRIDS: dict[tuple[str, int], _Grids] = {}


def _grids(conn: Connection) -> _Grids:
    """The grids, cached per database and grids version (ETL of grids bumps it)."""
    db = conn.execute(text("SELECT current_database()")).scalar_one()
    version = conn.execute(
        text("SELECT coalesce(max(version), 0) FROM pingan.layer_versions WHERE layer_id = 'grids'")
    ).scalar_one()
    key = (db, version)
    if key not in _GRIDS:
        sql = "SELECT code, name, ST_AsBinary(geom) AS wkb FROM pingan.grids ORDER BY code"
        rows = conn.execute(text(sql)).all()
        _GRIDS.clear()
        _GRIDS[key] = grids_of([r.code for r in rows], shapely.from_wkb([bytes(r.wkb) for r in rows]),
                               [r.name for r in rows])
    return _GRIDS[key]


def grids_of(codes: list[str], geoms: np.ndarray, names: list[str | None] | None = None) -> _Grids:
    """The grids of ``codes``, their geometries (and names), for :func:`_assign` (no raster yet)."""
    order = sorted(range(len(codes)), key=codes.__getitem__)  # the codes' order, whatever the collation
    codes_ = np.array([codes[i] for i in order], dtype=object)
    return _Grids(
        codes_,
        np.array([c[:12] for c in codes_], dtype=object),
        np.array([c[:9] for c in codes_], dtype=object),
        shapely.STRtree(np.asarray(geoms, dtype=object)[order]),
        names=None if names is None else np.array([names[i] for i in order], dtype=object),
    )


@dataclass(frozen=True)
class _NameLookup:
    position: dict[str, int]  # a grid's index by its code
    names: list[str]  # each grid's name without white space ("" where unknown)
    members: dict[str, list[int]]  # a village's or town's grids, by its code


def _names_match(said: str, name: str) -> bool:
    """A 所属网格 as written names this grid: one name ends with the other, white space aside
    (网格 names are written with and without their village or town before them)."""
    return bool(name) and (said.endswith(name) or name.endswith(said))


def _elsewhere(grids: _Grids, frame: pd.DataFrame, rows: pd.Series) -> list[int]:
    """The rows whose 所属网格 (the file's own ``grid`` column: a grid's code or name) is not the
    grid they were placed in. A name matches when one ends with the other (网格 names are written
    with and without their village or town before them); a row without one, or not placed, is
    not compared."""
    declared = frame.get("grid")
    if declared is None or grids.names is None or not declared.notna().any():
        return []
    said, code = declared.astype(object), frame["grid_code"]
    name = code.map(dict(zip(grids.codes, grids.names, strict=True)))
    # most rows name their grid exactly (compared in C); only the others are read one by one,
    # without white space, for a name written after its village or town
    odd = said.notna() & code.notna() & (said != code) & (said != name)
    bare = grids.lookup().names
    position = grids.lookup().position
    out = []
    for row, s, c in zip(rows[odd], said[odd], code[odd], strict=True):
        s = _bare(s)
        if s != c and not _names_match(s, bare[position[c]]):
            out.append(int(row))
    return out


def _bare(name: object) -> str:
    return "".join(str(name).split())


def _declared_grids(
    grids: _Grids, f: pd.DataFrame, geo: pd.DataFrame, row_numbers: pd.Series
) -> tuple[pd.DataFrame, list[int]]:
    """Rows geocoded only to a village or town whose file names their 所属网格 (by code, or by
    name: in full, after the town's, or without the village's) as one grid of that village or
    town: placed to that grid (geocode level 'grid', at the grid's representative point), since
    the export says which grid they belong to and the address agrees. Returns the geo frame and
    the file row numbers of such rows naming a grid the address does not agree with (not
    refined: listed in the load's notes, as a placed row naming another grid is)."""
    coarse = geo["area"] & f["grid"].notna()
    if not coarse.any() or grids.names is None:
        return geo, []
    at = coarse[coarse].index
    said = f.loc[at, "grid"].map(_bare)
    area = geo.loc[at, "area_village"].where(geo.loc[at, "area_village"].notna(), geo.loc[at, "area_town"])
    look = grids.lookup()

    def resolve(s: str, a: str) -> int:  # the grid's index, or -1
        i = look.position.get(s)
        if i is None or a not in (grids.villages[i], grids.towns[i]):
            # by name among the area's grids (网格 names repeat across villages, not within one)
            hits = [j for j in look.members.get(a, ()) if _names_match(s, look.names[j])]
            i = hits[0] if len(hits) == 1 else -1
        return i

    # rows repeat a few (grid, area) pairs: each pair is resolved once
    key, pairs = pd.MultiIndex.from_arrays([said.to_numpy(), area.to_numpy()]).factorize()
    idx = np.array([resolve(s, a) if s else -2 for s, a in pairs], dtype=np.int64)[key]
    unsaid = sorted(int(r) for r in row_numbers[at[idx == -1]])
    if (idx >= 0).any():
        rows, idx = at[idx >= 0], idx[idx >= 0]
        grid, which = np.unique(idx, return_inverse=True)
        points = shapely.point_on_surface(grids.tree.geometries.take(grid))[which]
        geo = geo.assign(area_grid=pd.Series(None, index=geo.index, dtype=object))
        geo.loc[rows, "x"], geo.loc[rows, "y"] = shapely.get_x(points), shapely.get_y(points)
        geo.loc[rows, "geocode_level"] = "grid"
        geo.loc[rows, "area_grid"] = grids.codes[idx]
        geo.loc[rows, "area_village"], geo.loc[rows, "area_town"] = grids.villages[idx], grids.towns[idx]
    return geo, unsaid


def _assign(
    grids: _Grids, f: pd.DataFrame, geo: pd.DataFrame, placed: pd.Series
) -> tuple[pd.DataFrame, pd.Series]:
    x, y = geo["x"].to_numpy(dtype=float), geo["y"].to_numpy(dtype=float)
    found = np.full(len(f), -1, dtype=np.int64)  # the tree index of each point's grid
    idx = np.flatnonzero(placed.to_numpy())
    if len(idx):
        found[idx] = grids.find(x[idx], y[idx])
    inside = found >= 0

    # rows geocoded only to a village or town (see _geocode) take that area's codes and no grid
    # (nor village): their point is the area's representative point, not where they are; those
    # the file's 所属网格 placed to a grid of that area (_declared_grids) take that grid's codes
    coarse = geo["area"].to_numpy() & placed.to_numpy() if "area" in geo else None

    def codes(table: np.ndarray, area: str | None = None) -> pd.Series:
        out = np.full(len(f), None, dtype=object)
        out[inside] = table[found[inside]]
        if coarse is not None:
            out[coarse] = None if area is None else geo[area].to_numpy(dtype=object)[coarse]
        return pd.Series(out, index=f.index, dtype=object)

    outside = placed & ~pd.Series(inside if coarse is None else inside | coarse, index=f.index)
    geom = np.empty(len(f), dtype=np.complex128)  # each point as x + iy: no GEOS point is made
    geom.real, geom.imag = x, y  # (layers.copy writes EWKB from these bytes)
    frame = f.assign(
        geom=geom,
        grid_code=codes(grids.codes, "area_grid" if "area_grid" in geo else None),
        village_code=codes(grids.villages, "area_village"),
        town_code=codes(grids.towns, "area_town"),
        src_datum=geo["src_datum"],
        loc_method=geo["loc_method"],
        geocode_level=geo["geocode_level"],
        geocode_score=geo["geocode_score"],
    )
    return frame, outside
