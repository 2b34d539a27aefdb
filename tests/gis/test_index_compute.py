"""The index computed by hand: 3 villages (A, B, C), 2 months (2024-04, 2024-05).

Model: crime = criminal cases per 10,000 residents, fixed range [0, 20], weight 0.4;
rectify = hazards rectified / found (1.0 when none found), fixed [0, 1], higher is better,
weight 0.3; disputes = disputes escalated, min-max, weight 0.2; survey = satisfaction, fixed
[0, 100], higher is better, weight 0.1, optional (absent in April). Veto: a severe hazard overdue.

April (survey absent: weights 0.4/0.9, 0.3/0.9, 0.2/0.9 = 4/9, 1/3, 2/9):
  crime  A 2/2000 → 10 → 0.5;  B 5/5000 → 10 → 0.5;  C 3/1000 → 30 → 1.0 (clipped)
  rect.  A 3/4 = .75 → risk .25;  B 0/0 → 1.0 → 0;  C 1/5 = .2 → .8
  disp.  A 1, B 3, C 5 → 0, .5, 1
  A = 100 - 100(4/9·.5 + 1/3·.25) = 100 - 30.555… = 69.44 (orange)
  B = 100 - 100(4/9·.5 + 2/9·.5) = 66.67 (orange, veto → red)
  C = 100 - 100(4/9 + 1/3·.8 + 2/9) = 6.67 (red)
May (all four: 0.4, 0.3, 0.2, 0.1):
  crime  A 0 → 0;  B 2/5000 → 4 → .2;  C 1/1000 → 10 → .5
  rect.  A 2/2 → 0;  B 1/4 → .75;  C 0/0 → 1.0 → 0
  disp.  A 0, B 0, C 2 → 0, 0, 1
  survey A 90 → .1;  B 60 → .4;  C 100 → 0
  A = 100 - (0 + 0 + 0 + 1) = 99.00 (green, veto → red)
  B = 100 - (8 + 22.5 + 0 + 4) = 65.50 (orange)
  C = 100 - (20 + 0 + 20 + 0) = 60.00 (orange: the band edge belongs to the safer class)
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from gis.index import ComputeError, Panel, compute, parse_model
from gis.index.classify import CLASS_KEYS

MODEL = """
[model]
name = "hand"
version = "1"

[[indicators]]
id = "crime"
source = "cases_criminal"
per = "population"
normalise = "fixed"
range = [0, 20]
weight = 0.4

[[indicators]]
id = "rectify"
source = "hazards_rectified"
per = "hazards_found"
scale = 1
if_zero = 1.0
higher = "better"
normalise = "fixed"
range = [0, 1]
weight = 0.3

[[indicators]]
id = "disputes"
source = "disputes_escalated"
normalise = "minmax"
weight = 0.2

[[indicators]]
id = "survey"
source = "survey_satisfaction"
higher = "better"
normalise = "fixed"
range = [0, 100]
optional = true
weight = 0.1

[[vetoes]]
source = "hazards_severe_overdue"
reason = "重大隐患逾期未整改"
"""

APR, MAY = date(2024, 4, 1), date(2024, 5, 1)
NAN = np.nan


def panel() -> Panel:
    return Panel(
        periods=(APR, MAY),
        codes=np.array(["A", "B", "C"]),
        population=np.array([2000.0, 5000.0, 1000.0]),
        values={
            "cases_criminal": np.array([[2, 5, 3], [0, 2, 1]], float),
            "hazards_found": np.array([[4, 0, 5], [2, 4, 0]], float),
            "hazards_rectified": np.array([[3, 0, 1], [2, 1, 0]], float),
            "disputes_escalated": np.array([[1, 3, 5], [0, 0, 2]], float),
            "survey_satisfaction": np.array([[NAN, NAN, NAN], [90, 60, 100]]),
            "hazards_severe_overdue": np.array([[0, 1, 0], [2, 0, 0]], float),
        },
    )


def classes(r, t: int) -> list[str]:
    return [CLASS_KEYS[k] for k in r.klass[t]]


def test_scores_by_hand() -> None:
    r = compute(parse_model(MODEL), panel())
    assert r.score.tolist() == [[69.44, 66.67, 6.67], [99.0, 65.5, 60.0]]
    assert classes(r, 0) == ["orange", "red", "red"]  # B orange by score, red by veto
    assert classes(r, 1) == ["red", "orange", "orange"]  # A green by score, red by veto
    assert r.veto.tolist() == [[False, True, False], [True, False, False]]
    assert r.veto_reasons(1, 0) == ["重大隐患逾期未整改"] and r.veto_reasons(1, 1) == []
    assert r.rank.tolist() == [[1, 2, 3], [1, 2, 3]]
    assert np.isnan(r.change[0]).all()
    assert r.change[1].tolist() == [29.56, -1.17, 53.33]


def test_every_formula_by_hand() -> None:
    r = compute(parse_model(MODEL), panel())
    crime, rect, disp, survey = range(4)
    assert r.value[crime].tolist() == [[10, 10, 30], [0, 4, 10]]
    assert r.risk[crime].tolist() == [[0.5, 0.5, 1.0], [0, 0.2, 0.5]]
    assert r.value[rect].tolist() == [[0.75, 1.0, 0.2], [1.0, 0.25, 1.0]]
    np.testing.assert_allclose(r.risk[rect], [[0.25, 0, 0.8], [0, 0.75, 0]])
    assert r.risk[disp].tolist() == [[0, 0.5, 1], [0, 0, 1]]
    np.testing.assert_allclose(r.risk[survey], [[0, 0, 0], [0.1, 0.4, 0]])
    np.testing.assert_allclose(r.weight[:, 0], [4 / 9, 3 / 9, 2 / 9, 0])
    np.testing.assert_allclose(r.weight[:, 1], [0.4, 0.3, 0.2, 0.1])
    # deductions explain the score exactly
    np.testing.assert_allclose(r.deduction[:, 1, 1], [8, 22.5, 0, 4])
    np.testing.assert_allclose(100 - r.deduction.sum(axis=0), r.score, atol=0.005)
    c = r.contributions(0, 0)
    assert c["survey"] == {"skipped": True}
    assert c["crime"] == {"raw": 2.0, "value": 10.0, "risk": 0.5, "weight": 0.444444, "deduction": 22.2222}
    assert any("'survey' skipped" in n for n in r.notes[APR]) and not r.notes[MAY]


def test_changing_a_weight_changes_scores_as_by_hand() -> None:
    """crime 0.4 → 0.3 and disputes 0.2 → 0.3. April (survey skipped): each 1/3:
    A = 100 - 100/3 (.5 + .25 + 0) = 75.00, B = 100 - 100/3 (.5 + 0 + .5) = 66.67,
    C = 100 - 100/3 (1 + .8 + 1) = 6.67. May: A = 100 - 1 = 99.00,
    B = 100 - (6 + 22.5 + 0 + 4) = 67.50, C = 100 - (15 + 0 + 30 + 0) = 55.00 (now red)."""
    m = parse_model(MODEL).with_weights({"crime": 0.3, "disputes": 0.3})
    r = compute(m, panel())
    assert r.score.tolist() == [[75.0, 66.67, 6.67], [99.0, 67.5, 55.0]]
    assert classes(r, 0) == ["yellow", "red", "red"]
    assert classes(r, 1) == ["red", "orange", "red"]


def test_zscore_and_last_year() -> None:
    text = MODEL.replace('normalise = "minmax"', 'normalise = "zscore"')
    r = compute(parse_model(text), panel())
    # April disputes 1, 3, 5: mean 3, sd sqrt(8/3); Φ(∓1.2247) = 0.1103, 0.5, 0.8897
    np.testing.assert_allclose(r.risk[2, 0], [0.110335, 0.5, 0.889665], atol=1e-6)
    # May disputes 0, 0, 2: mean 2/3, sd 0.9428; z = -0.7071, -0.7071, 1.4142
    np.testing.assert_allclose(r.risk[2, 1], [0.239750, 0.239750, 0.921350], atol=1e-6)
    months = tuple(date(2023 + (3 + m) // 12, (3 + m) % 12 + 1, 1) for m in range(14))  # 2023-04..2024-05
    base = parse_model(
        MODEL.replace(
            'source = "disputes_escalated"',
            'source = "disputes_escalated"\nbaseline = "last_year"\noptional = true',
        )
    )
    disputes = np.tile(np.array([[1.0, 3.0, 5.0]]), (14, 1))
    disputes[12] = [2, 3, 4]
    disputes[13] = [4, 0, 5]  # change against 2023-05 (1, 3, 5): +3, -3, 0
    vals = {k: np.zeros((14, 3)) for k in ("cases_criminal", "hazards_found", "hazards_rectified")}
    p = Panel(
        months, np.array(["A", "B", "C"]), np.array([1000.0] * 3), {**vals, "disputes_escalated": disputes}
    )
    r = compute(base, p)
    assert r.value[2, 13].tolist() == [3, -3, 0] and r.risk[2, 13].tolist() == [1, 0, 0.5]
    assert r.weight[2, 11] == 0 and any("12 months before" in n for n in r.notes[months[11]])


def test_place_without_value_gets_no_deduction() -> None:
    p = panel()
    vals = dict(p.values)
    vals["survey_satisfaction"] = np.array([[NAN] * 3, [90, NAN, 100]])
    r = compute(parse_model(MODEL), Panel(p.periods, p.codes, p.population, vals))
    assert r.deduction[3, 1, 1] == 0 and r.score[1, 1] == 69.5
    assert any("1 place(s) without a value" in n for n in r.notes[MAY])


def test_required_indicator_without_data_is_an_error() -> None:
    p = panel()
    vals = {k: v for k, v in p.values.items() if k != "disputes_escalated"}
    with pytest.raises(
        ComputeError, match="'disputes' has no data in source 'disputes_escalated' for 2024-04"
    ):
        compute(parse_model(MODEL), Panel(p.periods, p.codes, p.population, vals))


def test_bad_panels() -> None:
    with pytest.raises(ComputeError, match="consecutive"):
        Panel((APR, date(2024, 6, 1)), np.array(["A"]), np.array([1.0]), {})
    with pytest.raises(ComputeError, match="shape"):
        Panel((APR,), np.array(["A"]), np.array([1.0]), {"x": np.zeros((2, 1))})
    with pytest.raises(ComputeError, match="empty"):
        Panel((), np.array(["A"]), np.array([1.0]), {})


def test_ranks_ties_and_rank_change() -> None:
    m = parse_model(
        '[model]\nname="x"\nversion="1"\n[[indicators]]\nid="a"\nsource="a"\n'
        'normalise="fixed"\nrange=[0, 10]\nweight=1.0'
    )
    p = Panel(
        (APR, MAY),
        np.array(["A", "B", "C", "D"]),
        np.ones(4),
        {"a": np.array([[1.0, 2, 2, 3], [5, 0, 1, 0]])},
    )
    r = compute(m, p)
    assert r.rank.tolist() == [[1, 2, 2, 4], [4, 1, 3, 1]]
    assert r.rank_change[1].tolist() == [-3, 1, -1, 3]
