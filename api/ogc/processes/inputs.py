"""Checking a process's inputs before a job exists: every mistake is a 400 naming the input.

Checks follow the process descriptions (types, enums, ranges) and add what a schema cannot say:
months in order, at most ``MAX_MONTHS`` of them, a cell size or bandwidth at least the minimum
for callers who may not read individual events, and no more than ``MAX_CELLS`` cells.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.ogc.errors import InvalidParameterError
from api.ogc.processes.descriptions import (
    MAX_MONTHS,
    MAX_PERMUTATIONS,
    PATROL_SOURCES,
    PROCESSES,
    READS_EVENTS,
)
from layers.analysis import EVENT_LAYERS, EventQuery, month_add

_MONTH = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")
_AREA = re.compile(r"^[0-9]{9}([0-9]{3}){0,2}$")


class AnalysisLimits(BaseSettings):
    """What a caller who may not read individual events (analyst) is held to (env PINGAN_ANALYSIS_*)."""

    model_config = SettingsConfigDict(env_prefix="PINGAN_ANALYSIS_", extra="ignore")

    min_cell_m: float = Field(default=200.0, gt=0, description="smallest hexagon side")
    min_bandwidth_m: float = Field(default=200.0, gt=0, description="smallest KDE bandwidth")
    max_sync_events: int = Field(default=200_000, gt=0, description="larger inputs run as jobs only")


def _bad(name: str, why: str) -> InvalidParameterError:
    return InvalidParameterError(f"input {name!r}: {why}")


def _get(inputs: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any = None) -> Any:  # noqa: ANN401
    value = inputs.get(name, default)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        and kind is not bool
        and bool not in (kind if isinstance(kind, tuple) else (kind,))
    ):
        raise _bad(name, "a boolean is not allowed here")
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise _bad(name, f"expected {names}, got {type(value).__name__}")
    return value


def _number(
    inputs: dict[str, Any],
    name: str,
    default: float | None = None,
    *,
    lo: float | None = None,
    hi: float | None = None,
    strict_lo: bool = False,
) -> float | None:
    value = _get(inputs, name, (int, float), default)
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        raise _bad(name, "must be a finite number")
    if lo is not None and (value <= lo if strict_lo else value < lo):
        raise _bad(name, f"must be {'>' if strict_lo else '>='} {lo:g}")
    if hi is not None and value > hi:
        raise _bad(name, f"must be <= {hi:g}")
    return value


def _integer(
    inputs: dict[str, Any],
    name: str,
    default: int | None = None,
    *,
    lo: int | None = None,
    hi: int | None = None,
) -> int | None:
    value = _get(inputs, name, int, default)
    if value is None:
        return None
    if lo is not None and value < lo or hi is not None and value > hi:
        raise _bad(name, f"must be an integer in [{lo}, {hi}]")
    return int(value)


def _choice(
    inputs: dict[str, Any], name: str, options: tuple[str, ...], default: str | None = None
) -> str | None:
    value = _get(inputs, name, str, default)
    if value is not None and value not in options:
        raise _bad(name, f"{value[:50]!r} is not one of {', '.join(options)}")
    return value


def _month(inputs: dict[str, Any], name: str, default: date | None = None) -> date | None:
    value = _get(inputs, name, str)
    if value is None:
        return default
    m = _MONTH.match(value)
    if not m or not 1900 <= int(m.group(1)) <= 2200:
        raise _bad(name, "expected a month YYYY-MM between 1900-01 and 2200-12")
    return date(int(m.group(1)), int(m.group(2)), 1)


def _strings(inputs: dict[str, Any], name: str, options: tuple[str, ...]) -> tuple[str, ...] | None:
    value = _get(inputs, name, list)
    if value is None:
        return None
    if not value or not all(isinstance(v, str) for v in value):
        raise _bad(name, "expected a non-empty array of strings")
    bad = sorted({v[:50] for v in value} - set(options))
    if bad:
        raise _bad(name, f"unknown value(s) {', '.join(bad)} (known: {', '.join(options)})")
    return tuple(dict.fromkeys(value))


def check_known(process_id: str, inputs: Any) -> dict[str, Any]:  # noqa: ANN401
    if not isinstance(inputs, dict):
        raise InvalidParameterError("'inputs' must be a JSON object")
    known = PROCESSES[process_id]["metadata"]["inputs"]
    unknown = sorted(set(inputs) - set(known))
    if unknown:
        raise InvalidParameterError(
            f"unknown input(s) {', '.join(u[:50] for u in unknown[:5])} of {process_id}: {', '.join(known)}"
        )
    return inputs


@dataclass(frozen=True)
class EventInputs:
    query: EventQuery
    first: date
    last: date

    @property
    def months(self) -> int:
        return (self.last.year - self.first.year) * 12 + self.last.month - self.first.month + 1


def event_inputs(inputs: dict[str, Any]) -> EventInputs:
    layer = _choice(inputs, "layer", tuple(EVENT_LAYERS))
    if layer is None:
        raise _bad("layer", "required: hazards or cases")
    first = _month(inputs, "period_start")
    if first is None:
        raise _bad("period_start", "required: a month YYYY-MM")
    last = _month(inputs, "period_end", first)
    assert last is not None
    if last < first:
        raise _bad("period_end", "comes before period_start")
    if month_add(first, MAX_MONTHS) <= last:
        raise _bad("period_end", f"at most {MAX_MONTHS} months can be analysed at once")
    spec = EVENT_LAYERS[layer]
    types = _strings(inputs, "types", spec["types"])
    states = _strings(inputs, "states", spec["states"])
    area = _get(inputs, "area", str)
    if area is not None and not _AREA.match(area):
        raise _bad("area", "expected a town (9 digits), village (12) or grid (15) code")
    return EventInputs(
        EventQuery.months(layer, first, last, types=types, states=states, area=area), first, last
    )


@dataclass(frozen=True)
class CellInputs:
    cells: str
    size_m: float | None
    weights: str
    distance_m: float | None
    k: int | None


def cell_inputs(
    inputs: dict[str, Any],
    role: str,
    limits: AnalysisLimits,
    *,
    weights: bool = True,
    default_size: float | None = None,
) -> CellInputs:
    cells = _choice(inputs, "cells", ("hexagon", "grid"), "hexagon")
    size = _number(inputs, "cell_size_m", default_size, lo=0, hi=20000, strict_lo=True)
    if cells == "grid" and "cell_size_m" in inputs:
        raise _bad("cell_size_m", "applies to hexagons only (cells = hexagon)")
    if size is not None and role not in READS_EVENTS and size < limits.min_cell_m:
        raise _bad(
            "cell_size_m",
            f"must be at least {limits.min_cell_m:g} m for role {role!r}, which may "
            "not read individual events (a smaller cell could single one out)",
        )
    kind = (
        _choice(inputs, "weights", ("auto", "contiguity", "fixed-distance", "k-nearest"), "auto")
        if weights
        else "contiguity"
    )
    distance = _number(inputs, "distance_m", lo=0, hi=50000, strict_lo=True)
    k = _integer(inputs, "k", lo=1, hi=100)
    if kind == "fixed-distance" and distance is None:
        raise _bad("distance_m", "required with weights = fixed-distance")
    if kind == "k-nearest" and k is None:
        raise _bad("k", "required with weights = k-nearest")
    if distance is not None and kind != "fixed-distance":
        raise _bad("distance_m", "applies to weights = fixed-distance only")
    if k is not None and kind != "k-nearest":
        raise _bad("k", "applies to weights = k-nearest only")
    return CellInputs(cells, size, kind, distance, k)  # type: ignore[arg-type]


def moran_inputs(inputs: dict[str, Any]) -> tuple[int, int, float]:
    perms = _integer(inputs, "permutations", 999, lo=0, hi=MAX_PERMUTATIONS)
    seed = _integer(inputs, "seed", 0, lo=0, hi=2**63 - 1)
    alpha = _number(inputs, "alpha", 0.05, lo=0, hi=0.999, strict_lo=True)
    return perms, seed, alpha  # type: ignore[return-value]


@dataclass(frozen=True)
class KdeInputs:
    kernel: str
    bandwidth_m: float | None
    rule: str
    cell_size_m: float
    type_weights: dict[str, float] | None


def kde_inputs(inputs: dict[str, Any], layer: str, role: str, limits: AnalysisLimits) -> KdeInputs:
    kernel = _choice(inputs, "kernel", ("quartic", "gaussian"), "quartic")
    bandwidth = _number(inputs, "bandwidth_m", lo=0, hi=20000, strict_lo=True)
    rule = _choice(inputs, "bandwidth_rule", ("arcgis", "scott"), "arcgis")
    if bandwidth is not None and "bandwidth_rule" in inputs:
        raise _bad("bandwidth_rule", "give bandwidth_m or bandwidth_rule, not both")
    if bandwidth is not None and role not in READS_EVENTS and bandwidth < limits.min_bandwidth_m:
        raise _bad(
            "bandwidth_m",
            f"must be at least {limits.min_bandwidth_m:g} m for role {role!r}, which "
            "may not read individual events",
        )
    cell = _number(inputs, "cell_size_m", 50.0, lo=5, hi=5000)
    weights = _get(inputs, "type_weights", dict)
    if weights is not None:
        known = EVENT_LAYERS[layer]["types"]
        bad = sorted(k[:50] for k in weights if k not in known)
        if bad:
            raise _bad("type_weights", f"unknown type(s) {', '.join(bad)} of {layer}")
        for k, v in weights.items():
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise _bad("type_weights", f"the weight of {k!r} must be a number >= 0")
        weights = {k: float(v) for k, v in weights.items()}
    return KdeInputs(kernel, bandwidth, rule, cell, weights)  # type: ignore[arg-type]


def emerging_inputs(inputs: dict[str, Any]) -> tuple[int, float, bool]:
    window = _integer(inputs, "time_window", 1, lo=0, hi=12)
    alpha = _number(inputs, "alpha", 0.05, lo=0, hi=0.999, strict_lo=True)
    fdr = _get(inputs, "fdr", bool, False)
    return window, alpha, fdr  # type: ignore[return-value]


def index_inputs(inputs: dict[str, Any]) -> tuple[date, date]:
    first = _month(inputs, "period")
    if first is None:
        raise _bad("period", "required: a month YYYY-MM")
    last = _month(inputs, "period_end", first)
    assert last is not None
    if last < first:
        raise _bad("period_end", "comes before period")
    if month_add(first, MAX_MONTHS) <= last:
        raise _bad("period_end", f"at most {MAX_MONTHS} months at once")
    return first, last


@dataclass(frozen=True)
class PatrolInputs:
    town: str
    day: date | None
    teams: int
    shift: str
    mode: str
    max_stops: int
    time_limit_s: float
    name: str | None
    sources: tuple[str, ...]


def patrol_inputs(inputs: dict[str, Any]) -> PatrolInputs:
    town = _get(inputs, "town", str)
    if town is None or not re.fullmatch(r"[0-9]{9}", town):
        raise _bad("town", "required: a 9-digit town code")
    day = _get(inputs, "date", str)
    try:
        parsed = date.fromisoformat(day) if day is not None else None
    except ValueError:
        raise _bad("date", "expected YYYY-MM-DD") from None
    shift = _get(inputs, "shift", str, "20:00-23:00")
    if not re.fullmatch(r"[0-2][0-9]:[0-5][0-9]-[0-2][0-9]:[0-5][0-9]", shift):
        raise _bad("shift", "expected HH:MM-HH:MM")
    name = _get(inputs, "name", str)
    if name is not None and not 0 < len(name) <= 200:
        raise _bad("name", "1 to 200 characters")
    return PatrolInputs(
        town,
        parsed,
        _integer(inputs, "teams", 2, lo=1, hi=20),  # type: ignore[arg-type]
        shift,
        _choice(inputs, "mode", ("foot", "bicycle", "car"), "foot"),  # type: ignore[arg-type]
        _integer(inputs, "max_stops", 60, lo=1, hi=500),  # type: ignore[arg-type]
        _number(inputs, "time_limit_s", 8.5, lo=0.5, hi=60),
        name,
        _strings(inputs, "sources", PATROL_SOURCES) or PATROL_SOURCES,
    )  # type: ignore[arg-type]
