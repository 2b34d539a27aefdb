"""What the command-centre map screen shows beside the map (issue 8): KPIs of a month, a
place's index breakdown, the state history of a hazard or case, layer versions.

Every function runs in the caller's transaction (``layers.db.transaction(engine, principal)``),
so row-level security decides what counts: a town user's hazards and cases are its town's, and
a role without the privilege on a table gets ``None`` for what comes from it, never an error.
Tables without row-level security (the published index) are scoped here by the caller's areas.

Definitions (months are local, Asia/Shanghai; ``t0``..``t1`` the month, ``t_end`` = the month's
end or now, whichever is earlier):

- hazards found: ``found_at`` in the month; rectified: those of them with ``rectified_at``
  before ``t_end``; rate = rectified / found.
- hazards overdue: found before ``t_end``, deadline before ``t_end``, not rectified by
  ``t_end`` (the monthly statistics' rule, at ``t_end``).
- ladder items overdue: open 预警/抄告/督办/挂牌 items whose step deadline has passed (today).
- disputes resolved at grassroots: disputes (``kind = 'dispute'``) resolved in the month at
  grid, village or town level (``resolution_level``), over all disputes resolved in the month:
  the demo's rule (docs/data-model.md; ``monthly_stats.cases_resolved_grassroots``).
- red and orange villages: the published index of the month and of the month before.
- persons by grade: active persons counted under row-level security for the roles that see
  individuals; for the others (analyst, public: district-wide) the sum of the counts per town
  (``persons_by_town``: withheld counts are NULL there and are left out, so no number below the
  threshold is ever shown, migration 0028) with the number of towns with a withheld count.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from layers.db import Principal

# Roles that may read individuals (hazards, cases, persons, the ladder): migration 0005/0007.
STAFF = frozenset({"admin", "command", "town", "grid", "system"})
_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")


class DashboardInputError(ValueError):
    """Bad input from the caller (answered 400)."""


def parse_period(value: str) -> date:
    """``YYYY-MM`` (or ``YYYY-MM-DD``, the first of a month) to the first day of the month."""
    m = _PERIOD.match(value.strip()[:7]) if value else None
    if not m or (len(value.strip()) > 7 and not re.fullmatch(r"\d{4}-\d{2}-01", value.strip())):
        raise DashboardInputError(f"period must be YYYY-MM, got {value!r}")
    year, month = int(m.group(1)), int(m.group(2))
    if not (2000 <= year <= 2100 and 1 <= month <= 12):
        raise DashboardInputError(f"period out of range: {value!r}")
    return date(year, month, 1)


def previous_month(d: date) -> date:
    return date(d.year - 1, 12, 1) if d.month == 1 else date(d.year, d.month - 1, 1)


@dataclass(frozen=True)
class Scope:
    """Which towns a table without row-level security is counted for: None = all."""

    towns: tuple[str, ...] | None
    villages: tuple[str, ...] | None  # grid users: the villages their grids lie in

    @staticmethod
    def of(principal: Principal, town: str | None = None) -> Scope:
        if principal.role == "town":
            towns = tuple(principal.areas)
            if town is not None:
                towns = tuple(t for t in towns if t == town)
            return Scope(towns, None)
        if principal.role == "grid":
            villages = tuple(sorted({a[:12] for a in principal.areas}))
            if town is not None:
                villages = tuple(v for v in villages if v.startswith(town))
            return Scope(None, villages)
        return Scope((town,) if town else None, None)

    def params(self) -> dict[str, Any]:
        return {"towns": list(self.towns) if self.towns is not None else None,
                "villages": list(self.villages) if self.villages is not None else None}


# A record's town/village must be in scope (for the RLS tables this only narrows a district
# role to ?town=; row-level security already binds town and grid users).
_IN_SCOPE = ("(CAST(:towns AS text[]) IS NULL OR {t}.town_code = ANY (CAST(:towns AS text[])))"
             " AND (CAST(:villages AS text[]) IS NULL OR {t}.village_code = ANY (CAST(:villages AS text[])))")
_MONTH = ("(SELECT CAST(:p AS timestamp) AT TIME ZONE 'Asia/Shanghai' AS t0,"
          " (CAST(:p AS timestamp) + interval '1 month') AT TIME ZONE 'Asia/Shanghai' AS t1,"
          " least(now(), (CAST(:p AS timestamp) + interval '1 month')"
          " AT TIME ZONE 'Asia/Shanghai') AS t_end) w")

_HAZARDS = f"""
SELECT count(*) FILTER (WHERE h.found_at >= w.t0 AND h.found_at < w.t1) AS found,
       count(*) FILTER (WHERE h.found_at >= w.t0 AND h.found_at < w.t1
                          AND h.rectified_at < w.t_end) AS rectified,
       count(*) FILTER (WHERE h.found_at < w.t_end AND h.deadline < w.t_end
                          AND (h.rectified_at IS NULL OR h.rectified_at >= w.t_end)) AS overdue
FROM {_MONTH} JOIN pingan.hazards h ON h.found_at < w.t1
WHERE {_IN_SCOPE.format(t="h")}
"""  # noqa: S608 - fixed fragments; values are bound
_DISPUTES = f"""
SELECT count(*) AS resolved,
       count(*) FILTER (WHERE c.resolution_level IN ('grid', 'village', 'town')) AS grassroots
FROM {_MONTH} JOIN pingan.cases c ON c.resolved_at >= w.t0 AND c.resolved_at < w.t1
WHERE c.kind = 'dispute' AND {_IN_SCOPE.format(t="c")}
"""  # noqa: S608 - fixed fragments; values are bound
_LADDER = """
SELECT count(*) AS open, count(*) FILTER (WHERE w.deadline < current_date) AS overdue
FROM pingan.index_warnings w
WHERE w.status = 'open' AND (CAST(:towns AS text[]) IS NULL OR w.town_code = ANY (CAST(:towns AS text[])))
  AND (CAST(:villages AS text[]) IS NULL
       OR (w.level = 'village' AND w.code = ANY (CAST(:villages AS text[]))))
"""
_CLASSES = """
SELECT s.period, s.class, count(*) AS n FROM pingan.index_villages s
WHERE s.period IN (CAST(:p AS date), CAST(:prev AS date))
  AND (CAST(:towns AS text[]) IS NULL OR s.town_code = ANY (CAST(:towns AS text[])))
  AND (CAST(:villages AS text[]) IS NULL OR s.code = ANY (CAST(:villages AS text[])))
GROUP BY 1, 2
"""
_DISTRICT_CLASSES = "SELECT class, count(*) AS n FROM pingan.index_villages WHERE period = :p GROUP BY 1"
_PERSONS_EXACT = f"""
SELECT count(*) FILTER (WHERE p.grade = 'red') AS red,
       count(*) FILTER (WHERE p.grade = 'yellow') AS yellow,
       count(*) FILTER (WHERE p.grade = 'green') AS green, count(*) AS total
FROM pingan.persons p WHERE p.status = 'active' AND {_IN_SCOPE.format(t="p")}
"""  # noqa: S608 - fixed fragments; values are bound
_PERSONS_COUNTED = """
SELECT coalesce(sum(grade_red), 0) AS red, coalesce(sum(grade_yellow), 0) AS yellow,
       coalesce(sum(grade_green), 0) AS green, coalesce(sum(total), 0) AS total,
       count(*) FILTER (WHERE suppressed) AS suppressed_areas
FROM pingan.persons_by_town t
WHERE (CAST(:towns AS text[]) IS NULL OR t.code = ANY (CAST(:towns AS text[])))
"""


def _ratio(part: int | None, whole: int | None) -> float | None:
    return round(part / whole, 4) if part is not None and whole else None


def kpis(conn: Connection, principal: Principal, period: date, town: str | None = None) -> dict[str, Any]:
    """The KPI panels of one month for the caller (see the module's definitions)."""
    scope = Scope.of(principal, town)
    prev = previous_month(period)
    p = {**scope.params(), "p": period, "prev": prev}
    staff = principal.role in STAFF
    out: dict[str, Any] = {
        "period": period.isoformat()[:7], "previous": prev.isoformat()[:7],
        "scope": {"role": principal.role, "towns": scope.towns, "villages": scope.villages}}
    if staff:
        h = conn.execute(text(_HAZARDS), p).one()
        d = conn.execute(text(_DISPUTES), p).one()
        lad = conn.execute(text(_LADDER), p).one()
        out["hazards"] = {"found": h.found, "rectified": h.rectified, "rate": _ratio(h.rectified, h.found),
                          "overdue": h.overdue}
        out["ladder"] = {"open": lad.open, "overdue": lad.overdue}
        out["overdue"] = {"hazards": h.overdue, "ladder": lad.overdue, "total": h.overdue + lad.overdue}
        out["disputes"] = {"resolved": d.resolved, "grassroots": d.grassroots,
                           "rate": _ratio(d.grassroots, d.resolved)}
    else:
        out["hazards"] = out["ladder"] = out["overdue"] = out["disputes"] = None
    counts: dict[str, dict[str, int]] = {period.isoformat(): {}, prev.isoformat(): {}}
    for row in conn.execute(text(_CLASSES), p).mappings():
        counts[row["period"].isoformat()][row["class"]] = row["n"]
    now, before = counts[period.isoformat()], counts[prev.isoformat()]
    out["villages"] = {
        "classes": {c: now.get(c, 0) for c in ("red", "orange", "yellow", "blue", "green")},
        "red_orange": now.get("red", 0) + now.get("orange", 0),
        "previous_red_orange": (before.get("red", 0) + before.get("orange", 0)) if before else None,
        # the map's legend: every village of the district (the published index is public)
        "district_classes": dict(conn.execute(text(_DISTRICT_CLASSES), p).tuples().all()),
    }
    if staff:
        r = conn.execute(text(_PERSONS_EXACT), p).one()
        out["persons"] = {"red": r.red, "yellow": r.yellow, "green": r.green, "total": r.total,
                          "exact": True, "suppressed_areas": 0}
    else:
        r = conn.execute(text(_PERSONS_COUNTED), p).one()
        out["persons"] = {"red": int(r.red), "yellow": int(r.yellow), "green": int(r.green),
                          "total": int(r.total), "exact": r.suppressed_areas == 0,
                          "suppressed_areas": r.suppressed_areas}
    return out


def latest_period(conn: Connection) -> date | None:
    return conn.execute(text("SELECT max(period) FROM pingan.index_villages")).scalar()


# -- a place's index breakdown -----------------------------------------------------------------
def breakdown(conn: Connection, code: str, period: date) -> dict[str, Any] | None:
    """A village's or town's score of the month with each indicator's contribution (deducted
    points), largest first, and the model's labels. None when there is no score. The
    contributions only for callers who may see the persons behind them (admin, command, system;
    a town user in its town; migration 0029): for others ``indicators`` is empty and
    ``indicators_withheld`` true."""
    level = "village" if len(code) == 12 else "town"
    row = conn.execute(text(
        "SELECT s.code, s.level, s.period, s.score::float8 AS score, s.class, s.colour_hex, s.rank,"
        " s.rank_change, s.change::float8 AS change, s.veto, s.veto_reasons,"
        " pingan.index_contributions(s.period, s.level, s.code) AS contributions, s.notes,"
        " m.name AS model, m.version AS model_version, m.toml"
        " FROM pingan.index_scores s JOIN pingan.index_models m ON m.id = s.model_id"
        " WHERE s.level = :l AND s.code = :c AND s.period = :p"),
        {"l": level, "c": code, "p": period}).mappings().first()
    if row is None:
        return None
    labels = _labels(row["toml"])
    items = []
    # NULL: the caller may not see the persons behind this place's figures (migration 0029)
    withheld = row["contributions"] is None
    for ind, c in (row["contributions"] or {}).items():
        if c.get("skipped"):
            items.append({"id": ind, "label": labels.get(ind, ind), "skipped": True})
            continue
        items.append({"id": ind, "label": labels.get(ind, ind), "value": c.get("value"),
                      "risk": c.get("risk"), "weight": c.get("weight"), "deduction": c.get("deduction")})
    items.sort(key=lambda i: (i.get("skipped", False), -(i.get("deduction") or 0.0)))
    keys = ("code", "level", "score", "class", "colour_hex", "rank", "rank_change", "change", "veto", "model",
            "model_version")
    out = {k: row[k] for k in keys}
    return {**out, "period": row["period"].isoformat()[:7], "veto_reasons": list(row["veto_reasons"]),
            "notes": list(row["notes"]), "indicators": items, "indicators_withheld": withheld}


def _labels(model_toml: str) -> dict[str, str]:
    try:
        doc = tomllib.loads(model_toml)
    except tomllib.TOMLDecodeError:
        return {}
    return {str(i.get("id")): str(i.get("label", i.get("id"))) for i in doc.get("indicators", [])}


# -- state histories ---------------------------------------------------------------------------
HAZARD_STEPS = ("found", "assigned", "handling", "feedback", "verified", "closed")
CASE_STEPS = ("accepted", "mediating", "resolved", "transferred", "closed")
_HISTORY = {
    "hazard": ("SELECT id, code, category, level, title, state, found_at, assigned_at, deadline,"
               " rectified_at, verified_at, closed_at, grid_code, village_code, town_code,"
               " ST_X(geom) AS lon, ST_Y(geom) AS lat FROM pingan.hazards WHERE {key}",
               "SELECT from_state, to_state, at, actor, note FROM pingan.hazard_events"
               " WHERE hazard_id = :id ORDER BY at, id"),
    "case": ("SELECT id, code, kind, category, title, state, accepted_at, deadline, mediating_at,"
             " resolved_at, transferred_at, closed_at, resolution_level, transferred_to,"
             " grid_code, village_code, town_code,"
             " ST_X(geom) AS lon, ST_Y(geom) AS lat FROM pingan.cases WHERE {key}",
             "SELECT from_state, to_state, at, actor, note FROM pingan.case_events"
             " WHERE case_id = :id ORDER BY at, id"),
}


def history(conn: Connection, kind: str, ref: str) -> dict[str, Any] | None:
    """A hazard's or case's record and its state changes, by id (digits) or code; None when the
    caller cannot see it (row-level security) or it does not exist."""
    record_sql, events_sql = _HISTORY[kind]
    if ref.isdigit() and len(ref) <= 18:
        row = conn.execute(text(record_sql.format(key="id = :ref")), {"ref": int(ref)}).mappings().first()
    else:
        row = conn.execute(text(record_sql.format(key="code = :ref")), {"ref": ref}).mappings().first()
    if row is None:
        return None
    events = [dict(e) for e in conn.execute(text(events_sql), {"id": row["id"]}).mappings()]
    return {**dict(row), "kind_of_record": kind, "events": events}

