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

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, text

from gis.index import COLOURS, IndexModel, load_model, parse_model
from gis.index import compute as compute_panel
from gis.index.classify import CLASS_KEYS
from gis.index.ladder import run_ladders
from gis.index.stars import scorecards
from layers import pgcopy, versions
from layers.copy import copy_frame
from layers.index_inputs import (  # noqa: F401 - the inputs' names, re-exported for the index's callers
    COUNTED,
    SOURCES,
    IndexInputError,
    Inputs,
    add_months,
    data_start,
    read_inputs,
    refresh_inputs,
    register_sql,
)

LAYERS = ("index-villages", "index-towns")


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
        rows, classes, vetoed, notes, fresh = 0, {}, {}, list(inputs.notes), {}
        for level, panel, towns in (
            ("village", inputs.villages, inputs.village_towns),
            ("town", inputs.towns, inputs.towns.codes),
        ):
            tc = time.perf_counter()
            result = compute_panel(model.for_level(level), panel)
            phases["compute"] += time.perf_counter() - tc
            ts = range(result.t(first), result.t(last) + 1)
            tc = time.perf_counter()
            towns9 = np.array([str(t)[:9] for t in towns])  # each place's town code, as stored
            rows += _store_months(conn, level, result, ts, towns9, model_id)
            phases["store"] += time.perf_counter() - tc
            fresh[level] = [(result.periods[t], result.codes, towns9, result.klass[t], result.rank_change[t])
                            for t in ts]
            t_last = result.t(last)
            classes[level] = {k: int((result.klass[t_last] == i).sum()) for i, k in enumerate(CLASS_KEYS)}
            vetoed[level] = int(result.veto[t_last].sum())
            notes += sorted(
                {f"{p:%Y-%m} {level}: {n}" for t in ts for p in [result.periods[t]] for n in result.notes[p]}
            )
        tc = time.perf_counter()
        n_open = rebuild_ladder(conn, model, fresh)  # the months just stored: from memory
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
    town_codes = pgcopy.text_array(list(towns))
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
            # bytea: big-endian float4 matrices, indicator-major (migration 0020)
            np.ascontiguousarray(r.value[:, t, :], dtype=">f4").tobytes(),
            np.ascontiguousarray(r.risk[:, t, :], dtype=">f4").tobytes(),
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


# one month of one level for the ladder: period, place codes, their towns, class (index into
# CLASS_KEYS) and rank change (NaN: none) per place
_Month = tuple[date, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _histories(conn: Connection, fresh: dict[str, list[_Month]] | None = None) -> dict[str, _History]:
    """Every stored month of each level. The months in ``fresh`` (level → months just computed and
    stored in this transaction) are taken as given; the others are read with binary COPYs (the
    places' code arrays once per distinct list, not once per month)."""
    fresh = fresh or {}
    known = {(level, m[0]) for level, ms in fresh.items() for m in ms}
    by_level: dict[str, list[_Month]] = {level: list(ms) for level, ms in fresh.items()}
    with conn.connection.driver_connection.cursor() as cur:
        skip = ", ".join(f"('{level}', DATE '{period:%Y-%m-%d}')" for level, period in sorted(known))
        rows = pgcopy.read_rows(
            cur,
            "SELECT level, period, md5(array_to_string(codes, ',')), class_keys, class, rank_change "  # noqa: S608
            f"FROM pingan.index_months {f'WHERE (level, period) NOT IN ({skip})' if skip else ''} "
            "ORDER BY level, period",
        )
        lists: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for level_b, period_b, h_b, keys_b, class_b, rc_b in rows:
            level, period, h = bytes(level_b).decode(), pgcopy.decode_date(period_b), bytes(h_b).decode()
            if h not in lists:
                ((codes_b, towns_b),) = pgcopy.read_rows(
                    cur,
                    "SELECT codes, town_codes FROM pingan.index_months "  # noqa: S608 - literals from the rows
                    f"WHERE level = '{level}' AND period = DATE '{period:%Y-%m-%d}'",
                )
                lists[h] = (pgcopy.decode_array(codes_b, "text"), pgcopy.decode_array(towns_b, "text"))
            keys = pgcopy.decode_array(keys_b, "text")
            order = np.array([CLASS_KEYS.index(k) for k in keys])  # stored class index -> ours
            klass = order[pgcopy.decode_array(class_b, "int2")]
            rank_change = pgcopy.decode_array(rc_b, "int4").astype(float)
            by_level.setdefault(level, []).append((period, *lists[h], klass, rank_change))
    out: dict[str, _History] = {}
    for level, months in by_level.items():
        months.sort(key=lambda m: m[0])
        same = all(np.array_equal(m[1], months[0][1]) for m in months)
        if same:
            codes, towns = months[0][1], months[0][2]
        else:  # places came or went between months: every place ever scored
            allc = pd.concat([pd.Series(m[2], index=m[1]) for m in months])
            allc = allc[~allc.index.duplicated()].sort_index()
            codes, towns = allc.index.to_numpy(), allc.to_numpy()
        klass = np.full((len(months), len(codes)), -1, dtype=np.int16)
        rank_change = np.full((len(months), len(codes)), np.nan)
        for t, (_, mcodes, _, k, rc) in enumerate(months):
            at = slice(None) if same else pd.Index(codes).get_indexer(mcodes)
            klass[t, at] = k
            rank_change[t, at] = rc
        out[level] = _History([m[0] for m in months], codes, towns, klass, rank_change)
    return out


def _steps_digest(ep) -> str:  # noqa: ANN001 - an Episode
    """What an item's steps are, as one md5 (index_warnings.steps_md5, migration 0020)."""
    text_ = ";".join(f"{e.period:%Y-%m-%d}|{e.from_step}|{e.to_step}|{e.reason}" for e in ep.events)
    return hashlib.md5(text_.encode(), usedforsecurity=False).hexdigest()


def rebuild_ladder(conn: Connection, model: IndexModel, fresh: dict[str, list[_Month]] | None = None) -> int:
    """Replay the ladder of every place over every stored month; keep people's notes (evidence,
    document) of the items that still exist. Returns the number of open items. ``fresh``: the
    months the caller has just stored, as it has them in memory (not read back).

    Every place is replayed at once, a month at a time (:func:`gis.index.ladder.run_ladders`).
    The steps of an item are written again only when they changed (their digest differs from the
    stored one): a monthly recomputation changes few histories, and writing all 135,000 steps of
    30,000 villages × 60 months again took 1.4 s, sending them 0.7 s more."""
    rules = model.ladder
    items, episodes = [], []
    for level, h in _histories(conn, fresh).items():
        for n, ep in run_ladders(h.periods, h.klass, CLASS_KEYS, -h.rank_change, rules):
            status = "open" if ep.closed is None else "closed"
            code, town = str(h.codes[n]), str(h.towns[n])
            items.append((level, code, town, ep.opened, ep.step, ep.step_since, status, ep.closed,
                          ep.owner(rules), ep.deadline(rules), _steps_digest(ep)))
            episodes.append(ep)
    conn.execute(text(
        "CREATE TEMP TABLE ladder_items (level text, code text, town text, opened date, step bigint, "
        "since date, status text, closed date, owner text, deadline date, steps_md5 text, i bigint) "
        "ON COMMIT DROP"))
    frame = pd.DataFrame(items, columns=["level", "code", "town", "opened", "step", "since", "status",
                                         "closed", "owner", "deadline", "steps_md5"])
    copy_frame(conn, "ladder_items", frame.assign(i=np.arange(len(frame))), geometry_columns=())
    # the items whose steps are new or changed (read before the upsert below records them)
    conn.execute(text(
        "CREATE TEMP TABLE ladder_changed ON COMMIT DROP AS SELECT i.i, i.level, i.code, i.opened "
        "FROM ladder_items i LEFT JOIN pingan.index_warnings w "
        "ON (w.level, w.code, w.opened) = (i.level, i.code, i.opened) "
        "WHERE w.steps_md5 IS DISTINCT FROM i.steps_md5"))
    conn.execute(text("ANALYZE ladder_changed"))  # few rows or all: the plans below differ
    changed = conn.execute(text("SELECT i FROM ladder_changed ORDER BY i")).scalars().all()
    conn.execute(
        text(
            "DELETE FROM pingan.index_warnings w WHERE NOT EXISTS (SELECT 1 FROM ladder_items i "
            "WHERE (i.level, i.code, i.opened) = (w.level, w.code, w.opened))"
        )
    )
    conn.execute(
        text(
            "INSERT INTO pingan.index_warnings (level, code, town_code, opened, step, step_since, "
            "status, closed, owner, deadline, steps_md5) SELECT level, code, town, opened, step, since, "
            "status, closed, owner, deadline, steps_md5 FROM ladder_items "
            "ON CONFLICT (level, code, opened) DO UPDATE SET step = EXCLUDED.step, "
            "step_since = EXCLUDED.step_since, status = EXCLUDED.status, closed = EXCLUDED.closed, "
            "owner = EXCLUDED.owner, deadline = EXCLUDED.deadline, steps_md5 = EXCLUDED.steps_md5, "
            "updated_at = now() "
            "WHERE (index_warnings.step, index_warnings.step_since, index_warnings.status, "
            "index_warnings.closed, index_warnings.owner, index_warnings.deadline, index_warnings.steps_md5) "
            "IS DISTINCT FROM (EXCLUDED.step, EXCLUDED.step_since, EXCLUDED.status, EXCLUDED.closed, "
            "EXCLUDED.owner, EXCLUDED.deadline, EXCLUDED.steps_md5)"
        )
    )
    # evidence of an item a rebuild deleted (another model) waits, unlinked, for the item to return
    conn.execute(
        text(
            "UPDATE pingan.index_warning_evidence e SET warning_id = w.id FROM pingan.index_warnings w "
            "WHERE e.warning_id IS NULL AND (w.level, w.code, w.opened) = (e.level, e.code, e.opened)"
        )
    )
    if changed:
        if len(changed) == len(items):  # every item (the first computation, new rules): all steps
            conn.execute(text("DELETE FROM pingan.index_warning_events"))
        else:
            conn.execute(text(
                "DELETE FROM pingan.index_warning_events e USING ladder_changed c "
                "JOIN pingan.index_warnings w ON (w.level, w.code, w.opened) = (c.level, c.code, c.opened) "
                "WHERE e.warning_id = w.id"))
        # the items' ids, then their steps in order (ids follow the steps); through a temporary
        # table, as COPY does not write into a table with row security (the process's callers)
        ids = dict(conn.execute(text(
            "SELECT c.i, w.id FROM ladder_changed c JOIN pingan.index_warnings w "
            "ON (w.level, w.code, w.opened) = (c.level, c.code, c.opened)")).all())
        events = [(ids[i], e.period, e.from_step, e.to_step, e.reason)
                  for i in changed for e in episodes[i].events]
        conn.execute(text("CREATE TEMP TABLE ladder_events (warning_id bigint, period date, "
                          "from_step bigint, to_step bigint, reason text, seq bigint) ON COMMIT DROP"))
        copy_frame(conn, "ladder_events", pd.DataFrame(events, columns=[
            "warning_id", "period", "from_step", "to_step", "reason"]).assign(seq=np.arange(len(events))),
            geometry_columns=())
        conn.execute(text(
            "INSERT INTO pingan.index_warning_events (warning_id, period, from_step, to_step, reason) "
            "SELECT warning_id, period, from_step, to_step, reason FROM ladder_events ORDER BY seq"))
        conn.execute(text("DROP TABLE ladder_events"))
    conn.execute(text("DROP TABLE ladder_items, ladder_changed"))
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
