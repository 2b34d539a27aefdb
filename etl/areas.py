"""Administrative areas in ETL: towns (镇街), villages (村社) and grids (网格) from boundary files.

Each area is keyed on its statistical code; a child's code starts with its parent's (the
schema's ``*_in_town``/``*_in_village`` CHECKs and foreign keys), so the parent code and the
county are derived from it. Geometries are converted to EPSG:4490 (a projected file by its
CRS; a geographic one by the 坐标系 column or the datum given, GCJ-02/BD-09 included), repaired
when invalid (``shapely.make_valid``, the GEOS routine behind PostGIS's ``ST_MakeValid``) and
normalised to MultiPolygons; what stays no polygon is a reject with the reason. Before the
upsert, :func:`containment_rejects` checks in the database that each village lies in its town
and each grid in its village (:data:`OUTSIDE_TOLERANCE` of its area may stick out: boundaries
drawn by two offices never match exactly).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from etl.locate import GEOGRAPHIC, LAT_RANGE, LON_RANGE
from etl.profile import Mapped, ProfileError
from etl.readers import RawTable
from etl.targets import Target
from gis.datum import check_datum, to_cgcs2000

CODE_DIGITS = {"towns": 9, "villages": 12, "grids": 15}
PARENT_DIGITS = {"villages": 9, "grids": 12}
PARENT_COLUMN = {"villages": "town_code", "grids": "village_code"}
OUTSIDE_TOLERANCE = 0.02  # share of a child's area allowed outside its parent
_TOWN_KIND = (("街道", "street"), ("民族乡", "township"), ("乡", "township"), ("镇", "town"))
_VILLAGE_KIND = (("社区", "community"), ("居委会", "community"), ("居民委员会", "community"),
                 ("村委会", "village"), ("村", "village"))


def _reject(mapped: Mapped, mask: pd.Series, column: str | None, reason) -> pd.DataFrame:  # noqa: ANN001
    rows = mapped.frame.loc[mask]
    return pd.DataFrame(
        {
            "row_number": mapped.row_numbers[mask].to_numpy(),
            "column_name": column,
            "reason": reason[mask].to_numpy() if isinstance(reason, pd.Series) else reason,
            "raw": rows.drop(columns=["geom"], errors="ignore").astype(object)
            .where(rows.drop(columns=["geom"], errors="ignore").notna(), None)
            .astype(str)
            .to_dict("records"),
        }
    )


def _codes(mapped: Mapped, layer: str) -> tuple[pd.Series, pd.Series]:
    """Normalised codes, and why a code is not one (empty string when it is)."""
    n = CODE_DIGITS[layer]
    code = mapped.frame["code"].astype(str).str.replace(r"\s", "", regex=True)
    if layer == "towns":  # the 12-digit form of the statistical code pads a town with 000
        code = code.where(~(code.str.fullmatch(r"[0-9]{9}000")), code.str.slice(0, 9))
    ok = code.str.fullmatch(f"[0-9]{{{n}}}")
    why = pd.Series("", index=code.index, dtype=object)
    why[~ok] = "代码 " + code[~ok].str.slice(0, 30) + f" is not a {n}-digit statistical code"
    return code, why


def _kinds(mapped: Mapped, layer: str) -> tuple[pd.Series, pd.Series]:
    f = mapped.frame
    given = f["kind"] if "kind" in f else pd.Series(None, index=f.index, dtype=object)
    if layer == "grids":
        return given.fillna("comprehensive"), pd.Series("", index=f.index, dtype=object)
    table = _TOWN_KIND if layer == "towns" else _VILLAGE_KIND
    derived = pd.Series(None, index=f.index, dtype=object)
    for suffix, kind in reversed(table):  # the first suffix of the table wins
        derived[f["name"].astype(str).str.endswith(suffix)] = kind
    kind = given.where(given.notna(), derived)
    why = pd.Series("", index=f.index, dtype=object)
    words = "/".join(s for s, _ in table)
    why[kind.isna()] = "类型 missing and the name does not end in " + words
    return kind, why


def _multipolygons(geoms: np.ndarray) -> np.ndarray:
    """The polygonal parts of each geometry as one MultiPolygon (empty when there are none)."""
    parts, owner = shapely.get_parts(geoms, return_index=True)
    parts, sub = shapely.get_parts(parts, return_index=True)  # collections may hold multis
    owner = owner[sub]
    keep = (shapely.get_type_id(parts) == 3) & ~shapely.is_empty(parts)
    out = np.empty(len(geoms), dtype=object)
    out[:] = shapely.MultiPolygon()
    if keep.any():
        groups = np.unique(owner[keep])
        out[groups] = shapely.multipolygons(parts[keep], indices=np.searchsorted(groups, owner[keep]))
    return out


def _to_cgcs2000(geoms: np.ndarray, datum: str) -> np.ndarray:
    return shapely.transform(geoms, lambda c: np.column_stack(to_cgcs2000(c[:, 0], c[:, 1], datum)))


def prepare_areas(mapped: Mapped, raw: RawTable, target: Target, default_datum: str) -> pd.DataFrame:
    """Codes, parents, kinds, counts and geometry of the areas; returns the rejects and keeps
    in ``mapped`` only the rows that can be loaded."""
    layer, f = target.layer, mapped.frame
    if raw.geometry is None:
        raise ProfileError(
            f"a {layer} file needs boundaries: give a GeoJSON, zipped Shapefile or GeoPackage")
    rejects: list[pd.DataFrame] = []
    reason = pd.Series("", index=f.index, dtype=object)
    column = pd.Series(None, index=f.index, dtype=object)

    def add(why: pd.Series, col: str) -> None:
        bad = (why != "") & (reason == "")
        reason[bad], column[bad] = why[bad], col

    code, why = _codes(mapped, layer)
    add(why, "code")
    kind, why = _kinds(mapped, layer)
    add(why, "kind")
    # geometry: datum, repair, MultiPolygon
    geoms = raw.geometry.loc[f.index].to_numpy(dtype=object).copy()
    missing = pd.isna(geoms) | shapely.is_empty(np.where(pd.isna(geoms), shapely.Point(), geoms))
    add(pd.Series(np.where(missing, "no geometry", ""), index=f.index), "geometry")
    crs = (raw.crs or "EPSG:4326").upper()
    if crs not in GEOGRAPHIC:
        datum = pd.Series(crs.lower(), index=f.index)
    else:
        datum = f["datum"] if "datum" in f else pd.Series(None, index=f.index, dtype=object)
        datum = datum.fillna(check_datum(default_datum))  # an unknown one fails the file, not each row
    for d in datum[~missing].unique():
        m = (~missing & (datum == d)).to_numpy()
        try:
            geoms[m] = _to_cgcs2000(geoms[m], d)
        except ValueError as exc:
            add(pd.Series(np.where(m, f"coordinate system: {exc}", ""), index=f.index), "datum")
            missing |= m
    invalid = ~missing & ~shapely.is_valid(np.where(missing, shapely.Point(), geoms))
    if invalid.any():
        geoms[invalid] = shapely.make_valid(geoms[invalid])
        mapped.warnings.append(f"{int(invalid.sum())} invalid boundaries repaired (ST_MakeValid)")
    kinds = np.where(missing, "", shapely.get_type_id(np.where(missing, shapely.Point(), geoms)))
    multi = np.empty(len(geoms), dtype=object)
    multi[:] = None
    multi[~missing] = _multipolygons(geoms[~missing])
    empty = ~missing & shapely.is_empty(np.where(missing, shapely.Point(), multi))
    names = {0: "a point", 1: "a line", 2: "a line", 4: "points", 5: "lines"}
    add(pd.Series([f"the geometry is {names.get(int(k), 'no polygon')}, not an area"
                   if e else "" for k, e in zip(kinds, empty, strict=True)], index=f.index), "geometry")
    ok_geom = ~missing & ~empty
    bounds = np.full((len(geoms), 4), np.nan)
    bounds[ok_geom] = shapely.bounds(multi[ok_geom])
    in_china = (
        (bounds[:, 0] >= LON_RANGE[0]) & (bounds[:, 2] <= LON_RANGE[1])
        & (bounds[:, 1] >= LAT_RANGE[0]) & (bounds[:, 3] <= LAT_RANGE[1])
    )
    add(pd.Series(np.where(ok_geom & ~in_china, "the boundary lies outside China: a projected file "
                           "without its .prj, or the wrong 坐标系?", ""), index=f.index), "geometry")
    # counts: unknown is 0, and said so
    for col in ("population", "households"):
        values = f[col] if col in f else pd.Series(pd.NA, index=f.index, dtype="Int64")
        if values.isna().any():
            mapped.warnings.append(f"{int(values.isna().sum())} rows had no {col}: set to 0")
        f[col] = values.fillna(0).astype("int64")
    f["code"], f["kind"], f["geom"], f["source_id"] = code, kind, multi, code
    if layer == "towns":
        f["county_code"] = code.str.slice(0, 6)
    else:
        f[PARENT_COLUMN[layer]] = code.str.slice(0, PARENT_DIGITS[layer])
    bad = reason != ""
    if bad.any():
        rejects.append(_reject(mapped, bad, None, reason.where(bad)))
        rejects[-1]["column_name"] = column[bad].to_numpy()
    mapped.frame, mapped.row_numbers = f[~bad], mapped.row_numbers[~bad]
    mapped.frame = mapped.frame.assign(_row=mapped.row_numbers.to_numpy())
    return pd.concat(rejects, ignore_index=True) if rejects else pd.DataFrame(
        columns=["row_number", "column_name", "reason", "raw"])


def containment_rejects(conn: Connection, target: Target) -> list[dict]:
    """Reject the staged areas that stick out of their parent, and remove them from ``stage``.

    A parent that is not loaded is left to the foreign key (its reason is in etl/targets.py)."""
    if target.parent is None:
        return []
    pcol = PARENT_COLUMN[target.layer]
    rows = conn.execute(
        text(
            f"""
            WITH out AS (
                SELECT s._pos, s._row, s.code, p.name AS parent_name,
                       ST_Area(ST_Difference(s.geom, p.geom)) / nullif(ST_Area(s.geom), 0) AS share
                FROM stage s JOIN pingan.{target.parent} p ON p.code = s.{pcol}
                WHERE NOT ST_CoveredBy(s.geom, p.geom))
            DELETE FROM stage s USING out
            WHERE s._pos = out._pos AND out.share > :tol
            RETURNING out._row, out.code, out.parent_name, out.share
            """  # noqa: S608 - trusted names
        ),
        {"tol": OUTSIDE_TOLERANCE},
    ).all()
    what = {"villages": "村社", "grids": "网格"}[target.layer]
    parent = {"villages": "镇街", "grids": "村社"}[target.layer]
    return [
        {
            "row_number": r._row,
            "column_name": "geometry",
            "reason": f"{what} {r.code} lies {r.share:.0%} outside its {parent} {r.parent_name} "
            f"(at most {OUTSIDE_TOLERANCE:.0%} may)",
            "raw": {"code": r.code},
        }
        for r in rows
    ]
