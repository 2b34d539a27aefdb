"""End-to-end mode of bench/bench_index.py: ``layers.index.compute`` against PostGIS at scale.

A fresh database on the private cluster (as bench/bench_etl.py makes them), migrated, filled with
``towns`` towns and ``villages`` villages (a grid of small squares near Wenzhou, EPSG:4490) and
``months`` months of ``pingan.monthly_stats`` per village and per town at the demo's rates, loaded
with COPY, and the registers the index also reads (cases, severe hazards, five-loss persons with
their grades and visits) copied from the demo district's database onto the synthetic villages
(:func:`fill_registers`; needs ``pingan demo load`` in the shared database). One hazard found in
the first month makes ``data_start`` begin the records there (so the panel is exactly ``months``
long, no baseline year before it).
"""

from __future__ import annotations

import cProfile
import pstats
import resource
import statistics
import sys
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql
from sqlalchemy import event

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_etl import fresh_db  # noqa: E402

from cli.config import database_target  # noqa: E402
from gis.index import compute as compute_panel  # noqa: E402
from layers import index as lindex  # noqa: E402
from layers import index_inputs as lindex_inputs  # noqa: E402
from layers.db import libpq_url, make_engine  # noqa: E402
from layers.migrate import upgrade  # noqa: E402
from layers.settings import DatabaseSettings  # noqa: E402

DISTRICT = "330304"  # 瓯海区
LON0, LAT0, CELL = 120.50, 27.90, 0.002  # south-west corner near Wenzhou, village square side (°)
PER_RESIDENT = {  # mean events per resident and month in the demo district (bench_index docstring)
    "hazards_found": 6.9 / 4873,
    "hazards_rectified": 6.24 / 4873,
    "hazards_closed": 6.0 / 4873,
    "hazards_overdue": 0.66 / 4873,
    "cases_accepted": 1.2 / 4873,
    "cases_resolved": 1.1 / 4873,
    "cases_overdue": 0.05 / 4873,
}


def _load() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def _square(x0: float, y0: float, w: float, h: float) -> str:
    x1, y1 = x0 + w, y0 + h
    return (
        f"SRID=4490;MULTIPOLYGON((({x0:.6f} {y0:.6f},{x1:.6f} {y0:.6f},{x1:.6f} {y1:.6f},"
        f"{x0:.6f} {y1:.6f},{x0:.6f} {y0:.6f})))"
    )


def fill(url: str, towns: int, villages: int, months: int, first: date, seed: int = 7) -> None:
    """Towns as blocks of side ``k`` villages (k² ≥ villages per town) laid out in rows of 20."""
    if villages % towns or not 0 < villages // towns <= 999 or towns > 999:
        raise SystemExit("--villages must be a multiple of --towns, at most 999 per town, towns ≤ 999")
    per = villages // towns
    k = int(np.ceil(np.sqrt(per)))
    rng = np.random.default_rng(seed)
    pop = np.clip(rng.lognormal(np.log(3000), 0.8, villages), 250, 50_000).round().astype(int)
    risk = rng.gamma(2.0, 0.5, villages)
    tcodes = [f"{DISTRICT}{t + 1:03d}" for t in range(towns)]
    vcodes = [f"{tcodes[v // per]}{v % per + 1:03d}" for v in range(villages)]
    periods = [
        date(first.year + (first.month - 1 + m) // 12, (first.month - 1 + m) % 12 + 1, 1)
        for m in range(months)
    ]
    # villages × months counts, as bench_index.synthetic draws them
    season = rng.gamma(5.0, 0.2, (months, 1))
    counts = {name: rng.poisson((rate * pop * risk)[None, :] * season) for name, rate in PER_RESIDENT.items()}
    counts["hazards_rectified_on_time"] = rng.binomial(counts["hazards_rectified"], 0.88)
    counts["cases_resolved_grassroots"] = rng.binomial(counts["cases_resolved"], 0.9)
    cols = list(lindex_inputs._MONTHLY_STATS)
    town_of = np.repeat(np.arange(towns), per)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY pingan.towns (code, county_code, name, kind, population, households, geom, source, "
            "source_id) FROM STDIN"
        ) as cp:
            tpop = np.bincount(town_of, pop)
            for t, code in enumerate(tcodes):
                x0, y0 = LON0 + (t % 20) * k * CELL, LAT0 + (t // 20) * k * CELL
                cp.write_row(
                    (
                        code,
                        DISTRICT,
                        f"测试镇{t + 1:03d}",
                        "town",
                        int(tpop[t]),
                        int(tpop[t] // 3),
                        _square(x0, y0, k * CELL, k * CELL),
                        "bench",
                        code,
                    )
                )
        with cur.copy(
            "COPY pingan.villages (code, town_code, name, kind, population, households, geom, source, "
            "source_id) FROM STDIN"
        ) as cp:
            for v, code in enumerate(vcodes):
                t, i = v // per, v % per
                x0 = LON0 + (t % 20) * k * CELL + (i % k) * CELL
                y0 = LAT0 + (t // 20) * k * CELL + (i // k) * CELL
                cp.write_row(
                    (
                        code,
                        code[:9],
                        f"测试村{code[-6:]}",
                        "village",
                        int(pop[v]),
                        int(pop[v] // 3),
                        _square(x0, y0, CELL, CELL),
                        "bench",
                        code,
                    )
                )
        with cur.copy(f"COPY pingan.monthly_stats (period, level, code, {', '.join(cols)}) FROM STDIN") as cp:
            for m, p in enumerate(periods):
                tsum = {c: np.bincount(town_of, counts[c][m], minlength=towns).astype(int) for c in cols}
                for v, code in enumerate(vcodes):
                    cp.write_row((p, "village", code, *(int(counts[c][m, v]) for c in cols)))
                for t, code in enumerate(tcodes):
                    cp.write_row((p, "town", code, *(int(tsum[c][t]) for c in cols)))
        # one grid per village (the registers' records need one), and the one hazard that makes
        # data_start() begin the records in ``first``
        v0 = vcodes[0]
        cur.execute(
            "INSERT INTO pingan.grids (code, village_code, name, population, households, geom, source, "
            "source_id) SELECT code || '001', code, '测试网格', population, households, geom, 'bench', "
            "code || '001' FROM pingan.villages"
        )
        cur.execute(
            "INSERT INTO pingan.hazards (code, category, title, reporter_kind, state, found_at, grid_code, "
            "village_code, town_code, geom, source, source_id) VALUES ('BENCH-1', 'fire', '测试隐患', "
            "'inspection', 'found', %s, %s, %s, %s, ST_SetSRID(ST_MakePoint(%s, %s), 4490), 'bench', "
            "'BENCH-1')",
            (f"{first:%Y-%m}-02 09:00+08", v0 + "001", v0, v0[:9], LON0 + CELL / 2, LAT0 + CELL / 2),
        )
        conn.commit()
        cur.execute("ANALYZE")


# The registers the index reads besides monthly_stats, and the instant that places a record in time
REGISTERS = {"cases": "accepted_at", "hazards": "found_at", "persons": "registered_at",
             "person_grades": "changed_at", "person_visits": "visited_at"}
SHIFTS = (0, 24, 48)  # months back: the demo's 24 months of records, three times over 60 months


def fill_registers(url: str, demo_url: str, first: date) -> dict[str, int]:
    """The demo district's registers, from the demo database (``pingan demo load``), replicated onto
    the synthetic villages: each village takes every case, severe hazard and five-loss person
    (with grades and visits) of one demo village drawn at random, at each of ``SHIFTS``, keeping
    what falls from ``first`` on. Non-severe hazards are not copied: the index reads them only
    through monthly_stats (filled above), and its severe query reads the partial index
    hazards_severe_idx (migration 0016), so their number does not change what is measured.
    Returns rows per table."""
    with psycopg.connect(url) as conn, psycopg.connect(demo_url) as demo, conn.cursor() as cur:
        catalog = ("SELECT column_name FROM information_schema.columns WHERE table_schema = 'pingan' "
                   "AND table_name = %s ORDER BY ordinal_position")
        for t in REGISTERS:
            # the columns both schemas have (the demo database may be at an older migration)
            theirs = {r[0] for r in demo.execute(catalog, (t,))}
            cols = sql.SQL(", ").join(sql.Identifier(r[0]) for r in cur.execute(catalog, (t,)).fetchall()
                                      if r[0] in theirs)
            make = sql.SQL("CREATE UNLOGGED TABLE public.{} AS SELECT {} FROM pingan.{} WITH NO DATA")
            cur.execute(make.format(sql.Identifier(f"demo_{t}"), cols, sql.Identifier(t)))
            where = sql.SQL("WHERE level = 'severe'" if t == "hazards" else "")
            get = sql.SQL("COPY (SELECT {} FROM pingan.{} {}) TO STDOUT (FORMAT binary)").format(
                cols, sql.Identifier(t), where)
            put = sql.SQL("COPY public.{} FROM STDIN (FORMAT binary)").format(sql.Identifier(f"demo_{t}"))
            with demo.cursor().copy(get) as out, cur.copy(put) as into:
                for chunk in out:
                    into.write(chunk)
        cur.execute("CREATE UNLOGGED TABLE public.demo_villages (code text)")
        get = "COPY (SELECT code FROM pingan.villages ORDER BY code) TO STDOUT"
        with demo.cursor().copy(get) as out, cur.copy("COPY public.demo_villages FROM STDIN") as into:
            for chunk in out:
                into.write(chunk)
        # each synthetic village: its number i and the demo village it copies
        cur.execute(
            "CREATE UNLOGGED TABLE public.vmap AS SELECT v.code, v.town_code, "
            "ST_PointOnSurface(v.geom) AS pt, row_number() OVER (ORDER BY v.code) AS i, "
            "d.codes[1 + abs(hashtext(v.code)) % cardinality(d.codes)] AS demo "
            "FROM pingan.villages v, (SELECT array_agg(code ORDER BY code) AS codes "
            "FROM public.demo_villages) d"
        )
        cur.execute("CREATE INDEX ON public.vmap (demo)")
        cur.execute("CREATE UNLOGGED TABLE public.shifts (k integer)")
        cur.execute("INSERT INTO public.shifts VALUES " + ", ".join(f"({k})" for k in SHIFTS))  # noqa: S608 - constants
        cur.execute("ANALYZE")
        since = f"TIMESTAMPTZ '{first:%Y-%m-%d} 00:00+08'"
        counts = {}
        for t, at in REGISTERS.items():
            cols = cur.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'pingan' AND table_name = %s AND column_name <> 'id' "
                "AND is_generated = 'NEVER' AND column_name IN (SELECT column_name FROM "
                "information_schema.columns WHERE table_schema = 'public' AND table_name = 'demo_' || %s) "
                "ORDER BY ordinal_position", (t, t)).fetchall()
            exprs = []
            for name, kind in cols:
                col = f"c.{name}"
                if name in ("code", "source_id"):
                    exprs.append(f"{col} || '~' || m.i || '~' || s.k")
                elif name == "village_code":
                    exprs.append("m.code")
                elif name == "grid_code":
                    exprs.append("m.code || '001'")
                elif name == "town_code":
                    exprs.append("m.town_code")
                elif name == "geom":
                    exprs.append("m.pt")
                elif name == "id_number_hash":
                    exprs.append(f"decode(md5(encode({col}, 'hex') || '~' || m.i || '~' || s.k), 'hex')")
                elif name in ("batch_id", "responsible_worker_id", "worker_id"):  # not copied
                    exprs.append("NULL")
                elif name == "person_id":
                    exprs.append("np.id")
                elif kind == "timestamp with time zone":
                    exprs.append(f"{col} - make_interval(months => s.k)")
                elif kind == "date":
                    exprs.append(f"({col} - make_interval(months => s.k))::date")
                else:
                    exprs.append(col)
            if t in ("person_grades", "person_visits"):  # the copied person's copy
                source = (
                    f"public.demo_{t} c JOIN public.demo_persons dp ON dp.id = c.person_id "
                    "JOIN public.vmap m ON m.demo = dp.village_code CROSS JOIN public.shifts s "
                    "JOIN pingan.persons np ON np.source = dp.source "
                    "AND np.source_id = dp.source_id || '~' || m.i || '~' || s.k"
                )
            else:
                source = (f"public.demo_{t} c JOIN public.vmap m ON m.demo = c.village_code "
                          "CROSS JOIN public.shifts s")
            insert = (
                f"INSERT INTO pingan.{t} ({', '.join(n for n, _ in cols)}) "  # noqa: S608 - catalog names
                f"SELECT {', '.join(exprs)} FROM {source} "
                f"WHERE c.{at} - make_interval(months => s.k) >= {since}"
            )
            n = cur.execute(insert).rowcount
            counts[t] = n
            conn.commit()
        for t in [*REGISTERS, "villages"]:
            cur.execute(sql.SQL("DROP TABLE public.{}").format(sql.Identifier(f"demo_{t}")))
        cur.execute("DROP TABLE public.vmap, public.shifts")
        conn.commit()
        cur.execute("ANALYZE")
    return counts


def _statement_timer(engine):  # noqa: ANN001, ANN202
    """Seconds spent in each SQL statement (by its first words) on ``engine``'s connections."""
    spent: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ARG001
        conn.info["bench_t0"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ARG001
        key = " ".join(statement.split())[:90]
        spent[key] += time.perf_counter() - conn.info.pop("bench_t0")
        calls[key] += 1

    return spent, calls


def _kept(admin_url: str, app_url: str, name: str) -> tuple[bool, str]:
    """(filled, URL) of the database ``name`` on the private cluster: made anew unless it exists and
    a fill completed in it (the table public.bench_filled says so)."""
    from sqlalchemy.engine import make_url

    from cli.devdb import create_database, create_extensions

    admin_db = libpq_url(make_url(admin_url).set(database=name).render_as_string(hide_password=False))
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None
    if exists:
        with psycopg.connect(admin_db) as conn:
            exists = conn.execute("SELECT to_regclass('public.bench_filled') IS NOT NULL").fetchone()[0]
    if not exists:
        with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            create_database(conn, name, owner=make_url(app_url).username)
        with psycopg.connect(admin_db, autocommit=True) as conn:
            create_extensions(conn)
    return exists, libpq_url(make_url(app_url).set(database=name).render_as_string(hide_password=False))


def run(
    towns: int, villages: int, months: int, repeat: int, profile: bool = False, keep: str | None = None,
    registers: bool = True,
) -> None:
    first = date(2021, 11, 1)
    last = date(first.year + (first.month - 1 + months - 1) // 12, (first.month - 1 + months - 1) % 12 + 1, 1)
    target = database_target(start=True)
    name = None
    try:
        t0 = time.perf_counter()
        exists = False
        if keep:
            exists, url = _kept(target.admin_url, target.url, keep)
        else:
            name, url = fresh_db(target.admin_url, target.url)
        engine = make_engine(DatabaseSettings(database_url=url))
        upgrade(engine)
        t1 = time.perf_counter()
        if exists:
            print(f"database {keep} reused (as filled before)")
        else:
            fill(libpq_url(url), towns, villages, months, first)
            if registers:
                t2 = time.perf_counter()
                counts = fill_registers(libpq_url(url), libpq_url(target.url), first)
                print(f"registers from the demo district in {time.perf_counter() - t2:.1f} s: "
                      + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
            if keep:  # complete: a later run may reuse it
                with psycopg.connect(libpq_url(url)) as conn:
                    conn.execute("CREATE TABLE public.bench_filled ()")
        print(
            f"database {name or keep}: migrated in {t1 - t0:.1f} s; {towns:,} towns, {villages:,} villages, "
            f"{months} months of monthly_stats ({(villages + towns) * months:,} rows) "
            f"loaded by COPY in {time.perf_counter() - t1:.1f} s   (load {_load()})"
        )
        # what `pingan etl refresh --full` adds for the index: its inputs, counted from the monthly
        # statistics and the registers into one matrix per month (layers/index_inputs.py); untimed
        # against the goal, like the monthly statistics themselves
        t0 = time.perf_counter()
        with engine.begin() as conn:
            n_months = lindex_inputs.refresh_inputs(conn, 0, full=True)
        print(f"index inputs refreshed (full) in {time.perf_counter() - t0:.1f} s: {n_months} months "
              f"(load {_load()})")
        model = lindex.default_model()
        # the split, once: read (data_start + read_inputs) and the in-memory compute of both levels
        spent, calls = _statement_timer(engine)
        prof = cProfile.Profile() if profile else None
        with engine.begin() as conn:
            t0 = time.perf_counter()
            begins = lindex.data_start(conn)
            inputs = lindex.read_inputs(conn, begins, last, model.sources())
            read_s = time.perf_counter() - t0
        read_sql = sum(spent.values())
        t0 = time.perf_counter()
        compute_panel(model.for_level("village"), inputs.villages)
        compute_panel(model.for_level("town"), inputs.towns)
        comp_s = time.perf_counter() - t0
        print(
            f"read inputs {read_s:.2f} s (statements outside COPY {read_sql:.2f} s); in-memory compute "
            f"villages + towns {comp_s:.2f} s  (load {_load()})"
        )
        times = []
        for i in range(repeat):
            spent.clear()
            calls.clear()
            if prof and i == 0:
                prof.enable()
            if i == 0:  # the first run writes every ladder step, as a first computation or new rules do
                with engine.begin() as conn:
                    conn.exec_driver_sql("UPDATE pingan.index_warnings SET steps_md5 = NULL")
            t0 = time.perf_counter()
            s = lindex.compute(engine, first, model, last)
            times.append(time.perf_counter() - t0)
            if prof and i == 0:
                prof.disable()
                pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
            print(
                f"  pingan index compute {first:%Y-%m}..{last:%Y-%m}: {times[-1]:.2f} s, {s.rows:,} scores, "
                f"{s.open_warnings:,} open warnings; "
                + ", ".join(f"{k} {v:.2f} s" for k, v in s.phases.items()) + f"   (load {_load()})"
            )
        again = times[1:] or times
        best, med = min(again), statistics.median(again)
        print(
            f"end to end: every ladder step written (run 1) {times[0]:.2f} s; recomputed (runs 2..{repeat}, "
            f"steps written where they changed): best {best:.2f} s, median {med:.2f} s; goal < 10 s "
            f"(worst / goal = {max(times) / 10:.2f}×); store + ladder ≈ {best - read_s - comp_s:.2f} s "
            "of the best"
        )
        print("time per statement in the last run (SQL execute only; COPYs are not counted; top 6):")
        for key, sec in sorted(spent.items(), key=lambda kv: -kv[1])[:6]:
            print(f"  {sec:7.2f} s  {calls[key]:>5} call(s)  {key}")
        print(
            f"classes, last month: villages {s.classes['village']}, towns {s.classes['town']}; "
            f"max RSS of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB "
            f"(the server's memory is not counted)"
        )
        engine.dispose()
    finally:
        if name:
            with psycopg.connect(libpq_url(target.admin_url), autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
