"""The patrol solver on small problems whose answers are worked out by hand or by enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gis.patrol import MODES, Options, PatrolError, Stop, Team, greedy, parse_shift, solve

FAST = Options(service_s=0.0, time_limit_s=0.3)
DAY = (0.0, 86400.0)


def line(*xs: float) -> np.ndarray:
    """Distances along a straight street: |x_i - x_j| metres."""
    x = np.asarray(xs, float)
    return np.abs(x[:, None] - x[None, :])


def tour_length(d: np.ndarray, nodes: list[int]) -> float:
    return float(sum(d[a, b] for a, b in itertools.pairwise(nodes)))


def test_street_with_stops_on_both_sides_of_the_depot() -> None:
    """Depot at 0 m, stops at +100, -150 and +400 m along one street. Any tour that leaves 0,
    reaches both ends (-150 and +400) and comes back walks at least 2 x 550 = 1100 m, and
    0 -> +100 -> +400 -> -150 -> 0 walks exactly that: the optimum. Nearest-neighbour goes
    0 -> +100 -> -150 -> +400 -> 0 = 100 + 250 + 550 + 400 = 1300 m."""
    d = line(0, 100, -150, 400)
    stops = [Stop("a", 1), Stop("b", 2), Stop("c", 3)]
    team = [Team("t", 0, 0, DAY, speed_kmh=3.6)]
    plan = solve(d, stops, team, FAST)
    assert plan.total_length_m == 1100.0 and plan.status == "complete"
    assert sorted(plan.routes[0].nodes[1:-1]) == [1, 2, 3]
    base = greedy(d, stops, team, FAST)
    assert base.routes[0].nodes == [0, 1, 2, 3, 0] and base.total_length_m == 1300.0


def test_optimum_matches_enumeration_of_every_tour() -> None:
    """Five stops, asymmetric random distances: the solver's tour is the best of all 120."""
    rng = np.random.default_rng(7)
    d = rng.integers(100, 1000, size=(6, 6)).astype(float)
    np.fill_diagonal(d, 0)
    stops = [Stop(f"s{i}", i) for i in range(1, 6)]
    best = min(tour_length(d, [0, *p, 0]) for p in itertools.permutations(range(1, 6)))
    plan = solve(d, stops, [Team("t", 0, 0, DAY, speed_kmh=3.6)], Options(service_s=0, time_limit_s=1.0))
    assert plan.total_length_m == best == tour_length(d, plan.routes[0].nodes)


def test_two_teams_each_take_their_own_cluster() -> None:
    """Depots at 0 and 10,000 m, two stops near each: crossing over would cost kilometres."""
    d = line(0, 10_000, 100, 200, 9_800, 9_900)
    stops = [Stop("w1", 2), Stop("w2", 3), Stop("e1", 4), Stop("e2", 5)]
    teams = [Team("west", 0, 0, DAY, speed_kmh=3.6), Team("east", 1, 1, DAY, speed_kmh=3.6)]
    plan = solve(d, stops, teams, FAST)
    west, east = plan.routes
    assert {v.stop.id for v in west.stops} == {"w1", "w2"} and {v.stop.id for v in east.stops} == {"e1", "e2"}
    assert plan.total_length_m == 400 + 400


def test_balance_spreads_the_work_over_the_teams() -> None:
    """Stops 1 km east and 1 km west of a shared depot: one team doing both walks 4 km, as do
    two teams doing one each. Only the balance term prefers two routes of 2 km."""
    d = line(0, 0, 1000, -1000)
    stops = [Stop("e", 2), Stop("w", 3)]
    teams = [Team("a", 0, 0, DAY, speed_kmh=3.6), Team("b", 1, 1, DAY, speed_kmh=3.6)]
    plan = solve(d, stops, teams, Options(service_s=0, time_limit_s=0.3, balance=1))
    assert [len(r.stops) for r in plan.routes] == [1, 1] and plan.total_length_m == 4000
    assert max(r.duration_s for r in plan.routes) == 2000


def test_start_and_end_depots_differ() -> None:
    """Start at 0, end at 1000 m, stops at 300 and 700 m: one pass, 1000 m, in order."""
    d = line(0, 1000, 700, 300)
    plan = solve(d, [Stop("far", 2), Stop("near", 3)], [Team("t", 0, 1, DAY, speed_kmh=3.6)], FAST)
    assert plan.routes[0].nodes == [0, 3, 2, 1] and plan.total_length_m == 1000.0


def test_arrival_times_follow_speed_and_service() -> None:
    """Foot at 4.5 km/h = 1.25 m/s: 500 m take 400 s; service 300 s at the stop."""
    d = line(0, 500)
    team = Team("t", 0, 0, (72000.0, 93600.0), mode="foot")
    plan = solve(d, [Stop("a", 1)], [team], Options(service_s=300, time_limit_s=0.2))
    start, stop, end = plan.routes[0].visits
    assert (start.departure_s, stop.arrival_s, stop.departure_s, end.arrival_s) == (
        72000,
        72400,
        72700,
        73100,
    )
    assert plan.routes[0].duration_s == 1100 and plan.routes[0].length_m == 1000


def test_priorities_decide_what_fits_in_a_short_shift() -> None:
    """A 30-minute shift at 1 m/s reaches one of the two stops (1 km apart, in opposite
    directions) and gets back: the one with the higher priority, wherever it lies."""
    d = line(0, 800, -700)
    for hi, lo in (("east", "west"), ("west", "east")):
        prio = {hi: 5.0, lo: 1.0}
        stops = [Stop("east", 1, priority=prio["east"]), Stop("west", 2, priority=prio["west"])]
        plan = solve(d, stops, [Team("t", 0, 0, (0.0, 1800.0), speed_kmh=3.6)], FAST)
        assert [v.stop.id for v in plan.routes[0].stops] == [hi]
        assert [x.stop.id for x in plan.dropped] == [lo] and plan.status == "partial"
        assert plan.dropped[0].reason.startswith("did not fit") and not plan.infeasible


def test_infeasible_window_gives_a_message_and_the_best_partial_plan() -> None:
    """The far stop must be visited in the first 5 minutes but lies 1 km (17 min) away: no
    team can make it. The plan says so, names the stop, and still visits the others."""
    d = line(0, 100, 200, 1000)
    stops = [Stop("a", 1), Stop("b", 2), Stop("late", 3, window=(0.0, 300.0), required=True)]
    plan = solve(d, stops, [Team("t", 0, 0, (0.0, 7200.0), speed_kmh=3.6)], FAST)
    assert [v.stop.id for v in plan.routes[0].stops] == ["a", "b"] and plan.total_length_m == 400
    assert plan.infeasible and plan.status == "partial"
    (dropped,) = plan.dropped
    assert dropped.stop.id == "late" and "time window" in dropped.reason
    text = " ".join(plan.messages)
    assert "infeasible" in text and "late" in text and "required stop(s) not visited: late" in text


def test_window_met_by_waiting() -> None:
    """A stop 100 m away whose window opens at 600 s: the team waits and arrives at 600."""
    d = line(0, 100)
    plan = solve(d, [Stop("a", 1, window=(600.0, 900.0))], [Team("t", 0, 0, DAY, speed_kmh=3.6)], FAST)
    assert plan.routes[0].stops[0].arrival_s == 600.0 and not plan.dropped


def test_unreachable_stop_is_reported() -> None:
    d = line(0, 100, 200)
    d[:, 2] = d[2, :] = np.inf
    d[2, 2] = 0
    plan = solve(d, [Stop("a", 1), Stop("island", 2)], [Team("t", 0, 0, DAY, speed_kmh=3.6)], FAST)
    assert [x.stop.id for x in plan.dropped] == ["island"] and "no road" in plan.dropped[0].reason
    assert plan.routes[0].nodes == [0, 1, 0]


def test_team_that_cannot_get_home_stays_home_and_says_so() -> None:
    d = line(0, 5000, 100)
    teams = [Team("slow", 0, 1, (0.0, 600.0), speed_kmh=3.6), Team("ok", 0, 0, DAY, speed_kmh=3.6)]
    plan = solve(d, [Stop("a", 2)], teams, FAST)
    assert [r.team.id for r in plan.routes] == ["ok"] and plan.visited == 1
    assert any(m.startswith("team slow:") for m in plan.messages)


def test_modes_use_their_own_matrix_and_speed() -> None:
    """The car may not take the 200 m footpath to the stop; it drives 2 km round at 30 km/h."""
    foot = line(0, 200)
    car = foot * 10
    plan = solve({"foot": foot, "car": car}, [Stop("a", 1)], [Team("c", 0, 0, DAY, mode="car")], FAST)
    assert plan.total_length_m == 4000 and plan.routes[0].stops[0].arrival_s == pytest.approx(240, abs=1)
    assert MODES == {"foot": 4.5, "bicycle": 12.0, "car": 30.0}


@pytest.mark.parametrize(
    ("stops", "teams", "match"),
    [
        ([Stop("a", 1)], [], "no teams"),
        ([Stop("a", 5)], [Team("t", 0, 0, DAY)], "outside the matrix"),
        ([Stop("a", 0)], [Team("t", 0, 0, DAY)], "also a depot"),
        ([Stop("a", 1), Stop("a", 2)], [Team("t", 0, 0, DAY)], "unique"),
        ([Stop("a", 1, priority=0)], [Team("t", 0, 0, DAY)], "priority"),
        ([Stop("a", 1)], [Team("t", 0, 0, DAY, mode="horse")], "unknown travel mode"),
        ([Stop("a", 1)], [Team("t", 0, 0, (10.0, 5.0))], "ends before"),
        ([Stop("a", 1)], [Team("t", 0, 0, DAY, mode="car")], None),
    ],
)
def test_bad_input_is_refused_with_a_message(stops, teams, match) -> None:
    d = line(0, 100, 200)
    if match is None:  # a mode without a matrix, when matrices are given per mode
        with pytest.raises(PatrolError, match="no distance matrix for travel mode"):
            solve({"foot": d}, stops, teams, FAST)
        return
    with pytest.raises(PatrolError, match=match):
        solve(d, stops, teams, FAST)


@pytest.mark.parametrize("spec", ["20-02", "25:00-02:00", "20:00-20:00", "20:00", "ab:cd-01:00"])
def test_bad_shift_is_refused(spec: str) -> None:
    with pytest.raises(PatrolError, match="shift"):
        parse_shift(spec)


def test_ortools_beats_greedy_on_a_grid() -> None:
    """On a city block grid with 3 teams and 30 stops, the optimised plan is shorter than the
    nearest-neighbour plan over the same stops, and both visit all of them."""
    rng = np.random.default_rng(3)
    pts = rng.integers(0, 20, size=(33, 2)) * 100.0
    pts[:3] = [[0, 0], [1900, 1900], [0, 1900]]
    pts = np.unique(pts, axis=0)
    d = np.abs(pts[:, None, :] - pts[None, :, :]).sum(axis=2)  # Manhattan metres
    depots = [0, len(pts) - 1, 1]
    stops = [Stop(f"s{i}", i) for i in range(len(pts)) if i not in depots]
    teams = [Team(f"t{k}", n, n, DAY, speed_kmh=3.6) for k, n in enumerate(depots)]
    opt = solve(d, stops, teams, Options(service_s=0, time_limit_s=1.0))
    base = greedy(d, stops, teams, Options(service_s=0))
    assert opt.visited == base.visited == len(stops)
    assert opt.total_length_m < base.total_length_m
