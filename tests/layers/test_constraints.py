"""The database itself refuses bad data: invalid geometry, duplicate codes, broken hierarchy,
illegal states and illegal state changes."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

SQUARE = "MULTIPOLYGON(((120.60 27.95, 120.62 27.95, 120.62 27.97, 120.60 27.97, 120.60 27.95)))"
BOWTIE = "MULTIPOLYGON(((120.60 27.95, 120.62 27.97, 120.62 27.95, 120.60 27.97, 120.60 27.95)))"
T, V, G = "330304001", "330304001001", "330304001001001"


@contextmanager
def refused(match: str):
    """The statement inside fails with a database error whose message contains ``match``."""
    with pytest.raises((IntegrityError, DBAPIError)) as info:
        yield
    assert match in str(info.value.orig), str(info.value.orig)


def insert(conn, table: str, **values) -> None:
    geom_cols = {k for k in values if k in ("geom", "depot")}
    cols = ", ".join(values)
    params = ", ".join(
        f"ST_GeomFromText(:{k}, COALESCE(:srid_{k}, 4490))" if k in geom_cols else f":{k}"
        for k in values
    )
    binds = dict(values) | {f"srid_{k}": None for k in geom_cols}
    for k in geom_cols:
        if isinstance(values[k], tuple):
            binds[k], binds[f"srid_{k}"] = values[k]
    with conn.begin_nested():
        conn.execute(text(f"INSERT INTO pingan.{table} ({cols}) VALUES ({params})"), binds)


def town(conn, code=T, name="景山街道", geom=SQUARE, **kw) -> None:
    insert(conn, "towns", code=code, county_code=code[:6], name=name, kind="street",
           population=1000, households=400, geom=geom, source="t", source_id=code, **kw)


def village(conn, code=V, town_code=T, **kw) -> None:
    insert(conn, "villages", code=code, town_code=town_code, name="繁荣社区", kind="community",
           population=500, households=200, geom=SQUARE, source="t", source_id=code, **kw)


def grid(conn, code=G, village_code=V) -> None:
    insert(conn, "grids", code=code, village_code=village_code, name="繁荣社区第1网格",
           population=100, households=40, geom=SQUARE, source="t", source_id=code)


def hierarchy(conn) -> None:
    town(conn)
    village(conn)
    grid(conn)


def hazard(conn, source_id="h1", **kw) -> None:
    values = dict(
        code=f"YH-{source_id}", category="fire", title="消防通道堵塞", reporter_kind="grid_worker",
        state="found", found_at="2025-03-01T09:00:00+08", grid_code=G, village_code=V,
        town_code=T, geom="POINT(120.61 27.96)", source="t", source_id=source_id,
    )
    insert(conn, "hazards", **(values | kw))


def case(conn, source_id="c1", **kw) -> None:
    values = dict(
        code=f"JF-{source_id}", kind="dispute", category="neighbour", title="邻里噪音纠纷",
        channel="grid_worker", state="accepted", accepted_at="2025-03-01T09:00:00+08",
        deadline="2025-03-31T09:00:00+08", grid_code=G, village_code=V, town_code=T,
        geom="POINT(120.61 27.96)", source="t", source_id=source_id,
    )
    insert(conn, "cases", **(values | kw))


# -- geometry ----------------------------------------------------------------------------------
def test_valid_hierarchy_is_accepted(conn) -> None:
    hierarchy(conn)
    hazard(conn)
    case(conn)
    assert conn.execute(text("SELECT count(*) FROM pingan.hazards")).scalar_one() == 1


def test_invalid_geometry_refused(conn) -> None:
    with refused("towns_geom_check"):
        town(conn, geom=BOWTIE)


def test_wrong_srid_refused(conn) -> None:
    with refused("SRID"):
        town(conn, geom=(SQUARE, 4326))


def test_wrong_geometry_type_refused(conn) -> None:
    with refused("Geometry type"):
        town(conn, geom="POINT(120.6 27.9)")


def test_point_record_with_invalid_point_refused(conn) -> None:
    hierarchy(conn)
    with refused("hazards_geom_check"):
        hazard(conn, geom="POINT(NaN 27.9)")


# -- codes and hierarchy -----------------------------------------------------------------------
def test_duplicate_code_refused(conn) -> None:
    town(conn)
    with refused("towns_pkey"):
        town(conn, name="另一个街道")


def test_duplicate_source_key_refused(conn) -> None:
    hierarchy(conn)
    hazard(conn, source_id="dup")
    with refused("hazards_source_source_id_key"):
        hazard(conn, source_id="dup", code="YH-other")


def test_malformed_code_refused(conn) -> None:
    with refused("towns_code_check"):
        town(conn, code="33030400A")


def test_child_code_must_extend_parent_code(conn) -> None:
    town(conn)
    town(conn, code="330304002", name="梧田街道")
    with refused("villages_in_town"):
        village(conn, code="330304002001", town_code=T)


def test_record_must_agree_with_its_grid_village_town(conn) -> None:
    hierarchy(conn)
    town(conn, code="330304002", name="梧田街道")
    with refused("hazards_in_hierarchy"):
        hazard(conn, town_code="330304002")


def test_foreign_key_refused(conn) -> None:
    town(conn)
    with refused("villages_town_code_fkey"):
        village(conn, code="330304009001", town_code="330304009")


# -- states ------------------------------------------------------------------------------------
def test_unknown_state_refused(conn) -> None:
    hierarchy(conn)
    with refused("hazards_state_check"):
        hazard(conn, state="lost")


def test_state_without_its_timestamps_refused(conn) -> None:
    hierarchy(conn)
    with refused("hazards_state_timestamps"):
        hazard(conn, state="closed")  # closed, but never assigned, rectified, verified


def test_timestamps_out_of_order_refused(conn) -> None:
    hierarchy(conn)
    with refused("hazards_time_order"):
        hazard(conn, state="assigned", assigned_at="2025-02-01T00:00:00+08",
               deadline="2025-03-10T00:00:00+08")


def test_hazard_moves_forward_only(conn) -> None:
    hierarchy(conn)
    hazard(conn)

    def move(state: str, **sets: str) -> None:
        assigns = ", ".join([f"{k} = CAST(:{k} AS timestamptz)" for k in sets] + ["state = :s"])
        with conn.begin_nested():
            conn.execute(text(f"UPDATE pingan.hazards SET {assigns}"), sets | {"s": state})

    move("assigned", assigned_at="2025-03-02T00:00:00+08", deadline="2025-03-09T00:00:00+08")
    move("handling")
    move("feedback", rectified_at="2025-03-05T00:00:00+08")
    move("handling", rectified_at=None)  # the check failed: back to handling is a legal step
    with refused("illegal hazard state change: handling -> found"):
        move("found", assigned_at=None, deadline=None)
    # an export may jump several legal steps at once (handling -> closed)
    move("closed", rectified_at="2025-03-05T00:00:00+08", verified_at="2025-03-06T00:00:00+08",
         closed_at="2025-03-07T00:00:00+08")
    with refused("illegal hazard state change: closed -> feedback"):
        move("feedback", verified_at=None, closed_at=None)


def test_case_states(conn) -> None:
    hierarchy(conn)
    with refused("cases_state_timestamps"):
        case(conn, state="resolved", resolved_at="2025-03-05T00:00:00+08")  # no level
    case(conn, source_id="ok", state="resolved", mediating_at="2025-03-02T00:00:00+08",
         resolved_at="2025-03-05T00:00:00+08", resolution_level="village")
    with refused("cases_resolution_level_check"):
        case(conn, source_id="bad-level", state="resolved", resolved_at="2025-03-05T00:00:00+08",
             resolution_level="province")
    with refused("illegal case state change: resolved -> accepted"), conn.begin_nested():
        conn.execute(text("UPDATE pingan.cases SET state = 'accepted' WHERE source_id = 'ok'"))


def test_person_categories_are_the_five_losses(conn) -> None:
    hierarchy(conn)
    base = dict(
        name_enc=b"x", id_number_enc=b"x", gender="M", birth_year=1980,
        grade="red", grade_since="2025-01-02T00:00:00+08", registered_at="2025-01-01T00:00:00+08",
        grid_code=G, village_code=V, town_code=T, geom="POINT(120.61 27.96)", source="t",
    )
    insert(conn, "persons", **base, id_number_hash=b"1", source_id="p1",
           categories=["career_failure", "mental_imbalance"])
    with refused("persons_categories_check"):
        insert(conn, "persons", **base, id_number_hash=b"2", source_id="p2",
               categories=["career_failure", "bad_luck"])
    with refused("persons_categories_check"):
        insert(conn, "persons", **base, id_number_hash=b"3", source_id="p3", categories=[])
    with refused("persons_id_number_hash_key"):
        insert(conn, "persons", **base, id_number_hash=b"1", source_id="p4",
               categories=["family_discord"])
