"""Star-level safe villages (星级平安村): a yearly scorecard on six dimensions with deductions.

Each dimension (信访维稳, 刑事治安, 检举控告, 诉讼案件, 安全事故, 无邪创建 in the default model)
has full ``points`` and loses ``points per event`` for each event of its sources in the year,
down to 0. A dimension whose sources have no data is *not rated* when it is optional (it leaves
both the total and the maximum, with a note) and an error otherwise. The percentage
``100 × Σ score / Σ points`` (rated dimensions) gives the stars: one per threshold reached
(thresholds ascending, 1 to 5 stars). A veto (an event count at least its ``at_least``) removes
every star.

Example
-------
>>> import numpy as np
>>> from gis.index.model import StarDimension, StarRules
>>> r = StarRules((StarDimension("a", "A", 50, (("x", 10),)), StarDimension("b", "B", 50, (("y", 5),))))
>>> card = scorecards({"x": np.array([0, 2]), "y": np.array([0, 4])}, r)
>>> card.percent.tolist(), card.stars.tolist()
([100.0, 60.0], [5, 1])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from gis.index.model import StarRules


class StarError(ValueError):
    """A star rating that cannot be computed (a required dimension without data)."""


@dataclass
class Scorecards:
    dimension_ids: tuple[str, ...]
    points: np.ndarray  # (D,) full points (NaN: not rated)
    score: np.ndarray  # (D, N) points kept (NaN: not rated)
    deducted: np.ndarray  # (D, N)
    percent: np.ndarray  # (N,)
    stars: np.ndarray  # (N,) 0..5
    veto: np.ndarray  # (N,) bool
    veto_hits: np.ndarray  # (V, N)
    notes: list[str] = field(default_factory=list)

    def card(self, n: int, labels: Mapping[str, str], reasons: tuple[str, ...]) -> dict:
        dims = {}
        for d, did in enumerate(self.dimension_ids):
            if np.isnan(self.points[d]):
                dims[did] = {"label": labels[did], "rated": False}
            else:
                dims[did] = {
                    "label": labels[did],
                    "rated": True,
                    "points": float(self.points[d]),
                    "deducted": round(float(self.deducted[d, n]), 2),
                    "score": round(float(self.score[d, n]), 2),
                }
        return {"dimensions": dims, "veto": [r for v, r in enumerate(reasons) if self.veto_hits[v, n]]}


def scorecards(counts: Mapping[str, np.ndarray], rules: StarRules) -> Scorecards:
    """Yearly event counts per source (N places each; NaN or absent: no data) -> scorecards."""
    n = len(next(iter(counts.values()))) if counts else 0
    dims = rules.dimensions
    points = np.full(len(dims), np.nan)
    score = np.full((len(dims), n), np.nan)
    deducted = np.zeros((len(dims), n))
    notes = []
    for d, dim in enumerate(dims):
        arrays = [counts.get(src) for src, _ in dim.deductions]
        if not dim.deductions or any(a is None or np.isnan(np.asarray(a, float)).all() for a in arrays):
            if not dim.optional:
                raise StarError(f"star dimension {dim.id!r} has no data")
            notes.append(f"dimension {dim.id!r} ({dim.label}) not rated: no data")
            continue
        lost = sum(
            np.nan_to_num(np.asarray(a, float)) * per
            for a, (_, per) in zip(arrays, dim.deductions, strict=True)
        )
        points[d] = dim.points
        deducted[d] = np.minimum(lost, dim.points)
        score[d] = dim.points - deducted[d]
    rated = ~np.isnan(points)
    if not rated.any():
        raise StarError("no star dimension has data")
    percent = np.round(100.0 * score[rated].sum(axis=0) / points[rated].sum(), 2)
    stars = np.searchsorted(np.asarray(rules.thresholds), percent, side="right").astype(np.int8)
    hits = np.zeros((len(rules.vetoes), n), dtype=bool)
    for v, veto in enumerate(rules.vetoes):
        c = counts.get(veto.source)
        if c is None:
            notes.append(f"star veto on {veto.source!r} not checked: no data")
            continue
        hits[v] = np.nan_to_num(np.asarray(c, float)) >= veto.at_least
    veto = hits.any(axis=0)
    stars[veto] = 0
    return Scorecards(tuple(d.id for d in dims), points, score, deducted, percent, stars, veto, hits, notes)
