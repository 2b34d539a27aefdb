"""A town's index inputs: its villages' sums plus its own records, those the loader placed by their
address only to the town (no grid, no village: migration 0027), which are in no village's.

One database for the module: the demo district (scale 1, seed 42) with every fifth hazard, case
and five-loss person placed only to its town and every seventh (of the others) only to its
village, monthly statistics and index inputs refreshed. Checked against counts straight from the
records: pandas over the raw tables, and the month-by-month reference queries of the registers
(tests/layers/test_index_inputs.py) keyed on the record's village or town.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, text

from etl.refresh import refresh
from layers import index, index_inputs
from layers.db import make_engine
from layers.settings import DatabaseSettings
from tests.helpers import table_fingerprint
from tests.layers.test_index_inputs import REFERENCE, _rows, reference

FIRST, LAST = date(2024, 11, 1), date(2026, 10, 1)  # every month of the demo's records
PLACED = "UPDATE pingan.{t} SET loc_method = 'geocoded', geocode_level = :l, geocode_score = 0.5, " \
    "grid_code = NULL, village_code = CASE WHEN :l = 'village' THEN village_code END " \
    "WHERE id % :n = 0 AND geocode_level IS NULL"


@pytest.fixture(scope="module")
def coarse(databases) -> Iterator[Engine]:
    eng = make_engine(DatabaseSettings(database_url=databases.demo()))
    with eng.begin() as c:
        for table in ("hazards", "cases", "persons"):
            for level, every in (("town", 5), ("village", 7)):
                assert c.execute(text(PLACED.format(t=table)), {"l": level, "n": every}).rowcount > 0
    refresh(eng, full=True)
    yield eng
    eng.dispose()


def _array(rows: set[tuple] | list[tuple], cols: list[str], codes: np.ndarray) -> dict[str, np.ndarray]:
    """(period, code, counts of cols…) rows as {col: months FIRST..LAST × codes}; other months,
    other codes (NULL: a record without a village, for the villages) are left out."""
    n_months = (LAST.year - FIRST.year) * 12 + LAST.month - FIRST.month + 1
    out = {col: np.zeros((n_months, len(codes))) for col in cols}
    at = {str(c): i for i, c in enumerate(codes)}
    for period, code, *counts in rows:
        if code in at and FIRST <= period <= LAST:
            t = (period.year - FIRST.year) * 12 + period.month - FIRST.month
            for col, n in zip(cols, counts, strict=True):
                out[col][t, at[code]] = n
    return out


def _expected(conn, level: str, codes: np.ndarray) -> dict[str, np.ndarray]:  # noqa: ANN001
    """Every counted source per ``level`` ('village', 'town') and month, from the records: what a
    place's index inputs must be (a town: every record that names it, with a village or not)."""
    want: dict[str, np.ndarray] = {}
    for key in REFERENCE:  # the registers
        cols = list(index_inputs._SQL_COLUMNS[key])
        want |= _array(_rows(conn, reference(key, level), FIRST, LAST), cols, codes)
    # hazards found and cases accepted, by pandas from the raw tables
    for table, at, col in (("hazards", "found_at", "hazards_found"),
                           ("cases", "accepted_at", "cases_accepted")):
        r = pd.read_sql(text(f"SELECT {level}_code AS code, {at} AS t FROM pingan.{table}"), conn)  # noqa: S608
        local = r.t.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None)
        r["period"] = local.dt.to_period("M").dt.start_time.dt.date
        n = r.dropna(subset=["code"]).groupby(["period", "code"]).size()
        want |= _array([(p, c, k) for (p, c), k in n.items()], [col], codes)
    # the other monthly statistics as etl/refresh.py counts them (tests/etl/test_refresh.py)
    rest = [c for c in index_inputs._MONTHLY_STATS if c not in want]
    stats = conn.execute(text(f"SELECT period, code, {', '.join(rest)} FROM pingan.monthly_stats "  # noqa: S608
                              "WHERE level = :l"), {"l": level}).all()
    want |= _array([tuple(r) for r in stats], rest, codes)
    assert set(want) == set(index.COUNTED)
    return want


def _village_sums(inputs: index.Inputs, col: str) -> np.ndarray:
    v = inputs.villages.values[col]
    town = pd.Index(inputs.towns.codes).get_indexer(inputs.village_towns)
    return np.stack([np.bincount(town, row, minlength=len(inputs.towns.codes)) for row in v])


def test_a_towns_inputs_are_its_villages_and_its_own_records(coarse: Engine) -> None:
    with coarse.connect() as c:
        inputs = index.read_inputs(c, FIRST, LAST)
        villages = _expected(c, "village", inputs.villages.codes)
        towns = _expected(c, "town", inputs.towns.codes)
    for col in index.COUNTED:
        # a village: its own records only, those placed to the town alone are in no village
        assert np.array_equal(inputs.villages.values[col], villages[col]), col
        # a town: every record that names it
        assert np.array_equal(inputs.towns.values[col], towns[col]), col
    # the town-only records really are there, beyond the villages' sums, for every source that
    # counts something in the demo district
    beyond = {col for col in index.COUNTED if (inputs.towns.values[col] > _village_sums(inputs, col)).any()}
    assert beyond == {col for col in index.COUNTED if towns[col].any()}, beyond
    # the survey's rates are not counts: the towns' stay population-weighted means (none here)
    assert np.isnan(inputs.towns.values["survey_satisfaction"]).all()


def test_an_incremental_refresh_of_town_records_equals_a_full_one(coarse: Engine) -> None:
    """A batch that places a new case only to a town, moves a person of a village to its town
    alone (noted as an import does, etl/upsert.py) and grades a town-only person: the incremental
    refresh counts the town and the village again and gets what a full one gets."""
    with coarse.begin() as c:
        before = index.read_inputs(c, FIRST, LAST)
        batch = c.execute(text("INSERT INTO pingan.etl_batches (source, layer, status, finished_at) "
                               "VALUES ('test', 'cases', 'done', now()) RETURNING id")).scalar_one()
        columns = [r for r in c.execute(text(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'pingan' "
            "AND table_name = 'cases' AND column_name <> 'id' ORDER BY ordinal_position")).scalars()]
        put = {"code": "'TOWN-' || code", "source_id": "'TOWN-' || source_id", "batch_id": ":b",
               "kind": "'incident'", "category": "'theft'", "grid_code": "NULL", "village_code": "NULL",
               "loc_method": "'geocoded'", "geocode_level": "'town'", "geocode_score": "0.5"}
        town = c.execute(text(
            f"INSERT INTO pingan.cases ({', '.join(columns)}) SELECT "  # noqa: S608 - catalogue names
            f"{', '.join(put.get(k, k) for k in columns)} FROM pingan.cases "
            "WHERE accepted_at BETWEEN '2025-08-01' AND '2025-08-31' ORDER BY id LIMIT 1 "
            "RETURNING town_code"),
            {"b": batch}).scalar_one()
        person, place = c.execute(text(
            "SELECT id, village_code FROM pingan.persons WHERE village_code IS NOT NULL "
            "AND closed_at IS NULL AND grade = 'red' AND registered_at < '2025-01-01' "
            "ORDER BY id LIMIT 1")).one()
        c.execute(text("INSERT INTO pingan.refresh_moved (batch_id, code, t0) SELECT :b, "
                       "coalesce(grid_code, village_code, town_code), registered_at FROM pingan.persons "
                       "WHERE id = :p"), {"b": batch, "p": person})
        c.execute(text("UPDATE pingan.persons SET loc_method = 'geocoded', geocode_level = 'town', "
                       "geocode_score = 0.5, grid_code = NULL, village_code = NULL, batch_id = :b "
                       "WHERE id = :p"), {"b": batch, "p": person})
        graded = c.execute(text(
            "SELECT id FROM pingan.persons WHERE village_code IS NULL AND closed_at IS NULL AND id <> :p "
            "ORDER BY id LIMIT 1"), {"p": person}).scalar_one()
        c.execute(text("INSERT INTO pingan.person_grades (person_id, grade, changed_at, batch_id) "
                       "VALUES (:p, 'red', '2025-03-10 12:00+08', :b)"), {"p": graded, "b": batch})
    inc = refresh(coarse)
    assert inc.batches == 1 and inc.input_months > 0
    with coarse.connect() as c:
        after = index.read_inputs(c, FIRST, LAST)
        incremental = table_fingerprint(c, "index_inputs", frozenset({"refreshed_at"}))
    refresh(coarse, full=True)
    with coarse.connect() as c:
        assert table_fingerprint(c, "index_inputs", frozenset({"refreshed_at"})) == incremental
    # the town gained the case; the village lost the person (red at the ends of months), its town did not
    t, aug = list(after.towns.codes).index(town), after.villages.periods.index(date(2025, 8, 1))
    v = list(after.villages.codes).index(place)
    assert after.towns.values["cases_criminal"][aug, t] == before.towns.values["cases_criminal"][aug, t] + 1
    assert (after.villages.values["persons_red"][:, v] < before.villages.values["persons_red"][:, v]).any()
    t = list(after.towns.codes).index(place[:9])
    assert (after.towns.values["persons_red"][:, t] >= before.towns.values["persons_red"][:, t]).all()


def test_the_first_refresh_after_the_towns_columns_counts_everything_again(coarse: Engine) -> None:
    """Index inputs stored before the towns' own columns came (the villages' only) are for other
    places: the index asks for a refresh, and the next plain refresh, with no new batch, counts
    every month again (what a full one gives)."""
    with coarse.connect() as c:
        full = table_fingerprint(c, "index_inputs", frozenset({"refreshed_at"}))
        n_villages = c.execute(text("SELECT count(*) FROM pingan.villages")).scalar_one()
    with coarse.begin() as c:  # the matrices as stored before: village columns only
        with c.connection.driver_connection.cursor() as cur:
            stored = index_inputs._read_stored(cur, FIRST, date(2100, 1, 1))
        for period, (codes, counts) in stored.items():
            c.execute(text("UPDATE pingan.index_inputs SET codes = :c, counts = :b WHERE period = :p"),
                      {"c": [str(x) for x in codes[:n_villages]], "p": period,
                       "b": np.ascontiguousarray(counts[:, :n_villages]).astype(">i4").tobytes()})
    with coarse.connect() as c, pytest.raises(index.IndexInputError, match="other villages or towns"):
        index.read_inputs(c, FIRST, LAST)
    again = refresh(coarse)
    assert again.batches == 0 and again.input_months == len(stored)
    with coarse.connect() as c:
        assert table_fingerprint(c, "index_inputs", frozenset({"refreshed_at"})) == full
