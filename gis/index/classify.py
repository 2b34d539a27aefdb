"""Five colours: 红/橙/黄/蓝/绿 from scores, by fixed bands, quantiles or natural breaks.

Class 0 is red (high risk, lowest scores) ... class 4 green (low risk, highest scores).

- ``fixed``: ``bands = [b1, b2, b3, b4]`` are the lower edges of orange, yellow, blue and green:
  red ``s < b1``, orange ``b1 <= s < b2``, ..., green ``s >= b4`` (an edge belongs to the safer class).
- ``quantiles`` and ``natural_breaks`` (Fisher-Jenks): the district's own scores of the month,
  through mapclassify, whose classes are upper-inclusive: a score equal to a break belongs to the
  riskier class. Natural breaks run on at most ``sample`` scores taken evenly from the sorted
  scores (deterministic; Fisher-Jenks is quadratic in n), then the breaks classify every score.

Example
-------
>>> import numpy as np
>>> from gis.index.model import Classification
>>> classify(np.array([59.99, 60.0, 79.99, 90.0]), Classification()).tolist()
[0, 1, 2, 4]
"""

from __future__ import annotations

import mapclassify
import numpy as np

from gis.index.model import Classification

COLOURS: dict[str, tuple[str, str, str]] = {  # class -> (中文, English, hex)
    "red": ("红", "red", "#d7191c"),
    "orange": ("橙", "orange", "#fd8d3c"),
    "yellow": ("黄", "yellow", "#fecc5c"),
    "blue": ("蓝", "blue", "#2c7bb6"),
    "green": ("绿", "green", "#1a9641"),
}
CLASS_KEYS = tuple(COLOURS)


def classify(scores: np.ndarray, rule: Classification) -> np.ndarray:
    """Class indexes (0 = red ... 4 = green) of one district's scores for one month."""
    s = np.asarray(scores, dtype=float)
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    if rule.method == "fixed":
        return np.searchsorted(np.asarray(rule.bands), s, side="right").astype(np.int8)
    return np.asarray(breaks_classes(s, breaks(s, rule)), dtype=np.int8)


def breaks(scores: np.ndarray, rule: Classification) -> np.ndarray:
    """Upper class bounds (mapclassify ``bins``) of the district's scores."""
    s = np.asarray(scores, dtype=float)
    if rule.method == "quantiles":
        return mapclassify.Quantiles(s, k=rule.k).bins
    if rule.method == "natural_breaks":
        srt = np.sort(s)
        if len(srt) > rule.sample:
            srt = srt[np.linspace(0, len(srt) - 1, rule.sample).round().astype(int)]
        bins = fisher_jenks(srt, rule.k)
        full = np.sort(s)
        for c in range(len(bins) - 1):
            # scores that were not sampled and fall between two sampled classes go to the nearer
            nxt = srt[srt > bins[c]]
            if len(nxt):
                bins[c] = full[full <= (bins[c] + nxt[0]) / 2][-1]
        bins[-1] = max(bins[-1], full[-1])
        return bins
    raise ValueError(f"no breaks for method {rule.method!r}")


def fisher_jenks(values: np.ndarray, k: int) -> np.ndarray:
    """Optimal (Fisher-Jenks) upper class bounds of ``values``: the partition of the sorted
    values into ``k`` runs with the least total squared deviation from the runs' means.

    Dynamic programming over a full cost matrix, vectorised with numpy (O(k n²) memory-light
    steps; mapclassify's own FisherJenks is pure Python without numba). Checked against
    mapclassify in tests/gis/test_index_rules.py.
    """
    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    if n <= k:
        return np.unique(x)
    s1 = np.concatenate([[0.0], np.cumsum(x)])
    s2 = np.concatenate([[0.0], np.cumsum(x * x)])
    i = np.arange(n)[:, None]
    j = np.arange(n)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        cnt = (j - i + 1).astype(float)
        cost = s2[j + 1] - s2[i] - (s1[j + 1] - s1[i]) ** 2 / cnt
    cost = np.where(j >= i, np.maximum(cost, 0.0), np.inf)
    d = cost[0].copy()  # one class over x[0..j]
    back = []
    for _ in range(1, k):
        prev = np.concatenate([[np.inf], d[:-1]])  # the classes before start i end at i - 1
        total = prev[:, None] + cost
        arg = np.argmin(total, axis=0)
        d = total[arg, np.arange(n)]
        back.append(arg)
    bins, end = [], n - 1
    for arg in reversed(back):
        bins.append(x[end])
        end = arg[end] - 1
    bins.append(x[end])
    return np.array(bins[::-1])


def breaks_classes(scores: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Upper-inclusive classes: class c holds bins[c-1] < s <= bins[c]."""
    return np.minimum(np.searchsorted(bins, scores, side="left"), len(bins) - 1)
