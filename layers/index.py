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
from gis.index.ladder import run_ladder
from gis.index.stars import scorecards
from layers import versions

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
_MONTHS = """
WITH months AS (
    SELECT m::date AS period, m AT TIME ZONE 'Asia/Shanghai' AS t0,
           (m + interval '1 month') AT TIME ZONE 'Asia/Shanghai' AS t1
    FROM generate_series(CAST(:first AS timestamp), CAST(:last AS timestamp), interval '1 month') m
)
"""
_SQL = {
    "monthly_stats": "SELECT period, code, "  # noqa: S608 - fixed column names
    + ", ".join(_MONTHLY_STATS) + " FROM pingan.monthly_stats "
    "WHERE level = 'village' AND period BETWEEN :first AND :last",
    "cases": _MONTHS
    + """
SELECT mo.period, c.village_code AS code,
    count(*) FILTER (WHERE c.kind = 'incident' AND c.category IN ('theft', 'fraud', 'fight', 'public_order'))
        AS cases_criminal,
    count(*) FILTER (WHERE c.channel = 'petition') AS petitions,
    count(*) FILTER (WHERE c.category = 'traffic_accident') AS accidents
FROM months mo JOIN pingan.cases c ON c.accepted_at >= mo.t0 AND c.accepted_at < mo.t1
GROUP BY 1, 2""",
    "escalated": _MONTHS
    + """
SELECT mo.period, c.village_code AS code, count(*) AS disputes_escalated
FROM months mo JOIN pingan.cases c ON c.kind = 'dispute'
    AND ((c.transferred_at >= mo.t0 AND c.transferred_at < mo.t1)
         OR (c.resolution_level = 'district' AND c.resolved_at >= mo.t0 AND c.resolved_at < mo.t1))
GROUP BY 1, 2""",
    "severe": _MONTHS
    + """
SELECT mo.period, h.village_code AS code, count(*) AS hazards_severe_overdue
FROM months mo JOIN pingan.hazards h ON h.level = 'severe' AND h.found_at < mo.t1 AND h.deadline < mo.t1
    AND (h.rectified_at IS NULL OR h.rectified_at >= mo.t1)
    AND coalesce(h.closed_at, 'infinity') >= mo.t0
GROUP BY 1, 2""",
    "persons": _MONTHS  # noqa: S608 - constant text
    + """
SELECT mo.period, p.village_code AS code,
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
    "survey": "SELECT period, code, awareness AS survey_awareness, participation AS survey_participation, "
    "satisfaction AS survey_satisfaction FROM pingan.index_survey "
    "WHERE level = 'village' AND period BETWEEN :first AND :last",
}


@dataclass(frozen=True)
class Inputs:
    villages: Panel
    towns: Panel
    village_towns: np.ndarray  # town code of each village
    notes: tuple[str, ...] = ()


def read_inputs(conn: Connection, first: date, last: date, sources: Iterable[str] | None = None) -> Inputs:
    """Every source (or ``sources``) per village and town, for the months first..last."""
    periods = tuple(add_months(first, i) for i in range(month_index(last) - month_index(first) + 1))
    vil = conn.execute(text("SELECT code, town_code, population FROM pingan.villages ORDER BY code")).all()
    towns = conn.execute(text("SELECT code, population FROM pingan.towns ORDER BY code")).all()
    if not vil or not towns:
        raise IndexInputError("no villages or towns loaded: load the areas first "
                              "(pingan demo load / etl load)")
    codes = np.array([r.code for r in vil])
    pos = {c: i for i, c in enumerate(codes)}
    wanted = set(SOURCES if sources is None else sources)
    values: dict[str, np.ndarray] = {}
    params = {"first": first, "last": last}
    for key, sql in _SQL.items():
        result = conn.execute(text(sql), params)
        keys = list(result.keys())
        cols = [c for c in keys if c not in ("period", "code")]
        frame = pd.DataFrame(result.all(), columns=keys)
        for col in cols:
            if col not in wanted:
                continue
            arr = np.full((len(periods), len(codes)), np.nan if key == "survey" else 0.0)
            if len(frame):
                t = np.array([month_index(p) - month_index(first) for p in frame["period"]])
                n = frame["code"].map(pos).to_numpy()
                ok = ~pd.isna(n) & ~pd.isna(frame[col].to_numpy())
                arr[t[ok], n[ok].astype(int)] = frame[col].to_numpy(dtype=float)[ok]
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
        begins = data_start(conn)
        if first < begins:
            raise IndexInputError(f"the records start in {begins:%Y-%m}: no index before that")
        # months before the records are unknown, not zero: the panel starts with the records
        inputs = read_inputs(conn, max(start, begins), last, model.sources())
        model_id = _store_model(conn, model)
        conn.execute(
            text("DELETE FROM pingan.index_scores WHERE period BETWEEN :a AND :b"), {"a": first, "b": last}
        )
        rows, classes, vetoed, notes = 0, {}, {}, list(inputs.notes)
        for level, panel, towns in (
            ("village", inputs.villages, inputs.village_towns),
            ("town", inputs.towns, inputs.towns.codes),
        ):
            result = compute_panel(model.for_level(level), panel)
            ts = range(result.t(first), result.t(last) + 1)
            rows += _store_scores(conn, level, result, ts, towns, model_id)
            t_last = result.t(last)
            classes[level] = {k: int((result.klass[t_last] == i).sum()) for i, k in enumerate(CLASS_KEYS)}
            vetoed[level] = int(result.veto[t_last].sum())
            notes += sorted(
                {f"{p:%Y-%m} {level}: {n}" for t in ts for p in [result.periods[t]] for n in result.notes[p]}
            )
        n_open = rebuild_ladder(conn, model)
        # the layers' versions are renewed by the scores' statements (migration 0015's trigger)
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
    )


def _store_model(conn: Connection, model: IndexModel) -> int:
    return conn.execute(
        text(
            "INSERT INTO pingan.index_models (name, version, sha256, toml) VALUES (:n, :v, :s, :t) "
            "ON CONFLICT (sha256) DO UPDATE SET name = EXCLUDED.name RETURNING id"
        ),
        {"n": model.name, "v": model.version, "s": model.sha256, "t": model.text},
    ).scalar_one()


_SCORE_COLUMNS = ("period", "level", "code", "town_code", "model_id", "score", "class", "colour_hex", "rank",
                  "rank_change", "change", "veto", "veto_reasons", "contributions", "notes")


def _store_scores(conn: Connection, level: str, r, ts: range, towns: np.ndarray, model_id: int) -> int:  # noqa: ANN001
    """One COPY per level: one statement, so the statement trigger that renews the index layers'
    versions (migration 0015) fires once, not once per row as an executemany of INSERTs made it
    (1.8M firings on one row of layer_versions for 30,000 villages × 60 months)."""
    n_rows = 0
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(
        f"COPY pingan.index_scores ({', '.join(_SCORE_COLUMNS)}) FROM STDIN"  # noqa: S608 - fixed names
    ) as cp:
        for t in ts:
            period, notes = r.periods[t], r.notes[r.periods[t]]
            for n, code in enumerate(r.codes):
                cls = CLASS_KEYS[r.klass[t, n]]
                rc, ch = r.rank_change[t, n], r.change[t, n]
                cp.write_row((
                    period, level, str(code), str(towns[n])[:9], model_id, float(r.score[t, n]), cls,
                    COLOURS[cls][2], int(r.rank[t, n]), None if np.isnan(rc) else int(rc),
                    None if np.isnan(ch) else float(ch), bool(r.veto[t, n]), list(r.veto_reasons(t, n)),
                    json.dumps(r.contributions(t, n), ensure_ascii=False), list(notes),
                ))
                n_rows += 1
    return n_rows


def scores(conn: Connection, period: date, level: str = "village") -> list:
    """Stored scores of a month, best first (works under the service's row security too)."""
    return conn.execute(
        text(
            "SELECT s.code, coalesce(v.name, t.name) AS name, s.score, s.class AS class_key, s.colour_hex, "
            "s.rank, s.rank_change, "
            "s.change, s.veto, s.veto_reasons, s.contributions FROM pingan.index_scores s "
            "LEFT JOIN pingan.villages v ON s.level = 'village' AND v.code = s.code "
            "LEFT JOIN pingan.towns t ON s.level = 'town' AND t.code = s.code "
            "WHERE s.period = :p AND s.level = :l ORDER BY s.rank, s.code"
        ),
        {"p": period, "l": level},
    ).all()


# -- the ladder --------------------------------------------------------------------------------
def rebuild_ladder(conn: Connection, model: IndexModel) -> int:
    """Replay the ladder of every place over every stored month; keep people's notes (evidence,
    document) of the items that still exist. Returns the number of open items."""
    rules = model.ladder
    frame = pd.DataFrame(
        conn.execute(
            text(
                "SELECT level, code, town_code, period, class, rank_change FROM pingan.index_scores "
                "ORDER BY level, code, period"
            )
        )
        .mappings()
        .all()
    )
    items, events = [], []
    if len(frame):
        for (level, code), g in frame.groupby(["level", "code"], sort=False):
            drops = [None if pd.isna(x) else -float(x) for x in g["rank_change"]]
            for ep in run_ladder(list(g["period"]), list(g["class"]), drops, rules):
                items.append(
                    {
                        "level": level,
                        "code": code,
                        "town": g["town_code"].iat[0],
                        "opened": ep.opened,
                        "step": ep.step,
                        "since": ep.step_since,
                        "status": "open" if ep.closed is None else "closed",
                        "closed": ep.closed,
                        "owner": ep.owner(rules),
                        "deadline": ep.deadline(rules),
                    }
                )
                events += [
                    {
                        "level": level,
                        "code": code,
                        "opened": ep.opened,
                        "period": e.period,
                        "from": e.from_step,
                        "to": e.to_step,
                        "reason": e.reason,
                    }
                    for e in ep.events
                ]
    conn.execute(text("CREATE TEMP TABLE ladder_items (level text, code text, opened date) ON COMMIT DROP"))
    if items:
        conn.execute(text("INSERT INTO ladder_items VALUES (:level, :code, :opened)"), items)
    conn.execute(
        text(
            "DELETE FROM pingan.index_warnings w WHERE NOT EXISTS (SELECT 1 FROM ladder_items i "
            "WHERE (i.level, i.code, i.opened) = (w.level, w.code, w.opened))"
        )
    )
    if items:
        conn.execute(
            text(
                "INSERT INTO pingan.index_warnings (level, code, town_code, opened, step, step_since, "
                "status, closed, owner, deadline) VALUES (:level, :code, :town, :opened, :step, :since, "
                ":status, :closed, :owner, :deadline) "
                "ON CONFLICT (level, code, opened) DO UPDATE SET step = EXCLUDED.step, "
                "step_since = EXCLUDED.step_since, status = EXCLUDED.status, closed = EXCLUDED.closed, "
                "owner = EXCLUDED.owner, deadline = EXCLUDED.deadline, updated_at = now()"
            ),
            items,
        )
    # evidence of an item a rebuild deleted (another model) waits, unlinked, for the item to return
    conn.execute(
        text(
            "UPDATE pingan.index_warning_evidence e SET warning_id = w.id FROM pingan.index_warnings w "
            "WHERE e.warning_id IS NULL AND (w.level, w.code, w.opened) = (e.level, e.code, e.opened)"
        )
    )
    conn.execute(text("DELETE FROM pingan.index_warning_events"))
    if events:
        conn.execute(
            text(
                "INSERT INTO pingan.index_warning_events (warning_id, period, from_step, to_step, reason) "
                "SELECT w.id, :period, :from, :to, :reason FROM pingan.index_warnings w "
                "WHERE (w.level, w.code, w.opened) = (:level, :code, :opened)"
            ),
            events,
        )
    conn.execute(text("DROP TABLE ladder_items"))
    return sum(1 for i in items if i["status"] == "open")


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
