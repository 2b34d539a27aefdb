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
from etl.refresh import _TOUCHED as REFRESH_TOUCHED
from etl.refresh import refresh
from gis.index import compute as compute_panel
from gis.index import run_ladder
from gis.index.classify import CLASS_KEYS
from layers import index, index_inputs
from layers.db import Principal, make_engine, transaction
from layers.settings import DatabaseSettings
from tests.layers.test_index_inputs import _rows

FIRST, LAST = date(2025, 11, 1), date(2026, 10, 1)


@pytest.fixture(scope="module")
def idx(databases) -> Iterator[Engine]:
    url = databases.demo()
    eng = make_engine(DatabaseSettings(database_url=url))
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


def test_inputs_must_be_refreshed(idx) -> None:
    """A month without stored inputs, or inputs stored for other villages or towns, is an error
    asking for a refresh, never a month of zeros."""
    with idx.connect() as c, c.begin() as tx:
        c.execute(text("DELETE FROM pingan.index_inputs WHERE period = :p"), {"p": LAST})
        with pytest.raises(index.IndexInputError, match="no index inputs for 2026-10: run `pingan etl"):
            index.read_inputs(c, index.add_months(LAST, -2), LAST)
        index.read_inputs(c, index.add_months(LAST, -2), index.add_months(LAST, -1))  # the others are there
        tx.rollback()
    with idx.connect() as c, c.begin() as tx:
        c.execute(text("INSERT INTO pingan.villages (code, town_code, name, kind, population, households, "
                       "geom, source, source_id) "
                       "SELECT left(code, 9) || '999', town_code, 'new', kind, 10, 3, geom, source, 'new' "
                       "FROM pingan.villages LIMIT 1"))
        with pytest.raises(index.IndexInputError, match="other villages or towns than those loaded"):
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


def _events(c) -> list[tuple]:  # noqa: ANN001
    return [tuple(r) for r in c.execute(text(
        "SELECT w.level, w.code, w.opened, e.period, e.from_step, e.to_step, e.reason, e.id "
        "FROM pingan.index_warning_events e JOIN pingan.index_warnings w ON w.id = e.warning_id "
        "ORDER BY w.level, w.code, w.opened, e.period, e.id")).all()]


def test_ladder_rewrites_only_the_histories_that_changed(idx) -> None:
    """Months re-scored for one village change that village's steps: the rebuild writes those
    again and keeps every other step's row; the result is what a rebuild from nothing writes."""
    model = index.default_model()
    with idx.connect() as c:
        tx = c.begin()
        before = _events(c)
        # compute() replayed its months from memory; replayed from the store, nothing changes
        index.rebuild_ladder(c, model)
        assert _events(c) == before
        code, opened = c.execute(text(
            "SELECT code, opened FROM pingan.index_warnings WHERE level = 'village' AND status = 'open' "
            "ORDER BY step DESC, opened, code LIMIT 1")).one()
        # the village turns green three months after its open item was raised: the item changes
        c.execute(text("UPDATE pingan.index_months SET class[array_position(codes, :c)] = 4 "
                       "WHERE level = 'village' AND period >= :p"),
                  {"c": code, "p": index.add_months(opened, 3)})
        index.rebuild_ladder(c, model)
        changed = _events(c)
        c.execute(text("DELETE FROM pingan.index_warning_events"))  # no steps stored, none known
        c.execute(text("UPDATE pingan.index_warnings SET steps_md5 = NULL"))
        index.rebuild_ladder(c, model)
        scratch = _events(c)
        tx.rollback()
    assert [e[:7] for e in changed] == [e[:7] for e in scratch]  # same steps, same order
    b, a = _by_item(before), _by_item(changed)
    same = [k for k in a if k in b and [x for x, _ in a[k]] == [x for x, _ in b[k]]]
    rewritten = [k for k in a if k not in same]
    assert rewritten and {k[1] for k in rewritten} == {code} and len(same) > 20
    assert all(a[k] == b[k] for k in same)  # the very rows, ids included
    assert all({i for _, i in a[k]}.isdisjoint(i for _, i in b.get(k, [])) for k in rewritten)


def _by_item(events: list[tuple]) -> dict:
    out: dict = {}
    for e in events:
        out.setdefault(e[:3], []).append((e[3:7], e[7]))
    return out


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


# -- the stored matrices (pingan.index_inputs, written by the refresh) -------------------------
def _stored(conn) -> dict:  # noqa: ANN001
    begins = index.data_start(conn)
    current = conn.execute(
        text("SELECT date_trunc('month', now() AT TIME ZONE 'Asia/Shanghai')::date")).scalar()
    with conn.connection.driver_connection.cursor() as cur:
        return index_inputs._read_stored(cur, begins, current)


def _as_rows(stored: dict, columns: tuple[str, ...]) -> set[tuple]:
    """The stored counts of ``columns`` as (period, code, counts…) rows, all-zero rows left out."""
    at = [index.COUNTED.index(c) for c in columns]
    out = set()
    for period, (codes, m) in stored.items():
        part = m[at]
        for n in np.flatnonzero(part.any(axis=0)):
            out.add((period, str(codes[n]), *(int(v) for v in part[:, n])))
    return out


def test_stored_inputs_are_the_counts(idx: Engine) -> None:
    """After a full refresh of the demo district: a month for every month from the first record to now, for
    every village and town (the demo has no record placed only to a town: the towns' columns are
    zeros, tests/layers/test_index_towns.py puts some in), holding exactly the monthly statistics
    and what each register query counts."""
    with idx.connect() as c:
        stored = _stored(c)
        begins = index.data_start(c)
        months = c.execute(text(
            "SELECT count(*) FROM generate_series(CAST(:b AS timestamp), "
            "date_trunc('month', now() AT TIME ZONE 'Asia/Shanghai'), interval '1 month')"), {"b": begins}
        ).scalar_one()
        villages = c.execute(text("SELECT array_agg(code ORDER BY code) FROM pingan.villages")).scalar_one()
        towns = c.execute(text("SELECT array_agg(code ORDER BY code) FROM pingan.towns")).scalar_one()
        assert len(stored) == months and all(list(codes) == villages + towns for codes, _ in stored.values())
        first, last = min(stored), max(stored)
        for key in ("cases", "escalated", "severe", "persons"):
            want = {r for r in _rows(c, index.register_sql(key), first, last) if any(r[2:])}
            assert want and _as_rows(stored, index_inputs._SQL_COLUMNS[key]) == want, key
        cols = index_inputs._MONTHLY_STATS
        want = {tuple(r) for r in c.execute(text(
            f"SELECT period, code, {', '.join(cols)} FROM pingan.monthly_stats "  # noqa: S608 - constant names
            "WHERE level = 'village'")).all() if any(r[2:])}
        assert want and _as_rows(stored, cols) == want


def test_incremental_inputs_equal_a_full_rebuild(idx: Engine) -> None:
    """A batch that changes a person's grade and visits and adds a criminal case: the refresh
    counts again only the villages it touched, and gets what a full rebuild gets (rolled back)."""
    with idx.connect() as c:
        tx = c.begin()
        before = _stored(c)
        since = c.execute(text("SELECT max(id) FROM pingan.etl_batches")).scalar_one()
        batch = c.execute(text("INSERT INTO pingan.etl_batches (source, layer, status, finished_at) "
                               "VALUES ('test', 'persons', 'done', now()) RETURNING id")).scalar_one()
        person, code = c.execute(text(
            "SELECT id, village_code FROM pingan.persons WHERE closed_at IS NULL AND registered_at < "
            "'2025-01-01' ORDER BY id LIMIT 1")).one()
        c.execute(text("INSERT INTO pingan.person_grades (person_id, grade, changed_at, batch_id) VALUES "
                       "(:p, 'red', '2025-06-10 12:00+08', :b), (:p, 'yellow', '2025-09-03 09:00+08', :b)"),
                  {"p": person, "b": batch})
        c.execute(text("INSERT INTO pingan.person_visits (person_id, visited_at, method, next_due, batch_id) "
                       "VALUES (:p, '2025-07-01 10:00+08', 'home', '2025-07-15', :b)"),
                  {"p": person, "b": batch})
        columns = [r for r in c.execute(text(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'pingan' "
            "AND table_name = 'cases' AND column_name <> 'id' ORDER BY ordinal_position")).scalars()]
        put = {"code": "'TEST-' || code", "source_id": "'TEST-' || source_id", "batch_id": ":b",
               "kind": "'incident'", "category": "'theft'"}
        c.execute(text(
            f"INSERT INTO pingan.cases ({', '.join(columns)}) SELECT "  # noqa: S608 - catalogue names
            f"{', '.join(put.get(k, k) for k in columns)} FROM pingan.cases WHERE village_code <> :v "
            "AND accepted_at >= '2025-08-01' ORDER BY id LIMIT 1"), {"b": batch, "v": code})
        # an import closes the only person of a village in 2025-10: its later months count nobody
        lone, lone_code = c.execute(text(
            "SELECT min(id), village_code FROM pingan.persons WHERE village_code NOT IN (:v, "
            "(SELECT village_code FROM pingan.cases WHERE source_id LIKE 'TEST-%')) "
            "GROUP BY 2 HAVING count(*) = 1 AND bool_and(closed_at IS NULL AND grade IN ('red', 'yellow')) "
            "AND min(registered_at) BETWEEN '2025-01-01' AND '2025-06-01' "
            "ORDER BY 2 LIMIT 1"), {"v": code}).one()
        c.execute(text("UPDATE pingan.persons SET status = 'closed', closed_at = '2025-10-15 12:00+08', "
                       "batch_id = :b WHERE id = :i"), {"b": batch, "i": lone})
        c.execute(text(REFRESH_TOUCHED), {"since": since, "full": False})  # what the refresh touched
        written = index.refresh_inputs(c, since, full=False)
        redone = c.execute(text("SELECT count(*) FROM index_touched_places")).scalar_one()
        after = _stored(c)
        c.execute(text("DROP TABLE index_touched_places"))
        index.refresh_inputs(c, 0, full=True)
        full = _stored(c)
        tx.rollback()
    assert redone == 3 and 0 < written < len(full)  # three villages, some months
    assert after.keys() == full.keys() and all(np.array_equal(after[p][1], full[p][1]) for p in full)
    graded = [index.COUNTED.index(k) for k in ("persons_red", "persons_yellow")]
    n = list(full[LAST][0]).index(lone_code)
    assert all(full[p][1][graded, n].sum() == 0 for p in full if p >= date(2025, 11, 1))
    assert any(before[p][1][graded, n].sum() > 0 for p in full if p >= date(2025, 11, 1))
    changed = [p for p in full if not np.array_equal(before[p][1], full[p][1])]
    assert changed and min(changed) >= date(2025, 6, 1)  # the batch changed those months, nothing earlier
