"""The layers of Pingan Map, declared once (see ``layers.registry``)."""

from __future__ import annotations

from layers.registry import ALL_ROLES, STAFF, Layer, Property, Registry, Style, Tiles

P = Property

_ADMIN_COMMON = (
    P("code", "string", "代码", "Code"),
    P("name", "string", "名称", "Name"),
    P("kind", "string", "类型", "Kind"),
    P("population", "integer", "人口", "Population"),
    P("households", "integer", "户数", "Households"),
)
_LOCATED = (
    P("grid_code", "string", "所属网格", "Grid"),
    P("village_code", "string", "所属村社", "Village"),
    P("town_code", "string", "所属镇街", "Town"),
)

TOWNS = Layer(
    id="towns", title_zh="镇街", title_en="Towns and streets", table="pingan.towns",
    geometry_type="MultiPolygon", id_column="code", sensitivity="public", roles=ALL_ROLES,
    properties=(*_ADMIN_COMMON, P("county_code", "string", "区县代码", "County code")),
    tiles=Tiles(minzoom=6, maxzoom=16, simplify_px=0.5, properties=("code", "name")),
    style=Style(color="#00000000", outline="#1f3b73", opacity=0.0),
)
VILLAGES = Layer(
    id="villages", title_zh="村社", title_en="Villages and communities", table="pingan.villages",
    geometry_type="MultiPolygon", id_column="code", sensitivity="public", roles=ALL_ROLES,
    properties=(*_ADMIN_COMMON, P("town_code", "string", "所属镇街", "Town")),
    tiles=Tiles(minzoom=8, maxzoom=18, simplify_px=0.5, properties=("code", "name", "town_code")),
    style=Style(color="#00000000", outline="#5b6b8c", opacity=0.0),
)
GRIDS = Layer(
    id="grids", title_zh="网格", title_en="Grids", table="pingan.grids",
    geometry_type="MultiPolygon", id_column="code", sensitivity="internal", roles=STAFF | {"analyst"},
    properties=(*_ADMIN_COMMON, P("village_code", "string", "所属村社", "Village")),
    tiles=Tiles(minzoom=10, maxzoom=18, simplify_px=0.5, properties=("code", "name", "village_code")),
    style=Style(color="#00000000", outline="#8fa3bf", opacity=0.0),
)
KEY_SITES = Layer(
    id="key-sites", title_zh="重点场所", title_en="Key sites", table="pingan.key_sites",
    geometry_type="Point", sensitivity="internal", roles=STAFF | {"analyst"},
    properties=(
        P("code", "string", "编号", "Code"),
        P("name", "string", "名称", "Name"),
        P("category", "string", "类别", "Category"),
        P("risk_level", "string", "风险等级", "Risk level", enum=("high", "medium", "low")),
        P("capacity", "integer", "容量", "Capacity"),
        P("address", "string", "地址", "Address"),
        *_LOCATED,
    ),
    tiles=Tiles(minzoom=8, maxzoom=18, detail_zoom=13, group_by="category",
                properties=("code", "name", "category", "risk_level")),
    style=Style(color="#7b3fa0", outline="#ffffff", radius=4),
)
HAZARDS = Layer(
    id="hazards", title_zh="风险隐患", title_en="Risk hazards", table="pingan.hazards",
    geometry_type="Point", sensitivity="internal", roles=STAFF, datetime_property="found_at",
    properties=(
        P("code", "string", "编号", "Code"),
        P("category", "string", "类别", "Category"),
        P("level", "string", "等级", "Level", enum=("general", "major", "severe")),
        P("title", "string", "标题", "Title"),
        P("state", "string", "状态", "State",
          enum=("found", "assigned", "handling", "feedback", "verified", "closed")),
        P("found_at", "datetime", "发现时间", "Found at"),
        P("deadline", "datetime", "整改期限", "Deadline"),
        P("closed_at", "datetime", "销号时间", "Closed at"),
        *_LOCATED,
    ),
    tiles=Tiles(minzoom=8, maxzoom=18, detail_zoom=14, group_by="state", max_features=4_000,
                properties=("code", "category", "level", "state", "found_at")),
    style=Style(color="#d9342b", outline="#ffffff", radius=4),
)
CASES = Layer(
    id="cases", title_zh="矛盾纠纷", title_en="Disputes and incidents", table="pingan.cases",
    geometry_type="Point", sensitivity="internal", roles=STAFF, datetime_property="accepted_at",
    properties=(
        P("code", "string", "编号", "Code"),
        P("kind", "string", "类型", "Kind", enum=("dispute", "incident")),
        P("category", "string", "类别", "Category"),
        P("title", "string", "标题", "Title"),
        P("state", "string", "状态", "State",
          enum=("accepted", "mediating", "resolved", "transferred", "closed")),
        P("resolution_level", "string", "化解层级", "Resolved at level",
          enum=("grid", "village", "town", "district")),
        P("accepted_at", "datetime", "受理时间", "Accepted at"),
        P("closed_at", "datetime", "结案时间", "Closed at"),
        *_LOCATED,
    ),
    tiles=Tiles(minzoom=8, maxzoom=18, detail_zoom=14, group_by="state", max_features=4_000,
                properties=("code", "kind", "category", "state", "accepted_at")),
    style=Style(color="#e08a1e", outline="#ffffff", radius=4),
)
# Persons on the map carry no identity at all (name, ID number and phone stay in the person
# file, /api/persons/{id}, masked and audited): grade, categories and area, at the exact place
# only for those responsible (pingan.persons_served; admins get a point in the person's grid).
PERSONS = Layer(
    id="persons", title_zh="五失人员", title_en="Five-loss persons", table="pingan.persons_served",
    geometry_type="Point", sensitivity="personal", roles=STAFF, instead="persons-by-grid",
    properties=(
        P("grade", "string", "风险等级", "Grade", enum=("red", "yellow", "green")),
        P("categories", "array", "五失类别", "Categories"),
        P("status", "string", "状态", "Status", enum=("active", "closed")),
        P("exact_location", "boolean", "精确位置", "Exact location"),
        *_LOCATED,
    ),
    tiles=Tiles(minzoom=10, maxzoom=18, detail_zoom=15, group_by="grade", properties=("grade",)),
    style=Style(color="#c0392b", outline="#ffffff", radius=5),
)
_PERSON_COUNTS = (
    P("total", "integer", "人数", "Persons"),
    P("grade_red", "integer", "红色等级", "Grade red"),
    P("grade_yellow", "integer", "黄色等级", "Grade yellow"),
    P("grade_green", "integer", "绿色等级", "Grade green"),
    P("career_failure", "integer", "事业失败", "Career failure"),
    P("family_discord", "integer", "家庭失和", "Family discord"),
    P("life_frustration", "integer", "生活失意", "Life frustration"),
    P("mental_imbalance", "integer", "心态失衡", "Mental imbalance"),
    P("abnormal_behaviour", "integer", "行为失常", "Abnormal behaviour"),
    P("suppressed", "boolean", "小数抑制", "Small counts suppressed"),
)
_COUNT_TILE_PROPERTIES = ("code", "total", "grade_red", "grade_yellow", "grade_green", "suppressed")
_COUNTS_NOTE_ZH = ("人数少于阈值（默认 5）的数字不显示（为空，suppressed=true）；为防止用相减推算出小数字，"
                   "部分较大的数字也一并不显示。")
_COUNTS_NOTE_EN = ("Counts below the threshold (default 5) are withheld (null, suppressed=true), and so are "
                   "some larger ones, so that no small count can be worked out by subtraction.")
PERSONS_BY_GRID = Layer(
    id="persons-by-grid", title_zh="五失人员（按网格统计）", title_en="Five-loss persons per grid",
    table="pingan.persons_by_grid", geometry_type="MultiPolygon", id_column="code",
    sensitivity="internal", roles=ALL_ROLES, data_from=("persons", "grids"),
    properties=(P("code", "string", "网格代码", "Grid code"), P("name", "string", "名称", "Name"),
                P("village_code", "string", "所属村社", "Village"),
                P("town_code", "string", "所属镇街", "Town"), *_PERSON_COUNTS),
    tiles=Tiles(minzoom=10, maxzoom=18, simplify_px=0.5, properties=_COUNT_TILE_PROPERTIES),
    style=Style(color="#c0392b", outline="#8fa3bf", opacity=0.4),
    description_zh=_COUNTS_NOTE_ZH, description_en=_COUNTS_NOTE_EN,
)
PERSONS_BY_VILLAGE = Layer(
    id="persons-by-village", title_zh="五失人员（按村社统计）", title_en="Five-loss persons per village",
    table="pingan.persons_by_village", geometry_type="MultiPolygon", id_column="code",
    sensitivity="internal", roles=ALL_ROLES, data_from=("persons", "villages"),
    properties=(P("code", "string", "村社代码", "Village code"), P("name", "string", "名称", "Name"),
                P("town_code", "string", "所属镇街", "Town"), *_PERSON_COUNTS),
    tiles=Tiles(minzoom=8, maxzoom=18, simplify_px=0.5, properties=_COUNT_TILE_PROPERTIES),
    style=Style(color="#c0392b", outline="#5b6b8c", opacity=0.4),
    description_zh=_COUNTS_NOTE_ZH, description_en=_COUNTS_NOTE_EN,
)
PERSONS_BY_TOWN = Layer(
    id="persons-by-town", title_zh="五失人员（按镇街统计）", title_en="Five-loss persons per town",
    table="pingan.persons_by_town", geometry_type="MultiPolygon", id_column="code",
    sensitivity="internal", roles=ALL_ROLES, data_from=("persons", "towns"),
    properties=(P("code", "string", "镇街代码", "Town code"), P("name", "string", "名称", "Name"),
                *_PERSON_COUNTS),
    tiles=Tiles(minzoom=6, maxzoom=16, simplify_px=0.5, properties=_COUNT_TILE_PROPERTIES),
    style=Style(color="#c0392b", outline="#1f3b73", opacity=0.4),
    description_zh=_COUNTS_NOTE_ZH, description_en=_COUNTS_NOTE_EN,
)


_INDEX = (
    P("period", "date", "月份", "Month"),
    P("code", "string", "代码", "Code"),
    P("name", "string", "名称", "Name"),
    P("town_code", "string", "所属镇街", "Town"),
    P("score", "number", "平安指数", "Safety index"),
    P("class", "string", "预警等级", "Warning class", enum=("red", "orange", "yellow", "blue", "green")),
    P("colour_zh", "string", "颜色", "Colour (zh)"),
    P("colour_en", "string", "颜色（英文）", "Colour"),
    P("colour_hex", "string", "颜色值", "Colour hex"),
    P("rank", "integer", "排名", "Rank"),
    P("rank_change", "integer", "排名变化", "Rank change"),
    P("change", "number", "较上月", "Change on last month"),
    P("veto", "boolean", "一票否决", "Veto"),
)
_INDEX_TILE_PROPERTIES = ("code", "name", "period", "score", "class", "colour_hex", "rank")
INDEX_VILLAGES = Layer(
    id="index-villages", title_zh="基层平安治理指数（村社）", title_en="Safety index of villages",
    table="pingan.index_villages", geometry_type="MultiPolygon", id_column="id", sensitivity="public",
    roles=ALL_ROLES, datetime_property="period", properties=_INDEX,
    tiles=Tiles(minzoom=8, maxzoom=16, simplify_px=0.5, properties=_INDEX_TILE_PROPERTIES),
    style=Style(color="#33a02c", outline="#ffffff", opacity=0.7),
    description_zh="每月每个村社的平安指数与五色预警（红/橙/黄/蓝/绿）；按 period 过滤月份。",
    description_en="The monthly safety index and five-colour class of each village; filter by period.",
)
INDEX_TOWNS = Layer(
    id="index-towns", title_zh="基层平安治理指数（镇街）", title_en="Safety index of towns",
    table="pingan.index_towns", geometry_type="MultiPolygon", id_column="id", sensitivity="public",
    roles=ALL_ROLES, datetime_property="period", properties=_INDEX,
    tiles=Tiles(minzoom=6, maxzoom=16, simplify_px=0.5, properties=_INDEX_TILE_PROPERTIES),
    style=Style(color="#33a02c", outline="#1f3b73", opacity=0.7),
    description_zh="每月每个镇街的平安指数与五色预警；按 period 过滤月份。",
    description_en="The monthly safety index and five-colour class of each town; filter by period.",
)
HOTSPOTS = Layer(
    id="hotspots", title_zh="热点分析", title_en="Hot spots", table="pingan.hotspots_latest",
    geometry_type="MultiPolygon", id_column="id", sensitivity="internal", roles=STAFF | {"analyst"},
    datetime_property="period",
    properties=(
        P("layer", "string", "事件图层", "Event layer", enum=("hazards", "cases")),
        P("period", "date", "月份", "Month"),
        P("cell", "string", "六边形", "Hexagon"),
        P("events", "integer", "事件数", "Events"),
        P("z", "number", "Gi* z 值", "Gi* z-score"),
        P("p_fdr", "number", "p 值（FDR 校正）", "p-value (FDR)"),
        P("bin", "integer", "置信度分级", "Confidence bin"),
        P("window_months", "integer", "统计月数", "Months counted"),
    ),
    tiles=Tiles(minzoom=8, maxzoom=16, simplify_px=0.5, properties=("layer", "events", "z", "bin")),
    style=Style(color="#d7301f", outline="#ffffff", opacity=0.5),
    description_zh="最近一个月的风险隐患与矛盾纠纷热点（Getis-Ord Gi*，FDR 校正，六边形网格）。",
    description_en="Hot spots of hazards and disputes in the latest month (Getis-Ord Gi*, FDR, hexagons).",
)

# -- patrol plans (issue 9; migration 0013): saved routes and stops, for staff; a town's plans
# for its own users only (row-level security on pingan.patrol_plans decides)
_PLAN = (
    P("plan_id", "integer", "方案编号", "Plan"),
    P("plan_name", "string", "方案名称", "Plan name"),
    P("plan_date", "date", "巡逻日期", "Patrol date"),
    P("town_code", "string", "所属镇街", "Town"),
)
PATROL_ROUTES = Layer(
    id="patrol-routes", title_zh="巡逻路线", title_en="Patrol routes", table="pingan.patrol_routes_served",
    geometry_type="LineString", sensitivity="internal", roles=STAFF, datetime_property="plan_date",
    properties=(
        *_PLAN,
        P("network", "string", "路网", "Road network"),
        P("solver", "string", "求解器", "Solver", enum=("ortools", "greedy")),
        P("team", "string", "队伍", "Team"),
        P("team_name", "string", "队伍名称", "Team name"),
        P("travel_mode", "string", "出行方式", "Travel mode", enum=("foot", "bicycle", "car")),
        P("shift_start", "datetime", "班次开始", "Shift start"),
        P("shift_end", "datetime", "班次结束", "Shift end"),
        P("start_at", "datetime", "出发时间", "Leaves at"),
        P("end_at", "datetime", "返回时间", "Back at"),
        P("stops", "integer", "巡逻点数", "Stops"),
        P("length_m", "number", "路线长度（米）", "Length (m)"),
        P("duration_s", "number", "用时（秒）", "Duration (s)"),
    ),
    tiles=Tiles(minzoom=10, maxzoom=18, simplify_px=0.5,
                properties=("plan_id", "plan_name", "plan_date", "team", "team_name", "travel_mode", "stops",
                            "length_m")),
    style=Style(color="#1f78b4", outline="#ffffff", opacity=0.9, radius=3),
    description_zh="已保存巡逻方案的各队路线（沿路网）；按 plan_id 或 plan_date 过滤。",
    description_en="The road routes of each team of the saved patrol plans; filter by plan_id or plan_date.",
)
PATROL_STOPS = Layer(
    id="patrol-stops", title_zh="巡逻点位", title_en="Patrol stops", table="pingan.patrol_stops_served",
    geometry_type="Point", sensitivity="internal", roles=STAFF, datetime_property="plan_date",
    properties=(
        *_PLAN,
        P("team", "string", "队伍", "Team"),
        P("seq", "integer", "顺序", "Order"),
        P("stop_id", "string", "点位编号", "Stop"),
        P("kind", "string", "点位类型", "Kind"),
        P("ref", "string", "来源编号", "Source code"),
        P("name", "string", "名称", "Name"),
        P("priority", "number", "优先级", "Priority"),
        P("status", "string", "状态", "Status", enum=("visited", "dropped", "unsnapped")),
        P("reason", "string", "未巡原因", "Why left out"),
        P("arrival", "datetime", "到达时间", "Arrival"),
        P("departure", "datetime", "离开时间", "Departure"),
        P("snap_m", "number", "距路网（米）", "Metres to the road"),
        P("leg_m", "number", "上一段（米）", "Leg (m)"),
    ),
    tiles=Tiles(minzoom=10, maxzoom=18, detail_zoom=13, group_by="status",
                properties=("plan_id", "team", "seq", "name", "kind", "status", "arrival")),
    style=Style(color="#1f78b4", outline="#ffffff", radius=4),
    description_zh="已保存巡逻方案的全部候选点位：已巡（含顺序与到达时间）、未排入（含原因）、无路可达。",
    description_en="Every candidate stop of the saved patrol plans: visited (order, arrival), dropped (why), "
                   "unsnapped.",
)

# -- processes (issue 7; migration 0011): each caller's own hot-spot job results (filter by job_id)
HOTSPOT_RESULTS = Layer(
    id="hotspot-results", title_zh="热点分析结果", title_en="Hot-spot results",
    table="pingan.hotspot_results",
    geometry_type="MultiPolygon", id_column="id", sensitivity="internal", roles=STAFF | {"analyst"},
    datetime_property="finished", per_user=True,
    properties=(
        P("job_id", "string", "任务编号", "Job"),
        P("process_id", "string", "分析方法", "Process",
          enum=("hotspot-gistar", "hotspot-local-moran", "emerging-hotspots")),
        P("finished", "date", "完成日期", "Finished"),
        P("cell", "string", "单元", "Cell"),
        P("events", "integer", "事件数", "Events"),
        P("z", "number", "z 值", "z-score"),
        P("p", "number", "p 值", "p-value"),
        P("p_fdr", "number", "p 值（FDR 校正）", "p-value (FDR)"),
        P("bin", "integer", "置信度分级", "Confidence bin"),
        P("local_i", "number", "局部 Moran's I", "Local Moran's I"),
        P("code", "integer", "类别代码", "Class code"),
        P("label", "string", "类别", "Class"),
    ),
    tiles=Tiles(minzoom=8, maxzoom=16, simplify_px=0.5,
                properties=("job_id", "process_id", "events", "z", "bin", "code", "label")),
    style=Style(color="#e6550d", outline="#ffffff", opacity=0.5),
    description_zh="本人提交的热点分析任务的单元结果（按 job_id 过滤）；仅本人与管理员可见。",
    description_en="The cell results of your own hot-spot analysis jobs (filter by job_id); visible to you "
                   "and admins only.",
)


def default_registry() -> Registry:
    """The registry the service and the ETL refreshes use."""
    return Registry().register(
        TOWNS, VILLAGES, GRIDS, KEY_SITES, HAZARDS, CASES, PERSONS, PERSONS_BY_GRID, PERSONS_BY_VILLAGE,
        PERSONS_BY_TOWN, HOTSPOTS, INDEX_VILLAGES, INDEX_TOWNS,
    ).register(PATROL_ROUTES, PATROL_STOPS).register(
        HOTSPOT_RESULTS,  # processes (issue 7)
    ).validate()  # patrol plans (issue 9)
