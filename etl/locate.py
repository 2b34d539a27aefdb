"""Place each record: coordinates in any datum (or an address) → a CGCS2000 point → its grid,
village and town by point in polygon. A record that cannot be placed is a reject with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from etl.profile import DATUM_VALUES, Mapped
from etl.readers import RawTable
from gis.datum import to_cgcs2000

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


def swapped_warning(n: int) -> list[str]:
    return [f"{n} rows had 经度 and 纬度 swapped; corrected"] if n else []


@dataclass(frozen=True)
class Places:
    """What locating reads from the database, read once: the grids (point in polygon) and, when
    some row has only an address, the gazetteer. With it, :func:`locate` touches no connection,
    so a load can locate one chunk while the connection copies the one before."""

    grids: _Grids
    gazetteer: Gazetteer | None
    memo: dict = field(default_factory=dict)  # geocoded addresses, across the chunks of a file


def places(conn: Connection, mapped: Mapped, raw: RawTable, default_datum: str) -> Places:
    gazetteer = None
    if "address" in mapped.frame:
        lon, lat, _, _ = _coordinates(mapped, raw, default_datum)
        if (mapped.frame["address"].notna() & ~(lon.notna() & lat.notna())).any():
            from etl.geocode import load_gazetteer

            gazetteer = load_gazetteer(conn)
    return Places(_grids(conn), gazetteer)


def _reject(mapped: Mapped, mask: pd.Series, column: str | None, reason: str | pd.Series) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row_number": mapped.row_numbers[mask].to_numpy(),
            "column_name": column,
            "reason": reason[mask].to_numpy() if isinstance(reason, pd.Series) else reason,
            "raw": mapped.frame.loc[mask]
            .astype(object)
            .where(mapped.frame.loc[mask].notna(), None)
            .astype(str)
            .to_dict("records"),
        }
    )


def _coordinates(
    mapped: Mapped, raw: RawTable, default_datum: str
) -> tuple[pd.Series, pd.Series, pd.Series, int]:
    """lon, lat (swapped back where they were swapped), the datum of each row, and how many
    rows were swapped."""
    f = mapped.frame
    datum = f["datum"] if "datum" in f else pd.Series(None, index=f.index, dtype=object)
    datum = datum.fillna(DATUM_VALUES.get(default_datum.lower(), default_datum.lower()))
    if raw.geometry is not None:
        geoms = raw.geometry.loc[f.index]
        is_point = geoms.geom_type == "Point"
        lon = pd.Series(np.where(is_point, geoms.x.where(is_point), np.nan), index=f.index)
        lat = pd.Series(np.where(is_point, geoms.y.where(is_point), np.nan), index=f.index)
        crs = (raw.crs or "EPSG:4326").upper()
        if crs not in GEOGRAPHIC:
            # a projected file (e.g. a CGCS2000 Gauss-Krüger zone): its CRS is its datum
            datum = pd.Series(crs.lower(), index=f.index)
        return lon, lat, datum, 0
    lon = f["lon"] if "lon" in f else pd.Series(np.nan, index=f.index)
    lat = f["lat"] if "lat" in f else pd.Series(np.nan, index=f.index)
    lon, lat = lon.astype(float), lat.astype(float)
    swapped = lon.between(*LAT_RANGE) & lat.between(*LON_RANGE) & ~lon.between(*LON_RANGE)
    if swapped.any():
        lon, lat = lon.where(~swapped, lat), lat.where(~swapped, lon)
    return lon, lat, datum, int(swapped.sum())


def locate(
    conn: Connection | None, mapped: Mapped, raw: RawTable, default_datum: str, where: Places | None = None
) -> tuple[Located, pd.DataFrame]:
    """Place the rows of ``mapped``; with ``where`` (:func:`places`) ``conn`` is not used."""
    f = mapped.frame
    where = where or places(conn, mapped, raw, default_datum)
    lon, lat, datum, swapped = _coordinates(mapped, raw, default_datum)
    rejects = []
    has_xy = lon.notna() & lat.notna()
    x, y = lon.to_numpy(dtype=float).copy(), lat.to_numpy(dtype=float).copy()
    for d in datum[has_xy].unique():
        m = (has_xy & (datum == d)).to_numpy()
        try:
            x[m], y[m] = to_cgcs2000(x[m], y[m], d)
        except ValueError as exc:
            bad = pd.Series(m, index=f.index)
            rejects.append(_reject(mapped, bad, "datum", f"coordinate system: {exc}"))
            x[m], y[m] = np.nan, np.nan
    out_of_range = has_xy & ~(
        pd.Series(x, index=f.index).between(*LON_RANGE) & pd.Series(y, index=f.index).between(*LAT_RANGE)
    )
    if out_of_range.any():
        why = "coordinates outside China: " + lon.astype(str) + ", " + lat.astype(str)
        rejects.append(_reject(mapped, out_of_range, "lon", why))
    placed = has_xy & ~out_of_range & pd.Series(~np.isnan(x), index=f.index)
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
    if need.any():
        geo, more = _geocode(where, mapped, need, geo)
        rejects.append(more)
        placed = placed | geo["x"].notna() & need
    frame, outside = _assign(where.grids, f, geo, placed)
    if outside.any():
        rejects.append(_reject(mapped, outside, "lon", "outside the district: the point falls in no grid"))
    keep = placed & ~outside
    frame = frame[keep].assign(_row=mapped.row_numbers[keep].to_numpy())
    located = Located(frame, swapped_warning(swapped), swapped)
    return located, pd.concat(rejects, ignore_index=True) if rejects else _empty()


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=["row_number", "column_name", "reason", "raw"])


def _geocode(
    where: Places, mapped: Mapped, need: pd.Series, geo: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    f = mapped.frame
    address = f["address"] if "address" in f else pd.Series(None, index=f.index, dtype=object)
    no_address = need & address.isna()
    rejects = [_reject(mapped, no_address, "address", "no coordinates and no address: cannot be placed")]
    todo = need & address.notna()
    if todo.any():
        from etl.geocode import geocode_frame

        res = geocode_frame(None, address[todo], where.gazetteer, where.memo)
        res.index = address[todo].index
        ok = res["lon"].notna()
        idx = res.index[ok]
        geo.loc[idx, "x"], geo.loc[idx, "y"] = res.loc[ok, "lon"], res.loc[ok, "lat"]
        geo.loc[idx, "src_datum"], geo.loc[idx, "loc_method"] = "cgcs2000", "geocoded"
        geo.loc[idx, "geocode_level"], geo.loc[idx, "geocode_score"] = (
            res.loc[ok, "level"],
            res.loc[ok, "score"],
        )
        failed = pd.Series(False, index=f.index)
        failed[res.index[~ok]] = True
        reason = pd.Series("", index=f.index, dtype=object)
        reason[res.index[~ok]] = "address not found: " + res.loc[~ok, "reason"].astype(str)
        rejects.append(_reject(mapped, failed, "address", reason))
    return geo, pd.concat(rejects, ignore_index=True)


@dataclass(frozen=True)
class _Grids:
    codes: np.ndarray  # grid codes in ascending order, the order of the tree's geometries
    villages: np.ndarray  # each grid's village code (its first 12 digits)
    towns: np.ndarray  # and town code (9 digits)
    tree: shapely.STRtree


_GRIDS: dict[tuple[str, int], _Grids] = {}


def _grids(conn: Connection) -> _Grids:
    """The grids, cached per database and grids version (ETL of grids bumps it)."""
    db = conn.execute(text("SELECT current_database()")).scalar_one()
    version = conn.execute(
        text("SELECT coalesce(max(version), 0) FROM pingan.layer_versions WHERE layer_id = 'grids'")
    ).scalar_one()
    key = (db, version)
    if key not in _GRIDS:
        sql = "SELECT code, ST_AsBinary(geom) AS wkb FROM pingan.grids ORDER BY code"
        rows = conn.execute(text(sql)).all()
        _GRIDS.clear()
        rows = sorted(rows, key=lambda r: r.code)  # the order of the codes, whatever the collation
        codes = np.array([r.code for r in rows], dtype=object)
        _GRIDS[key] = _Grids(
            codes,
            np.array([c[:12] for c in codes], dtype=object),
            np.array([c[:9] for c in codes], dtype=object),
            shapely.STRtree(shapely.from_wkb([bytes(r.wkb) for r in rows])),
        )
    return _GRIDS[key]


def _assign(
    grids: _Grids, f: pd.DataFrame, geo: pd.DataFrame, placed: pd.Series
) -> tuple[pd.DataFrame, pd.Series]:
    pts = shapely.points(geo["x"].to_numpy(), geo["y"].to_numpy())
    found = np.full(len(f), -1, dtype=np.int64)  # the tree index of each point's grid
    if len(grids.codes) and placed.any():
        idx = np.flatnonzero(placed.to_numpy())
        hit_pt, hit_grid = grids.tree.query(pts[idx], predicate="intersects")
        # a point on a shared border touches two grids: the lower code (index) wins, deterministically
        best = np.full(len(idx), len(grids.codes), dtype=np.int64)
        np.minimum.at(best, hit_pt, hit_grid)
        hit = best < len(grids.codes)
        found[idx[hit]] = best[hit]
    inside = found >= 0

    def codes(table: np.ndarray) -> pd.Series:
        out = np.full(len(f), None, dtype=object)
        out[inside] = table[found[inside]]
        return pd.Series(out, index=f.index, dtype=object)

    outside = placed & ~pd.Series(inside, index=f.index)
    frame = f.assign(
        geom=pts,
        grid_code=codes(grids.codes),
        village_code=codes(grids.villages),
        town_code=codes(grids.towns),
        src_datum=geo["src_datum"],
        loc_method=geo["loc_method"],
        geocode_level=geo["geocode_level"],
        geocode_score=geo["geocode_score"],
    )
    return frame, outside
