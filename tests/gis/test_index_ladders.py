"""gis.index.ladder.run_ladders (every place at once) against run_ladder (one place at a time).

run_ladder is the specification (tests/gis/test_index_rules.py checks it by hand over 12 months:
up, hold, down, relapse); run_ladders must give the same episodes and events, event for event,
for many places of random class histories, under several rule sets, with months missing."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from gis.index.classify import CLASS_KEYS
from gis.index.ladder import run_ladder, run_ladders
from gis.index.model import LadderRules

RULES = (
    LadderRules(),
    LadderRules(escalate_months=1, rank_drop=3, delist_months=2, relapse_months=4),
    LadderRules(trigger=("red",), escalate_months=3, rank_drop=1, delist_months=1, relapse_months=0),
)


def _episodes(eps) -> list:  # noqa: ANN001
    return [(e.opened, e.step, e.step_since, e.closed, [tuple(vars(x).values()) for x in e.events])
            for e in eps]


@pytest.mark.parametrize("rules", RULES, ids=["default", "fast", "red-only"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_same_episodes_as_one_place_at_a_time(rules: LadderRules, seed: int) -> None:
    rng = np.random.default_rng(seed)
    t, n = 40, 300
    periods = [date(2022 + m // 12, m % 12 + 1, 1) for m in range(t)]
    # sticky classes, so places stay red or green for a while as real ones do
    klass = np.zeros((t, n), dtype=np.int16)
    klass[0] = rng.integers(0, 5, n)
    for m in range(1, t):
        move = rng.random(n) < 0.3
        klass[m] = np.where(move, rng.integers(0, 5, n), klass[m - 1])
    klass[rng.random((t, n)) < 0.05] = -1  # months without a score
    drops = np.where(rng.random((t, n)) < 0.7, rng.integers(-5, 6, (t, n)).astype(float), np.nan)
    got = run_ladders(periods, klass, CLASS_KEYS, drops, rules)
    want = []
    for i in range(n):
        ok = np.flatnonzero(klass[:, i] >= 0)
        eps = run_ladder([periods[m] for m in ok], [CLASS_KEYS[c] for c in klass[ok, i]],
                         [None if np.isnan(d) else float(d) for d in drops[ok, i]], rules)
        want += [(i, e) for e in eps]
    assert len(want) > 50  # the histories really climb and fall
    assert [i for i, _ in got] == [i for i, _ in want]
    assert _episodes(e for _, e in got) == _episodes(e for _, e in want)
    assert any(e.closed for _, e in want) and any(e.step == 4 for _, e in want)
