"""The public survey through ETL (etl/survey.py, profile etl/profiles/survey.toml, migration 0014):
an XLSX with percentage cells and a GBK CSV with fractions, rejects with reasons, the same file
twice, and the index computed from what was loaded."""

from __future__ import annotations

from datetime import date

import numpy as np
import openpyxl
import pandas as pd
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from etl.pipeline import load_file
from etl.refresh import refresh
from etl.survey import parse_month, parse_rate
from layers import index
from layers.db import make_engine
from layers.settings import DatabaseSettings

MONTH = date(2026, 10, 1)


@pytest.fixture(scope="module")
def survey_engine(databases):
    """A database of its own (loads change it) with the demo district and its monthly stats."""
    engine = make_engine(DatabaseSettings(database_url=databases.demo()))
    refresh(engine, full=True)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def villages(survey_engine) -> pd.DataFrame:
    with survey_engine.connect() as c:
        return pd.DataFrame(c.execute(text("SELECT code, name FROM pingan.villages ORDER BY code")).all(),
                            columns=["code", "name"])


def stored(engine, period: date) -> dict[str, tuple]:
    with engine.connect() as c:
        rows = c.execute(text("SELECT code, awareness, participation, satisfaction, respondents "
                              "FROM pingan.index_survey WHERE period = :p"), {"p": period}).all()
    return {r.code: tuple(r[1:]) for r in rows}


@pytest.mark.parametrize(("text_", "percent"), [
    ("85%", 85.0), ("85", 85.0), ("0.85", 85.0), ("85.5 %", 85.5), ("1", 100.0), ("0", 0.0), ("100%", 100.0),
    ("92％", 92.0), (".5", 50.0)])
def test_rates(text_, percent) -> None:
    assert parse_rate(text_) == (percent, None)


@pytest.mark.parametrize("text_", ["120", "101%", "-5%", "abc", "85%%"])
def test_bad_rates(text_) -> None:
    value, why = parse_rate(text_)
    assert value is None and why


@pytest.mark.parametrize("text_", ["2026-10", "2026/10", "2026.10", "2026年10月", "202610", "2026-10-01",
                                   "2026-10-01 00:00:00", "2026年10月15日", " 2026 - 10 "])
def test_months(text_) -> None:
    assert parse_month(text_) == pd.Timestamp(2026, 10, 1)


@pytest.mark.parametrize("text_", ["2026-13", "10/2026", "2026", "26-10", "1999-01"])
def test_bad_months(text_) -> None:
    assert parse_month(text_) is None


def test_xlsx_with_percent_cells_rejects_and_idempotence(survey_engine, villages, tmp_path) -> None:
    rng = np.random.default_rng(6)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["村社", "村社代码", "月份", "知晓率", "参与率", "满意度", "样本量"])
    expected = {}
    for i, v in enumerate(villages.itertuples()):
        a, p, s = (int(x) for x in rng.integers(40, 100, 3))
        if i % 3 == 0:  # a percentage cell, as Excel keeps it: 0.85 shown as 85%
            ws.append([v.name, v.code, "2026-10", a / 100, f"{p}%", s, 50])
            ws.cell(ws.max_row, 4).number_format = "0%"
        elif i % 3 == 1:
            ws.append([v.name, v.code, "2026年10月", f"{a}%", p, s / 100, None])
        else:
            ws.append([v.name, v.code, MONTH, a, p, f"{s}%", 30])  # a date cell
        expected[v.code] = (a, p, s)
    ws.append(["某村", "330399999999", "2026-10", "80%", "50%", "90%", 10])  # not a loaded village
    ws.append([villages.name[0], villages.code[0], "2026-10", "80%", "50%", "120", 10])  # out of range
    ws.append([villages.name[1], villages.code[1], "2026-13", "80%", "50%", "90%", 10])  # bad month
    ws.append([villages.name[2], villages.code[2], "2026-10", None, None, None, 10])  # no rate
    path = tmp_path / "survey.xlsx"
    wb.save(path)
    r = load_file(survey_engine, path, "survey")
    assert r.status == "done", r.error
    assert (r.loaded, r.rejected) == (len(villages), 4)
    with survey_engine.connect() as c:
        rejects = dict(c.execute(text("SELECT row_number, reason FROM pingan.etl_rejects "
                                      "WHERE batch_id = :b"), {"b": r.batch_id}).all())
    n = len(villages) + 1  # the header is row 1
    assert "not a loaded village" in rejects[n + 1]
    assert "满意度: 120 is out of range 0-100%" in rejects[n + 2]
    assert "月份: 2026-13 is not a month" in rejects[n + 3]
    assert "no rate" in rejects[n + 4]
    got = stored(survey_engine, MONTH)
    assert set(got) == set(expected)
    for code, (a, p, s) in expected.items():
        assert got[code][:3] == pytest.approx((a, p, s))
    assert got[villages.code[3]][3] == 50 and got[villages.code[4]][3] is None
    again = load_file(survey_engine, path, "survey")
    assert (again.loaded, again.updated, again.unchanged, again.rejected) == (0, 0, len(villages), 4)
    assert stored(survey_engine, MONTH) == got


def test_gbk_csv_with_names_and_fractions_then_the_index_uses_it(survey_engine, villages, tmp_path) -> None:
    """A GBK CSV naming villages by name only (unique names) or code, with fractions; one
    changed value is an update; then the index's survey indicators read these values."""
    period = date(2026, 9, 1)
    unique = villages[~villages.name.duplicated(keep=False)]
    rows = []
    for i, v in enumerate(villages.itertuples()):
        use_name = i % 2 == 0 and v.name in set(unique.name)
        rows.append({"村社": v.name, "村社代码": "" if use_name else v.code, "月份": "2026/09",
                     "知晓率": f"{0.5 + (i % 40) / 100:.2f}", "参与率": "0.40", "满意度": f"{70 + i % 30}%"})
    path = tmp_path / "survey-gbk.csv"
    pd.DataFrame(rows).to_csv(path, index=False, encoding="gbk")
    r = load_file(survey_engine, path, "survey")
    assert r.status == "done", r.error
    assert (r.loaded, r.rejected) == (len(villages), 0)
    got = stored(survey_engine, period)
    for i, v in enumerate(villages.itertuples()):
        assert got[v.code][:3] == pytest.approx((50 + i % 40, 40, 70 + i % 30))
    rows[3]["满意度"] = "55%"
    pd.DataFrame(rows).to_csv(path, index=False, encoding="gbk")
    r2 = load_file(survey_engine, path, "survey")
    assert (r2.loaded, r2.updated, r2.unchanged) == (0, 1, len(villages) - 1)
    assert stored(survey_engine, period)[villages.code[3]][2] == 55

    index.compute(survey_engine, period)
    with survey_engine.connect() as c:
        contrib = dict(c.execute(text(
            "SELECT code, pingan.index_contributions(period, level, code) FROM pingan.index_scores "
            "WHERE level = 'village' AND period = :p"),
            {"p": period}).all())
    final = stored(survey_engine, period)
    for code, (a, p, s, _) in final.items():
        # a rate's value is the rate itself (no per-capita step)
        assert contrib[code]["survey_satisfaction"]["value"] == pytest.approx(s)
        assert contrib[code]["survey_awareness"]["value"] == pytest.approx(a)
        assert contrib[code]["survey_participation"]["value"] == pytest.approx(p)
        # default model: satisfaction at risk 1 at 60 %, 0 at 100 %, weight 0.04 (layers/index_models)
        assert contrib[code]["survey_satisfaction"]["deduction"] == pytest.approx(
            100 * 0.04 * min(1, max(0, (100 - s) / 40)), abs=0.01)


def test_cli_load(survey_engine, villages, tmp_path, monkeypatch) -> None:
    from cli.main import app

    path = tmp_path / "s.csv"
    pd.DataFrame({"村社代码": [villages.code[0], "330399999999"], "月份": ["2026-08", "2026-08"],
                  "满意度": ["90%", "80%"]}).to_csv(path, index=False)
    monkeypatch.setenv("PINGAN_DATABASE_URL", survey_engine.url.render_as_string(hide_password=False))
    out = CliRunner().invoke(app, ["etl", "load", str(path), "--layer", "survey"])
    assert out.exit_code == 0, out.output
    assert "loaded 1" in out.output and "rejected 1" in out.output
    assert "pingan index compute --period 2026-08" in out.output
