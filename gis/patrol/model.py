"""The patrol planning problem and its answer: stops, teams, visits, routes, plans.

Places are nodes of one distance matrix (metres, ``np.inf`` where no road leads): every stop
and every depot is a node index. Times are seconds from the plan's origin (the planning day's
midnight, local time), so a night shift 20:00-02:00 is ``(72000, 93600)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Default travel speeds in km/h: walking patrols, bicycles, cars in town traffic.
MODES: dict[str, float] = {"foot": 4.5, "bicycle": 12.0, "car": 30.0}


class PatrolError(ValueError):
    """The problem is malformed (bad mode, shift, index or matrix): nothing was planned."""


@dataclass(frozen=True)
class Stop:
    """A place to visit. ``node`` indexes the distance matrix.

    ``priority`` (> 0) prices dropping the stop when not all fit; ``required`` stops are dropped
    only when no plan can reach them (and the plan says so); ``window`` is the span, in seconds
    from the origin, in which the visit must begin; ``service_s`` overrides the problem's
    service time per stop.
    """

    id: str
    node: int
    priority: float = 1.0
    name: str = ""
    kind: str = "given"
    required: bool = False
    window: tuple[float, float] | None = None
    service_s: float | None = None


@dataclass(frozen=True)
class Team:
    """A patrol team: it leaves ``start`` and must be back at ``end`` within ``shift``."""

    id: str
    start: int
    end: int
    shift: tuple[float, float]
    mode: str = "foot"
    speed_kmh: float | None = None
    name: str = ""

    @property
    def speed_ms(self) -> float:
        return (self.speed_kmh if self.speed_kmh is not None else MODES[self.mode]) / 3.6


@dataclass(frozen=True)
class Visit:
    """A stop of a route (``stop`` is None at the team's start and end depots)."""

    node: int
    stop: Stop | None
    arrival_s: float
    departure_s: float
    leg_m: float  # road metres from the previous visit (0 at the start)


@dataclass(frozen=True)
class Route:
    team: Team
    visits: tuple[Visit, ...]

    @property
    def stops(self) -> tuple[Visit, ...]:
        return tuple(v for v in self.visits if v.stop is not None)

    @property
    def nodes(self) -> list[int]:
        return [v.node for v in self.visits]

    @property
    def length_m(self) -> float:
        return float(sum(v.leg_m for v in self.visits))

    @property
    def duration_s(self) -> float:
        return self.visits[-1].arrival_s - self.visits[0].departure_s if len(self.visits) > 1 else 0.0


@dataclass(frozen=True)
class Dropped:
    stop: Stop
    reason: str


@dataclass(frozen=True)
class Plan:
    """Routes per team, the stops left out with a reason each, and what went wrong if anything.

    ``status`` is ``complete`` (every stop visited), ``partial`` (some left out) or ``empty``
    (no team could work). ``messages`` explain infeasibility in words a planner can act on.
    """

    routes: tuple[Route, ...]
    dropped: tuple[Dropped, ...]
    solver: str
    seconds: float
    messages: tuple[str, ...] = field(default=())

    @property
    def status(self) -> str:
        if not any(r.stops for r in self.routes) and self.dropped:
            return "empty"
        return "partial" if self.dropped else "complete"

    @property
    def total_length_m(self) -> float:
        return float(sum(r.length_m for r in self.routes))

    @property
    def visited(self) -> int:
        return sum(len(r.stops) for r in self.routes)

    @property
    def infeasible(self) -> bool:
        """True when a required stop, or one whose window no team can meet, is left out."""
        return any(d.stop.required or d.reason.startswith("no team") for d in self.dropped)


_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")


def parse_shift(spec: str) -> tuple[float, float]:
    """``"20:00-02:00"`` to seconds from the day's midnight; an end before the start is the next day.

    Examples
    --------
    >>> parse_shift("20:00-02:00")
    (72000.0, 93600.0)
    >>> parse_shift("08:30-12:00")
    (30600.0, 43200.0)
    """
    parts = str(spec).split("-")
    clocks = [_CLOCK.match(p) for p in parts]
    if len(parts) != 2 or not all(clocks):
        raise PatrolError(f"shift {spec!r}: expected HH:MM-HH:MM, e.g. 20:00-02:00")
    secs = []
    for m in clocks:
        h, mi = int(m.group(1)), int(m.group(2))
        if h > 24 or mi > 59 or (h == 24 and mi):
            raise PatrolError(f"shift {spec!r}: {m.group(0).strip()} is not a time of day")
        secs.append(float(h * 3600 + mi * 60))
    start, end = secs
    if end == start:
        raise PatrolError(f"shift {spec!r}: starts and ends at the same time")
    if end < start:
        end += 86400.0
    return start, end
