"""The safety governance index in the database: inputs, computed scores, the ladder, stars.

The pure computation is :mod:`gis.index`; this module reads its inputs as the owner (monthly
stats, hazards, cases, persons, villages, the survey), stores what it computes, and rebuilds the
accountability ladder from the stored scores. The API and the CLI call the same functions:

- :func:`compute` (engine, first period, model[, last period]) → :class:`ComputeSummary`
- :func:`open_warnings` (connection[, town]) → the ladder's open items, overdue flagged
- :func:`warning`, :func:`warning_history` (connection, id) → one item and its steps (evidence:
  :mod:`layers.index_evidence`; documents: :mod:`layers.index_documents`)
- :func:`compute_stars` (engine, year, model) → star ratings of the villages
- :func:`scores` (connection, period, level) → stored rows for display

Months are local (Asia/Shanghai), like ``pingan.monthly_stats`` (etl/refresh.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from sqlalchemy import Connection, Engine, text

from gis.index import COLOURS, IndexModel, Panel, load_model, month_index, parse_model
from gis.index import compute as compute_panel
from gis.index.classify import CLASS_KEYS
from gis.index.ladder import run_ladders
from gis.index.stars import scorecards
from layers import pgcopy, versions
from layers.copy import copy_frame

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
LAYERS = ("index-villages", "index-towns")


class IndexInputError(ValueError):
    """The index cannot be computed for the asked period (message says why)."""


def default_model() -> IndexModel:
    """The model that ships with Pingan Map (layers/index_models/default.toml)."""
    text_ = resources.files("layers").joinpath("index_models/default.toml").read_text(encoding="utf-8")
    return parse_model(text_, SOURCES)


def read_model(path: str | Path | None) -> IndexModel:
    return default_model() if path is None else load_model(path, SOURCES)


def parse_period(s: str) -> date:
    """'2024-05' → date(2024, 5, 1); anything else is a clear error."""
    try:
        y, m = s.strip().split("-")
        if len(y) != 4 or len(m) != 2:
            raise ValueError
        return date(int(y), int(m), 1)
    except ValueError:
        raise IndexInputError(f"period must be YYYY-MM, not {s!r}") from None


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


_SQL = {
    "monthly_stats": "SELECT period, code, "  # noqa: S608 - fixed column names
    + ", ".join(_MONTHLY_STATS) + " FROM pingan.monthly_stats "
    "WHERE level = 'village' AND period BETWEEN :first AND :last",
    # accepted in the month
    "cases": f"""
SELECT {_month("c.accepted_at")}::date AS period, c.village_code AS code,
    count(*) FILTER (WHERE c.kind = 'incident' AND c.category IN ('theft', 'fraud', 'fight', 'public_order'))
        AS cases_criminal,
    count(*) FILTER (WHERE c.channel = 'petition') AS petitions,
    count(*) FILTER (WHERE c.category = 'traffic_accident') AS accidents
FROM pingan.cases c WHERE c.accepted_at >= {_WINDOW[0]} AND c.accepted_at < {_WINDOW[1]}
GROUP BY 1, 2""",  # noqa: S608 - constant text
    # disputes transferred in the month, or resolved at district level in it (once a month each)
    "escalated": f"""
SELECT e.period::date AS period, e.code, count(DISTINCT e.id) AS disputes_escalated FROM (
    SELECT c.id, c.village_code AS code, {_month("c.transferred_at")} AS period FROM pingan.cases c
    WHERE c.kind = 'dispute' AND c.transferred_at >= {_WINDOW[0]} AND c.transferred_at < {_WINDOW[1]}
    UNION ALL
    SELECT c.id, c.village_code, {_month("c.resolved_at")} FROM pingan.cases c
    WHERE c.kind = 'dispute' AND c.resolution_level = 'district'
        AND c.resolved_at >= {_WINDOW[0]} AND c.resolved_at < {_WINDOW[1]}
) e GROUP BY 1, 2""",  # noqa: S608 - constant text
    # a severe hazard counts at the end of every month from the one in which it was both found and
    # past its deadline, until the month before its rectification, while not closed before the month
    "severe": f"""
SELECT m.period::date AS period, h.village_code AS code, count(*) AS hazards_severe_overdue
FROM pingan.hazards h
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
), v AS (
    SELECT person_id, next_due, {_month("visited_at")} AS m0,
        {_month("lead(visited_at) OVER (PARTITION BY person_id ORDER BY visited_at, id)")} AS m1
    FROM pingan.person_visits
), pm AS (
    SELECT p.id, p.village_code, p.registered_at, g.grade, m.period
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
SELECT pm.period::date AS period, pm.village_code AS code,
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
    "monthly_stats": _MONTHLY_STATS,
    "cases": ("cases_criminal", "petitions", "accidents"),
    "escalated": ("disputes_escalated",),
    "severe": ("hazards_severe_overdue",),
    "persons": ("persons_red", "persons_yellow", "person_visits_overdue"),
    "survey": ("survey_awareness", "survey_participation", "survey_satisfaction"),
}


@dataclass(frozen=True)
class Inputs:
    villages: Panel
    towns: Panel
    village_towns: np.ndarray  # town code of each village
    notes: tuple[str, ...] = ()


def read_inputs(conn: Connection, first: date, last: date, sources: Iterable[str] | None = None) -> Inputs:
    """Every source (or ``sources``) per village and town, for the months first..last.

    Each source query is read with one binary COPY straight into numpy arrays (month index,
    village index, values): at 30,000 villages × 60 months that is 1.8 million rows, which as
    Python rows took 22 s."""
    periods = tuple(add_months(first, i) for i in range(month_index(last) - month_index(first) + 1))
    vil = conn.execute(text("SELECT code, town_code, population FROM pingan.villages ORDER BY code")).all()
    towns = conn.execute(text("SELECT code, population FROM pingan.towns ORDER BY code")).all()
    if not vil or not towns:
        raise IndexInputError("no villages or towns loaded: load the areas first "
                              "(pingan demo load / etl load)")
    codes = np.array([r.code for r in vil])
    wanted = set(SOURCES if sources is None else sources)
    values: dict[str, np.ndarray] = {}
    params = {"first": first, "last": last}
    literals = {k: f"DATE '{v:%Y-%m-%d}'" for k, v in params.items()}  # COPY takes no parameters
    with conn.connection.driver_connection.cursor() as cur:
        for key, query in _SQL.items():
            cols = [c for c in _SQL_COLUMNS[key] if c in wanted]
            if not cols:
                continue
            missing = "'NaN'" if key == "survey" else "0"
            body = query.replace(":first", literals["first"]).replace(":last", literals["last"])
            select = ", ".join(f"coalesce(q.{c}::float8, {missing})" for c in cols)
            got = pgcopy.read_fixed(
                cur,
                f"SELECT ((extract(year FROM q.period) * 12 + extract(month FROM q.period) - 1)::int4 "  # noqa: S608
                f"- {month_index(first)})::int4, p.i, {select} FROM ({body}) q "
                "JOIN (SELECT code, (row_number() OVER (ORDER BY code) - 1)::int4 AS i "
                "FROM pingan.villages) p "
                "ON p.code = q.code",
                [("t", "int4"), ("n", "int4")] + [(c, "float8") for c in cols],
            )
            for col in cols:
                arr = np.full((len(periods), len(codes)), np.nan if key == "survey" else 0.0)
                arr[got["t"], got["n"]] = got[col]
                values[col] = arr
    notes: list[str] = []
    stats_used = bool(wanted & set(_MONTHLY_STATS))
    has_stats = "SELECT EXISTS (SELECT 1 FROM pingan.monthly_stats WHERE period BETWEEN :first AND :last)"
    has_hazards = "SELECT EXISTS (SELECT 1 FROM pingan.hazards)"
    if (
        stats_used
        and not conn.execute(text(has_stats), params).scalar_one()
        and conn.execute(text(has_hazards)).scalar_one()
    ):
        raise IndexInputError("pingan.monthly_stats is empty for these months: "
                              "run `pingan etl refresh` first")
    for name in _NO_DATA:
        if name in wanted:
            values[name] = np.full((len(periods), len(codes)), np.nan)
    village_towns = np.array([r.town_code for r in vil])
    population = np.array([r.population for r in vil], dtype=float)
    vpanel = Panel(periods, codes, population, values)
    return Inputs(vpanel, _towns_panel(vpanel, village_towns, towns), village_towns, tuple(notes))


def _towns_panel(v: Panel, village_towns: np.ndarray, towns: list) -> Panel:
    tcodes = np.array([r.code for r in towns])
    idx = pd.Index(tcodes).get_indexer(village_towns)
    if (idx < 0).any():
        raise IndexInputError("a village names a town that is not loaded")
    # towns × villages membership, sparse: a town's sum is one sparse product per source
    m = sparse.csr_matrix((np.ones(len(idx)), (idx, np.arange(len(idx)))), shape=(len(tcodes), len(idx)))
    values = {}
    for name, arr in v.values.items():
        if SOURCES[name][0] == "count":
            summed = (m @ np.nan_to_num(arr).T).T
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


# -- compute and store -------------------------------------------------------------------------
@dataclass
class ComputeSummary:
    first: date
    last: date
    model: str
    model_id: int
    rows: int
    classes: dict[str, dict[str, int]]  # level -> class -> places (last period)
    vetoed: dict[str, int]  # level -> places vetoed (last period)
    open_warnings: int
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # read, compute, store, ladder: seconds


def compute(
    engine: Engine, first: date, model: IndexModel | None = None, last: date | None = None
) -> ComputeSummary:
    """Compute, store and publish the index of every village and town for first..last (one
    month by default), then rebuild the ladder. One transaction; runs as the owner."""
    t0 = time.perf_counter()
    model = model or default_model()
    last = last or first
    if last < first:
        raise IndexInputError(f"{last:%Y-%m} is before {first:%Y-%m}")
    lag = 12 if any(i.baseline for i in model.indicators) else 0
    start = add_months(first, -(lag + 1))  # and the month before, for change and rank change
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('pingan.index'))"))
        # the register queries sort and hash millions of rows at district scale: in memory, not
        # in temporary files (measured at 30,000 villages: the persons query 48 s -> 28 s)
        conn.execute(text("SET LOCAL work_mem = '256MB'"))
        begins = data_start(conn)
        if first < begins:
            raise IndexInputError(f"the records start in {begins:%Y-%m}: no index before that")
        # months before the records are unknown, not zero: the panel starts with the records
        phases = {"read": -time.perf_counter()}
        inputs = read_inputs(conn, max(start, begins), last, model.sources())
        phases["read"] += time.perf_counter()
        phases["compute"] = phases["store"] = 0.0
        model_id = _store_model(conn, model)
        conn.execute(
            text("DELETE FROM pingan.index_months WHERE period BETWEEN :a AND :b"), {"a": first, "b": last}
        )
        rows, classes, vetoed, notes = 0, {}, {}, list(inputs.notes)
        for level, panel, towns in (
            ("village", inputs.villages, inputs.village_towns),
            ("town", inputs.towns, inputs.towns.codes),
        ):
            tc = time.perf_counter()
            result = compute_panel(model.for_level(level), panel)
            phases["compute"] += time.perf_counter() - tc
            ts = range(result.t(first), result.t(last) + 1)
            tc = time.perf_counter()
            rows += _store_months(conn, level, result, ts, towns, model_id)
            phases["store"] += time.perf_counter() - tc
            t_last = result.t(last)
            classes[level] = {k: int((result.klass[t_last] == i).sum()) for i, k in enumerate(CLASS_KEYS)}
            vetoed[level] = int(result.veto[t_last].sum())
            notes += sorted(
                {f"{p:%Y-%m} {level}: {n}" for t in ts for p in [result.periods[t]] for n in result.notes[p]}
            )
        tc = time.perf_counter()
        n_open = rebuild_ladder(conn, model)
        phases["ladder"] = time.perf_counter() - tc
        # the layers' versions are renewed by the months' statements (migration 0016's trigger)
    return ComputeSummary(
        first,
        last,
        f"{model.name} {model.version}",
        model_id,
        rows,
        classes,
        vetoed,
        n_open,
        notes,
        time.perf_counter() - t0,
        phases,
    )


def _store_model(conn: Connection, model: IndexModel) -> int:
    return conn.execute(
        text(
            "INSERT INTO pingan.index_models (name, version, sha256, toml) VALUES (:n, :v, :s, :t) "
            "ON CONFLICT (sha256) DO UPDATE SET name = EXCLUDED.name RETURNING id"
        ),
        {"n": model.name, "v": model.version, "s": model.sha256, "t": model.text},
    ).scalar_one()


_MONTH_COLUMNS = ("period", "level", "model_id", "class_keys", "class_hex", "indicators", "weights",
                  "veto_reasons", "notes", "codes", "town_codes", "score_x100", "class", "rank",
                  "rank_change", "change_x100", "veto_mask", "value", "risk")


def _store_months(conn: Connection, level: str, r, ts: range, towns: np.ndarray, model_id: int) -> int:  # noqa: ANN001
    """One row per month of ``ts`` (migration 0016), all sent by one binary COPY: one statement,
    so the statement trigger that renews the index layers' versions fires once. Returns the
    number of place-months stored."""
    if len(r.veto_reasons_list) > 31:
        raise IndexInputError("a model may have at most 31 vetoes")
    codes = pgcopy.text_array([str(c) for c in r.codes])
    town_codes = pgcopy.text_array([str(t)[:9] for t in towns])
    keys = pgcopy.text_array(CLASS_KEYS)
    hexes = pgcopy.text_array([COLOURS[k][2] for k in CLASS_KEYS])
    indicators = pgcopy.text_array(r.indicator_ids)
    reasons = pgcopy.text_array(r.veto_reasons_list)
    bits = (1 << np.arange(len(r.veto_reasons_list), dtype=np.int64))[:, None]

    def month(t: int) -> tuple:
        skipped = ~np.isfinite(r.value[:, t, :]).any(axis=1)
        rc, ch = r.rank_change[t], r.change[t]
        mask = (r.veto_hits[:, t, :].astype(np.int64) * bits).sum(axis=0) if len(bits) else 0 * r.rank[t]
        return (
            r.periods[t], level, model_id, keys, hexes, indicators,
            pgcopy.array(np.where(skipped, np.nan, r.weight[:, t]), "float8"),
            reasons, pgcopy.text_array(r.notes[r.periods[t]]), codes, town_codes,
            pgcopy.array(np.rint(r.score[t] * 100), "int4"),
            pgcopy.array(r.klass[t], "int2"),
            pgcopy.array(r.rank[t], "int4"),
            pgcopy.array(np.nan_to_num(rc), "int4", null=np.isnan(rc)),
            pgcopy.array(np.rint(np.nan_to_num(ch) * 100), "int4", null=np.isnan(ch)),
            pgcopy.array(mask, "int4"),
            pgcopy.array(r.value[:, t, :], "float4"),
            pgcopy.array(r.risk[:, t, :], "float4"),
        )

    with conn.connection.driver_connection.cursor() as cur:
        pgcopy.copy_rows(cur, "pingan.index_months", _MONTH_COLUMNS, (month(t) for t in ts))
    return len(ts) * len(r.codes)


def contributions(conn: Connection, period: date, level: str, code: str) -> dict | None:
    """Each indicator's part in one place's stored score: {indicator: {value, risk, weight,
    deduction} | {skipped: True}}; None when there is no such score."""
    return conn.execute(
        text("SELECT pingan.index_contributions(:p, :l, :c)"), {"p": period, "l": level, "c": code}
    ).scalar_one()


def scores(conn: Connection, period: date, level: str = "village") -> list:
    """Stored scores of a month, best first (works under the service's row security too); what
    each indicator contributed: :func:`contributions`."""
    return conn.execute(
        text(
            "SELECT s.code, coalesce(v.name, t.name) AS name, s.score, s.class AS class_key, s.colour_hex, "
            "s.rank, s.rank_change, "
            "s.change, s.veto, s.veto_reasons FROM pingan.index_scores s "
            "LEFT JOIN pingan.villages v ON s.level = 'village' AND v.code = s.code "
            "LEFT JOIN pingan.towns t ON s.level = 'town' AND t.code = s.code "
            "WHERE s.period = :p AND s.level = :l ORDER BY s.rank, s.code"
        ),
        {"p": period, "l": level},
    ).all()


# -- the ladder --------------------------------------------------------------------------------
@dataclass
class _History:
    """A level's stored months: class (-1: no score that month) and rank change per place."""

    periods: list[date]
    codes: np.ndarray
    towns: np.ndarray
    klass: np.ndarray  # (T, N) class index into CLASS_KEYS
    rank_change: np.ndarray  # (T, N) float, NaN: none


def _histories(conn: Connection) -> dict[str, _History]:
    """Every stored month of each level, read with two binary COPYs (the places' code arrays are
    read once per distinct list, not once per month)."""
    out: dict[str, _History] = {}
    with conn.connection.driver_connection.cursor() as cur:
        months = pgcopy.read_rows(
            cur,
            "SELECT level, period, md5(array_to_string(codes, ',')), class_keys, class, rank_change "
            "FROM pingan.index_months ORDER BY level, period",
        )
        lists: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for level_b, period_b, h_b, *_ in months:
            h = bytes(h_b).decode()
            if h not in lists:
                period = pgcopy.decode_date(period_b)
                ((codes_b, towns_b),) = pgcopy.read_rows(
                    cur,
                    "SELECT codes, town_codes FROM pingan.index_months "  # noqa: S608 - literals from the rows
                    f"WHERE level = '{bytes(level_b).decode()}' AND period = DATE '{period:%Y-%m-%d}'",
                )
                lists[h] = (pgcopy.decode_array(codes_b, "text"), pgcopy.decode_array(towns_b, "text"))
    by_level: dict[str, list] = {}
    for level_b, period_b, h_b, keys_b, class_b, rc_b in months:
        by_level.setdefault(bytes(level_b).decode(), []).append((period_b, h_b, keys_b, class_b, rc_b))
    for level, rows in by_level.items():
        hs = [bytes(r[1]).decode() for r in rows]
        if len(set(hs)) == 1:
            codes, towns = lists[hs[0]]
        else:  # places came or went between months: every place ever scored
            allc = pd.concat([pd.Series(lists[h][1], index=lists[h][0]) for h in dict.fromkeys(hs)])
            allc = allc[~allc.index.duplicated()].sort_index()
            codes, towns = allc.index.to_numpy(), allc.to_numpy()
        klass = np.full((len(rows), len(codes)), -1, dtype=np.int16)
        rank_change = np.full((len(rows), len(codes)), np.nan)
        for t, (_, h, keys_b, class_b, rc_b) in enumerate(rows):
            at = pd.Index(codes).get_indexer(lists[bytes(h).decode()][0])
            keys = pgcopy.decode_array(keys_b, "text")
            order = np.array([CLASS_KEYS.index(k) for k in keys])  # stored class index -> ours
            klass[t, at] = order[pgcopy.decode_array(class_b, "int2")]
            rank_change[t, at] = pgcopy.decode_array(rc_b, "int4")
        out[level] = _History([pgcopy.decode_date(r[0]) for r in rows], codes, towns, klass, rank_change)
    return out


def rebuild_ladder(conn: Connection, model: IndexModel) -> int:
    """Replay the ladder of every place over every stored month; keep people's notes (evidence,
    document) of the items that still exist. Returns the number of open items.

    Every place is replayed at once, a month at a time (:func:`gis.index.ladder.run_ladders`)."""
    rules = model.ladder
    items, events = [], []
    for level, h in _histories(conn).items():
        for n, ep in run_ladders(h.periods, h.klass, CLASS_KEYS, -h.rank_change, rules):
            status = "open" if ep.closed is None else "closed"
            code, town = str(h.codes[n]), str(h.towns[n])
            items.append((level, code, town, ep.opened, ep.step, ep.step_since, status, ep.closed,
                          ep.owner(rules), ep.deadline(rules)))
            events += [(level, code, ep.opened, e.period, e.from_step, e.to_step, e.reason,
                        len(events) + i) for i, e in enumerate(ep.events)]
    conn.execute(text(
        "CREATE TEMP TABLE ladder_items (level text, code text, town text, opened date, step bigint, "
        "since date, status text, closed date, owner text, deadline date) ON COMMIT DROP"))
    conn.execute(text(
        "CREATE TEMP TABLE ladder_events (level text, code text, opened date, period date, from_step bigint, "
        "to_step bigint, reason text, seq bigint) ON COMMIT DROP"))
    copy_frame(conn, "ladder_items", pd.DataFrame(items, columns=[
        "level", "code", "town", "opened", "step", "since", "status", "closed", "owner", "deadline"]),
        geometry_columns=())
    copy_frame(conn, "ladder_events", pd.DataFrame(events, columns=[
        "level", "code", "opened", "period", "from_step", "to_step", "reason", "seq"]), geometry_columns=())
    conn.execute(
        text(
            "DELETE FROM pingan.index_warnings w WHERE NOT EXISTS (SELECT 1 FROM ladder_items i "
            "WHERE (i.level, i.code, i.opened) = (w.level, w.code, w.opened))"
        )
    )
    conn.execute(
        text(
            "INSERT INTO pingan.index_warnings (level, code, town_code, opened, step, step_since, "
            "status, closed, owner, deadline) SELECT level, code, town, opened, step, since, status, closed, "
            "owner, deadline FROM ladder_items "
            "ON CONFLICT (level, code, opened) DO UPDATE SET step = EXCLUDED.step, "
            "step_since = EXCLUDED.step_since, status = EXCLUDED.status, closed = EXCLUDED.closed, "
            "owner = EXCLUDED.owner, deadline = EXCLUDED.deadline, updated_at = now() "
            "WHERE (index_warnings.step, index_warnings.step_since, index_warnings.status, "
            "index_warnings.closed, index_warnings.owner, index_warnings.deadline) IS DISTINCT FROM "
            "(EXCLUDED.step, EXCLUDED.step_since, EXCLUDED.status, EXCLUDED.closed, "
            "EXCLUDED.owner, EXCLUDED.deadline)"
        )
    )
    # evidence of an item a rebuild deleted (another model) waits, unlinked, for the item to return
    conn.execute(
        text(
            "UPDATE pingan.index_warning_evidence e SET warning_id = w.id FROM pingan.index_warnings w "
            "WHERE e.warning_id IS NULL AND (w.level, w.code, w.opened) = (e.level, e.code, e.opened)"
        )
    )
    conn.execute(text("DELETE FROM pingan.index_warning_events"))
    conn.execute(
        text(
            "INSERT INTO pingan.index_warning_events (warning_id, period, from_step, to_step, reason) "
            "SELECT w.id, e.period, e.from_step, e.to_step, e.reason FROM ladder_events e "
            "JOIN pingan.index_warnings w ON (w.level, w.code, w.opened) = (e.level, e.code, e.opened) "
            "ORDER BY e.seq"
        )
    )
    conn.execute(text("DROP TABLE ladder_items, ladder_events"))
    return sum(1 for i in items if i[6] == "open")


def open_warnings(conn: Connection, town: str | None = None) -> list:
    """Open ladder items (of one town, or all the caller may see), most severe first; ``overdue``
    when the step's deadline has passed."""
    return conn.execute(
        text(
            "SELECT w.id, w.level, w.code, coalesce(v.name, t.name) AS name, w.town_code, w.step, w.opened, "
            "w.step_since, w.owner, w.deadline, w.deadline < current_date AS overdue, w.evidence "
            "FROM pingan.index_warnings w "
            "LEFT JOIN pingan.villages v ON w.level = 'village' AND v.code = w.code "
            "LEFT JOIN pingan.towns t ON w.level = 'town' AND t.code = w.code "
            "WHERE w.status = 'open' AND (CAST(:town AS text) IS NULL OR w.town_code = :town) "
            "ORDER BY w.step DESC, w.step_since, w.code"
        ),
        {"town": town},
    ).all()


def warning(conn: Connection, warning_id: int):  # noqa: ANN201 - a Row or None
    """One ladder item with its place's name and overdue flag (None: no such item for this caller)."""
    return conn.execute(
        text(
            "SELECT w.id, w.level, w.code, coalesce(v.name, t.name) AS name, w.town_code, "
            "tw.name AS town_name, w.step, w.status, w.opened, w.step_since, w.closed, w.owner, w.deadline, "
            "w.status = 'open' AND w.deadline < current_date AS overdue, w.updated_at "
            "FROM pingan.index_warnings w "
            "LEFT JOIN pingan.villages v ON w.level = 'village' AND v.code = w.code "
            "LEFT JOIN pingan.towns t ON w.level = 'town' AND t.code = w.code "
            "LEFT JOIN pingan.towns tw ON tw.code = w.town_code WHERE w.id = :i"
        ),
        {"i": warning_id},
    ).first()


def warning_history(conn: Connection, warning_id: int) -> list:
    return conn.execute(
        text(
            "SELECT period, from_step, to_step, reason FROM pingan.index_warning_events "
            "WHERE warning_id = :i "
            "ORDER BY period, id"
        ),
        {"i": warning_id},
    ).all()


# -- stars -------------------------------------------------------------------------------------
@dataclass
class StarSummary:
    year: int
    villages: int
    stars: dict[int, int]  # stars -> villages
    vetoed: int
    notes: list[str]


def compute_stars(engine: Engine, year: int, model: IndexModel | None = None) -> StarSummary:
    """Rate every village for a calendar year from the year's event counts; store the cards."""
    model = model or default_model()
    rules = model.stars
    if not rules.dimensions:
        raise IndexInputError(f"model {model.name} {model.version} has no [stars] dimensions")
    with engine.begin() as conn:
        srcs = {s for d in rules.dimensions for s, _ in d.deductions} | {v.source for v in rules.vetoes}
        inputs = read_inputs(conn, date(year, 1, 1), date(year, 12, 1), srcs)
        counts = {
            k: (np.full(len(inputs.villages.codes), np.nan) if np.isnan(v).all() else np.nansum(v, axis=0))
            for k, v in inputs.villages.values.items()
        }
        cards = scorecards(counts, rules)
        model_id = _store_model(conn, model)
        labels = {d.id: d.label for d in rules.dimensions}
        reasons = tuple(v.reason for v in rules.vetoes)
        rows = [
            {
                "y": year,
                "v": str(code),
                "t": str(inputs.village_towns[n]),
                "m": model_id,
                "p": float(cards.percent[n]),
                "s": int(cards.stars[n]),
                "veto": bool(cards.veto[n]),
                "card": json.dumps(
                    {**cards.card(n, labels, reasons), "notes": cards.notes}, ensure_ascii=False
                ),
            }
            for n, code in enumerate(inputs.villages.codes)
        ]
        conn.execute(text("DELETE FROM pingan.index_stars WHERE year = :y"), {"y": year})
        conn.execute(
            text(
                "INSERT INTO pingan.index_stars (year, village_code, town_code, model_id, percent, stars, "
                "veto, card) "
                "VALUES (:y, :v, :t, :m, :p, :s, :veto, CAST(:card AS jsonb))"
            ),
            rows,
        )
        versions.bump(conn, ["index-star-villages"])
    return StarSummary(
        year,
        len(rows),
        {s: int((cards.stars == s).sum()) for s in range(6)},
        int(cards.veto.sum()),
        cards.notes,
    )
