"""The index model: indicators, weights, vetoes, classification, ladder and star rules, from TOML.

A model is configuration, not code (issue 6): every indicator names a *source* (a monthly
count or rate per place that the storage side provides, see ``layers.index.SOURCES``), how it
is normalised and how much it weighs. :func:`parse_model` validates everything up front and
raises :class:`ModelError` with the offending key, so a bad file never reaches a computation.

Example
-------
>>> m = parse_model('''
... [model]
... name = "demo"
... version = "1"
... [[indicators]]
... id = "crime"
... source = "cases_criminal"
... per = "population"
... higher = "worse"
... normalise = "fixed"
... range = [0, 10]
... weight = 1.0
... ''')
>>> m.indicators[0].scale
10000.0
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

CLASSES = ("red", "orange", "yellow", "blue", "green")  # high risk ... low risk
NORMALISATIONS = ("fixed", "minmax", "zscore")
METHODS = ("fixed", "quantiles", "natural_breaks")
LEVELS = ("village", "town")
LADDER_STEPS = ("warning", "notice", "supervision", "listing")  # 预警 抄告 督办 挂牌
WEIGHT_TOLERANCE = 1e-6


class ModelError(ValueError):
    """An index model that cannot be used; the message names the key at fault."""


@dataclass(frozen=True)
class Indicator:
    id: str
    source: str
    weight: float
    higher: str = "worse"  # "worse": more is riskier; "better": more is safer
    per: str | None = None  # "population" (a rate per `scale` residents) or another source (a ratio)
    scale: float = 1.0
    if_zero: float | None = None  # the value when the denominator is 0 (None: no value)
    baseline: str | None = None  # "last_year": the change against the same month a year before
    normalise: str = "minmax"
    range: tuple[float, float] | None = None  # for normalise = "fixed"
    optional: bool = False  # skipped (with a note) where its source has no data
    label: str = ""


@dataclass(frozen=True)
class Veto:
    source: str
    at_least: float
    reason: str
    levels: tuple[str, ...] = LEVELS  # the levels it applies to


@dataclass(frozen=True)
class Classification:
    method: str = "fixed"
    bands: tuple[float, ...] = (60.0, 70.0, 80.0, 90.0)  # lower edges of orange, yellow, blue, green
    k: int = 5
    sample: int = 1000  # natural breaks: at most this many values (evenly over the sorted scores)


@dataclass(frozen=True)
class LadderRules:
    trigger: tuple[str, ...] = ("red", "orange")
    escalate_months: int = 2  # months at a step, still triggered, before the next step
    rank_drop: int = 0  # a drop of at least this many ranks in a month escalates (0: off)
    delist_months: int = 3  # months in a row out of the trigger classes before de-listing
    relapse_months: int = 6  # re-triggered within this many months of de-listing: resume the step
    owners: tuple[str, ...] = ("村(社区)党组织书记", "镇街平安办", "区委平安办", "区委政法委")
    deadline_days: tuple[int, ...] = (30, 20, 15, 10)


@dataclass(frozen=True)
class StarDimension:
    id: str
    label: str
    points: float
    deductions: tuple[tuple[str, float], ...]  # (source, points per event)
    optional: bool = False


@dataclass(frozen=True)
class StarRules:
    dimensions: tuple[StarDimension, ...] = ()
    thresholds: tuple[float, ...] = (60.0, 70.0, 80.0, 90.0, 95.0)  # 1 star .. 5 stars (share of points)
    vetoes: tuple[Veto, ...] = ()


@dataclass(frozen=True)
class IndexModel:
    name: str
    version: str
    indicators: tuple[Indicator, ...]
    vetoes: tuple[Veto, ...] = ()
    classification: Classification = field(default_factory=Classification)
    ladder: LadderRules = field(default_factory=LadderRules)
    stars: StarRules = field(default_factory=StarRules)
    text: str = ""  # the TOML it came from

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def sources(self) -> set[str]:
        """Every source the model reads (indicators, denominators, vetoes, stars)."""
        out = {i.source for i in self.indicators}
        out |= {i.per for i in self.indicators if i.per and i.per != "population"}
        out |= {v.source for v in (*self.vetoes, *self.stars.vetoes)}
        out |= {s for d in self.stars.dimensions for s, _ in d.deductions}
        return out

    def for_level(self, level: str) -> IndexModel:
        """The model as it applies to one level (only that level's vetoes)."""
        from dataclasses import replace

        return replace(self, vetoes=tuple(v for v in self.vetoes if level in v.levels))

    def with_weights(self, weights: Mapping[str, float]) -> IndexModel:
        """A copy with some indicators' weights changed (validated again)."""
        unknown = set(weights) - {i.id for i in self.indicators}
        if unknown:
            raise ModelError(f"unknown indicator(s): {', '.join(sorted(unknown))}")
        from dataclasses import replace

        inds = tuple(replace(i, weight=float(weights.get(i.id, i.weight))) for i in self.indicators)
        m = replace(self, indicators=inds)
        _check_weights(m.indicators)
        return m


def load_model(path: str | Path, known_sources: Iterable[str] | None = None) -> IndexModel:
    """Read and validate a model file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelError(f"{p}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ModelError(f"{p}: not UTF-8 text") from None
    return parse_model(text, known_sources)


def parse_model(text: str, known_sources: Iterable[str] | None = None) -> IndexModel:
    """Parse and validate a model from TOML text; ``known_sources`` restricts source names."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(f"not valid TOML: {exc}") from None
    head = _table(doc, "model")
    name = _str(head, "name", "model")
    version = _str(head, "version", "model")
    raw_inds = doc.get("indicators")
    if not isinstance(raw_inds, list) or not raw_inds:
        raise ModelError("[[indicators]]: at least one indicator is required")
    indicators = tuple(_indicator(d, n) for n, d in enumerate(raw_inds))
    ids = [i.id for i in indicators]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise ModelError(f"[[indicators]]: duplicate id(s) {', '.join(sorted(dup))}")
    _check_weights(indicators)
    vetoes = tuple(_veto(d, f"vetoes[{n}]") for n, d in enumerate(_list(doc, "vetoes")))
    model = IndexModel(
        name=name,
        version=version,
        indicators=indicators,
        vetoes=vetoes,
        classification=_classification(doc.get("classification", {})),
        ladder=_ladder(doc.get("ladder", {})),
        stars=_stars(doc.get("stars", {})),
        text=text,
    )
    if known_sources is not None:
        unknown = model.sources() - set(known_sources)
        if unknown:
            raise ModelError(
                f"unknown source(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(known_sources))}"
            )
    return model


# -- parts -------------------------------------------------------------------------------------
_INDICATOR_KEYS = {
    "id",
    "source",
    "weight",
    "higher",
    "per",
    "scale",
    "if_zero",
    "baseline",
    "normalise",
    "range",
    "optional",
    "label",
}


def _indicator(d: object, n: int) -> Indicator:
    where = f"indicators[{n}]"
    if not isinstance(d, dict):
        raise ModelError(f"{where}: must be a table")
    _no_extra(d, _INDICATOR_KEYS, where)
    iid = _str(d, "id", where)
    where = f"indicator {iid!r}"
    higher = _choice(d, "higher", ("worse", "better"), where, "worse")
    normalise = _choice(d, "normalise", NORMALISATIONS, where, "minmax")
    rng = d.get("range")
    if normalise == "fixed":
        if not (isinstance(rng, list) and len(rng) == 2 and all(_is_num(x) for x in rng) and rng[0] < rng[1]):
            raise ModelError(f"{where}: normalise = 'fixed' needs range = [low, high] with low < high")
        rng = (float(rng[0]), float(rng[1]))
    elif rng is not None:
        raise ModelError(f"{where}: range is only used with normalise = 'fixed'")
    per = d.get("per")
    if per is not None and (not isinstance(per, str) or not per):
        raise ModelError(f"{where}: per must be 'population' or a source name")
    scale = _num(d, "scale", where, 10000.0 if per == "population" else 1.0)
    if scale <= 0:
        raise ModelError(f"{where}: scale must be positive")
    if_zero = d.get("if_zero")
    if if_zero is not None and not _is_num(if_zero):
        raise ModelError(f"{where}: if_zero must be a number")
    return Indicator(
        id=iid,
        source=_str(d, "source", where),
        weight=_num(d, "weight", where),
        higher=higher,
        per=per,
        scale=scale,
        if_zero=None if if_zero is None else float(if_zero),
        baseline=_choice(d, "baseline", ("last_year",), where, None),
        normalise=normalise,
        range=rng,
        optional=_bool(d, "optional", where, False),
        label=str(d.get("label", iid)),
    )


def _check_weights(indicators: tuple[Indicator, ...]) -> None:
    for i in indicators:
        if not math.isfinite(i.weight) or i.weight < 0:
            raise ModelError(f"indicator {i.id!r}: weight must be a non-negative number, not {i.weight}")
    total = sum(i.weight for i in indicators)
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise ModelError(f"weights must sum to 1, they sum to {total:.6g}")


def _veto(d: object, where: str) -> Veto:
    if not isinstance(d, dict):
        raise ModelError(f"{where}: must be a table")
    _no_extra(d, {"source", "at_least", "reason", "levels"}, where)
    at_least = _num(d, "at_least", where, 1.0)
    if at_least <= 0:
        raise ModelError(f"{where}: at_least must be positive")
    levels = d.get("levels", list(LEVELS))
    if not (isinstance(levels, list) and levels and set(levels) <= set(LEVELS)):
        raise ModelError(f"{where}: levels must be a non-empty list of {', '.join(LEVELS)}")
    return Veto(_str(d, "source", where), at_least, _str(d, "reason", where), tuple(levels))


def _classification(d: object) -> Classification:
    where = "classification"
    if not isinstance(d, dict):
        raise ModelError(f"[{where}] must be a table")
    _no_extra(d, {"method", "bands", "k", "sample"}, where)
    method = _choice(d, "method", METHODS, where, "fixed")
    bands = d.get("bands", [60, 70, 80, 90])
    if not (
        isinstance(bands, list)
        and len(bands) == 4
        and all(_is_num(b) for b in bands)
        and all(a < b for a, b in zip(bands, bands[1:], strict=False))
    ):
        raise ModelError(
            f"{where}.bands: four increasing scores (lower edges of orange, yellow, blue, green)"
        )
    k = int(_num(d, "k", where, 5))
    if k != 5:
        raise ModelError(f"{where}.k: the map has five colours, k must be 5")
    sample = int(_num(d, "sample", where, 1000))
    if sample < 50:
        raise ModelError(f"{where}.sample: at least 50")
    return Classification(method, tuple(float(b) for b in bands), k, sample)


def _ladder(d: object) -> LadderRules:
    where = "ladder"
    if not isinstance(d, dict):
        raise ModelError(f"[{where}] must be a table")
    keys = {
        "trigger",
        "escalate_months",
        "rank_drop",
        "delist_months",
        "relapse_months",
        "owners",
        "deadline_days",
    }
    _no_extra(d, keys, where)
    base = LadderRules()
    trigger = d.get("trigger", list(base.trigger))
    if not (isinstance(trigger, list) and trigger and set(trigger) <= set(CLASSES)):
        raise ModelError(f"{where}.trigger: a non-empty list of {', '.join(CLASSES)}")
    ints = {}
    for key, low in (("escalate_months", 1), ("rank_drop", 0), ("delist_months", 1), ("relapse_months", 0)):
        v = d.get(key, getattr(base, key))
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise ModelError(f"{where}.{key}: an integer >= {low}")
        ints[key] = v
    owners = d.get("owners", list(base.owners))
    days = d.get("deadline_days", list(base.deadline_days))
    if not (isinstance(owners, list) and len(owners) == 4 and all(isinstance(o, str) and o for o in owners)):
        raise ModelError(f"{where}.owners: four names, one per step ({', '.join(LADDER_STEPS)})")
    if not (isinstance(days, list) and len(days) == 4 and all(isinstance(x, int) and x > 0 for x in days)):
        raise ModelError(f"{where}.deadline_days: four positive integers, one per step")
    return LadderRules(tuple(trigger), owners=tuple(owners), deadline_days=tuple(days), **ints)


def _stars(d: object) -> StarRules:
    where = "stars"
    if not isinstance(d, dict):
        raise ModelError(f"[{where}] must be a table")
    _no_extra(d, {"thresholds", "dimensions", "vetoes"}, where)
    th = d.get("thresholds", [60, 70, 80, 90, 95])
    if not (
        isinstance(th, list)
        and len(th) == 5
        and all(_is_num(x) and 0 <= x <= 100 for x in th)
        and all(a < b for a, b in zip(th, th[1:], strict=False))
    ):
        raise ModelError(f"{where}.thresholds: five increasing percentages (1 to 5 stars)")
    dims = []
    for n, dd in enumerate(_list(d, "dimensions")):
        w = f"stars.dimensions[{n}]"
        if not isinstance(dd, dict):
            raise ModelError(f"{w}: must be a table")
        _no_extra(dd, {"id", "label", "points", "deductions", "optional"}, w)
        ded = dd.get("deductions", {})
        if not isinstance(ded, dict) or not all(_is_num(v) and v >= 0 for v in ded.values()):
            raise ModelError(f"{w}.deductions: a table source = points per event (non-negative)")
        points = _num(dd, "points", w)
        if points <= 0:
            raise ModelError(f"{w}.points must be positive")
        dims.append(
            StarDimension(
                _str(dd, "id", w),
                str(dd.get("label", dd["id"])),
                points,
                tuple((k, float(v)) for k, v in ded.items()),
                _bool(dd, "optional", w, False),
            )
        )
    vetoes = tuple(_veto(v, f"stars.vetoes[{n}]") for n, v in enumerate(_list(d, "vetoes")))
    return StarRules(tuple(dims), tuple(float(x) for x in th), vetoes)


# -- helpers -----------------------------------------------------------------------------------
def _table(doc: dict, key: str) -> dict:
    v = doc.get(key)
    if not isinstance(v, dict):
        raise ModelError(f"[{key}] table is required")
    return v


def _list(doc: dict, key: str) -> list:
    v = doc.get(key, [])
    if not isinstance(v, list):
        raise ModelError(f"{key}: must be an array of tables ([[{key}]])")
    return v


def _no_extra(d: dict, allowed: set[str], where: str) -> None:
    extra = set(d) - allowed
    if extra:
        raise ModelError(f"{where}: unknown key(s) {', '.join(sorted(extra))}")


def _is_num(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _num(d: dict, key: str, where: str, default: float | None = None) -> float:
    v = d.get(key, default)
    if v is None:
        raise ModelError(f"{where}: {key} is required")
    if not _is_num(v):
        raise ModelError(f"{where}: {key} must be a number, not {v!r}")
    return float(v)


def _str(d: dict, key: str, where: str) -> str:
    v = d.get(key)
    if not isinstance(v, str) or not v.strip():
        raise ModelError(f"{where}: {key} must be a non-empty string")
    return v


def _bool(d: dict, key: str, where: str, default: bool) -> bool:
    v = d.get(key, default)
    if not isinstance(v, bool):
        raise ModelError(f"{where}: {key} must be true or false")
    return v


def _choice(d: dict, key: str, options: tuple[str, ...], where: str, default: str | None) -> str | None:
    v = d.get(key, default)
    if v is not None and v not in options:
        raise ModelError(f"{where}: {key} must be one of {', '.join(options)}, not {v!r}")
    return v
