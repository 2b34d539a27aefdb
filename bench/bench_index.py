"""Benchmark gis.index: the default model on 30,000 villages × 60 months, recomputed at once.

Run with ``.venv/bin/python bench/bench_index.py [--villages 30000] [--months 60] [--repeat 3]``.

With ``--database`` [``--towns 300``] it measures instead what ``pingan index compute`` does end to
end against PostGIS (a fresh database, filled by COPY, dropped at the end): see bench/index_db.py.

Inputs are synthetic at that scale, drawn like the demo district's (etl/demo, scale 1, seed 42,
refreshed monthly stats, 2024-11..2026-10): populations log-normal around 3,000 (251..46,000 in
the demo), every source of the default model as Poisson counts at the demo's mean rate per
resident and month, each village with its own gamma-distributed "riskiness" so that colours and
vetoes vary; the survey is absent (as in the demo), so its three indicators are skipped.

Timed: ``gis.index.compute(model, panel)`` on the whole panel (every normalisation, score,
deduction, veto, fixed-band class, rank and change for all 1.8M village-months), then the town
level built from it (sums to 300 towns) and computed too. Peak memory: ``tracemalloc`` peak of
one extra untimed call, and the process's maximum resident set size. Also printed, untimed
against the goal: the ladder replayed for every village (pure Python per place).
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc
from dataclasses import replace
from datetime import date

import numpy as np

from gis.index import Panel, compute, run_ladder
from gis.index.classify import CLASS_KEYS
from layers.index import default_model
from layers.index_inputs import _towns_panel

# mean events per resident and month in the demo district (bench docstring)
RATES = {
    "cases_criminal": 0.27 / 4873,
    "disputes_escalated": 0.32 / 4873,
    "hazards_overdue": 0.66 / 4873,
    "hazards_rectified": 6.24 / 4873,
    "persons_red": 0.45 / 4873,
    "person_visits_overdue": 0.01 / 4873,
    "petitions": 0.09 / 4873,
    "accidents": 0.08 / 4873,
    "hazards_severe_overdue": 0.02 / 4873,
}


def _load() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def synthetic(villages: int, months: int, seed: int = 7) -> tuple[Panel, np.ndarray, list]:
    rng = np.random.default_rng(seed)
    periods = tuple(date(2020 + m // 12, m % 12 + 1, 1) for m in range(months))
    codes = np.array([f"{330304000 + v // 100:09d}{v % 100:03d}" for v in range(villages)])
    pop = np.clip(rng.lognormal(np.log(3000), 0.8, villages), 250, 50_000).round()
    risk = rng.gamma(2.0, 0.5, villages)  # mean 1
    values = {}
    for name, rate in RATES.items():
        lam = rate * pop * risk
        values[name] = rng.poisson(
            lam[None, :] * rng.gamma(5.0, 0.2, (months, 1)), (months, villages)
        ).astype(float)
    values["hazards_rectified_on_time"] = rng.binomial(values["hazards_rectified"].astype(int), 0.88).astype(
        float
    )
    for s in ("survey_satisfaction", "survey_awareness", "survey_participation"):
        values[s] = np.full((months, villages), np.nan)
    towns = [type("T", (), {"code": c, "population": 0})() for c in sorted({c[:9] for c in codes})]
    return Panel(periods, codes, pop, values), np.array([c[:9] for c in codes]), towns


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--villages", type=int, default=30_000)
    ap.add_argument("--months", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--method", choices=("fixed", "quantiles", "natural_breaks"), default="fixed")
    ap.add_argument("--database", action="store_true", help="end to end against PostGIS (bench/index_db.py)")
    ap.add_argument("--towns", type=int, default=300, help="towns, with --database")
    ap.add_argument("--profile", action="store_true", help="with --database: cProfile one whole compute")
    ap.add_argument("--no-registers", action="store_true", help="with --database: monthly_stats only, the "
                    "registers (cases, persons, severe hazards) left empty")
    ap.add_argument("--keep", metavar="DB", help="with --database: keep the filled database under this name "
                    "(and reuse it when it exists) instead of dropping it")
    a = ap.parse_args()
    if a.database:
        from index_db import run as run_database

        run_database(a.towns, a.villages, a.months, a.repeat, a.profile, a.keep, not a.no_registers)
        return
    model = default_model()
    model = replace(model, classification=replace(model.classification, method=a.method))
    t0 = time.perf_counter()
    panel, village_towns, towns = synthetic(a.villages, a.months)
    print(
        f"inputs: {a.villages:,} villages × {a.months} months, {len(panel.values)} sources, "
        f"{len(towns)} towns; generated in {time.perf_counter() - t0:.1f} s"
    )

    def run() -> tuple:
        rv = compute(model.for_level("village"), panel)
        tp = _towns_panel(panel, village_towns, towns)
        tp = Panel(
            tp.periods,
            tp.codes,
            np.bincount(np.unique(village_towns, return_inverse=True)[1], panel.population),
            tp.values,
        )
        return rv, compute(model.for_level("town"), tp)

    times = []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        rv, rt = run()
        times.append(time.perf_counter() - t0)
        print(f"  compute villages + towns: {times[-1]:.2f} s   (load {_load()})")
    print(
        f"classification: {a.method}; best {min(times):.2f} s, median {sorted(times)[len(times) // 2]:.2f} s "
        f"({a.villages * a.months / min(times) / 1e6:.2f} M village-months/s); goal < 10 s"
    )
    tracemalloc.start()
    run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(
        f"peak traced memory of one compute: {peak / 2**20:,.0f} MiB; "
        f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB"
    )
    last = np.bincount(rv.klass[-1], minlength=5)
    print(
        "last month's villages: "
        + ", ".join(f"{k} {n}" for k, n in zip(CLASS_KEYS, last, strict=True))
        + f"; vetoed {int(rv.veto[-1].sum())}; town classes "
        + ", ".join(
            f"{k} {n}" for k, n in zip(CLASS_KEYS, np.bincount(rt.klass[-1], minlength=5), strict=True)
        )
    )
    t0 = time.perf_counter()
    classes = np.array(CLASS_KEYS)[rv.klass]
    open_items = 0
    for n in range(len(panel.codes)):
        eps = run_ladder(
            panel.periods, classes[:, n].tolist(), (-rv.rank_change[:, n]).tolist(), model.ladder
        )
        open_items += bool(eps and eps[-1].closed is None)
    print(
        f"ladder replay (untimed goal): {time.perf_counter() - t0:.2f} s for {a.villages:,} villages, "
        f"{open_items:,} open items   (load {_load()})"
    )


if __name__ == "__main__":
    main()
