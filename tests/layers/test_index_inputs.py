"""The index's register queries (layers/index.py) against the month-by-month reference.

layers/index.py buckets every record into the months it counts in, so that its cost grows with
the records (30,000 villages: 1.8M cases); the reference below is the plain formulation it
replaced (every month joined with every record, by the local month's bounds t0..t1), obviously
right and slow. On the demo district with edge cases put in (persons closed on a month's first
local midnight and mid-month, grades and visits moved to month starts, severe hazards rectified
at a month start, deadlines on month starts, records placed only to a town) both give the same
counts for every place (a village, or a town for its records without a village) and month of the
records.
"""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import Engine, text

from layers import index

_MONTHS = """
WITH months AS (
    SELECT m::date AS period, m AT TIME ZONE 'Asia/Shanghai' AS t0,
           (m + interval '1 month') AT TIME ZONE 'Asia/Shanghai' AS t1
    FROM generate_series(CAST(:first AS timestamp), CAST(:last AS timestamp), interval '1 month') m
)
"""
REFERENCE = {  # noqa: S608 - constant text
    "cases": _MONTHS
    + """
SELECT mo.period, PLACE(c) AS code,
    count(*) FILTER (WHERE c.kind = 'incident' AND c.category IN ('theft', 'fraud', 'fight', 'public_order'))
        AS cases_criminal,
    count(*) FILTER (WHERE c.channel = 'petition') AS petitions,
    count(*) FILTER (WHERE c.category = 'traffic_accident') AS accidents
FROM months mo JOIN pingan.cases c ON c.accepted_at >= mo.t0 AND c.accepted_at < mo.t1
GROUP BY 1, 2""",
    "escalated": _MONTHS
    + """
SELECT mo.period, PLACE(c) AS code, count(*) AS disputes_escalated
FROM months mo JOIN pingan.cases c ON c.kind = 'dispute'
    AND ((c.transferred_at >= mo.t0 AND c.transferred_at < mo.t1)
         OR (c.resolution_level = 'district' AND c.resolved_at >= mo.t0 AND c.resolved_at < mo.t1))
GROUP BY 1, 2""",
    "severe": _MONTHS
    + """
SELECT mo.period, PLACE(h) AS code, count(*) AS hazards_severe_overdue
FROM months mo JOIN pingan.hazards h ON h.level = 'severe' AND h.found_at < mo.t1 AND h.deadline < mo.t1
    AND (h.rectified_at IS NULL OR h.rectified_at >= mo.t1)
    AND coalesce(h.closed_at, 'infinity') >= mo.t0
GROUP BY 1, 2""",
    "persons": _MONTHS
    + """
SELECT mo.period, PLACE(p) AS code,
    count(*) FILTER (WHERE g.grade = 'red') AS persons_red,
    count(*) FILTER (WHERE g.grade = 'yellow') AS persons_yellow,
    count(*) FILTER (WHERE g.grade IN ('red', 'yellow') AND (
        (v.next_due IS NULL AND p.registered_at < mo.t1 - interval '30 days')
        OR v.next_due < (mo.period + interval '1 month')::date)) AS person_visits_overdue
FROM months mo
JOIN pingan.persons p ON p.registered_at < mo.t1 AND (p.closed_at IS NULL OR p.closed_at >= mo.t1)
CROSS JOIN LATERAL (SELECT grade FROM pingan.person_grades g WHERE g.person_id = p.id AND g.changed_at < mo.t1
                    ORDER BY g.changed_at DESC LIMIT 1) g
LEFT JOIN LATERAL (SELECT next_due FROM pingan.person_visits v WHERE v.person_id = p.id
                   AND v.visited_at < mo.t1 ORDER BY v.visited_at DESC LIMIT 1) v ON true
GROUP BY 1, 2""",
}
EDGES = (
    # persons closed at a local month start, and mid-month, after registration
    "UPDATE pingan.persons SET status = 'closed', closed_at = greatest(registered_at, "
    "TIMESTAMPTZ '2025-09-01 00:00+08') WHERE id % 7 = 0",
    "UPDATE pingan.persons SET status = 'closed', closed_at = registered_at + interval '400 days 5 hours' "
    "WHERE id % 7 = 1",
    # grades and visits moved to the first local midnight of their month
    "UPDATE pingan.person_grades SET changed_at = date_trunc('month', changed_at AT TIME ZONE "
    "'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai' WHERE id % 3 = 0",
    "UPDATE pingan.person_visits SET visited_at = date_trunc('month', visited_at AT TIME ZONE "
    "'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai' WHERE id % 4 = 0",
    # severe hazards: deadlines on the next month start, rectified at their month's start
    "UPDATE pingan.hazards SET deadline = (date_trunc('month', deadline AT TIME ZONE 'Asia/Shanghai') "
    "+ interval '1 month') AT TIME ZONE 'Asia/Shanghai' WHERE level = 'severe' AND deadline IS NOT NULL "
    "AND id % 2 = 0",
    "UPDATE pingan.hazards SET rectified_at = greatest(assigned_at, date_trunc('month', rectified_at "
    "AT TIME ZONE 'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai') WHERE level = 'severe' "
    "AND rectified_at IS NOT NULL AND id % 3 = 0",
    # records the loader placed only to a town (no grid, no village: migration 0027)
    *(f"UPDATE pingan.{t} SET loc_method = 'geocoded', geocode_level = 'town', geocode_score = 0.5, "  # noqa: S608
      f"grid_code = NULL, village_code = NULL WHERE id % 5 = 0" for t in ("cases", "hazards", "persons")),
)
_PLACE = re.compile(r"PLACE\((\w+)\)")


def reference(key: str, level: str = "place") -> str:
    """REFERENCE[key] counting each record in its place (its village, else its town: what the
    index's inputs hold), or in its ``village`` (a record without one: code NULL) or ``town``."""
    expr = {"place": "coalesce({t}.village_code, {t}.town_code)", "village": "{t}.village_code",
            "town": "{t}.town_code"}[level]
    return _PLACE.sub(lambda m: expr.format(t=m[1]), REFERENCE[key])


def _rows(conn, sql: str, first: date, last: date) -> set[tuple]:  # noqa: ANN001
    return {tuple(r) for r in conn.execute(text(sql), {"first": first, "last": last}).all()}


@pytest.mark.parametrize("edges", [False, True], ids=["demo", "demo+edges"])
@pytest.mark.parametrize("key", sorted(REFERENCE))
def test_register_query_equals_the_reference(demo_engine: Engine, key: str, edges: bool) -> None:
    first, last = date(2024, 11, 1), date(2026, 10, 1)  # every month of the demo's records
    with demo_engine.connect() as c:  # the session's demo district; the edges are rolled back
        tx = c.begin()
        if edges:
            changed = [c.execute(text(sql)).rowcount for sql in EDGES]
            assert all(n > 0 for n in changed), changed  # every edge case really was put in
        want = _rows(c, reference(key), first, last)
        got = _rows(c, index.register_sql(key), first, last)
        tx.rollback()
    want = {r for r in want if any(r[2:])}  # the reference also lists groups that count nothing
    got = {r for r in got if any(r[2:])}
    assert want and got == want
    assert edges == any(len(r[1]) == 9 for r in want)  # a town's own records: with the edges only

