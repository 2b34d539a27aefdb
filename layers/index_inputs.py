"""The index's inputs: what each source counts, per village (and town) and month, and where it is kept.

Counted sources live in ``pingan.index_inputs`` (migration 0020): one row per month holding every
village's counts as one matrix, written by the ETL refresh (:func:`refresh_inputs`, called from
``etl/refresh.py`` after the monthly statistics) and read by the index in one pass
(:func:`read_inputs`). The monthly statistics are copied in; the register sources (cases by kind,
escalated disputes, severe overdue hazards, five-loss persons by grade and overdue visits) are
counted from the records by the queries in :data:`_SQL`, only for the villages and months that
the loaded batches touched. Why a matrix per month: at 30,000 villages × 60 months the same
counts as rows (1.8M rows × 17 columns) take 4-5 s to read, and the register queries 35-45 s to
run; the matrices take well under a second, so a recomputation of the index is bounded by its
own work (docs/index.md, "Speed").

A matrix's places (``codes``) are every village, then every town (:func:`places`): a town's
column holds the counts of its own records, those the loader placed by their address only to the
town (no village, migration 0027), which are in no village's column. A town's inputs are its
villages' sums plus that column, as its monthly statistics are (etl/refresh.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from scipy import sparse
from sqlalchemy import Connection, text

from gis.index import Panel, month_index
from layers import pgcopy

# Every source a model may name: what it counts (per place and month) and where from. Counts are
# additive (towns sum their villages); rates are not (towns: population-weighted mean).
SOURCES: dict[str, tuple[str, str]] = {
    "hazards_found": ("count", "hazards found in the month (monthly_stats)"),
    "hazards_rectified": ("count", "hazards rectified in the month (monthly_stats)"),
    "hazards_rectified_on_time": ("count", "hazards rectified by their deadline (monthly_stats)"),
    "hazards_closed": ("count", "hazards closed in the month (monthly_stats)"),
    "hazards_overdue": ("count", "hazards past their deadline, not rectified at month end (monthly_stats)"),
    "hazards_severe_overdue": ("count", "severe hazards past their deadline, not rectified at month end"),
    "cases_accepted": ("count", "disputes and incidents accepted (monthly_stats)"),
    "cases_resolved": ("count", "cases resolved in the month (monthly_stats)"),
    "cases_resolved_grassroots": ("count", "cases resolved at grid, village or town level (monthly_stats)"),
    "cases_overdue": ("count", "cases past their deadline, unresolved at month end (monthly_stats)"),
    "cases_criminal": ("count", "incidents of theft, fraud, fights and public order accepted"),
    "disputes_escalated": ("count", "disputes transferred, or resolved at district level, in the month"),
    "petitions": ("count", "cases that came as petitions (信访) in the month"),
    "accidents": ("count", "traffic accidents (safety accidents) accepted in the month"),
    "persons_red": ("count", "five-loss persons graded red at month end"),
    "persons_yellow": ("count", "five-loss persons graded yellow at month end"),
    "person_visits_overdue": ("count", "red/yellow persons whose next visit was due before month end"),
    "reports": ("count", "检举控告 reports: not collected yet (no data)"),
    "cult_cases": ("count", "无邪创建 cult cases: not collected yet (no data)"),
    "survey_awareness": ("rate", "public survey 知晓率, percent (index_survey)"),
    "survey_participation": ("rate", "public survey 参与率, percent (index_survey)"),
    "survey_satisfaction": ("rate", "public survey 满意度, percent (index_survey)"),
}
_MONTHLY_STATS = (
    "hazards_found",
    "hazards_rectified",
    "hazards_rectified_on_time",
    "hazards_closed",
    "hazards_overdue",
    "cases_accepted",
    "cases_resolved",
    "cases_resolved_grassroots",
    "cases_overdue",
)
_NO_DATA = ("reports", "cult_cases")


class IndexInputError(ValueError):
    """The index cannot be computed for the asked period (message says why)."""


def add_months(d: date, n: int) -> date:
    i = month_index(d) + n
    return date(i // 12, i % 12 + 1, 1)


# -- inputs ------------------------------------------------------------------------------------
# Each register query buckets every record into the local months it counts in (a case in the month
# it was accepted, a severe hazard in each month it was overdue, ...) and groups: its cost grows
# with the records, not records × months (the former join of every month with every record took
# seconds at 1.8M cases × 60 months). month(x) is the local calendar month of the instant x.
_WINDOW = (
    "(CAST(:first AS timestamp) AT TIME ZONE 'Asia/Shanghai')",
    "((CAST(:last AS timestamp) + interval '1 month') AT TIME ZONE 'Asia/Shanghai')",
)


def _month(x: str) -> str:
    return f"date_trunc('month', {x} AT TIME ZONE 'Asia/Shanghai')"


def _place(t: str) -> str:
    """The place a record of alias ``t`` counts in: its village, else its town (a record the loader
    placed by its address only to a town has no village, migration 0027)."""
    return f"coalesce({t}.village_code, {t}.town_code)"


_SQL = {
    # accepted in the month
    "cases": f"""
SELECT {_month("c.accepted_at")}::date AS period, {_place("c")} AS code,
    count(*) FILTER (WHERE c.kind = 'incident' AND c.category IN ('theft', 'fraud', 'fight', 'public_order'))
        AS cases_criminal,
    count(*) FILTER (WHERE c.channel = 'petition') AS petitions,
    count(*) FILTER (WHERE c.category = 'traffic_accident') AS accidents
FROM RECORDS(cases) c WHERE c.accepted_at >= {_WINDOW[0]} AND c.accepted_at < {_WINDOW[1]}
GROUP BY 1, 2""",  # noqa: S608 - constant text
    # disputes transferred in the month, or resolved at district level in it (once a month each)
    "escalated": f"""
SELECT e.period::date AS period, e.code, count(DISTINCT e.id) AS disputes_escalated FROM (
    SELECT c.id, {_place("c")} AS code, {_month("c.transferred_at")} AS period FROM RECORDS(cases) c
    WHERE c.kind = 'dispute' AND c.transferred_at >= {_WINDOW[0]} AND c.transferred_at < {_WINDOW[1]}
    UNION ALL
    SELECT c.id, {_place("c")}, {_month("c.resolved_at")} FROM RECORDS(cases) c
    WHERE c.kind = 'dispute' AND c.resolution_level = 'district'
        AND c.resolved_at >= {_WINDOW[0]} AND c.resolved_at < {_WINDOW[1]}
) e GROUP BY 1, 2""",  # noqa: S608 - constant text
    # a severe hazard counts at the end of every month from the one in which it was both found and
    # past its deadline, until the month before its rectification, while not closed before the month
    "severe": f"""
SELECT m.period::date AS period, {_place("h")} AS code, count(*) AS hazards_severe_overdue
FROM RECORDS(hazards) h
CROSS JOIN LATERAL generate_series(
    greatest({_month("greatest(h.found_at, h.deadline)")}, CAST(:first AS timestamp)),
    least(coalesce({_month("h.rectified_at")} - interval '1 month', 'infinity'),
          coalesce({_month("h.closed_at")}, 'infinity'), CAST(:last AS timestamp)),
    interval '1 month') AS m(period)
WHERE h.level = 'severe' AND h.deadline IS NOT NULL AND h.deadline < {_WINDOW[1]}
GROUP BY 1, 2""",  # noqa: S608 - constant text
    # at each month's end: the persons registered and not closed, their grade then (the latest
    # change before the end) and their visit then (the latest visit before the end); a grade or a
    # visit holds from its month until the month before the next one
    "persons": f"""
WITH g AS (
    SELECT person_id, grade, {_month("changed_at")} AS m0,
        {_month("lead(changed_at) OVER (PARTITION BY person_id ORDER BY changed_at, id)")} AS m1
    FROM pingan.person_grades
    WHERE person_id IN (SELECT id FROM RECORDS(persons) p0)
), v AS (
    SELECT person_id, next_due, {_month("visited_at")} AS m0,
        {_month("lead(visited_at) OVER (PARTITION BY person_id ORDER BY visited_at, id)")} AS m1
    FROM pingan.person_visits
    WHERE person_id IN (SELECT id FROM RECORDS(persons) p0)
), pm AS (
    SELECT p.id, {_place("p")} AS code, p.registered_at, g.grade, m.period
    FROM pingan.persons p JOIN g ON g.person_id = p.id
    CROSS JOIN LATERAL generate_series(
        greatest(g.m0, {_month("p.registered_at")}, CAST(:first AS timestamp)),
        least(coalesce(g.m1 - interval '1 month', 'infinity'),
              coalesce({_month("p.closed_at")} - interval '1 month', 'infinity'), CAST(:last AS timestamp)),
        interval '1 month') AS m(period)
    WHERE g.grade IN ('red', 'yellow')
), vm AS (
    SELECT v.person_id, v.next_due, m.period FROM v
    CROSS JOIN LATERAL generate_series(
        greatest(v.m0, CAST(:first AS timestamp)),
        least(coalesce(v.m1 - interval '1 month', 'infinity'), CAST(:last AS timestamp)),
        interval '1 month') AS m(period)
    WHERE v.person_id IN (SELECT person_id FROM g WHERE grade IN ('red', 'yellow'))
)
SELECT pm.period::date AS period, pm.code,
    count(*) FILTER (WHERE pm.grade = 'red') AS persons_red,
    count(*) FILTER (WHERE pm.grade = 'yellow') AS persons_yellow,
    count(*) FILTER (WHERE
        (vm.next_due IS NULL AND pm.registered_at
            < ((pm.period + interval '1 month') AT TIME ZONE 'Asia/Shanghai') - interval '30 days')
        OR vm.next_due < (pm.period + interval '1 month')::date) AS person_visits_overdue
FROM pm LEFT JOIN vm ON vm.person_id = pm.id AND vm.period = pm.period
GROUP BY 1, 2""",  # noqa: S608 - constant text
    "survey": "SELECT period, code, awareness AS survey_awareness, participation AS survey_participation, "
    "satisfaction AS survey_satisfaction FROM pingan.index_survey "
    "WHERE level = 'village' AND period BETWEEN :first AND :last",
}
_SQL_COLUMNS = {
    "cases": ("cases_criminal", "petitions", "accidents"),
    "escalated": ("disputes_escalated",),
    "severe": ("hazards_severe_overdue",),
    "persons": ("persons_red", "persons_yellow", "person_visits_overdue"),
    "survey": ("survey_awareness", "survey_participation", "survey_satisfaction"),
}


# every counted source, in the order of the rows of a stored month's matrix
_REGISTERS = ("cases", "escalated", "severe", "persons")
COUNTED = _MONTHLY_STATS + tuple(c for k in _REGISTERS for c in _SQL_COLUMNS[k])
_RECORDS = re.compile(r"RECORDS\((\w+)\)")
# The records of the touched places: a village's by its code (the index hazards_severe_idx finds
# a few villages' severe hazards), a town's own by the *_coarse_idx indexes of 0027. As one
# condition, coalesce(village_code, town_code) IN (...), the planner could use neither index and
# read every severe hazard for a few villages.
_TOUCHED_RECORDS = (
    "(SELECT * FROM pingan.{t} r WHERE r.village_code IN (SELECT code FROM index_touched_places) "
    "UNION ALL SELECT * FROM pingan.{t} r WHERE r.grid_code IS NULL AND r.village_code IS NULL "
    "AND coalesce(r.village_code, r.town_code) IN (SELECT code FROM index_touched_places))"
)


def register_sql(key: str, touched_only: bool = False) -> str:
    """The register query ``key`` with :first and :last to bind; ``touched_only``: only the
    records of the places (villages, towns) listed in the temporary table that
    :func:`refresh_inputs` fills."""
    return _RECORDS.sub(lambda m: _TOUCHED_RECORDS.format(t=m[1]) if touched_only else f"pingan.{m[1]}",
                        _SQL[key])


@dataclass(frozen=True)
class Inputs:
    villages: Panel
    towns: Panel  # counts: the villages' sums plus the town's own records (placed to no village)
    village_towns: np.ndarray  # town code of each village
    notes: tuple[str, ...] = ()


# The columns of a stored month: every village, then every town (a town's own records), each in
# code order; i is the column. Codes have fixed lengths (12 and 9 digits: CHECKs of 0001).
_PLACES = (
    "SELECT code, (row_number() OVER (ORDER BY length(code) DESC, code) - 1)::int4 AS i "
    "FROM (SELECT code FROM pingan.villages UNION ALL SELECT code FROM pingan.towns) a"
)


def places(conn: Connection) -> tuple[np.ndarray, int]:
    """The codes of a stored month's columns (villages, then towns) and the number of villages."""
    codes = conn.execute(text(f"SELECT code FROM ({_PLACES}) p ORDER BY i")).scalars().all()  # noqa: S608
    return np.array(codes), sum(len(c) == 12 for c in codes)


def _months(first: date, last: date) -> list[date]:
    return [add_months(first, i) for i in range(month_index(last) - month_index(first) + 1)]


def _literal(d: date) -> str:
    return f"DATE '{d:%Y-%m-%d}'"  # COPY takes no parameters


def read_inputs(conn: Connection, first: date, last: date, sources: Iterable[str] | None = None) -> Inputs:
    """Every source (or ``sources``) per village and town, for the months first..last.

    The counted sources come from ``pingan.index_inputs`` (one matrix per month, one binary
    COPY for all months): the villages' columns, and the towns' own records added to their
    villages' sums; the survey's rates from ``pingan.index_survey``. A month missing from the
    stored inputs, or stored for another list of places, is an error asking for a refresh: the
    index never scores on counts that are not there."""
    periods = tuple(_months(first, last))
    vil = conn.execute(text("SELECT code, town_code, population FROM pingan.villages ORDER BY code")).all()
    towns = conn.execute(text("SELECT code, population FROM pingan.towns ORDER BY code")).all()
    if not vil or not towns:
        raise IndexInputError("no villages or towns loaded: load the areas first "
                              "(pingan demo load / etl load)")
    codes = np.array([r.code for r in vil])
    columns = np.concatenate([codes, [r.code for r in towns]])  # of a stored month: places()
    wanted = set(SOURCES if sources is None else sources)
    values: dict[str, np.ndarray] = {}
    own: dict[str, np.ndarray] = {}  # the towns' own records
    with conn.connection.driver_connection.cursor() as cur:
        counted = [c for c in COUNTED if c in wanted]
        if counted:
            stored = _read_stored(cur, first, last)
            missing = [p for p in periods if p not in stored]
            if missing:
                raise IndexInputError(
                    f"no index inputs for {', '.join(f'{p:%Y-%m}' for p in missing[:6])}"
                    f"{' …' if len(missing) > 6 else ''}: run `pingan etl refresh`")
            if any(not np.array_equal(c, columns) for c, _ in stored.values()):
                raise IndexInputError("the stored index inputs are for other villages or towns than those "
                                      "loaded: run `pingan etl refresh`")
            nv = len(codes)
            for col in counted:
                i = COUNTED.index(col)
                values[col] = np.stack([stored[p][1][i, :nv] for p in periods]).astype(float)
                own[col] = np.stack([stored[p][1][i, nv:] for p in periods]).astype(float)
        cols = [c for c in _SQL_COLUMNS["survey"] if c in wanted]
        if cols:
            got = _read_places(cur, _SQL["survey"], first, last, cols, "float8", "'NaN'")
            for col in cols:
                arr = np.full((len(periods), len(codes)), np.nan)
                arr[got["t"], got["n"]] = got[col]
                values[col] = arr
    for name in _NO_DATA:
        if name in wanted:
            values[name] = np.full((len(periods), len(codes)), np.nan)
    village_towns = np.array([r.town_code for r in vil])
    population = np.array([r.population for r in vil], dtype=float)
    vpanel = Panel(periods, codes, population, values)
    return Inputs(vpanel, _towns_panel(vpanel, village_towns, towns, own), village_towns)


def _read_places(cur, body: str, first: date, last: date, cols: list[str], kind: str, missing: str) -> dict:  # noqa: ANN001
    """A query of (period, code, cols…) for first..last as arrays: month index from ``first``,
    column of the place (:data:`_PLACES`: villages, then towns), the columns (NULL → ``missing``)."""
    body = body.replace(":first", _literal(first)).replace(":last", _literal(last))
    select = ", ".join(f"coalesce(q.{c}::{kind}, {missing})" for c in cols)
    return pgcopy.read_fixed(
        cur,
        # date_part, not extract: extract computes in numeric, 0.6 s more per 1.8M rows
        "SELECT ((date_part('year', q.period) * 12 + date_part('month', q.period) - 1)::int4 "  # noqa: S608
        f"- {month_index(first)})::int4, p.i, {select} FROM ({body}) q "
        f"JOIN ({_PLACES}) p ON p.code = q.code",
        [("t", "int4"), ("n", "int4")] + [(c, kind) for c in cols],
    )


def _read_stored(cur, first: date, last: date) -> dict[date, tuple[np.ndarray, np.ndarray]]:  # noqa: ANN001
    """Stored months first..last: {period: (place codes, counts (len(COUNTED), places))}, the
    counts in COUNTED's order (a month stored with other sources is left out: a refresh rebuilds
    it). Each distinct list of codes is read once."""
    rows = pgcopy.read_rows(
        cur,
        "SELECT period, md5(array_to_string(codes, ',')), sources, counts FROM pingan.index_inputs "  # noqa: S608
        f"WHERE period BETWEEN {_literal(first)} AND {_literal(last)} ORDER BY period",
    )
    lists: dict[bytes, np.ndarray] = {}
    out = {}
    for period_b, h_b, sources_b, counts_b in rows:
        period, h = pgcopy.decode_date(period_b), bytes(h_b)
        if tuple(pgcopy.decode_array(sources_b, "text")) != COUNTED:
            continue
        if h not in lists:
            ((codes_b,),) = pgcopy.read_rows(
                cur, f"SELECT codes FROM pingan.index_inputs WHERE period = {_literal(period)}"  # noqa: S608
            )
            lists[h] = pgcopy.decode_array(codes_b, "text")
        codes = lists[h]
        out[period] = (codes, np.frombuffer(counts_b, dtype=">i4").reshape(len(COUNTED), len(codes)))
    return out


def refresh_inputs(conn: Connection, since: int, full: bool) -> int:
    """Bring ``pingan.index_inputs`` up to date after the monthly statistics were refreshed in the
    same transaction (etl/refresh.py, whose temporary table ``touched`` lists the (grid, month)
    pairs it recomputed). Returns the number of months written.

    Rebuilt: the places' months that batches after ``since`` touched (a grid's month, a
    person's months while registered; a place is a village, or a town for its records placed to
    no village), every place for a month not stored yet (a new month, or one stored for other
    places or sources: the first refresh after the towns' own columns came), everything when
    ``full``. Months run from the first record to the current one."""
    try:
        begins = data_start(conn)
    except IndexInputError:  # no records: no months
        conn.execute(text("DELETE FROM pingan.index_inputs"))
        return 0
    current = conn.execute(
        text("SELECT date_trunc('month', now() AT TIME ZONE 'Asia/Shanghai')::date")).scalar_one()
    months = _months(begins, current)
    codes, n_villages = places(conn)
    with conn.connection.driver_connection.cursor() as cur:
        stored = {} if full else {p: v for p, v in _read_stored(cur, begins, current).items()
                                  if np.array_equal(v[0], codes)}
    # the register queries sort and hash millions of rows at district scale: in memory, not in
    # temporary files (measured at 30,000 villages: the persons query 48 s -> 28 s)
    conn.execute(text("SET LOCAL work_mem = '256MB'"))
    fresh = [p for p in months if p not in stored]  # every place
    pairs = [] if full else conn.execute(text(_TOUCHED_PAIRS), {"since": since}).all()
    touched = set(fresh) | {p for _, p in pairs if begins <= p <= current}
    conn.execute(text("DELETE FROM pingan.index_inputs WHERE period NOT BETWEEN :a AND :b"),
                 {"a": begins, "b": current})
    if not touched:
        return 0
    # the places counted again: every one for a fresh month, else those the batches touched
    some = codes if fresh else np.array(sorted({c for c, _ in pairs}))
    redo = pd.Index(codes).get_indexer(some)
    redo = redo[redo >= 0]
    everyone = len(redo) == len(codes)
    if not everyone:  # the register queries count only these (register_sql)
        conn.execute(text("CREATE TEMP TABLE index_touched_places (code text PRIMARY KEY) ON COMMIT DROP"))
        conn.execute(text("INSERT INTO index_touched_places SELECT unnest(CAST(:c AS text[]))"),
                     {"c": [str(c) for c in codes[redo]]})
    first, last = max(min(touched), begins), min(max(touched), current)
    window = _months(first, last)
    counts = np.zeros((len(window), len(COUNTED), len(codes)), dtype=np.int64)
    for t, p in enumerate(window):
        if p in stored:
            counts[t] = stored[p][1]
    with conn.connection.driver_connection.cursor() as cur:
        # the monthly statistics: every village and town of the window's months, as stored now
        stats = ("SELECT * FROM pingan.monthly_stats WHERE level IN ('village', 'town') "
                 "AND period BETWEEN :first AND :last")
        got = _read_places(cur, stats, first, last, list(_MONTHLY_STATS), "int4", "0")
        k = len(_MONTHLY_STATS)
        counts[:, :k, :] = 0
        for i, col in enumerate(_MONTHLY_STATS):
            counts[got["t"], i, got["n"]] = got[col]
        # a town's statistics are its villages' and its own records' (etl/refresh.py): its column
        # keeps its own, what the town counts beyond its villages
        _less_villages(counts[:, :k, :], codes, n_villages)
        # the registers: the touched places over the window, counted again
        for key in _REGISTERS:
            cols = list(_SQL_COLUMNS[key])
            rows = [COUNTED.index(c) for c in cols]
            got = _read_places(cur, register_sql(key, not everyone), first, last, cols, "int4", "0")
            for r in rows:
                counts[:, r, redo] = 0
            for r, col in zip(rows, cols, strict=True):
                counts[got["t"], r, got["n"]] = got[col]
        conn.execute(text("DELETE FROM pingan.index_inputs WHERE period BETWEEN :a AND :b"),
                     {"a": first, "b": last})
        code_list = pgcopy.text_array([str(c) for c in codes])
        sources = pgcopy.text_array(COUNTED)
        if counts.min(initial=0) < 0 or counts.max(initial=0) > np.iinfo(np.int32).max:
            raise IndexInputError("an index input count is out of the int4 range")
        pgcopy.copy_rows(cur, "pingan.index_inputs", ("period", "codes", "sources", "counts"), (
            (p, code_list, sources, counts[t].astype(">i4").tobytes()) for t, p in enumerate(window)))
    return len(window)


# The (place, month) pairs whose counts the batches after :since may have changed: the places'
# months the monthly statistics recomputed (a new case's or hazard's months from its start to now:
# etl/refresh.py; a grid's first 12 digits are its village, a village's or town's own records are
# keyed on its code), and a person's months from registration or from a new grade or visit to
# now: a record closed by an import stops counting in months that counted it while it was open.
_TOUCHED_PAIRS = f"""
SELECT DISTINCT r.code, m::date AS period FROM (
    SELECT left(code, 12) AS code, period::timestamp AS t0 FROM touched
    UNION ALL
    SELECT {_place("p")}, {_month("p.registered_at")} FROM pingan.persons p WHERE p.batch_id > :since
    UNION ALL
    SELECT {_place("p")}, {_month("g.changed_at")}
    FROM pingan.person_grades g JOIN pingan.persons p ON p.id = g.person_id WHERE g.batch_id > :since
    UNION ALL
    SELECT {_place("p")}, {_month("v.visited_at")}
    FROM pingan.person_visits v JOIN pingan.persons p ON p.id = v.person_id WHERE v.batch_id > :since
) r, generate_series(r.t0, {_month("now()")}, interval '1 month') m
WHERE r.code IS NOT NULL
"""  # noqa: S608 - constant text


def _less_villages(counts: np.ndarray, codes: np.ndarray, n_villages: int) -> None:
    """``counts`` (months × sources × places) holds each town's monthly statistics in its column:
    take its villages' sums off, in place, leaving the town's own records."""
    town = pd.Index(codes[n_villages:]).get_indexer([str(c)[:9] for c in codes[:n_villages]])
    m = sparse.csr_matrix((np.ones(n_villages), (town, np.arange(n_villages))),
                          shape=(len(codes) - n_villages, n_villages))
    months, sources = counts.shape[:2]
    summed = m @ counts[:, :, :n_villages].reshape(-1, n_villages).T  # towns × (months · sources)
    counts[:, :, n_villages:] -= summed.T.astype(counts.dtype).reshape(months, sources, -1)
    if counts.min(initial=0) < 0:
        raise IndexInputError("a town's monthly statistics count less than its villages': run "
                              "`pingan etl refresh --full`")


def _towns_panel(v: Panel, village_towns: np.ndarray, towns: list, own: dict | None = None) -> Panel:
    """The towns' panel: counts summed over their villages, plus ``own`` (source → months × towns:
    the towns' own records, placed to no village); rates as population-weighted means."""
    tcodes = np.array([r.code for r in towns])
    own = own or {}
    idx = pd.Index(tcodes).get_indexer(village_towns)
    if (idx < 0).any():
        raise IndexInputError("a village names a town that is not loaded")
    # towns × villages membership, sparse: a town's sum is one sparse product per source
    m = sparse.csr_matrix((np.ones(len(idx)), (idx, np.arange(len(idx)))), shape=(len(tcodes), len(idx)))
    values = {}
    for name, arr in v.values.items():
        if SOURCES[name][0] == "count":
            summed = (m @ np.nan_to_num(arr).T).T
            if name in own:
                summed = summed + own[name]
            values[name] = np.where(np.isnan(arr).all(axis=1, keepdims=True), np.nan, summed)
        else:  # population-weighted mean over the villages with a value
            w = np.where(np.isnan(arr), 0.0, v.population)
            den = (m @ w.T).T
            num = (m @ (np.nan_to_num(arr) * w).T).T
            with np.errstate(invalid="ignore", divide="ignore"):
                values[name] = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return Panel(v.periods, tcodes, np.array([r.population for r in towns], dtype=float), values)


def data_start(conn: Connection) -> date:
    """The first month (local) with a hazard found or a case accepted."""
    first = conn.execute(text(
        "SELECT least((SELECT min(found_at) FROM pingan.hazards),"
        " (SELECT min(accepted_at) FROM pingan.cases)) AT TIME ZONE 'Asia/Shanghai'")).scalar()
    if first is None:
        raise IndexInputError("no hazards or cases loaded: nothing to compute an index from")
    return date(first.year, first.month, 1)


