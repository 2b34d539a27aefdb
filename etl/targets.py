"""What each loadable layer writes: its table, fields, events and the reasons behind its rules."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    layer: str
    layer_id: str  # the registry id whose version a load bumps
    table: str
    fields: tuple[str, ...]  # profile fields written as columns (besides location/provenance)
    events: str | None = None
    event_fk: str | None = None
    location: tuple[str, ...] = ()  # set below: the location columns the table has
    key: tuple[str, ...] = ("source", "source_id")  # the upsert's conflict target
    shape: str = "point"  # "point": located records; "polygon": administrative areas; "table": neither
    parent: str | None = None  # polygons: the table of the area each one must lie in


TARGETS: dict[str, Target] = {
    "hazards": Target(
        "hazards",
        "hazards",
        "pingan.hazards",
        (
            "code",
            "category",
            "level",
            "title",
            "description",
            "address",
            "reporter_kind",
            "assigned_to",
            "state",
            "found_at",
            "assigned_at",
            "deadline",
            "rectified_at",
            "verified_at",
            "closed_at",
        ),
        events="pingan.hazard_events",
        event_fk="hazard_id",
    ),
    "cases": Target(
        "cases",
        "cases",
        "pingan.cases",
        (
            "code",
            "kind",
            "category",
            "title",
            "description",
            "address",
            "channel",
            "parties",
            "state",
            "accepted_at",
            "deadline",
            "mediating_at",
            "resolved_at",
            "transferred_at",
            "closed_at",
            "resolution_level",
            "transferred_to",
        ),
        events="pingan.case_events",
        event_fk="case_id",
    ),
    "key_sites": Target(
        "key_sites",
        "key-sites",
        "pingan.key_sites",
        ("code", "name", "category", "risk_level", "capacity", "address"),
    ),
    "persons": Target(
        "persons",
        "persons",
        "pingan.persons",
        (
            "name_enc",
            "id_number_enc",
            "phone_enc",
            "id_number_hash",
            "gender",
            "birth_year",
            "categories",
            "grade",
            "grade_since",
            "status",
            "closed_at",
            "registered_at",
            "address",
        ),
        events="pingan.person_grades",
        event_fk="person_id",
        key=("id_number_hash",),  # one file per person, whichever source sent it
    ),
    "towns": Target(
        "towns", "towns", "pingan.towns",
        ("code", "county_code", "name", "kind", "population", "households"),
        location=("geom",), key=("code",), shape="polygon",
    ),
    "villages": Target(
        "villages", "villages", "pingan.villages",
        ("code", "town_code", "name", "kind", "population", "households"),
        location=("geom",), key=("code",), shape="polygon", parent="towns",
    ),
    "grids": Target(
        "grids", "grids", "pingan.grids",
        ("code", "village_code", "name", "kind", "population", "households"),
        location=("geom",), key=("code",), shape="polygon", parent="villages",
    ),
    "address_points": Target(
        "address_points", "address-points", "pingan.address_points",
        ("address", "normalized", "road", "number", "building"),
        location=("geom", "grid_code", "village_code", "town_code", "src_datum"),
    ),
    # the public survey per village and month (etl/survey.py): no location, keyed on the place
    "survey": Target(
        "survey", "survey", "pingan.index_survey",
        ("period", "level", "code", "name", "respondents", "awareness", "participation", "satisfaction"),
        key=("period", "level", "code"), shape="table",
    ),
}

LOCATION = (
    "geom",
    "grid_code",
    "village_code",
    "town_code",
    "src_datum",
    "loc_method",
    "geocode_level",
    "geocode_score",
)

# Constraint names (layers/migrations/sql) -> what a person fixing the file needs to hear.
CONSTRAINT_REASONS = {
    "hazards_state_timestamps": "状态与时间不符 state and dates disagree: each state needs the times "
    "of every step before it (交办时间+整改期限 from 交办, 整改完成时间 from 反馈, 核查时间 from 核查, "
    "销号时间 for 销号) and none after it",
    "hazards_time_order": "时间顺序错误 dates out of order "
    "(发现 ≤ 交办 ≤ 整改完成 ≤ 核查 ≤ 销号; 期限 after 交办)",
    "cases_state_timestamps": "状态与时间不符 state and dates disagree (化解 needs 化解时间 and 化解层级; "
    "移交 needs 移交时间 and 移交单位; 结案 needs 结案时间)",
    "cases_time_order": "时间顺序错误 dates out of order (受理 ≤ 调解 ≤ 化解/移交 ≤ 结案; 期限 after 受理)",
    "hazards_code_key": "编号 already used by another record",
    "cases_code_key": "编号 already used by another record",
    "key_sites_code_key": "编号 already used by another record",
    "persons_source_source_id_key": "人员编号 already used for a person with another ID number",
    "persons_grade_since": "定级时间 is before 登记时间",
    "persons_closed": "管控状态 and 销档时间 disagree: a closed file needs 销档时间 (not before 登记时间), "
    "an active one none",
    "towns_name_county_code_key": "镇街名称 already used by another town of this county",
    "towns_source_source_id_key": "this source already sent this area under another code",
    "villages_source_source_id_key": "this source already sent this area under another code",
    "grids_source_source_id_key": "this source already sent this area under another code",
    "villages_town_code_fkey": "村社代码's town (its first 9 digits) is not loaded: load the towns first",
    "grids_village_code_fkey": "网格编码's village (its first 12 digits) is not loaded: "
    "load the villages first",
    "index_survey_place": "村社代码 is not a loaded village (or 村社 names no single village): "
    "load the villages first, or give the 12-digit code",
    "index_survey_some_rate": "no rate: give at least one of 知晓率, 参与率, 满意度",
}

for _name, _t in list(TARGETS.items()):
    if not _t.location and _t.shape != "table":  # a table (the survey) has no location columns
        TARGETS[_name] = Target(**{**_t.__dict__, "location": LOCATION})
