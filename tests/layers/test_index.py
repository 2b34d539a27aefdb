"""The index in the database (layers/index.py): inputs, stored scores, ladder, stars, access.

One database per module: the demo district (scale 1, seed 42), monthly stats refreshed, the
default model computed for 2025-11..2026-10.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import ProgrammingError
from typer.testing import CliRunner

from cli.main import app
from etl.refresh import refresh
from gis.index import compute as compute_panel
from gis.index import run_ladder
from gis.index.classify import CLASS_KEYS
from layers import index, migrate
from layers.db import Principal, make_engine, transaction
from layers.settings import DatabaseSettings
from tests.demo import load

FIRST, LAST = date(2025, 11, 1), date(2026, 10, 1)


@pytest.fixture(scope="module")
def idx(databases) -> Iterator[Engine]:
    url = databases.create()
    eng = make_engine(DatabaseSettings(database_url=url))
    migrate.upgrade(eng)
    load(eng)
    refresh(eng, full=True)
    eng.summary = index.compute(eng, FIRST, index.default_model(), LAST)  # type: ignore[attr-defined]
    eng.url_text = url  # type: ignore[attr-defined]
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def svc(databases, idx) -> Iterator[Engine]:
    eng = make_engine(DatabaseSettings(database_url=databases.service_url(idx.url_text)), service=True)
    yield eng
    eng.dispose()


def test_summary(idx) -> None:
    s = idx.summary
    with idx.connect() as c:
        villages = c.execute(text("SELECT count(*) FROM pingan.villages")).scalar_one()
        towns = c.execute(text("SELECT count(*) FROM pingan.towns")).scalar_one()
        stored = c.execute(text("SELECT level, count(*) FROM pingan.index_scores GROUP BY 1")).all()
    assert dict(stored) == {"village": 12 * villages, "town": 12 * towns} and s.rows == 12 * (
        villages + towns
    )
    assert sum(s.classes["village"].values()) == villages
    # the demo district is mostly safe, with some of every colour
    assert s.classes["village"]["green"] + s.classes["village"]["blue"] > villages / 2
    assert s.classes["village"]["red"] >= 1
    assert any("survey_satisfaction' skipped" in n for n in s.notes)
    assert not any("crime_trend" in n for n in s.notes)  # 2024-11.. gives a year before 2025-11


def test_months_before_the_records_are_unknown(idx) -> None:
    """2025-05: the trend indicator has no month 12 before (2024-05 predates the records, which
    start in 2024-11) and is skipped, not compared with zeros; the month before exists."""
    s = index.compute(idx, date(2025, 5, 1))
    assert any("'crime_trend' skipped: no value 12 months before" in n for n in s.notes)
    with idx.connect() as c:
        assert c.execute(text("SELECT count(*) FROM pingan.index_scores WHERE period = '2025-05-01' "
                              "AND change IS NULL")).scalar_one() == 0
    with pytest.raises(index.IndexInputError, match="start in 2024-11"):
        index.compute(idx, date(2024, 10, 1))
    with idx.begin() as c:
        c.execute(text("DELETE FROM pingan.index_months WHERE period = '2025-05-01'"))
    index.compute(idx, LAST)  # the ladder as it was


def test_inputs_against_the_records(idx) -> None:
    """Sources as counted straight from the records, for the busiest village and month."""
    with idx.connect() as c:
        code, period, n = c.execute(
            text(
                "SELECT village_code, date_trunc('month', accepted_at AT TIME ZONE 'Asia/Shanghai')::date, "
                "count(*) "
                "FROM pingan.cases WHERE kind = 'incident' "
                "AND category IN ('theft', 'fraud', 'fight', 'public_order') "
                "GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 1"
            )
        ).one()
        found = (
            c.execute(
                text(
                    "SELECT hazards_found FROM pingan.monthly_stats WHERE level = 'village' "
                    "AND code = :c AND period = :p"
                ),
                {"c": code, "p": period},
            ).scalar()
            or 0
        )
        inputs = index.read_inputs(c, period, period)
    n_idx = list(inputs.villages.codes).index(code)
    assert inputs.villages.values["cases_criminal"][0, n_idx] == n
    assert inputs.villages.values["hazards_found"][0, n_idx] == found
    town = list(inputs.towns.codes).index(code[:9])
    in_town = inputs.village_towns == code[:9]
    assert (
        inputs.towns.values["cases_criminal"][0, town]
        == inputs.villages.values["cases_criminal"][0, in_town].sum()
    )
    assert np.isnan(inputs.villages.values["survey_satisfaction"]).all()


def test_stored_scores_are_the_computation_and_explain_themselves(idx) -> None:
    model = index.default_model()
    with idx.connect() as c:
        inputs = index.read_inputs(c, index.add_months(LAST, -13), LAST, model.sources())
        rows = c.execute(
            text(
                "SELECT code, score, class, colour_hex, rank, rank_change, change, "
                "veto, veto_reasons, pingan.index_contributions(period, level, code) AS contributions "
                "FROM pingan.index_scores WHERE level = 'village' AND period = :p ORDER BY code"
            ),
            {"p": LAST},
        ).all()
    r = compute_panel(model.for_level("village"), inputs.villages)
    t = r.t(LAST)
    assert [x.code for x in rows] == list(r.codes)
    assert [float(x.score) for x in rows] == r.score[t].tolist()
    assert [x[2] for x in rows] == [CLASS_KEYS[k] for k in r.klass[t]]
    assert [x.rank for x in rows] == r.rank[t].tolist()
    for n, x in enumerate(rows):
        # each indicator's part as computed (stored as float4, so to 6 significant digits)
        want = r.contributions(t, n)
        assert set(x.contributions) == set(want)
        for iid, c in x.contributions.items():
            if want[iid].get("skipped"):
                assert c == {"skipped": True}
                continue
            for key in ("value", "risk", "weight", "deduction"):
                assert c[key] == pytest.approx(want[iid][key], rel=1e-6, abs=1e-4), (x.code, iid, key)
        deducted = sum(c.get("deduction", 0) for c in x.contributions.values())
        assert float(x.score) == pytest.approx(100 - deducted, abs=0.01)
        assert x.veto == bool(x.veto_reasons) and (not x.veto or x[2] == "red")
        assert x.colour_hex == index.COLOURS[x[2]][2]
    assert any(x.veto for x in rows)


def test_change_against_last_month(idx) -> None:
    with idx.connect() as c:
        pairs = c.execute(
            text(
                "SELECT a.change, a.score - b.score AS diff, a.rank_change, b.rank - a.rank AS moved "
                "FROM pingan.index_scores a JOIN pingan.index_scores b "
                "ON (b.level, b.code) = (a.level, a.code) "
                "AND b.period = a.period - interval '1 month' WHERE a.period = :p"
            ),
            {"p": LAST},
        ).all()
    assert pairs and all(p.change == p.diff and p.rank_change == p.moved for p in pairs)


def test_survey_is_used_when_present(idx) -> None:
    with idx.begin() as c:
        c.execute(
            text(
                "INSERT INTO pingan.index_survey (period, level, code, respondents, "
                "awareness, participation, "
                "satisfaction) SELECT :p, 'village', code, 50, 80, 50, "
                "CASE WHEN code < :mid THEN 100 ELSE 60 END "
                "FROM pingan.villages"
            ),
            {"p": LAST, "mid": "330304005"},
        )
    try:
        s = index.compute(idx, LAST)
        assert not any("survey" in n for n in s.notes)
        with idx.connect() as c:
            w = c.execute(
                text(
                    "SELECT pingan.index_contributions(period, level, code) -> 'survey_satisfaction' "
                    "FROM pingan.index_scores "
                    "WHERE level = 'village' AND period = :p AND code >= :mid LIMIT 1"
                ),
                {"p": LAST, "mid": "330304005"},
            ).scalar_one()
        assert w["weight"] == 0.04 and w["risk"] == 1.0 and w["deduction"] == 4.0
    finally:
        with idx.begin() as c:
            c.execute(text("DELETE FROM pingan.index_survey"))
        index.compute(idx, LAST)


def test_monthly_stats_must_be_refreshed(idx) -> None:
    with idx.connect() as c, c.begin() as tx:
        c.execute(text("DELETE FROM pingan.monthly_stats"))
        with pytest.raises(index.IndexInputError, match="pingan etl refresh"):
            index.read_inputs(c, LAST, LAST)
        tx.rollback()


def test_ladder_is_the_replay_of_stored_classes(idx) -> None:
    rules = index.default_model().ladder
    with idx.connect() as c:
        code = c.execute(
            text(
                "SELECT code FROM pingan.index_warnings WHERE level = 'village' "
                "ORDER BY step DESC, opened, code LIMIT 1"
            )
        ).scalar_one()
        hist = c.execute(
            text(
                "SELECT period, class, rank_change FROM pingan.index_scores WHERE level = 'village' "
                "AND code = :c ORDER BY period"
            ),
            {"c": code},
        ).all()
        items = c.execute(
            text(
                "SELECT id, opened, step, status, closed, owner, deadline FROM pingan.index_warnings "
                "WHERE level = 'village' AND code = :c ORDER BY opened"
            ),
            {"c": code},
        ).all()
        events = index.warning_history(c, items[0].id)
    eps = run_ladder(
        [h.period for h in hist],
        [h[1] for h in hist],
        [None if h.rank_change is None else -h.rank_change for h in hist],
        rules,
    )
    assert [(i.opened, i.step, i.closed) for i in items] == [(e.opened, e.step, e.closed) for e in eps]
    assert [(e.period, e.from_step, e.to_step, e.reason) for e in events] == [
        (e.period, e.from_step, e.to_step, e.reason) for e in eps[0].events
    ]
    assert items[0].owner == rules.owners[items[0].step - 1] and items[0].deadline == eps[0].deadline(rules)


def test_open_items_per_town_and_notes_survive_a_recompute(idx) -> None:
    with idx.connect() as c:
        everything = index.open_warnings(c)
        town = everything[0].town_code
        mine = index.open_warnings(c, town)
    assert mine and {w.town_code for w in mine} == {town} and len(mine) < len(everything) + 1
    assert all(w.overdue == (w.deadline < date.today()) for w in everything)
    with idx.begin() as c:
        c.execute(
            text("UPDATE pingan.index_warnings SET evidence = 'visited 3 times' WHERE id = :i"),
            {"i": mine[0].id},
        )
    index.compute(idx, LAST)
    with idx.connect() as c:
        assert (
            c.execute(
                text("SELECT evidence FROM pingan.index_warnings WHERE (level, code, opened) = (:l, :c, :o)"),
                {"l": mine[0].level, "c": mine[0].code, "o": mine[0].opened},
            ).scalar_one()
            == "visited 3 times"
        )


def test_stars(idx) -> None:
    s = index.compute_stars(idx, 2025)
    with idx.connect() as c:
        rows = c.execute(
            text("SELECT percent, stars, veto, card FROM pingan.index_stars WHERE year = 2025")
        ).all()
    assert len(rows) == s.villages and sum(s.stars.values()) == s.villages
    for r in rows:
        rated = [d for d in r.card["dimensions"].values() if d["rated"]]
        pct = round(100 * sum(d["score"] for d in rated) / sum(d["points"] for d in rated), 2)
        assert float(r.percent) == pytest.approx(pct, abs=0.02)
        assert r.stars == (0 if r.veto else sum(float(r.percent) >= t for t in (60, 70, 80, 90, 95)))
        assert r.card["dimensions"]["cult_free"] == {"label": "无邪创建", "rated": False}


def test_ladder_document(idx, tmp_path) -> None:
    from docx import Document

    from layers.index_documents import DocumentError, ladder_document

    with idx.connect() as c:
        item = c.execute(text("SELECT w.id, w.code, w.step, w.deadline, v.name FROM pingan.index_warnings w "
                              "JOIN pingan.villages v ON v.code = w.code WHERE w.status = 'open' "
                              "ORDER BY w.step DESC, w.id LIMIT 1")).one()
        n_events = c.execute(text("SELECT count(*) FROM pingan.index_warning_events WHERE warning_id = :i"),
                             {"i": item.id}).scalar_one()
    with idx.begin() as c:
        d = ladder_document(c, item.id, tmp_path)
    body = "\n".join(p.text for p in Document(str(d.path)).paragraphs)
    assert d.title == {1: "预警通知单", 2: "抄告单", 3: "督办单", 4: "挂牌督办通知书"}[item.step]
    assert d.title in body and item.name in body and f"{item.deadline:%Y年%m月%d日}" in body
    assert body.count(" → ") == n_events
    table = Document(str(d.path)).tables[0]
    assert [c.text for c in table.rows[0].cells] == ["月份", "得分", "颜色", "排名"] and len(table.rows) > 1
    index.compute(idx, LAST)  # a rebuild keeps the recorded document
    with idx.connect() as c:
        assert c.execute(text("SELECT document FROM pingan.index_warnings WHERE id = :i"),
                         {"i": item.id}).scalar_one() == str(d.path)
    with idx.begin() as c, pytest.raises(DocumentError, match="no ladder item 0"):
        ladder_document(c, 0, tmp_path)


def test_ladder_document_pdf(idx, tmp_path, monkeypatch) -> None:
    """The PDF embeds a CJK TrueType subset: the place, step and deadline extract back as text."""
    from pypdf import PdfReader

    from layers.index_documents import DocumentError, ladder_document

    with idx.connect() as c:
        item = c.execute(text("SELECT w.id, w.code, w.step, w.deadline, w.owner, v.name, t.name AS town "
                              "FROM pingan.index_warnings w JOIN pingan.villages v ON v.code = w.code "
                              "JOIN pingan.towns t ON t.code = w.town_code WHERE w.status = 'open' "
                              "ORDER BY w.step DESC, w.id LIMIT 1")).one()
    with idx.begin() as c:
        d = ladder_document(c, item.id, tmp_path, fmt="pdf")
    assert d.path.suffix == ".pdf" and d.path.read_bytes().startswith(b"%PDF-")
    body = "".join(p.extract_text() for p in PdfReader(d.path).pages)
    assert f"{item.town}{item.name}平安建设{d.title}" in body
    assert f"{item.deadline:%Y年%m月%d日}" in body and f"致：{item.owner}" in body
    assert {1: "预警", 2: "抄告", 3: "督办", 4: "挂牌"}[item.step] in body
    with idx.begin() as c, pytest.raises(DocumentError, match="DOCX only"):
        ladder_document(c, item.id, tmp_path, template=tmp_path / "x.docx", fmt="pdf")
    monkeypatch.setenv("PINGAN_CJK_FONT", str(tmp_path / "none.ttf"))
    with idx.begin() as c, pytest.raises(DocumentError, match="no such file"):
        ladder_document(c, item.id, tmp_path, fmt="pdf")
    cff = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
    if cff.exists():  # CFF outlines: refused with the reason, not a broken PDF
        monkeypatch.setenv("PINGAN_CJK_FONT", str(cff))
        with idx.begin() as c, pytest.raises(DocumentError, match="cannot be embedded"):
            ladder_document(c, item.id, tmp_path, fmt="pdf")


# -- who reads what (migration 0007 grants, rows by jurisdiction) ----------------------------------
def test_public_sees_the_published_index_only(svc, idx) -> None:
    with idx.connect() as c:
        n = c.execute(text("SELECT count(*) FROM pingan.villages")).scalar_one()
    with transaction(svc, Principal("p", "public")) as c:
        row = c.execute(
            text(
                "SELECT count(*), min(colour_zh), min(colour_hex) FROM pingan.index_villages "
                "WHERE period = :p"
            ),
            {"p": LAST},
        ).one()
        assert row[0] == n and row[1] in "红橙黄蓝绿" and row[2].startswith("#")
    for rel in ("index_scores", "index_warnings", "index_warning_events"):
        with (
            pytest.raises(ProgrammingError, match="permission denied"),
            transaction(svc, Principal("p", "public")) as c,
        ):
            c.execute(text(f"SELECT 1 FROM pingan.{rel} LIMIT 1"))  # noqa: S608 - fixed names


def test_warnings_by_jurisdiction(svc, idx) -> None:
    with idx.connect() as c:
        town = c.execute(
            text(
                "SELECT town_code FROM pingan.index_warnings WHERE level = 'village' "
                "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
            )
        ).scalar_one()
        in_town = c.execute(
            text("SELECT count(*) FROM pingan.index_warnings WHERE town_code = :t"), {"t": town}
        ).scalar_one()
        village = c.execute(
            text("SELECT code FROM pingan.index_warnings WHERE town_code = :t AND level = 'village' LIMIT 1"),
            {"t": town},
        ).scalar_one()
        grid = c.execute(
            text("SELECT code FROM pingan.grids WHERE village_code = :v LIMIT 1"), {"v": village}
        ).scalar_one()
        of_village = c.execute(
            text("SELECT count(*) FROM pingan.index_warnings WHERE code = :v"), {"v": village}
        ).scalar_one()
        total = c.execute(text("SELECT count(*) FROM pingan.index_warnings")).scalar_one()
    with transaction(svc, Principal("t", "town", (town,))) as c:
        assert c.execute(text("SELECT count(*) FROM pingan.index_warnings")).scalar_one() == in_town
        assert {w.town_code for w in index.open_warnings(c)} <= {town}
        assert (
            c.execute(
                text(
                    "SELECT count(DISTINCT w.town_code) FROM pingan.index_warning_events e "
                    "JOIN pingan.index_warnings w ON w.id = e.warning_id"
                )
            ).scalar_one()
            == 1
        )
    with transaction(svc, Principal("g", "grid", (grid,))) as c:
        assert c.execute(text("SELECT count(*) FROM pingan.index_warnings")).scalar_one() == of_village
    with transaction(svc, Principal("c", "command")) as c:
        assert c.execute(text("SELECT count(*) FROM pingan.index_warnings")).scalar_one() == total
    with (
        pytest.raises(ProgrammingError, match="permission denied"),
        transaction(svc, Principal("a", "analyst")) as c,
    ):
        c.execute(text("SELECT 1 FROM pingan.index_warnings"))


# -- the command line --------------------------------------------------------------------------
def test_cli(idx, monkeypatch) -> None:
    monkeypatch.setenv("PINGAN_DATABASE_URL", idx.url_text)
    run = CliRunner()
    r = run.invoke(app, ["index", "compute", "--period", "2026-10"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "index 2026-10 computed with pingan-default" in r.output and "ladder:" in r.output
    r = run.invoke(app, ["index", "show", "--period", "2026-10", "--limit", "3"])
    assert r.exit_code == 0 and len(r.output.splitlines()) == 4
    with idx.connect() as c:
        code = c.execute(
            text(
                "SELECT code FROM pingan.index_scores WHERE period = :p "
                "AND veto AND level = 'village' LIMIT 1"
            ),
            {"p": LAST},
        ).scalar_one()
    r = run.invoke(app, ["index", "show", "--period", "2026-10", "--explain", code])
    assert r.exit_code == 0 and "vetoed" in r.output and "skipped (no data)" in r.output
    r = run.invoke(app, ["index", "warnings", "--town", code[:9]])
    assert r.exit_code == 0 and "open item(s) in town" in r.output
    for args, message in (
        (["index", "compute", "--period", "2026-13"], "period must be YYYY-MM"),
        (["index", "compute", "--period", "2026-05..2026-01"], "ends before it starts"),
        (["index", "show", "--period", "2020-01"], "no village index stored for 2020-01"),
        (["index", "warnings", "--town", "12"], "9-digit"),
        (["index", "compute", "--period", "2024-05"], "the records start in 2024-11"),
        (["index", "compute", "--period", "2026-05", "--model", "/nonexistent.toml"], "No such file"),
    ):
        r = run.invoke(app, args)
        assert r.exit_code == 2 and message in r.output, (args, r.output)
