"""Jobs and the analyses' door to events, enforced by the database (migration 0011).

Connected as the web service (``svc``: role pingan_service) with a caller stated per
transaction, as request handlers do; expected answers come from the owner's view.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from layers import jobs
from layers.analysis import EventQuery, read_events
from layers.db import Principal, transaction

START, END = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)


def test_a_caller_sees_and_changes_only_its_own_jobs(svc: Engine) -> None:
    ana, other, admin = Principal("ana", "analyst"), Principal("bob", "analyst"), Principal("root", "admin")
    with transaction(svc, ana) as c:
        job = jobs.create(c, ana, "hotspot-gistar", {"layer": "hazards"}, mode="async", runner=1)
    with transaction(svc, other) as c:
        assert jobs.get(c, job.id) is None
        assert job.id not in {j.id for j in jobs.listing(c)[0]}
        assert jobs.dismiss(c, job.id) is None
        with pytest.raises(ProgrammingError):  # may not create a job in someone else's name
            jobs.create(c, ana, "hotspot-gistar", {}, mode="sync", runner=1)
    with transaction(svc, admin) as c:
        assert jobs.get(c, job.id).owner == "ana"
        assert jobs.dismiss(c, job.id).status == "dismissed"  # admins may dismiss any job
    with transaction(svc, ana) as c:
        assert jobs.get(c, job.id).status == "dismissed"


def test_public_has_no_jobs_at_all(svc: Engine) -> None:
    with pytest.raises(ProgrammingError), transaction(svc, Principal("p", "public")) as c:
        c.execute(text("SELECT count(*) FROM pingan.jobs"))


def test_events_door_follows_the_jurisdiction(svc: Engine, demo_engine: Engine) -> None:
    with demo_engine.connect() as c:
        town = c.execute(
            text("SELECT town_code FROM pingan.hazards GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
        ).scalar_one()
        grid = c.execute(
            text("SELECT grid_code FROM pingan.hazards WHERE town_code = :t LIMIT 1"), {"t": town}
        ).scalar_one()
        total, in_town, in_grid = c.execute(
            text(
                "SELECT count(*), count(*) FILTER (WHERE town_code = :t),"
                " count(*) FILTER (WHERE grid_code = :g)"
                " FROM pingan.hazards"
            ),
            {"t": town, "g": grid},
        ).one()
    q = EventQuery("hazards", START, END)
    for principal, expected in (
        (Principal("a", "analyst"), total),
        (Principal("t", "town", (town,)), in_town),
        (Principal("g", "grid", (grid,)), in_grid),
    ):
        with transaction(svc, principal) as c:
            events = read_events(c, q)
            assert len(events) == expected
            if principal.role != "analyst":
                assert set(events.town_code) == {town}
    # analysts still cannot read the table itself
    with pytest.raises(ProgrammingError), transaction(svc, Principal("a", "analyst")) as c:
        c.execute(text("SELECT count(*) FROM pingan.hazards"))


def test_events_door_is_shut_to_public_and_returns_no_identifiers(svc: Engine) -> None:
    with pytest.raises(DBAPIError), transaction(svc, Principal("p", "public")) as c:
        c.execute(text("SELECT * FROM pingan.analysis_events('hazards', now() - interval '99 years', now())"))
    with transaction(svc, Principal("a", "analyst")) as c:
        cols = c.execute(
            text("SELECT * FROM pingan.analysis_events('cases', now() - interval '99 years', now()) LIMIT 1")
        ).keys()
    assert list(cols) == ["x", "y", "month", "type", "state", "town_code", "village_code"]


def test_interrupted_jobs_fail_unless_their_runner_lives(svc: Engine) -> None:
    ana = Principal("ana2", "analyst")
    holder = svc.connect()
    try:
        assert jobs.hold_runner_lock(holder, 4242)
        holder.commit()
        with transaction(svc, ana) as c:
            live = jobs.create(c, ana, "hotspot-gistar", {}, mode="async", runner=4242)
            dead = jobs.create(c, ana, "hotspot-gistar", {}, mode="async", runner=4243)
        with svc.begin() as c:
            assert jobs.fail_interrupted(c) >= 1
        with transaction(svc, ana) as c:
            assert jobs.get(c, dead.id).status == "failed"
            assert jobs.get(c, dead.id).message.startswith("interrupted")
            assert jobs.get(c, live.id).status == "accepted"
    finally:
        holder.invalidate()  # the session ends (a pooled connection would keep its lock)
        holder.close()
    with svc.begin() as c:
        jobs.fail_interrupted(c)
    with transaction(svc, ana) as c:
        assert jobs.get(c, live.id).status == "failed"
