"""The accountability ladder 预警 → 抄告 → 督办 → 挂牌 as a state machine per place.

Steps: 0 none, 1 warning (预警), 2 notice (抄告), 3 supervision (督办), 4 listing (挂牌).
One month at a time, with the rules of :class:`gis.index.model.LadderRules`:

- **raise**: a place off the ladder whose class is a trigger class (red, orange) gets a warning;
  if it was de-listed at most ``relapse_months`` months before, it resumes the step it left at
  (relapse) instead of starting again at 预警.
- **up**: on the ladder, after ``escalate_months`` further triggered months at the same step,
  the next step; a triggered month with a drop of at least ``rank_drop`` ranks also goes one
  step up (a drop outside the trigger classes does not: ties near the top make ranks jumpy).
- **hold**: a triggered month that does not complete the count holds the step; a month out of
  the trigger classes resets the count (the place did not *stay* there).
- **down** (de-listing): ``delist_months`` months in a row out of the trigger classes close the
  item; the place is off the ladder. A triggered month before that resets the improvement
  count (a relapse during improvement holds the step).

:func:`run_ladder` replays a place's months and returns its episodes (one per item, from the
warning to the de-listing), so the stored ladder can always be rebuilt from the stored index;
:func:`run_ladders` does the same for every place at once, a month at a time.

Example
-------
>>> from datetime import date
>>> from gis.index.model import LadderRules
>>> months = [date(2024, m, 1) for m in (1, 2, 3)]
>>> [e.step for e in run_ladder(months, ["red", "red", "red"], [0, 0, 0], LadderRules(escalate_months=2))]
[2]
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from gis.index.compute import month_index
from gis.index.model import LADDER_STEPS, LadderRules

STEP_NAMES = {
    0: ("—", "none"),
    1: ("预警", "warning"),
    2: ("抄告", "notice"),
    3: ("督办", "supervision"),
    4: ("挂牌", "listing"),
}


@dataclass(frozen=True)
class LadderEvent:
    period: date
    from_step: int
    to_step: int
    reason: str


@dataclass
class Episode:
    """One ladder item: opened by a warning, closed by de-listing (``closed`` None: open)."""

    opened: date
    step: int
    step_since: date
    closed: date | None = None
    events: list[LadderEvent] = field(default_factory=list)

    def deadline(self, rules: LadderRules) -> date:
        """The current step's deadline: its month's last day plus the step's days."""
        last = calendar.monthrange(self.step_since.year, self.step_since.month)[1]
        return self.step_since.replace(day=last) + timedelta(days=rules.deadline_days[self.step - 1])

    def owner(self, rules: LadderRules) -> str:
        return rules.owners[self.step - 1]


def run_ladder(
    periods: Sequence[date], classes: Sequence[str], rank_drops: Sequence[float | None], rules: LadderRules
) -> list[Episode]:
    """Replay one place's consecutive months; ``rank_drops[t]`` is ranks lost that month
    (negative or None: none). Returns every episode, the last possibly still open."""
    if not (len(periods) == len(classes) == len(rank_drops)):
        raise ValueError("periods, classes and rank_drops must have the same length")
    episodes: list[Episode] = []
    cur: Episode | None = None
    held = calm = 0
    last_close: tuple[date, int] | None = None  # (period, step) of the last de-listing
    for p, cls, drop in zip(periods, classes, rank_drops, strict=True):
        triggered = cls in rules.trigger
        dropped = rules.rank_drop > 0 and drop is not None and drop == drop and drop >= rules.rank_drop
        if cur is None:
            if not triggered:
                continue
            step, reason = 1, f"turned {cls}"
            if last_close and month_index(p) - month_index(last_close[0]) <= rules.relapse_months:
                step = last_close[1]
                gap = month_index(p) - month_index(last_close[0])
                reason = f"relapse: {cls} again {gap} month(s) after de-listing"
            cur = Episode(opened=p, step=step, step_since=p, events=[LadderEvent(p, 0, step, reason)])
            episodes.append(cur)
            held = calm = 0
            continue
        if triggered:
            if calm:
                cur.events.append(
                    LadderEvent(p, cur.step, cur.step, f"relapse: {cls} after {calm} better month(s)")
                )
            calm = 0
            held += 1
        else:
            calm += 1
            held = 0
        reason = None
        if triggered and held >= rules.escalate_months:
            reason = f"{cls} for {rules.escalate_months} more month(s) at {LADDER_STEPS[cur.step - 1]}"
        elif triggered and dropped:
            reason = f"{cls} and dropped {int(drop)} ranks"
        if reason and cur.step < 4:
            cur.events.append(LadderEvent(p, cur.step, cur.step + 1, reason))
            cur.step += 1
            cur.step_since = p
            held = 0
        elif not triggered and calm >= rules.delist_months:
            cur.events.append(
                LadderEvent(
                    p, cur.step, 0, f"de-listed after {calm} month(s) out of {'/'.join(rules.trigger)}"
                )
            )
            cur.closed = p
            last_close = (p, cur.step)
            cur = None
    return episodes


def run_ladders(
    periods: Sequence[date],
    klass: np.ndarray,
    class_keys: Sequence[str],
    rank_drops: np.ndarray,
    rules: LadderRules,
) -> list[tuple[int, Episode]]:
    """:func:`run_ladder` for many places at once, vectorised over the places (one numpy step
    per month instead of one Python step per place and month): the same episodes and events.

    ``klass`` (T, N): index into ``class_keys`` of each place's class per month, -1 where the
    place has no score that month (skipped, as a month absent from :func:`run_ladder`'s lists);
    ``rank_drops`` (T, N): ranks lost (NaN: none). Returns (place index, episode) pairs, by
    place and opening month."""
    klass = np.asarray(klass)
    t_n, n = klass.shape
    drops = np.asarray(rank_drops, dtype=float)
    is_trigger = np.array([k in rules.trigger for k in class_keys] + [False])  # [-1]: no score
    months = np.array([month_index(p) for p in periods])
    open_ = np.zeros(n, dtype=bool)
    step = np.zeros(n, dtype=np.int64)
    held = np.zeros(n, dtype=np.int64)
    calm = np.zeros(n, dtype=np.int64)
    last_close = np.full(n, -1, dtype=np.int64)  # month index of the last de-listing
    last_step = np.zeros(n, dtype=np.int64)
    current: dict[int, Episode] = {}
    found: list[tuple[int, Episode]] = []
    for t in range(t_n):
        p, k = periods[t], klass[t]
        act = k >= 0
        trig = act & is_trigger[k]
        with np.errstate(invalid="ignore"):
            dropped = act & (rules.rank_drop > 0) & (drops[t] >= rules.rank_drop)
        was_open = open_.copy()
        # off the ladder and triggered: a warning, or the step left at a recent de-listing
        opening = act & ~was_open & trig
        relapse = opening & (last_close >= 0) & (months[t] - last_close <= rules.relapse_months)
        for i in np.flatnonzero(opening):
            cls = class_keys[k[i]]
            if relapse[i]:
                s = int(last_step[i])
                reason = f"relapse: {cls} again {months[t] - last_close[i]} month(s) after de-listing"
            else:
                s, reason = 1, f"turned {cls}"
            ep = Episode(opened=p, step=s, step_since=p, events=[LadderEvent(p, 0, s, reason)])
            current[i] = ep
            found.append((int(i), ep))
            step[i] = s
        open_ |= opening
        held[opening] = 0
        calm[opening] = 0
        # on the ladder: count triggered months at the step, or calm months towards de-listing
        on = act & was_open
        for i in np.flatnonzero(on & trig & (calm > 0)):
            reason = f"relapse: {class_keys[k[i]]} after {calm[i]} better month(s)"
            current[i].events.append(LadderEvent(p, int(step[i]), int(step[i]), reason))
        up_held = on & trig
        calm[up_held] = 0
        held[up_held] += 1
        quiet = on & ~trig
        calm[quiet] += 1
        held[quiet] = 0
        by_months = on & trig & (held >= rules.escalate_months)
        by_drop = on & trig & ~by_months & dropped
        for i in np.flatnonzero((by_months | by_drop) & (step < 4)):
            cls = class_keys[k[i]]
            if by_months[i]:
                reason = f"{cls} for {rules.escalate_months} more month(s) at {LADDER_STEPS[step[i] - 1]}"
            else:
                reason = f"{cls} and dropped {int(drops[t, i])} ranks"
            ep = current[i]
            ep.events.append(LadderEvent(p, int(step[i]), int(step[i]) + 1, reason))
            step[i] += 1
            ep.step, ep.step_since = int(step[i]), p
            held[i] = 0
        for i in np.flatnonzero(quiet & (calm >= rules.delist_months)):
            ep = current.pop(int(i))
            ep.events.append(LadderEvent(
                p, int(step[i]), 0, f"de-listed after {calm[i]} month(s) out of {'/'.join(rules.trigger)}"))
            ep.closed = p
            last_close[i], last_step[i] = months[t], step[i]
            open_[i] = False
    found.sort(key=lambda x: (x[0], month_index(x[1].opened)))
    return found
