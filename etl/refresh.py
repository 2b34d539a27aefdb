"""`pingan etl refresh`: recompute the derived layers whose inputs changed.

Now: monthly aggregates per grid, village and town (``pingan.monthly_stats``), recomputed only
for the (place, month) pairs that the batches loaded since the last refresh touched, then rolled
up to those places' villages and towns. A record's place is its grid; a record the loader placed
only to a village or town by its address has none (migration 0027), and counts in that village
(town) without counting in any of its grids: a village is its grids plus such records, a town its
villages plus those placed to the town alone; then the index's inputs of the places (villages,
and towns for their records placed to no village) and months touched (``pingan.index_inputs``:
the monthly statistics and the counts of the registers, see layers/index_inputs.py). The index
and hot spots are computed from them by etl/derive.py.

A record of a new batch touches every month from the one it was found/accepted in to now: its
counts and its overdue status live in those months, and an import that closed it takes it out of
months that counted it while open (a full refresh touches only found..closed: nothing is stale).
Months are local (Asia/Shanghai). A record (hazard, case, or person for the index's inputs)
whose *place* or *start* an import changed is taken out of its old place's months too: the upsert
notes the place and start it left (``pingan.refresh_moved``, migration 0027) and the refresh that
takes the batch recomputes those months (before, they kept counting it until a ``--full``
refresh).

Which batches: every done batch that no refresh has taken yet (``etl_batches.refreshed_at``, set
in the refresh's own transaction), whatever its id. Ids are handed out when a load begins, and
loads commit in any order: "the batches above the highest id refreshed" missed a batch that began
before a higher one and committed after a refresh had taken that one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text

from layers import versions
from layers.db import SYSTEM, set_principal
from layers.index_inputs import refresh_inputs

JOB = "monthly_stats"

# A record's place is its grid, else (placed only to a village or town by its address, migration
# 0027) its village, else its town: the code each (place, month) pair below is keyed on.
_TOUCHED = """
CREATE TEMP TABLE touched ON COMMIT DROP AS
SELECT DISTINCT code, m::date AS period FROM (
    SELECT coalesce(grid_code, village_code, town_code) AS code, found_at AS t0,
           CASE WHEN :full THEN coalesce(closed_at, now()) ELSE now() END AS t1
    FROM pingan.hazards WHERE batch_id > :since OR :full
    UNION ALL
    SELECT coalesce(grid_code, village_code, town_code), accepted_at,
           CASE WHEN :full THEN coalesce(closed_at, now()) ELSE now() END
    FROM pingan.cases WHERE batch_id > :since OR :full
    UNION ALL  -- where updates took records from (etl/upsert.py): those months count them no more
    SELECT code, t0, now() FROM pingan.refresh_moved WHERE batch_id > :since AND NOT :full
) r, generate_series(date_trunc('month', r.t0 AT TIME ZONE 'Asia/Shanghai'),
                     date_trunc('month', r.t1 AT TIME ZONE 'Asia/Shanghai'), interval '1 month') m
"""

# The villages' and towns' months to roll up again: those of every touched place.
_TOUCHED_AREAS = """
CREATE TEMP TABLE touched_areas ON COMMIT DROP AS
SELECT DISTINCT left(code, 12) AS code, period FROM touched WHERE length(code) >= 12
UNION SELECT DISTINCT left(code, 9), period FROM touched
"""

# One row per (place, month) of {pairs}; each metric a correlated count over the place's records
# ({place}: the grid's, which the (grid_code) indexes answer without scanning other grids; or a
# village's or town's own, without a grid, which the partial *_coarse_idx indexes answer).
_OWN_ROWS = """
INSERT INTO {into} (period, level, code, hazards_found, hazards_rectified,
    hazards_rectified_on_time, hazards_closed, hazards_overdue, cases_accepted, cases_resolved,
    cases_resolved_grassroots, cases_overdue)
SELECT s.* FROM (
  SELECT t.period, {level}, t.code,
    count(*) FILTER (WHERE h.found_at >= w.t0 AND h.found_at < w.t1),
    count(*) FILTER (WHERE h.rectified_at >= w.t0 AND h.rectified_at < w.t1),
    count(*) FILTER (WHERE h.rectified_at >= w.t0 AND h.rectified_at < w.t1
                       AND h.rectified_at <= h.deadline),
    count(*) FILTER (WHERE h.closed_at >= w.t0 AND h.closed_at < w.t1),
    count(*) FILTER (WHERE h.deadline < w.t1 AND h.found_at < w.t1
                       AND (h.rectified_at IS NULL OR h.rectified_at >= w.t1)),
    (SELECT count(*) FROM pingan.cases c
        WHERE {place_c} AND c.accepted_at >= w.t0 AND c.accepted_at < w.t1),
    (SELECT count(*) FROM pingan.cases c
        WHERE {place_c} AND c.resolved_at >= w.t0 AND c.resolved_at < w.t1),
    (SELECT count(*) FROM pingan.cases c
        WHERE {place_c} AND c.resolved_at >= w.t0 AND c.resolved_at < w.t1
        AND c.resolution_level IN ('grid', 'village', 'town')),
    (SELECT count(*) FROM pingan.cases c WHERE {place_c} AND c.accepted_at < w.t1
        AND c.deadline < w.t1 AND coalesce(c.resolved_at, c.transferred_at, c.closed_at, 'infinity') >= w.t1)
  FROM {pairs} t
  CROSS JOIN LATERAL (
      SELECT (t.period::timestamp AT TIME ZONE 'Asia/Shanghai') AS t0,
             ((t.period + interval '1 month')::timestamp AT TIME ZONE 'Asia/Shanghai') AS t1) w
  -- every hazard metric of the month needs one found before its end and not closed before it began
  LEFT JOIN pingan.hazards h ON {place_h} AND h.found_at < w.t1
       AND coalesce(h.closed_at, 'infinity') >= w.t0
  GROUP BY t.period, t.code, w.t0, w.t1
) s (period, level, code, a, b, c, d, e, f, g, h, i)
WHERE a + b + c + d + e + f + g + h + i > 0
"""
_GRID_ROWS = _OWN_ROWS.format(
    into="pingan.monthly_stats", level="'grid'", pairs="(SELECT * FROM touched WHERE length(code) = 15)",
    place_h="h.grid_code = t.code", place_c="c.grid_code = t.code",
)
_AREA_OWN = "{t}.grid_code IS NULL AND coalesce({t}.village_code, {t}.town_code) = t.code"
# the area_own rows are like monthly_stats', whose rows they are added to (SELECT * of both)
_AREA_TABLE = "CREATE TEMP TABLE area_own (LIKE pingan.monthly_stats INCLUDING DEFAULTS) ON COMMIT DROP"
_AREA_ROWS = _OWN_ROWS.format(
    into="area_own", level="CASE length(t.code) WHEN 12 THEN 'village' ELSE 'town' END",
    pairs="touched_areas", place_h=_AREA_OWN.format(t="h"), place_c=_AREA_OWN.format(t="c"),
)

# A village is its grids and its own records without a grid; a town its villages and its own
# records without a village.
_ROLL_UP = """
INSERT INTO pingan.monthly_stats (period, level, code, hazards_found, hazards_rectified,
    hazards_rectified_on_time, hazards_closed, hazards_overdue, cases_accepted, cases_resolved,
    cases_resolved_grassroots, cases_overdue)
SELECT period, :level, left(code, :width), sum(hazards_found), sum(hazards_rectified),
    sum(hazards_rectified_on_time), sum(hazards_closed), sum(hazards_overdue), sum(cases_accepted),
    sum(cases_resolved), sum(cases_resolved_grassroots), sum(cases_overdue)
FROM (SELECT * FROM pingan.monthly_stats WHERE level = :below
      UNION ALL SELECT * FROM area_own WHERE level = :level) m
WHERE (left(code, :width), period) IN (SELECT code, period FROM touched_areas WHERE length(code) = :width)
GROUP BY period, left(code, :width)
"""


@dataclass(frozen=True)
class RefreshResult:
    since_batch: int  # the batches after this id (those taken, and any refreshed among them)
    upto_batch: int  # the highest batch id taken (else the highest refreshed before)
    pairs: int  # touched (place, month) pairs
    rows: int  # monthly_stats rows written (all levels)
    seconds: float
    input_months: int = 0  # months of the index's inputs rewritten
    batches: int = 0  # batches this refresh took


# The batches a refresh takes, marked in its own transaction: the done ones no refresh has taken,
# and with --since those after it again (--full: all, whose marks are kept). Refreshes are
# serialised by the advisory lock; the row locks alone would also keep two from taking one batch.
_TAKE = """
UPDATE pingan.etl_batches SET refreshed_at = now()
WHERE status = 'done' AND (refreshed_at IS NULL OR id > :since)
RETURNING id
"""


def refresh(engine: Engine, *, since_batch: int | None = None, full: bool = False) -> RefreshResult:
    """Recompute what the batches no refresh has taken yet changed (with ``since_batch``, also
    what the batches after it changed; with ``full``, everything)."""
    t0 = time.perf_counter()
    with engine.begin() as conn:
        set_principal(conn, SYSTEM)
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('pingan.refresh'))"))
        last = conn.execute(
            text("SELECT last_batch_id FROM pingan.refresh_state WHERE job = :j"), {"j": JOB}
        ).scalar()
        full = full or (last is None and since_batch is None)
        again = None if full else since_batch  # id > NULL: none again
        taken = sorted(conn.execute(text(_TAKE), {"since": again}).scalars().all())
        upto = max(taken[-1] if taken else 0, last or 0)
        # what the batches after an id touched: the lowest taken less one covers every batch taken;
        # any refreshed before among them (committed after a higher one) is counted again, harmlessly
        since = taken[0] - 1 if taken else upto
        conn.execute(text(_TOUCHED), {"since": since, "full": full})
        pairs = conn.execute(text("SELECT count(*) FROM touched")).scalar_one()
        rows = _recompute(conn, full) if pairs or full else 0
        # the index's inputs: the places' months these batches touched (layers/index_inputs.py)
        months = refresh_inputs(conn, since, full)
        conn.execute(
            text(
                "INSERT INTO pingan.refresh_state (job, last_batch_id) VALUES (:j, :b) ON CONFLICT (job) "
                "DO UPDATE SET last_batch_id = EXCLUDED.last_batch_id, refreshed_at = now()"
            ),
            {"j": JOB, "b": upto},
        )
        # the places the taken batches' updates left, consumed (only those: a batch that commits
        # while this runs keeps its own for the refresh that takes it)
        conn.execute(text("DELETE FROM pingan.refresh_moved WHERE batch_id = ANY (:t)"), {"t": taken})
        if rows or full:
            versions.bump(conn, ["monthly-stats"])
    return RefreshResult(since, upto, pairs, rows, time.perf_counter() - t0, months, len(taken))


def _recompute(conn: Connection, full: bool) -> int:
    conn.execute(text(_TOUCHED_AREAS))
    if full:
        conn.execute(text("DELETE FROM pingan.monthly_stats"))
    else:
        conn.execute(
            text(
                "DELETE FROM pingan.monthly_stats m USING touched t WHERE m.level = 'grid' "
                "AND m.code = t.code AND m.period = t.period"
            )
        )
        conn.execute(
            text(
                "DELETE FROM pingan.monthly_stats m USING touched_areas t "
                "WHERE m.level IN ('village', 'town') AND m.code = t.code AND m.period = t.period"
            )
        )
    n = conn.execute(text(_GRID_ROWS)).rowcount
    conn.execute(text(_AREA_TABLE))
    conn.execute(text(_AREA_ROWS))
    for level, width, below in (("village", 12, "grid"), ("town", 9, "village")):
        n += conn.execute(text(_ROLL_UP), {"level": level, "width": width, "below": below}).rowcount
    return n
