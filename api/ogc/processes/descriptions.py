"""The processes served at /ogc/processes: who may run each, and its OGC process description.

Descriptions are pygeoapi process metadata (titles and descriptions in zh and en, which
pygeoapi picks by ``lang``), served by pygeoapi's ``describe_processes`` through the plugin
classes of ``plugin.py``. Inputs are checked by ``inputs.py`` against the same limits.
"""

from __future__ import annotations

from typing import Any

from layers.analysis import EVENT_LAYERS

ANALYSTS = frozenset({"admin", "command", "town", "grid", "analyst"})  # and the system role
COMMAND = frozenset({"admin", "command"})
# the places a patrol plan may visit (layers.patrol.SOURCES): hot-spot cells of the latest month,
# key sites, open hazards, red/orange villages
PATROL_SOURCES = ("hotspots", "key_sites", "hazards", "villages")
PLANNERS = frozenset({"admin", "command", "town"})  # who may save patrol plans (migration 0013)
# Roles that may read individual events (migration 0005): no minimum cell size or bandwidth.
READS_EVENTS = frozenset({"admin", "command", "town", "grid", "system"})
MAX_MONTHS = 60
MAX_CELLS = 200_000
MAX_RASTER_CELLS = 4_000_000
MAX_PERMUTATIONS = 9999

_MONTH = {"type": "string", "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])$"}
_ALL_TYPES = sorted({t for spec in EVENT_LAYERS.values() for t in spec["types"]})
_ALL_STATES = sorted({s for spec in EVENT_LAYERS.values() for s in spec["states"]})


def _inp(
    title_zh: str,
    title_en: str,
    schema: dict[str, Any],
    *,
    required: bool = False,
    description_en: str = "",
    description_zh: str = "",
) -> dict[str, Any]:
    return {
        "title": {"zh": title_zh, "en": title_en},
        "description": {"zh": description_zh or title_zh, "en": description_en or title_en},
        "schema": schema,
        "minOccurs": 1 if required else 0,
        "maxOccurs": 1,
    }


EVENT_INPUTS: dict[str, Any] = {
    "layer": _inp(
        "事件图层",
        "Event layer",
        {"type": "string", "enum": sorted(EVENT_LAYERS)},
        required=True,
        description_en="hazards (risk hazards) or cases (disputes and incidents)",
    ),
    "period_start": _inp(
        "起始月份",
        "First month",
        _MONTH,
        required=True,
        description_en="first month of the events, YYYY-MM (local time)",
    ),
    "period_end": _inp(
        "结束月份",
        "Last month",
        _MONTH,
        description_en="last month (inclusive), YYYY-MM; default the first month",
    ),
    "types": _inp(
        "类型",
        "Types",
        {"type": "array", "items": {"type": "string", "enum": _ALL_TYPES}, "uniqueItems": True},
        description_en="event categories to keep (those of the layer); default all",
    ),
    "states": _inp(
        "状态",
        "States",
        {"type": "array", "items": {"type": "string", "enum": _ALL_STATES}, "uniqueItems": True},
        description_en="workflow states to keep (those of the layer); default all",
    ),
    "area": _inp(
        "区域代码",
        "Area code",
        {"type": "string", "pattern": "^[0-9]{9}([0-9]{3}){0,2}$"},
        description_en="a town (9 digits), village (12) or grid (15) code; default the caller's "
        "whole jurisdiction",
    ),
}
CELL_INPUTS: dict[str, Any] = {
    "cells": _inp(
        "分析单元",
        "Cells",
        {"type": "string", "enum": ["hexagon", "grid"], "default": "hexagon"},
        description_en="hexagons over the area, or the cells of the grids layer",
    ),
    "cell_size_m": _inp(
        "六边形边长（米）",
        "Hexagon side (m)",
        {"type": "number", "exclusiveMinimum": 0, "maximum": 20000},
        description_en="hexagon side in metres; callers who may not read individual "
        "events get at least the configured minimum (default 200 m)",
    ),
    "weights": _inp(
        "空间权重",
        "Spatial weights",
        {"type": "string", "enum": ["auto", "contiguity", "fixed-distance", "k-nearest"], "default": "auto"},
        description_en="auto: optimised scale (hexagons) or contiguity (grids)",
    ),
    "distance_m": _inp(
        "距离阈值（米）",
        "Distance band (m)",
        {"type": "number", "exclusiveMinimum": 0, "maximum": 50000},
        description_en="neighbourhood distance for fixed-distance weights",
    ),
    "k": _inp(
        "近邻数",
        "Neighbours (k)",
        {"type": "integer", "minimum": 1, "maximum": 100},
        description_en="number of neighbours for k-nearest weights",
    ),
}
_CELLS_OUT = {
    "title": {"zh": "分析单元结果", "en": "Cell results"},
    "description": {"zh": "每个单元的统计结果", "en": "One object per cell"},
    "schema": {"type": "array", "items": {"type": "object"}},
}
_COMMON_OUT = {
    "report": {
        "title": {"zh": "分析报告", "en": "Report"},
        "description": {"zh": "所作选择", "en": "The choices made, as sentences"},
        "schema": {"type": "array", "items": {"type": "string"}},
    },
    "summary": {
        "title": {"zh": "概要", "en": "Summary"},
        "description": {"zh": "概要", "en": "Summary"},
        "schema": {"type": "object"},
    },
    "links": {
        "title": {"zh": "结果图层", "en": "Result layers"},
        "description": {"zh": "结果要素与瓦片的链接", "en": "Links to the result features and tiles"},
        "schema": {"type": "array", "items": {"type": "object"}},
    },
}


def _meta(
    pid: str,
    title_zh: str,
    title_en: str,
    desc_zh: str,
    desc_en: str,
    inputs: dict[str, Any],
    outputs: dict[str, Any],
    example: dict[str, Any],
) -> dict[str, Any]:
    return {
        "version": "1.0.0",
        "id": pid,
        "title": {"zh": title_zh, "en": title_en},
        "description": {"zh": desc_zh, "en": desc_en},
        "jobControlOptions": ["sync-execute", "async-execute", "dismiss"],
        "keywords": ["hot spots", "平安一张图"],
        "links": [],
        "inputs": inputs,
        "outputs": outputs,
        "example": {"inputs": example},
    }


PROCESSES: dict[str, dict[str, Any]] = {
    "hotspot-gistar": {
        "roles": ANALYSTS,
        "metadata": _meta(
            "hotspot-gistar",
            "热点分析（Gi*）",
            "Hot spots (Getis-Ord Gi*)",
            "六边形或网格上的 Getis-Ord Gi* 热点分析，FDR 校正，置信度分级 ±3/±2/±1。",
            "Getis-Ord Gi* on hexagons (size given or optimised) or on the grids layer, with FDR "
            "correction and ArcGIS confidence bins; cells with count, z, p, p_fdr and bin.",
            {**EVENT_INPUTS, **CELL_INPUTS},
            {"cells": _CELLS_OUT, **_COMMON_OUT},
            {"layer": "hazards", "period_start": "2024-03", "period_end": "2024-05", "cell_size_m": 400},
        ),
    },
    "hotspot-local-moran": {
        "roles": ANALYSTS,
        "metadata": _meta(
            "hotspot-local-moran",
            "聚类与异常值分析（局部 Moran's I）",
            "Cluster and outlier analysis (Local Moran's I)",
            "局部 Moran's I（HH、HL、LH、LL），条件置换检验，可设随机种子。",
            "Local Moran's I with conditional permutations and a seed: HH, HL, LH and LL cells.",
            {
                **EVENT_INPUTS,
                **CELL_INPUTS,
                "permutations": _inp(
                    "置换次数",
                    "Permutations",
                    {"type": "integer", "minimum": 0, "maximum": MAX_PERMUTATIONS, "default": 999},
                ),
                "seed": _inp("随机种子", "Seed", {"type": "integer", "minimum": 0, "default": 0}),
                "alpha": _inp(
                    "显著性水平",
                    "Significance",
                    {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "default": 0.05},
                ),
            },
            {"cells": _CELLS_OUT, **_COMMON_OUT},
            {
                "layer": "cases",
                "period_start": "2024-01",
                "period_end": "2024-06",
                "cell_size_m": 500,
                "seed": 7,
            },
        ),
    },
    "kernel-density": {
        "roles": ANALYSTS,
        "metadata": _meta(
            "kernel-density",
            "核密度分析",
            "Kernel density",
            "四次或高斯核密度，带宽由规则或给定，可按类型加权；保存为 COG 栅格并提供瓦片。",
            "Quartic or Gaussian kernel density, bandwidth by rule or given, optional weights per "
            "event type; stored as a Cloud-Optimised GeoTIFF, with PNG tiles.",
            {
                **EVENT_INPUTS,
                "kernel": _inp(
                    "核函数",
                    "Kernel",
                    {"type": "string", "enum": ["quartic", "gaussian"], "default": "quartic"},
                ),
                "bandwidth_m": _inp(
                    "带宽（米）", "Bandwidth (m)", {"type": "number", "exclusiveMinimum": 0, "maximum": 20000}
                ),
                "bandwidth_rule": _inp(
                    "带宽规则",
                    "Bandwidth rule",
                    {"type": "string", "enum": ["arcgis", "scott"], "default": "arcgis"},
                ),
                "cell_size_m": _inp(
                    "像元大小（米）",
                    "Cell size (m)",
                    {"type": "number", "minimum": 5, "maximum": 5000, "default": 50},
                ),
                "type_weights": _inp(
                    "类型权重",
                    "Weights by type",
                    {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}},
                    description_en="a weight per event type (others weigh 1)",
                ),
            },
            {
                "raster": {
                    "title": {"zh": "栅格", "en": "Raster"},
                    "description": {"zh": "栅格", "en": "Raster"},
                    "schema": {"type": "object"},
                },
                **_COMMON_OUT,
            },
            {"layer": "hazards", "period_start": "2024-05", "kernel": "quartic", "bandwidth_m": 500},
        ),
    },
    "emerging-hotspots": {
        "roles": ANALYSTS,
        "metadata": _meta(
            "emerging-hotspots",
            "时空热点趋势分析",
            "Emerging hot spots",
            "单元 × 月的时空立方体，逐月 Gi*，Mann-Kendall 趋势，ArcGIS 分类（新增、持续、加剧……）。",
            "A space-time cube (cell x month), Gi* per bin, Mann-Kendall trend per cell and ArcGIS's "
            "categories (new, consecutive, intensifying, persistent, diminishing, sporadic, "
            "oscillating, historical and their cold equivalents).",
            {
                **EVENT_INPUTS,
                "cells": CELL_INPUTS["cells"],
                "cell_size_m": CELL_INPUTS["cell_size_m"],
                "time_window": _inp(
                    "时间邻域（月）",
                    "Time window (months)",
                    {"type": "integer", "minimum": 0, "maximum": 12, "default": 1},
                ),
                "alpha": _inp(
                    "显著性水平",
                    "Significance",
                    {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "default": 0.05},
                ),
                "fdr": _inp("FDR 校正", "FDR correction", {"type": "boolean", "default": False}),
            },
            {"cells": _CELLS_OUT, **_COMMON_OUT},
            {"layer": "hazards", "period_start": "2023-06", "period_end": "2024-05", "cell_size_m": 500},
        ),
    },
    "index-compute": {
        "roles": COMMAND,
        "metadata": _meta(
            "index-compute",
            "计算平安指数",
            "Compute the safety index",
            "计算指定月份所有村社和镇街的基层平安治理指数、五色分级与预警。",
            "Compute the safety governance index of every village and town for a month (or months), "
            "with classes and the accountability ladder.",
            {
                "period": _inp("月份", "Month", _MONTH, required=True),
                "period_end": _inp("结束月份", "Last month", _MONTH),
            },
            {"summary": _COMMON_OUT["summary"], "links": _COMMON_OUT["links"]},
            {"period": "2024-05"},
        ),
    },
    "patrol-plan": {
        "roles": PLANNERS,
        "metadata": _meta(
            "patrol-plan",
            "巡逻路线规划",
            "Patrol plan",
            "为多个巡逻队规划覆盖热点、重点场所和红橙村社的巡逻路线并保存。",
            "Plan and save patrol routes for several teams through hot spots, key sites, open hazards "
            "and red/orange villages.",
            {
                "town": _inp("镇街", "Town", {"type": "string", "pattern": "^[0-9]{9}$"}, required=True),
                "date": _inp("日期", "Date", {"type": "string", "format": "date"}),
                "teams": _inp(
                    "巡逻队数", "Teams", {"type": "integer", "minimum": 1, "maximum": 20, "default": 2}
                ),
                "shift": _inp(
                    "班次",
                    "Shift",
                    {
                        "type": "string",
                        "pattern": "^[0-2][0-9]:[0-5][0-9]-[0-2][0-9]:[0-5][0-9]$",
                        "default": "20:00-23:00",
                    },
                ),
                "mode": _inp(
                    "出行方式",
                    "Travel mode",
                    {"type": "string", "enum": ["foot", "bicycle", "car"], "default": "foot"},
                ),
                "max_stops": _inp(
                    "最多点位", "Most stops", {"type": "integer", "minimum": 1, "maximum": 500, "default": 60}
                ),
                "sources": _inp(
                    "点位来源",
                    "Stop sources",
                    {
                        "type": "array",
                        "items": {"type": "string", "enum": list(PATROL_SOURCES)},
                        "minItems": 1,
                        "uniqueItems": True,
                        "default": list(PATROL_SOURCES),
                    },
                ),
                "time_limit_s": _inp(
                    "求解时限（秒）",
                    "Solver time (s)",
                    {"type": "number", "minimum": 0.5, "maximum": 60, "default": 8.5},
                ),
                "name": _inp("名称", "Name", {"type": "string", "maxLength": 200}),
            },
            {
                "plan": {
                    "title": {"zh": "巡逻方案", "en": "Plan"},
                    "description": {"zh": "方案", "en": "Plan"},
                    "schema": {"type": "object"},
                },
                "links": _COMMON_OUT["links"],
            },
            {"town": "330304002", "teams": 2, "shift": "20:00-23:00"},
        ),
    },
}


def allowed(process_id: str, role: str) -> bool:
    spec = PROCESSES.get(process_id)
    return spec is not None and (role == "system" or role in spec["roles"])


def pygeoapi_resources() -> dict[str, Any]:
    """The ``resources`` entries pygeoapi needs to describe the processes."""
    return {
        pid: {"type": "process", "processor": {"name": f"api.ogc.processes.plugin.{_class(pid)}"}}
        for pid in PROCESSES
    }


def _class(pid: str) -> str:
    return "".join(part.capitalize() for part in pid.split("-")) + "Processor"
