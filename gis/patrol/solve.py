"""Patrol routes with OR-Tools: a vehicle routing problem with time windows and optional stops.

Each team is a vehicle with its own start and end depot, shift and speed; every stop is a
disjunction whose penalty grows with its priority, so when the shifts cannot hold every stop
the solver leaves out the least valuable ones. Arc costs are road metres (the objective is the
total length plus the penalties of the stops left out); a time dimension carries travel time
at the team's speed plus the service time at each stop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gis.patrol.model import MODES, Dropped, PatrolError, Plan, Route, Stop, Team, Visit

Matrix = npt.NDArray[np.float64]
# A stop left out costs priority x this many metres: far more than any detour, so a stop is
# dropped only when it does not fit, and among those that do not fit, the least valuable first.
METRES_PER_PRIORITY = 100_000.0
REQUIRED_PENALTY = 10**12  # a required stop: dropped only when no plan can reach it
UNREACHABLE = 10**9  # metres standing in for "no road": more than any shift can cover


@dataclass(frozen=True)
class Options:
    """Solver settings. ``time_limit_s`` bounds the guided local search after the first plan."""

    service_s: float = 300.0
    metres_per_priority: float = METRES_PER_PRIORITY
    time_limit_s: float = 2.0
    # Metres of total length worth one second off the longest route (global span of the time
    # dimension): 0 gives the shortest total, which may leave teams at home; 1-5 spreads the work.
    balance: float = 0.0
    first_solution: str = "PATH_CHEAPEST_ARC"
    local_search: str = "GUIDED_LOCAL_SEARCH"


def matrices_for(distance: Matrix | Mapping[str, Matrix], teams: Sequence[Team]) -> dict[str, Matrix]:
    """One distance matrix per travel mode used by ``teams`` (one matrix serves every mode)."""
    if isinstance(distance, Mapping):
        missing = sorted({t.mode for t in teams} - set(distance))
        if missing:
            raise PatrolError(f"no distance matrix for travel mode(s) {', '.join(missing)}")
        out = {m: np.asarray(d, np.float64) for m, d in distance.items()}
    else:
        d = np.asarray(distance, np.float64)
        out = {t.mode: d for t in teams}
    for mode, d in out.items():
        if d.ndim != 2 or d.shape[0] != d.shape[1]:
            raise PatrolError(f"distance matrix for {mode}: expected a square matrix, got shape {d.shape}")
        if np.isnan(d).any() or (d < 0).any():
            raise PatrolError(f"distance matrix for {mode}: negative or NaN distances")
    return out


def validate(matrices: Mapping[str, Matrix], stops: Sequence[Stop], teams: Sequence[Team]) -> None:
    """Refuse a malformed problem with a message that names the culprit."""
    if not teams:
        raise PatrolError("no teams: at least one team is needed")
    n = next(iter(matrices.values())).shape[0]
    if any(d.shape[0] != n for d in matrices.values()):
        raise PatrolError("the distance matrices of the travel modes differ in size")
    depots = set()
    for t in teams:
        if t.mode not in MODES and t.speed_kmh is None:
            raise PatrolError(
                f"team {t.id}: unknown travel mode {t.mode!r} ({', '.join(MODES)}) and no speed"
            )
        if t.speed_kmh is not None and not t.speed_kmh > 0:
            raise PatrolError(f"team {t.id}: speed must be positive, got {t.speed_kmh}")
        if not t.shift[1] > t.shift[0]:
            raise PatrolError(f"team {t.id}: the shift ends before it starts")
        for node in (t.start, t.end):
            if not 0 <= node < n:
                raise PatrolError(f"team {t.id}: depot node {node} outside the matrix (0..{n - 1})")
        depots.update((t.start, t.end))
    ids = [s.id for s in stops]
    if len(set(ids)) != len(ids):
        raise PatrolError("stop ids must be unique")
    for s in stops:
        if not 0 <= s.node < n:
            raise PatrolError(f"stop {s.id}: node {s.node} outside the matrix (0..{n - 1})")
        if s.node in depots:
            raise PatrolError(f"stop {s.id}: node {s.node} is also a depot; give the depot its own node")
        if not s.priority > 0:
            raise PatrolError(f"stop {s.id}: priority must be positive, got {s.priority}")
        if s.window is not None and not s.window[1] >= s.window[0]:
            raise PatrolError(f"stop {s.id}: its time window ends before it starts")
    if len({s.node for s in stops}) != len(stops):
        raise PatrolError("two stops share a node; give each stop its own node")


def travel_s(d: Matrix, team: Team) -> Matrix:
    return d / team.speed_ms


def _service(stop: Stop, options: Options) -> float:
    return float(options.service_s if stop.service_s is None else stop.service_s)


def drop_reason(stop: Stop, teams: Sequence[Team], matrices: Mapping[str, Matrix], options: Options) -> str:
    """Why a stop is not in the plan: nobody can reach it in time, or the shifts are full."""
    service = _service(stop, options)
    reachable = False
    for t in teams:
        tt = travel_s(matrices[t.mode], t)
        there, back = tt[t.start, stop.node], tt[stop.node, t.end]
        if not (math.isfinite(there) and math.isfinite(back)):
            continue
        reachable = True
        arrive = t.shift[0] + there
        lo, hi = stop.window if stop.window is not None else (-math.inf, math.inf)
        begin = max(arrive, lo)
        if begin <= hi and begin + service + back <= t.shift[1] + 1e-6:
            return "did not fit: the shifts are full with stops of higher priority or on the way"
    if not reachable:
        return "no team can reach it: no road from a team's depot to it and back"
    if stop.window is not None:
        return "no team can reach it within its time window and get back before the shift ends"
    return "no team can reach it and get back within the shift"


def team_problems(teams: Sequence[Team], matrices: Mapping[str, Matrix]) -> list[str]:
    out = []
    for t in teams:
        back = travel_s(matrices[t.mode], t)[t.start, t.end]
        if not back <= t.shift[1] - t.shift[0]:
            out.append(f"team {t.id}: cannot even get from its start to its end depot within its shift")
    return out


def solve(
    distance: Matrix | Mapping[str, Matrix],
    stops: Sequence[Stop],
    teams: Sequence[Team],
    options: Options | None = None,
) -> Plan:
    """Plan the routes of ``teams`` through ``stops`` with OR-Tools.

    Parameters
    ----------
    distance : (n, n) array or {mode: (n, n) array}
        Road metres from node i to node j (``np.inf``: no road). One matrix per travel mode when
        the modes may use different roads (foot paths, one-way streets).
    stops, teams : sequences of :class:`Stop` and :class:`Team`
    options : Options

    Returns
    -------
    Plan
        Routes with arrival times; stops left out with a reason each; messages on infeasibility.
        A team that cannot even make its own start-to-end trip within its shift stays home.

    Examples
    --------
    >>> d = np.array([[0, 100, 300], [100, 0, 200], [300, 200, 0]], float)
    >>> plan = solve(d, [Stop("a", 1), Stop("b", 2)], [Team("t", 0, 0, (0, 3600), speed_kmh=3.6)],
    ...              Options(service_s=0, time_limit_s=0.2))
    >>> [v.node for v in plan.routes[0].visits], plan.total_length_m
    ([0, 1, 2, 0], 600.0)
    """
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    t0 = time.perf_counter()
    options = options or Options()
    matrices = matrices_for(distance, teams)
    validate(matrices, stops, teams)
    messages = team_problems(teams, matrices)
    working = [t for t in teams if not any(m.startswith(f"team {t.id}:") for m in messages)]
    if not working:
        dropped = tuple(Dropped(s, "no team can work: see the messages") for s in stops)
        return Plan((), dropped, "ortools", time.perf_counter() - t0, tuple(messages))

    n = next(iter(matrices.values())).shape[0]
    manager = pywrapcp.RoutingIndexManager(
        n, len(working), [t.start for t in working], [t.end for t in working]
    )
    routing = pywrapcp.RoutingModel(manager)
    service = np.zeros(n)
    for s in stops:
        service[s.node] = _service(s, options)
    int_dist = {
        m: np.where(np.isfinite(d), np.rint(d), UNREACHABLE).astype(np.int64) for m, d in matrices.items()
    }

    # Matrices registered as such stay in C++: no Python callback per arc evaluation, which makes
    # the local search many times faster than lambdas over lists.
    dist_cb = {mode: routing.RegisterTransitMatrix(d.tolist()) for mode, d in int_dist.items()}
    time_cb = []
    for t in working:
        secs = travel_s(matrices[t.mode], t) + service[:, None]
        rows = np.where(np.isfinite(secs), np.ceil(secs), UNREACHABLE).astype(np.int64).tolist()
        time_cb.append(routing.RegisterTransitMatrix(rows))
    for v, t in enumerate(working):
        routing.SetArcCostEvaluatorOfVehicle(dist_cb[t.mode], v)

    horizon = int(math.ceil(max(t.shift[1] for t in working)))
    routing.AddDimensionWithVehicleTransits(time_cb, horizon, horizon, False, "time")
    tdim = routing.GetDimensionOrDie("time")
    for v, t in enumerate(working):
        lo, hi = int(math.ceil(t.shift[0])), int(math.floor(t.shift[1]))
        tdim.CumulVar(routing.Start(v)).SetRange(lo, hi)
        tdim.CumulVar(routing.End(v)).SetRange(lo, hi)
        routing.AddVariableMinimizedByFinalizer(tdim.CumulVar(routing.Start(v)))
        routing.AddVariableMinimizedByFinalizer(tdim.CumulVar(routing.End(v)))
    if options.balance > 0:
        tdim.SetGlobalSpanCostCoefficient(int(round(options.balance)))
    for s in stops:
        index = manager.NodeToIndex(s.node)
        if s.window is not None:
            lo, hi = int(math.ceil(s.window[0])), int(math.floor(s.window[1]))
            if lo > hi or hi < 0 or lo > horizon:
                tdim.CumulVar(index).RemoveInterval(0, horizon)  # no visit possible: always dropped
            else:
                tdim.CumulVar(index).SetRange(max(lo, 0), min(hi, horizon))
        penalty = REQUIRED_PENALTY if s.required else int(round(s.priority * options.metres_per_priority))
        routing.AddDisjunction([index], penalty)

    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = getattr(routing_enums_pb2.FirstSolutionStrategy, options.first_solution)
    params.local_search_metaheuristic = getattr(
        routing_enums_pb2.LocalSearchMetaheuristic, options.local_search
    )
    params.time_limit.FromMilliseconds(max(1, int(options.time_limit_s * 1000)))
    solution = routing.SolveWithParameters(params)
    if solution is None:  # every stop is optional, so only a malformed model ends here
        raise PatrolError("OR-Tools found no plan at all (not even one leaving every stop out)")

    by_node = {s.node: s for s in stops}
    routes = []
    for v, t in enumerate(working):
        d = matrices[t.mode]
        visits, index, prev = [], routing.Start(v), None
        while True:
            node = manager.IndexToNode(index)
            arrival = float(solution.Min(tdim.CumulVar(index)))
            stop = by_node.get(node) if not routing.IsStart(index) and not routing.IsEnd(index) else None
            leg = 0.0 if prev is None else float(d[prev, node])
            visits.append(Visit(node, stop, arrival, arrival + (service[node] if stop else 0.0), leg))
            if routing.IsEnd(index):
                break
            prev, index = node, solution.Value(routing.NextVar(index))
        routes.append(Route(t, tuple(visits)))
    visited = {v.stop.id for r in routes for v in r.visits if v.stop is not None}
    dropped = tuple(
        Dropped(s, drop_reason(s, working, matrices, options)) for s in stops if s.id not in visited
    )
    messages += drop_messages(dropped)
    return Plan(tuple(routes), dropped, "ortools", time.perf_counter() - t0, tuple(messages))


def drop_messages(dropped: Sequence[Dropped]) -> list[str]:
    out = []
    impossible = [d for d in dropped if d.reason.startswith("no team")]
    if impossible:
        names = ", ".join(d.stop.id for d in impossible[:10]) + (" ..." if len(impossible) > 10 else "")
        out.append(
            f"infeasible: {len(impossible)} stop(s) cannot be visited by any team within the time "
            f"windows and shifts ({names}); the plan visits the others"
        )
    full = [d for d in dropped if not d.reason.startswith("no team")]
    if full:
        out.append(f"{len(full)} stop(s) left out because the shifts are full (lowest priority first)")
    required = [d.stop.id for d in dropped if d.stop.required]
    if required:
        out.append(f"required stop(s) not visited: {', '.join(required)}")
    return out
