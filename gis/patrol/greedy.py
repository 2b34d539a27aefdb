"""The greedy nearest-neighbour plan: the baseline the OR-Tools plan is measured against.

All teams grow their routes together: at each step, of every (team, stop) pair that still fits
(the visit can begin within the stop's window and the team can then get back to its end depot
within its shift), the one with the shortest road distance from the team's current place is
taken. Priorities play no part: this is the plan a dispatcher draws by "always the nearest".
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np

from gis.patrol.model import Dropped, Plan, Route, Stop, Team, Visit
from gis.patrol.solve import (
    Matrix,
    Options,
    drop_messages,
    drop_reason,
    matrices_for,
    team_problems,
    travel_s,
    validate,
)


def greedy(
    distance: Matrix | Mapping[str, Matrix],
    stops: Sequence[Stop],
    teams: Sequence[Team],
    options: Options | None = None,
) -> Plan:
    """Nearest-neighbour routes for ``teams`` through ``stops`` (same inputs as :func:`solve`).

    Examples
    --------
    >>> d = np.array([[0, 100, 300], [100, 0, 200], [300, 200, 0]], float)
    >>> plan = greedy(d, [Stop("a", 1), Stop("b", 2)], [Team("t", 0, 0, (0, 3600), speed_kmh=3.6)],
    ...               Options(service_s=0))
    >>> [v.node for v in plan.routes[0].visits], plan.total_length_m
    ([0, 1, 2, 0], 600.0)
    """
    t0 = time.perf_counter()
    options = options or Options()
    matrices = matrices_for(distance, teams)
    validate(matrices, stops, teams)
    messages = team_problems(teams, matrices)
    working = [t for t in teams if not any(m.startswith(f"team {t.id}:") for m in messages)]
    secs = [travel_s(matrices[t.mode], t) for t in working]
    where = [t.start for t in working]
    clock = [float(t.shift[0]) for t in working]
    visits: list[list[Visit]] = [
        [Visit(t.start, None, clock[v], clock[v], 0.0)] for v, t in enumerate(working)
    ]
    left = {s.id: s for s in stops}
    while left:
        best = None
        for v, t in enumerate(working):
            d = matrices[t.mode]
            for s in left.values():
                metres = d[where[v], s.node]
                if best is not None and metres >= best[0]:
                    continue
                begin = clock[v] + secs[v][where[v], s.node]
                if s.window is not None:
                    begin = max(begin, s.window[0])
                    if begin > s.window[1]:
                        continue
                service = options.service_s if s.service_s is None else s.service_s
                if np.isfinite(metres) and begin + service + secs[v][s.node, t.end] <= t.shift[1]:
                    best = (metres, v, s, begin, service)
        if best is None:
            break
        metres, v, s, begin, service = best
        visits[v].append(Visit(s.node, s, begin, begin + service, float(metres)))
        where[v], clock[v] = s.node, begin + service
        del left[s.id]
    routes = []
    for v, t in enumerate(working):
        back = clock[v] + secs[v][where[v], t.end]
        visits[v].append(Visit(t.end, None, back, back, float(matrices[t.mode][where[v], t.end])))
        routes.append(Route(t, tuple(visits[v])))
    dropped = tuple(Dropped(s, drop_reason(s, working, matrices, options)) for s in left.values())
    messages += drop_messages(dropped)
    return Plan(tuple(routes), dropped, "greedy", time.perf_counter() - t0, tuple(messages))
