"""Scores of an index model over a panel of places × months, vectorised with numpy.

For each period t, place n and indicator i:

1. value  ``v = raw / denominator × scale`` (``per = "population"``: residents; ``per = <source>``:
   a ratio such as rectified / found; a zero denominator gives ``if_zero`` or no value), then
   with ``baseline = "last_year"`` the change ``v[t] - v[t-12]``;
2. normalised ``u`` in [0, 1] among the places of the period: ``fixed`` clip((v - lo)/(hi - lo)),
   ``minmax`` (v - min)/(max - min) (0 when all equal), ``zscore`` Φ((v - mean)/sd) (0.5 when
   all equal);
3. risk ``r = u`` (``higher = "worse"``) or ``1 - u`` (``"better"``); a place without a value
   has ``r = 0`` (no deduction) and is counted in the notes;
4. effective weight ``w'`` = the weight divided by the sum of the weights of the indicators that
   have data in the period (an optional indicator without data is skipped, with a note);
5. deduction ``d = 100 × w' × r``; score ``= round(100 - Σ d, 2)``: 100 is safest.

Vetoes (一票否决) leave the score as it is and force the class to red. Ranks are per period,
1 = highest score, ties share the best rank; change is against the panel's previous month.

Example
-------
>>> from datetime import date
>>> import numpy as np
>>> from gis.index.model import parse_model
>>> m = parse_model('[model]\\nname="x"\\nversion="1"\\n[[indicators]]\\nid="a"\\nsource="a"\\n'
...                 'normalise="fixed"\\nrange=[0, 4]\\nweight=1.0')
>>> p = Panel((date(2024, 5, 1),), np.array(["v1", "v2"]), np.array([100.0, 100.0]),
...           {"a": np.array([[1.0, 4.0]])})
>>> compute(m, p).score.tolist()
[[75.0, 0.0]]
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

import numpy as np
from scipy.special import ndtr
from scipy.stats import rankdata

from gis.index.classify import classify
from gis.index.model import IndexModel, Indicator


class ComputeError(ValueError):
    """Inputs the model cannot be computed on (the message says which and why)."""


@dataclass(frozen=True)
class Panel:
    """Monthly inputs of one level (villages or towns).

    periods: consecutive months, ascending (first days); codes: the places (N);
    population: residents per place (N); values: source name -> (T, N) floats, NaN = no data.
    """

    periods: tuple[date, ...]
    codes: np.ndarray
    population: np.ndarray
    values: Mapping[str, np.ndarray]

    def __post_init__(self) -> None:
        t, n = len(self.periods), len(self.codes)
        if t == 0 or n == 0:
            raise ComputeError("the panel is empty (no periods or no places)")
        for a, b in zip(self.periods, self.periods[1:], strict=False):
            if month_index(b) - month_index(a) != 1:
                raise ComputeError(f"periods must be consecutive months: {a} then {b}")
        if np.shape(self.population) != (n,):
            raise ComputeError(f"population must have one value per place ({n})")
        for k, v in self.values.items():
            if np.shape(v) != (t, n):
                raise ComputeError(f"source {k!r}: shape {np.shape(v)}, expected {(t, n)}")


def month_index(d: date) -> int:
    return d.year * 12 + d.month - 1


@dataclass
class IndexResult:
    periods: tuple[date, ...]
    codes: np.ndarray
    indicator_ids: tuple[str, ...]
    score: np.ndarray  # (T, N)
    klass: np.ndarray  # (T, N) int8, 0 = red ... 4 = green
    rank: np.ndarray  # (T, N) int
    change: np.ndarray  # (T, N) score minus the previous month's (NaN: none)
    rank_change: np.ndarray  # (T, N) previous rank minus rank: > 0 moved up (NaN: none)
    veto: np.ndarray  # (T, N) bool
    veto_hits: np.ndarray  # (V, T, N) bool: which veto fired
    veto_reasons_list: tuple[str, ...]
    raw: tuple[np.ndarray, ...]  # K × (T, N): the sources as given (not copied)
    value: np.ndarray  # (K, T, N) after per-capita / ratio / baseline
    risk: np.ndarray  # (K, T, N) in [0, 1]
    weight: np.ndarray  # (K, T) effective weights (0 where skipped)
    notes: dict[date, list[str]] = field(default_factory=dict)

    @property
    def deduction(self) -> np.ndarray:
        """(K, T, N) points lost per indicator (computed on demand: it is large)."""
        return 100.0 * self.weight[:, :, None] * self.risk

    def t(self, period: date) -> int:
        try:
            return self.periods.index(period)
        except ValueError:
            raise ComputeError(f"{period:%Y-%m} is not in the result") from None

    def veto_reasons(self, t: int, n: int) -> list[str]:
        return [r for v, r in enumerate(self.veto_reasons_list) if self.veto_hits[v, t, n]]

    def contributions(self, t: int, n: int) -> dict[str, dict[str, float | None]]:
        """Per indicator: raw input, value, risk, effective weight, points deducted."""
        out = {}
        for k, iid in enumerate(self.indicator_ids):
            if not np.isfinite(self.value[k, t]).any():
                out[iid] = {"skipped": True}
                continue
            out[iid] = {
                "raw": _f(self.raw[k][t, n]),
                "value": _f(self.value[k, t, n]),
                "risk": _f(self.risk[k, t, n], 6),
                "weight": _f(self.weight[k, t], 6),
                "deduction": _f(100.0 * self.weight[k, t] * self.risk[k, t, n], 4),
            }
        return out


def _f(x: float, nd: int = 6) -> float | None:
    return None if not np.isfinite(x) else round(float(x), nd)


def compute(model: IndexModel, panel: Panel) -> IndexResult:
    """Scores, classes, vetoes, ranks and changes of every place in every month of the panel."""
    t_n = (len(panel.periods), len(panel.codes))
    notes: dict[date, list[str]] = {p: [] for p in panel.periods}
    k = len(model.indicators)
    raw = []
    value = np.full((k, *t_n), np.nan)
    risk = np.zeros((k, *t_n))
    base_w = np.array([i.weight for i in model.indicators])
    has = np.zeros((k, t_n[0]), dtype=bool)
    for j, ind in enumerate(model.indicators):
        r_j, value[j] = _values(ind, panel)
        raw.append(r_j)
        finite = np.isfinite(value[j])
        has[j] = finite.any(axis=1)
        for t, p in enumerate(panel.periods):
            if not has[j, t]:
                why = "no value 12 months before" if ind.baseline else f"no data in source {ind.source!r}"
                if not ind.optional:
                    raise ComputeError(
                        f"indicator {ind.id!r} has {why} for {p:%Y-%m} "
                        "(mark it optional = true to skip it when absent)"
                    )
                notes[p].append(f"indicator {ind.id!r} skipped: {why}")
            elif not finite[t].all():
                notes[p].append(
                    f"indicator {ind.id!r}: {int((~finite[t]).sum())} place(s) without a value, no deduction"
                )
        u = _normalise(ind, value[j])
        r = u if ind.higher == "worse" else 1.0 - u
        risk[j] = np.where(finite, r, 0.0)
    w = base_w[:, None] * has
    total = w.sum(axis=0)
    if (total <= 0).any():
        bad = [f"{p:%Y-%m}" for p, s in zip(panel.periods, total, strict=True) if s <= 0]
        raise ComputeError(f"no weighted indicator has data for {', '.join(bad)}")
    weight = w / total
    lost = np.zeros(t_n)
    for j in range(k):
        lost += weight[j][:, None] * risk[j]
    score = np.round(100.0 - 100.0 * lost, 2)
    score = np.where(score == 0, 0.0, score)  # no -0.0

    veto_hits = np.zeros((len(model.vetoes), *t_n), dtype=bool)
    for v, veto in enumerate(model.vetoes):
        src = panel.values.get(veto.source)
        if src is None:
            for p in panel.periods:
                notes[p].append(f"veto on {veto.source!r} not checked: no such data")
            continue
        veto_hits[v] = np.nan_to_num(src, nan=0.0) >= veto.at_least
    veto = veto_hits.any(axis=0)

    klass = np.empty(t_n, dtype=np.int8)
    for t, p in enumerate(panel.periods):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            klass[t] = classify(score[t], model.classification)
        notes[p].extend(f"classification: {c.message}" for c in caught)
    klass[veto] = 0
    rank = rankdata(-score, method="min", axis=1).astype(np.int64)
    change = np.full(t_n, np.nan)
    rank_change = np.full(t_n, np.nan)
    change[1:] = score[1:] - score[:-1]
    rank_change[1:] = rank[:-1] - rank[1:]
    return IndexResult(
        periods=panel.periods,
        codes=np.asarray(panel.codes),
        indicator_ids=tuple(i.id for i in model.indicators),
        score=score,
        klass=klass,
        rank=rank,
        change=np.round(change, 2),
        rank_change=rank_change,
        veto=veto,
        veto_hits=veto_hits,
        veto_reasons_list=tuple(v.reason for v in model.vetoes),
        raw=tuple(raw),
        value=value,
        risk=risk,
        weight=weight,
        notes=notes,
    )


def _values(ind: Indicator, panel: Panel) -> tuple[np.ndarray, np.ndarray]:
    t_n = (len(panel.periods), len(panel.codes))
    src = panel.values.get(ind.source)
    raw = np.full(t_n, np.nan) if src is None else np.asarray(src, dtype=float)
    if ind.per is None:
        v = raw * ind.scale
    else:
        if ind.per == "population":
            den = np.broadcast_to(np.asarray(panel.population, dtype=float), t_n)
        else:
            d = panel.values.get(ind.per)
            den = np.full(t_n, np.nan) if d is None else np.asarray(d, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.where(den > 0, raw / den * ind.scale, np.nan)
        if ind.if_zero is not None:
            v = np.where((den == 0) & np.isfinite(raw), ind.if_zero, v)
    if ind.baseline == "last_year":
        lagged = np.full(t_n, np.nan)
        lagged[12:] = v[:-12]
        v = v - lagged
    return raw, v


def _normalise(ind: Indicator, v: np.ndarray) -> np.ndarray:
    """Per period (row), ignoring places without a value."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows (skipped periods)
        if ind.normalise == "fixed":
            lo, hi = ind.range
            return np.clip((v - lo) / (hi - lo), 0.0, 1.0)
        if ind.normalise == "minmax":
            lo = np.nanmin(v, axis=1, keepdims=True)
            span = np.nanmax(v, axis=1, keepdims=True) - lo
            return np.where(span > 0, (v - lo) / np.where(span > 0, span, 1.0), 0.0)
        mean = np.nanmean(v, axis=1, keepdims=True)
        sd = np.nanstd(v, axis=1, keepdims=True)
        return np.where(sd > 0, ndtr((v - mean) / np.where(sd > 0, sd, 1.0)), 0.5)
