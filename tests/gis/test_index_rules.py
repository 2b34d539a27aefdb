"""Index model validation, the five colours at their band edges, the ladder over 12 months, stars."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from gis.index import ModelError, parse_model, run_ladder, scorecards
from gis.index.classify import breaks, classify
from gis.index.model import Classification, LadderRules, StarDimension, StarRules, Veto

HEAD = '[model]\nname = "m"\nversion = "1"\n'
IND = '[[indicators]]\nid = "{id}"\nsource = "s"\nweight = {w}\n'


def test_fixed_bands_at_their_edges() -> None:
    s = np.array([0, 59.99, 60, 69.99, 70, 79.99, 80, 89.99, 90, 100])
    assert classify(s, Classification()).tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    custom = Classification(bands=(10, 20, 30, 40))
    assert classify(np.array([9.99, 10, 40]), custom).tolist() == [0, 1, 4]


def test_quantiles_at_their_edges() -> None:
    # n = 6: the 20/40/60/80/100th percentiles fall exactly on 10, 20, 30, 40, 50;
    # a score equal to a break belongs to the riskier class (mapclassify is upper-inclusive)
    s = np.array([0.0, 10, 20, 30, 40, 50])
    rule = Classification(method="quantiles")
    assert breaks(s, rule).tolist() == [10, 20, 30, 40, 50]
    assert classify(s, rule).tolist() == [0, 0, 1, 2, 3, 4]
    # n = 7: positions 1.2, 2.4, 3.6, 4.8, 6 → breaks 12, 24, 36, 48, 60
    s7 = np.array([0.0, 10, 20, 30, 40, 50, 60])
    assert breaks(s7, rule).tolist() == pytest.approx([12, 24, 36, 48, 60])
    assert classify(s7, rule).tolist() == [0, 0, 1, 2, 3, 4, 4]


def test_natural_breaks() -> None:
    s = np.array([0.0, 1, 2, 50, 51, 70, 71, 90, 91, 100])
    rule = Classification(method="natural_breaks")
    assert breaks(s, rule).tolist() == [2, 51, 71, 91, 100]
    assert classify(s, rule).tolist() == [0, 0, 0, 1, 1, 2, 2, 3, 3, 4]
    # more scores than the sample: the same clusters, the same breaks (evenly sampled, deterministic)
    rng = np.random.default_rng(1)
    big = np.concatenate([c + rng.uniform(0, 1, 1000) for c in (0, 50, 70, 90, 99)])
    k = classify(big, Classification(method="natural_breaks", sample=500))
    assert np.bincount(k).tolist() == [1000] * 5


def test_fisher_jenks_agrees_with_mapclassify() -> None:
    import warnings

    import mapclassify

    from gis.index.classify import fisher_jenks

    rng = np.random.default_rng(3)
    for n in (12, 60, 300):
        x = rng.normal(70, 15, n).round(3)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Numba not installed")
            ref = mapclassify.FisherJenks(x, k=5).bins
        np.testing.assert_allclose(fisher_jenks(x, 5), ref)


def test_model_validation() -> None:
    ok = HEAD + IND.format(id="a", w=0.5) + IND.format(id="b", w=0.5)
    assert [i.id for i in parse_model(ok).indicators] == ["a", "b"]
    bad = {
        "weights must sum to 1, they sum to 0.9": HEAD
        + IND.format(id="a", w=0.5)
        + IND.format(id="b", w=0.4),
        "weight must be a non-negative": HEAD + IND.format(id="a", w=-0.5) + IND.format(id="b", w=1.5),
        "duplicate id": HEAD + IND.format(id="a", w=0.5) + IND.format(id="a", w=0.5),
        "not valid TOML": HEAD + "[[indicators]\n",
        r"\[model\] table is required": IND.format(id="a", w=1),
        "unknown key\\(s\\) wieght": HEAD + '[[indicators]]\nid = "a"\nsource = "s"\nwieght = 1\n',
        "range = \\[low, high\\]": HEAD + IND.format(id="a", w=1) + 'normalise = "fixed"\nrange = [5, 1]\n',
        "normalise must be one of": HEAD + IND.format(id="a", w=1) + 'normalise = "log"\n',
        "four increasing scores": HEAD
        + IND.format(id="a", w=1)
        + "[classification]\nbands = [60, 50, 80, 90]\n",
        "k must be 5": HEAD + IND.format(id="a", w=1) + "[classification]\nk = 3\n",
        "ladder.escalate_months": HEAD + IND.format(id="a", w=1) + "[ladder]\nescalate_months = 0\n",
        "ladder.trigger": HEAD + IND.format(id="a", w=1) + '[ladder]\ntrigger = ["purple"]\n',
        "at least one indicator": HEAD,
    }
    for message, text in bad.items():
        with pytest.raises(ModelError, match=message):
            parse_model(text)
    with pytest.raises(ModelError, match="unknown source\\(s\\): s"):
        parse_model(ok, known_sources={"x"})
    with pytest.raises(ModelError, match="weights must sum to 1"):
        parse_model(ok).with_weights({"a": 0.9})


P = [date(2024, m, 1) for m in range(1, 13)]


def steps_by_month(episodes, periods=P) -> list[int]:
    """The step each month ends at, from the episodes' events."""
    step, out = 0, []
    events = {e.period: e for ep in episodes for e in ep.events}
    for p in periods:
        evs = [e for ep in episodes for e in ep.events if e.period == p]
        for e in evs:
            step = e.to_step
        out.append(step)
    assert events is not None
    return out


def test_ladder_over_twelve_months_up_hold_down_relapse() -> None:
    rules = LadderRules(escalate_months=2, delist_months=3, relapse_months=6)
    cls = ["green", "red", "red", "orange", "yellow", "red", "red", "red", "green", "blue", "green", "red"]
    eps = run_ladder(P, cls, [None] * 12, rules)
    #        Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec
    assert steps_by_month(eps) == [0, 1, 1, 2, 2, 2, 3, 3, 3, 3, 0, 3]
    first, second = eps
    assert (first.opened, first.closed, second.opened, second.closed) == (P[1], P[10], P[11], None)
    reasons = [e.reason for e in first.events]
    assert reasons[0] == "turned red"
    assert reasons[1].startswith("orange for 2 more month(s) at warning")  # up (Apr)
    assert reasons[2] == "relapse: red after 1 better month(s)"  # relapse during improvement: hold
    assert reasons[3].startswith("red for 2 more month(s) at notice")  # up (Jul: Jun and Jul red)
    assert reasons[4].startswith("de-listed after 3 month(s)")  # down (Nov)
    assert second.step == 3 and second.events[0].reason.startswith("relapse: red again 1 month(s)")
    assert first.deadline(rules) == date(2024, 8, 15) and first.owner(rules) == "区委平安办"


def test_ladder_relapse_after_the_window_starts_again_and_listing_is_the_top() -> None:
    rules = LadderRules(escalate_months=1, delist_months=1, relapse_months=2)
    cls = ["red"] * 6 + ["green", "green", "green", "red", "red", "green"]
    eps = run_ladder(P, cls, [None] * 12, rules)
    assert steps_by_month(eps) == [1, 2, 3, 4, 4, 4, 0, 0, 0, 1, 2, 0]
    assert [e.closed for e in eps] == [P[6], P[11]]


def test_ladder_rank_drop_escalates() -> None:
    rules = LadderRules(escalate_months=5, rank_drop=10, delist_months=3)
    cls = ["orange", "orange", "yellow", "orange"]
    drops = [None, 12, 3, 9]
    assert steps_by_month(run_ladder(P[:4], cls, drops, rules), P[:4]) == [1, 2, 2, 2]
    off = LadderRules(escalate_months=5, rank_drop=0)
    assert steps_by_month(run_ladder(P[:4], cls, drops, off), P[:4]) == [1, 1, 1, 1]
    # a drop does not raise a warning by itself, nor escalate outside the trigger classes
    assert run_ladder(P[:2], ["green", "green"], [None, 50], rules) == []
    assert steps_by_month(run_ladder(P[:3], ["red", "blue", "red"], [None, 50, 0], rules), P[:3]) == [1, 1, 1]


def test_star_scorecards() -> None:
    rules = StarRules(
        dimensions=(
            StarDimension("petition", "信访维稳", 20, (("petitions", 5),)),
            StarDimension("crime", "刑事治安", 30, (("crime", 3), ("fights", 6))),
            StarDimension("cult", "无邪创建", 10, (("cult", 10),), optional=True),
            StarDimension("safety", "安全事故", 50, (("accidents", 10),)),
        ),
        vetoes=(Veto("deaths", 1, "发生亡人事故"),),
    )
    counts = {
        "petitions": np.array([0, 1, 5, 0]),
        "crime": np.array([0, 2, 20, 0]),
        "fights": np.array([0, 1, 0, 0]),
        "accidents": np.array([0, 1, 6, 0]),
        "deaths": np.array([0, 0, 0, 1]),
    }
    c = scorecards(counts, rules)
    # v1: 20-5 + 30-(6+6) + 50-10 = 15 + 18 + 40 = 73 of 100 → 2 stars; v2: 0 + 0 + 0 → 0 stars
    assert c.percent.tolist() == [100.0, 73.0, 0.0, 100.0]
    assert c.stars.tolist() == [5, 2, 0, 0]  # v3 vetoed
    card = c.card(1, {d.id: d.label for d in rules.dimensions}, ("发生亡人事故",))
    assert card["dimensions"]["crime"] == {
        "label": "刑事治安",
        "rated": True,
        "points": 30.0,
        "deducted": 12.0,
        "score": 18.0,
    }
    assert card["dimensions"]["cult"] == {"label": "无邪创建", "rated": False}
    assert c.card(3, {d.id: d.label for d in rules.dimensions}, ("发生亡人事故",))["veto"] == ["发生亡人事故"]
    assert any("'cult'" in n for n in c.notes)
