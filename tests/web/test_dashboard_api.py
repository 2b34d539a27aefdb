"""The map screen's APIs over HTTP (the live server of tests/web), each number against SQL written
here independently, as the owner (no row-level security: the jurisdiction is spelt out)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Engine, text

from layers import versions
from tests.web.conftest import api

# A month's bounds in local time, written differently from layers/dashboard.py on purpose.
LOCAL = "(({col}) AT TIME ZONE 'Asia/Shanghai')"


def latest(district: Engine) -> date:
    with district.connect() as c:
        return c.execute(text("SELECT max(period) FROM pingan.index_scores")).scalar_one()


def expected_kpis(district: Engine, period: date, town: str | None) -> dict:
    where = "AND town_code = :town" if town else ""
    p = {"p": period, "town": town}
    end = "least(now() AT TIME ZONE 'Asia/Shanghai', CAST(:p AS timestamp) + interval '1 month')"
    in_month = "{c} >= CAST(:p AS timestamp) AND {c} < CAST(:p AS timestamp) + interval '1 month'"
    with district.connect() as c:
        found, rectified, overdue = c.execute(text(f"""
            SELECT count(*) FILTER (WHERE {in_month.format(c=LOCAL.format(col="found_at"))}),
                   count(*) FILTER (WHERE {in_month.format(c=LOCAL.format(col="found_at"))}
                                    AND {LOCAL.format(col="rectified_at")} < {end}),
                   count(*) FILTER (WHERE {LOCAL.format(col="found_at")} < {end}
                                    AND {LOCAL.format(col="deadline")} < {end}
                                    AND (rectified_at IS NULL OR {LOCAL.format(col="rectified_at")} >= {end}))
            FROM pingan.hazards WHERE true {where}"""), p).one()
        resolved, grassroots = c.execute(text(f"""
            SELECT count(*), count(*) FILTER (WHERE resolution_level <> 'district')
            FROM pingan.cases WHERE kind = 'dispute' AND resolved_at IS NOT NULL
              AND {in_month.format(c=LOCAL.format(col="resolved_at"))} {where}"""), p).one()
        ladder = c.execute(text(f"""SELECT count(*) FROM pingan.index_warnings
            WHERE status = 'open' AND deadline < current_date {where}"""), p).scalar_one()
        ro = dict(c.execute(text(f"""SELECT period, count(*) FROM pingan.index_scores
            WHERE level = 'village' AND class IN ('red', 'orange')
              AND period IN (CAST(:p AS date), CAST(:p AS date) - interval '1 month') {where}
            GROUP BY period"""), p).all())
        grades = dict(c.execute(text(f"""SELECT grade, count(*) FROM pingan.persons
            WHERE status = 'active' {where} GROUP BY grade"""), p).all())
    prev = date(period.year - (period.month == 1), (period.month - 2) % 12 + 1, 1)
    return {"found": found, "rectified": rectified, "overdue_hazards": overdue, "resolved": resolved,
            "grassroots": grassroots, "ladder_overdue": ladder, "red_orange": ro.get(period, 0),
            "previous_red_orange": ro.get(prev, 0), "grades": grades}


@pytest.mark.parametrize(("who", "back"), [("command", 0), ("command", 1), ("town", 0), ("town", 3)])
def test_kpis_equal_independent_sql(server: str, users, district: Engine, who: str, back: int) -> None:
    """The latest month and earlier ones (where hazards found late in the month were rectified
    in the next: the month's end matters)."""
    login = users[who]
    period = latest(district)
    for _ in range(back):
        period = date(period.year - (period.month == 1), (period.month - 2) % 12 + 1, 1)
    status, k = api(server, login, f"/api/kpis?period={period:%Y-%m}")
    assert status == 200, k
    want = expected_kpis(district, period, login.areas[0] if who == "town" else None)
    assert want["found"] > 0 and want["resolved"] > 0  # the demo month has data: the test can fail
    h, d, o, v, p = k["hazards"], k["disputes"], k["overdue"], k["villages"], k["persons"]
    assert (h["found"], h["rectified"]) == (want["found"], want["rectified"])
    assert h["overdue"] == want["overdue_hazards"]
    assert h["rate"] == round(want["rectified"] / want["found"], 4)
    assert (d["resolved"], d["grassroots"]) == (want["resolved"], want["grassroots"])
    assert d["rate"] == round(want["grassroots"] / want["resolved"], 4)
    assert o["ladder"] == want["ladder_overdue"]
    assert o["total"] == want["overdue_hazards"] + want["ladder_overdue"]
    assert (v["red_orange"], v["previous_red_orange"]) == (want["red_orange"], want["previous_red_orange"])
    assert p["exact"] and {g: p[g] for g in ("red", "yellow", "green")} == {
        g: want["grades"].get(g, 0) for g in ("red", "yellow", "green")}


def test_an_analyst_gets_suppressed_counts_only(server: str, users, district: Engine) -> None:
    period = latest(district)
    status, k = api(server, users["analyst"], f"/api/kpis?period={period:%Y-%m}")
    assert status == 200
    assert k["hazards"] is None and k["disputes"] is None  # no privilege on individuals
    with district.connect() as c:
        k_min = c.execute(text("SELECT min_count FROM pingan.privacy_config")).scalar_one()
        exact = dict(c.execute(text("""SELECT t.code, count(p.id) FILTER (WHERE p.grade = 'red')
            FROM pingan.towns t
            LEFT JOIN pingan.persons p ON p.town_code = t.code AND p.status = 'active'
            GROUP BY t.code""")).all())
    status, towns = api(server, users["analyst"], "/ogc/collections/persons-by-town/items?limit=1000")
    assert status == 200
    served = {f["properties"]["code"]: f["properties"]["grade_red"] for f in towns["features"]}
    assert served.keys() == exact.keys()
    assert all(n is None or n == exact[code] for code, n in served.items())  # withheld or exact
    assert all(n is None for code, n in served.items() if 1 <= exact[code] < k_min)
    assert k["persons"]["red"] == sum(n for n in served.values() if n is not None)
    assert k["persons"]["red"] == 0 or k["persons"]["red"] >= k_min
    assert k["persons"]["suppressed_areas"] > 0 and not k["persons"]["exact"]


def test_warnings_list_the_open_ladder_items_by_jurisdiction(server: str, users, district: Engine) -> None:
    with district.connect() as c:
        rows = c.execute(text("SELECT id, town_code, level, code, deadline < current_date AS overdue"
                              " FROM pingan.index_warnings WHERE status = 'open'")).all()
    assert rows, "the demo ladder has open items"
    status, doc = api(server, users["command"], "/api/warnings")
    assert status == 200
    assert sorted(i["id"] for i in doc["items"]) == sorted(r.id for r in rows)
    assert {i["id"]: i["overdue"] for i in doc["items"]} == {r.id: r.overdue for r in rows}
    assert all(i["place"] and len(i["place"]["bbox"]) == 4 for i in doc["items"])
    steps = [i["step"] for i in doc["items"]]
    assert steps == sorted(steps, reverse=True)  # most severe first
    town = users["town"].areas[0]
    status, doc = api(server, users["town"], "/api/warnings")
    assert sorted(i["id"] for i in doc["items"]) == sorted(r.id for r in rows if r.town_code == town)
    other = next(r.town_code for r in rows if r.town_code != town)
    assert api(server, users["town"], f"/api/warnings?town={other}")[1]["items"] == []  # RLS, not the filter
    assert api(server, users["command"], f"/api/warnings?town={other}")[1]["count"] == sum(
        r.town_code == other for r in rows)
    if "grid" in users:
        villages = {g[:12] for g in users["grid"].areas}
        doc = api(server, users["grid"], "/api/warnings")[1]
        assert sorted(i["id"] for i in doc["items"]) == sorted(
            r.id for r in rows if r.level == "village" and r.code in villages)
    assert api(server, users["analyst"], "/api/warnings")[0] == 403
    assert api(server, users["command"], "/api/warnings?town=12")[0] == 422


def test_history_is_the_records_events_and_rls_hides_other_towns(server: str, users,
                                                                   district: Engine) -> None:
    town = users["town"].areas[0]
    with district.connect() as c:
        mine = c.execute(text("SELECT id, code FROM pingan.hazards WHERE town_code = :t AND state = 'closed'"
                              " ORDER BY id LIMIT 1"), {"t": town}).one()
        other = c.execute(text("SELECT code FROM pingan.hazards WHERE town_code <> :t LIMIT 1"),
                          {"t": town}).scalar_one()
        events = c.execute(text("SELECT to_state FROM pingan.hazard_events WHERE hazard_id = :i"
                                " ORDER BY at, id"),
                           {"i": mine.id}).scalars().all()
        case = c.execute(text("SELECT code FROM pingan.cases WHERE town_code = :t LIMIT 1"),
                         {"t": town}).scalar_one()
    for ref in (mine.code, str(mine.id)):
        status, h = api(server, users["town"], f"/api/hazards/{ref}/history")
        assert status == 200 and h["code"] == mine.code
        assert [e["to_state"] for e in h["events"]] == events
    assert events[0] == "found" and events[-1] == "closed"
    assert api(server, users["town"], f"/api/hazards/{other}/history")[0] == 404  # another town's: unseen
    assert api(server, users["command"], f"/api/hazards/{other}/history")[0] == 200
    assert api(server, users["analyst"], f"/api/hazards/{mine.code}/history")[0] == 403
    status, cs = api(server, users["town"], f"/api/cases/{case}/history")
    assert status == 200 and cs["events"][0]["to_state"] == "accepted"
    assert api(server, users["command"], "/api/hazards/no-such-code/history")[0] == 404


def test_place_breakdown_sums_to_the_score(server: str, users, district: Engine) -> None:
    period = latest(district)
    with district.connect() as c:
        code, score = c.execute(text("SELECT code, score FROM pingan.index_scores WHERE level = 'village'"
                                     " AND period = :p AND class = 'red' ORDER BY code LIMIT 1"),
                               {"p": period}).one()
    status, b = api(server, users["command"], f"/api/places/{code}?period={period:%Y-%m}")
    assert status == 200 and b["code"] == code and b["score"] == float(score)
    deducted = sum(i["deduction"] for i in b["indicators"] if not i.get("skipped"))
    assert b["veto"] or abs(100 - deducted - float(score)) < 0.05  # 100 minus the deductions
    assert b["warnings"] is not None
    assert api(server, users["command"], f"/api/places/{code}?period=2026-13")[0] == 400



def test_a_place_is_explained_only_to_those_who_may_see_its_persons(server: str, users,
                                                                     district: Engine) -> None:
    """An explanation holds the place's person figures (persons_red per 10,000 residents times the
    population is the count): migration 0029 gives it to admin, command and system everywhere and
    to a town user in its town; analysts and grid users get the score without it."""
    period = latest(district)
    town = users["town"].areas[0]
    with district.connect() as c:
        own, other = (c.execute(text(
            "SELECT code FROM pingan.index_scores WHERE level = 'village' AND period = :p"
            " AND (town_code = :t) = :own ORDER BY code LIMIT 1"),
            {"p": period, "t": town, "own": own}).scalar_one() for own in (True, False))
    places = (own, other, town, other[:9])
    for role in users:
        for code in places:
            status, b = api(server, users[role], f"/api/places/{code}?period={period:%Y-%m}")
            assert status == 200 and b["score"] is not None, (role, code)
            explained = role == "command" or (role == "town" and code.startswith(town))
            assert b["indicators_withheld"] is not explained, (role, code)
            if explained:
                assert "value" in next(i for i in b["indicators"] if i["id"] == "persons_red")
            else:
                assert b["indicators"] == []

def test_versions_and_labels(server: str, users, district: Engine) -> None:
    with district.connect() as c:
        truth = dict(c.execute(text("SELECT layer_id, version FROM pingan.layer_versions")).all())
        names = set(c.execute(text("SELECT name FROM pingan.villages")).scalars())
    assert api(server, users["analyst"], "/api/versions")[1]["versions"] == truth
    with district.begin() as c:
        versions.bump(c, ["key-sites"])
    now = api(server, users["analyst"], "/api/versions")[1]["versions"]
    assert now["key-sites"] == truth["key-sites"] + 1
    status, doc = api(server, users["analyst"], "/api/labels")
    assert status == 200 and {f["properties"]["name"] for f in doc["features"]} <= names
    assert len(doc["features"]) == len(names) or len(doc["features"]) > 100
    # the label points are kept per index version: a new computation shows at once
    code = doc["features"][0]["properties"]["code"]
    month = f"{doc['period']}-01"
    with district.begin() as c:
        c.execute(text("UPDATE pingan.index_months SET score_x100[array_position(codes, :c)] = 1234 "
                       "WHERE level = 'village' AND period = :p"), {"c": code, "p": month})
    try:
        again = api(server, users["command"], f"/api/labels?period={doc['period']}")[1]
        moved = next(f for f in again["features"] if f["properties"]["code"] == code)
        assert moved["properties"]["score"] == 12.34
    finally:
        with district.begin() as c:
            c.execute(text("UPDATE pingan.index_months SET score_x100[array_position(codes, :c)] = :s "
                           "WHERE level = 'village' AND period = :p"),
                      {"c": code, "p": month, "s": round(doc["features"][0]["properties"]["score"] * 100)})
