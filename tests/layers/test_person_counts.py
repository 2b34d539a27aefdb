"""Five-loss persons as counts (migration 0028): a town level, and no small group that can be
worked out from the shown counts by subtraction.

The checks here attack the served views the way an analyst could: they take every shown count
as known, every withheld count and every area's own persons (placed only to the village or
town, never shown) as unknown, and work out whatever the additive relations give
(village = grids + own, town = villages + own, total = red + yellow + green), repeating with
what they found until nothing new comes out. Nothing they work out may be a group of 1..k-1
persons. The expected values come from the owner's own count of ``pingan.persons``.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
from sqlalchemy import Engine, text

from layers.db import Principal, make_engine, transaction
from layers.settings import DatabaseSettings

NAMES = ("total", "grade_red", "grade_yellow", "grade_green", "career_failure", "family_discord",
         "life_frustration", "mental_imbalance", "abnormal_behaviour")
GRADES = ("grade_red", "grade_yellow", "grade_green")
Cell = tuple[str, str, str]  # (level, code, count name); level grid|village|town|village_own|town_own
STORED = text("SELECT level, code, names FROM pingan.person_counts_pattern ORDER BY 1, 2")
FRESH = text("SELECT area_level, area_code, array_agg(count_name ORDER BY count_name) "
             "FROM pingan.person_counts_withheld() GROUP BY 1, 2 ORDER BY 1, 2")


@pytest.fixture(scope="module")
def district(databases):  # noqa: ANN001, ANN201
    """A copy of the demo district where some persons are placed only to their village and some
    only to their town (as the loader does for addresses it matched only that far), so that every
    kind of relation has unknown members."""
    url = databases.demo()
    owner = make_engine(DatabaseSettings(database_url=url))
    service = make_engine(DatabaseSettings(database_url=databases.service_url(url)), service=True)
    with owner.begin() as c:
        # every 7th active person to its village only, every 11th (not 7th) to its town only
        c.execute(text("""
            UPDATE pingan.persons p SET loc_method = 'geocoded', geocode_score = 0.5,
                   geocode_level = CASE WHEN n % 7 = 0 THEN 'village' ELSE 'town' END,
                   grid_code = NULL, village_code = CASE WHEN n % 7 = 0 THEN p.village_code END
            FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM pingan.persons) o
            WHERE o.id = p.id AND (o.n % 7 = 0 OR o.n % 11 = 0)"""))
        # One village made of two grids, where a complement has to be protected in turn:
        # grid A 2 red + 5 yellow, grid B 5 red + 6 yellow, nobody else. A's red (2) takes A's
        # yellow (5) as complement, and the village's red B's red (5). Were each of these the only
        # count withheld in another relation (B's grades, the village's yellows), B's red would
        # be 11 - 6 = 5 and A's red the village's 7 - 5 = 2.
        v, a, b = c.execute(text(
            "SELECT village_code, min(code), max(code) FROM pingan.grids GROUP BY 1 "
            "HAVING count(*) >= 2 ORDER BY 1 LIMIT 1")).one()
        w, g = c.execute(text("SELECT village_code, code FROM pingan.grids WHERE left(code, 9) = :t "
                              "AND village_code <> :v ORDER BY code LIMIT 1"), {"t": v[:9], "v": v}).one()
        placed = "loc_method = 'coordinates', geocode_level = NULL, geocode_score = NULL"
        c.execute(text(f"UPDATE pingan.persons SET grid_code = :g, village_code = :w, {placed} "  # noqa: S608
                       "WHERE village_code = :v"), {"g": g, "w": w, "v": v})
        ids = c.execute(text("SELECT id FROM pingan.persons WHERE status = 'active' AND town_code = :t "
                             "ORDER BY id LIMIT 18"), {"t": v[:9]}).scalars().all()
        for i, pid in enumerate(ids):
            c.execute(text(f"UPDATE pingan.persons SET grid_code = :g, village_code = :v, grade = :grade, "  # noqa: S608
                           f"{placed} WHERE id = :i"),
                      {"g": a if i < 7 else b, "v": v, "i": pid,
                       "grade": "red" if i < 2 or i >= 13 else "yellow"})
    yield owner, service
    owner.dispose()
    service.dispose()


def _exact(owner: Engine) -> dict[Cell, int]:
    """Every count the owner sees, of every area and every area's own persons (zeros left out)."""
    out: dict[Cell, int] = {}
    with owner.connect() as c:
        rows = c.execute(text(
            "SELECT grid_code, village_code, town_code, grade, categories FROM pingan.persons "
            "WHERE status = 'active'")).all()
    for grid, village, town, grade, categories in rows:
        names = ("total", f"grade_{grade}", *categories)
        places = [("town", town)]
        if village is None:
            places.append(("town_own", town))
        else:
            places.append(("village", village))
            places.append(("grid", grid) if grid else ("village_own", village))
        for level, code in places:
            for name in names:
                out[level, code, name] = out.get((level, code, name), 0) + 1
    return out


def _shown(service: Engine, role: str = "analyst") -> tuple[dict[Cell, int | None], dict]:
    """The served counts as ``role`` reads them: (level, code, name) -> count or None, and each
    area's parent."""
    shown: dict[Cell, int | None] = {}
    parent: dict[tuple[str, str], str] = {}
    cols = ", ".join(NAMES)
    with transaction(service, Principal("x", role)) as c:
        for level, up in (("grid", "village_code"), ("village", "town_code"), ("town", "NULL")):
            for row in c.execute(text(f"SELECT code, {up} AS up, suppressed, {cols} "  # noqa: S608
                                      f"FROM pingan.persons_by_{level}")).mappings():
                parent[level, row["code"]] = row["up"]
                for name in NAMES:
                    shown[level, row["code"], name] = row[name]
                assert row["suppressed"] == any(row[n] is None for n in NAMES)
    return shown, parent


def _relations(parent: dict[tuple[str, str], str]) -> list[tuple[Cell, list[Cell]]]:
    children: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for (level, code), up in parent.items():
        if level == "grid":
            children["village", up].append((level, code))
        elif level == "village":
            children["town", up].append((level, code))
    for (level, code) in list(parent):
        if level in ("village", "town"):
            children[level, code].append((f"{level}_own", code))
    areas = [*parent, *((f"{lv}_own", c) for lv, c in parent if lv in ("village", "town"))]
    rels = [((*p, n), [(*ch, n) for ch in kids]) for p, kids in children.items() for n in NAMES]
    rels += [((lv, c, "total"), [(lv, c, g) for g in GRADES]) for lv, c in areas]
    return rels


def _attack(shown: dict[Cell, int | None], rels: list, exact: dict[Cell, int], k: int) -> dict:
    """Work out all that the shown counts give; fail on any small group. Returns what was found."""
    known = {cell: n for cell, n in shown.items() if n is not None}
    found: dict[Cell, int] = {}
    small_sums = []
    changed = True
    while changed:
        changed = False
        for p, kids in rels:
            unknown = [c for c in (p, *kids) if c not in known]
            if not unknown:
                assert known[p] == sum(known[c] for c in kids), (p, kids)  # the relation holds
                continue
            if len(unknown) == 1:
                (cell,) = unknown
                value = (sum(known[c] for c in kids) if cell == p
                         else known[p] - sum(known[c] for c in kids if c != cell))
                assert value == exact.get(cell, 0), cell  # the attack's model is the data's
                known[cell] = found[cell] = value
                changed = True
            elif p in known:
                s = known[p] - sum(known[c] for c in kids if c in known)
                if 1 <= s < k:
                    small_sums.append((p, unknown, s))
    small = {cell: n for cell, n in found.items() if 1 <= n < k}
    assert not small, f"{len(small)} small counts worked out, e.g. {sorted(small.items())[:5]}"
    assert not small_sums, f"{len(small_sums)} small groups' sums worked out, e.g. {small_sums[:3]}"
    return found


def test_no_small_group_can_be_worked_out_by_subtraction(district) -> None:  # noqa: ANN001
    owner, service = district
    with owner.connect() as c:
        k = c.execute(text("SELECT min_count FROM pingan.privacy_config")).scalar_one()
    exact = _exact(owner)
    shown, parent = _shown(service)
    # every shown count is the exact count; every count of 1..k-1 is withheld
    for cell, n in shown.items():
        assert n is None or n == exact.get(cell, 0), cell
        assert not 1 <= exact.get(cell, 0) < k or n is None, cell
    assert {lv for lv, _ in parent} == {"grid", "village", "town"}
    # the district has areas' own persons of every kind, small and not
    own = {cell: n for cell, n in exact.items() if cell[0].endswith("_own") and cell[2] == "total"}
    assert any(1 <= n < k for n in own.values()) and any(n >= k for n in own.values())
    assert {c[0] for c in own} == {"village_own", "town_own"}
    found = _attack(shown, _relations(parent), exact, k)
    # the attack does work something out (it is not blind): the own persons that are not few
    assert any(cell[0].endswith("_own") and n >= k for cell, n in found.items())
    # secondary suppression withheld more than the small counts, but not everything
    withheld = [cell for cell, n in shown.items() if n is None]
    primary = [cell for cell in withheld if 1 <= exact.get(cell, 0) < k]
    assert len(withheld) > len(primary)
    for level in ("village", "town"):  # not everything: some counts of k or more stay (grids hold 0-4)
        assert any(n is not None and n >= k for (lv, _c, _n), n in shown.items() if lv == level), level


def test_every_person_is_in_a_town_count(district) -> None:  # noqa: ANN001
    """Persons placed only to a town are in no grid or village but in their town's count."""
    owner, service = district
    exact = _exact(owner)
    shown, _ = _shown(service)
    with owner.connect() as c:
        active = c.execute(text("SELECT count(*) FROM pingan.persons WHERE status = 'active'")).scalar_one()
    towns = {code: n for (lv, code, name), n in exact.items() if lv == "town" and name == "total"}
    assert sum(towns.values()) == active
    assert any(n for (lv, _c, name), n in exact.items() if lv == "town_own" and name == "total")
    shown_towns = {code: n for (lv, code, name), n in shown.items() if lv == "town" and name == "total"}
    assert shown_towns.keys() >= towns.keys()
    assert all(n is None or n == towns.get(code, 0) for code, n in shown_towns.items())
    assert any(n is not None and n > 0 for n in shown_towns.values())


@pytest.mark.parametrize("role", ["town", "grid", "public"])
def test_every_caller_sees_the_same_pattern_in_its_areas(district, role: str) -> None:  # noqa: ANN001
    """The pattern is the district's, not the caller's: a town or grid user sees, in its own
    areas, exactly what an analyst sees there (two callers cannot combine two patterns)."""
    owner, service = district
    analyst, _ = _shown(service)
    with owner.connect() as c:
        grid, town = c.execute(text(
            "SELECT code, left(code, 9) FROM pingan.grids ORDER BY code LIMIT 1")).one()
    areas = {"town": (town,), "grid": (grid,), "public": ()}[role]
    with transaction(service, Principal("x", role, areas)) as c:
        rows = {}
        for level in ("grid", "village", "town"):
            sql = f"SELECT code, {', '.join(NAMES)} FROM pingan.persons_by_{level}"  # noqa: S608
            for r in c.execute(text(sql)).mappings():
                rows.update({(level, r["code"], n): r[n] for n in NAMES})
    assert rows and all(analyst[cell] == n for cell, n in rows.items())
    if role == "grid":  # its grid only: it knows its grid's persons, which would open its village's
        assert {(lv, code) for lv, code, _ in rows} == {("grid", grid)}


def test_the_stored_pattern_follows_every_change(district) -> None:  # noqa: ANN001
    """The pattern is stored and rewritten in the transaction that changes persons or the
    threshold: within it, and after it, it is what a fresh computation gives."""
    owner, _ = district
    with owner.connect() as c, c.begin() as tx:
        before = c.execute(STORED).all()
        assert before and before == c.execute(FRESH).all()
        for change in ("UPDATE pingan.persons SET grade = 'red' WHERE id = (SELECT min(id) FROM "
                       "pingan.persons WHERE status = 'active' AND grade <> 'red')",
                       "UPDATE pingan.persons SET status = 'closed',"
                       " closed_at = registered_at + interval '1 day' WHERE id IN (SELECT id"
                       " FROM pingan.persons WHERE status = 'active' ORDER BY id LIMIT 40)",
                       "UPDATE pingan.privacy_config SET min_count = 3"):
            c.execute(text(change))
            now = c.execute(STORED).all()
            assert now == c.execute(FRESH).all() and now != before, change
            before = now
        tx.rollback()


def test_concurrent_changes_of_persons_leave_the_pattern_of_both(databases) -> None:  # noqa: ANN001
    """Two transactions changing persons at once: the second waits for the first (an advisory
    lock in the trigger) and computes from its committed change plus its own."""
    import threading

    url = databases.demo()
    owner = make_engine(DatabaseSettings(database_url=url))
    try:
        with owner.connect() as c:
            a, b = c.execute(text("SELECT id FROM pingan.persons WHERE status = 'active' ORDER BY id "
                                  "LIMIT 2")).scalars().all()
        move = text("UPDATE pingan.persons SET grade = CASE grade WHEN 'red' THEN 'green' ELSE 'red' END "
                    "WHERE id = :i")
        errors: list[BaseException] = []
        first = owner.connect()
        tx = first.begin()
        first.execute(move, {"i": a})  # holds the lock until it commits

        def second() -> None:
            try:
                with owner.begin() as c:
                    c.execute(move, {"i": b})
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        t = threading.Thread(target=second)
        t.start()
        t.join(1.0)
        assert t.is_alive()  # waiting for the first
        tx.commit()
        first.close()
        t.join(30)
        assert not t.is_alive() and not errors, errors
        with owner.connect() as c:
            assert c.execute(STORED).all() == c.execute(FRESH).all()
    finally:
        owner.dispose()


def test_the_migration_writes_the_pattern_of_the_persons_already_loaded(databases) -> None:  # noqa: ANN001
    from layers import migrate

    owner = make_engine(DatabaseSettings(database_url=databases.demo()))
    try:
        migrate.downgrade(owner, "0027")
        migrate.upgrade(owner)
        with owner.connect() as c:
            stored = c.execute(STORED).all()
            assert stored and stored == c.execute(FRESH).all()
    finally:
        owner.dispose()
