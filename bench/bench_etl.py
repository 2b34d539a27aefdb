"""ETL load benchmark: a GBK CSV of hazards (GCJ-02 coordinates and address-only rows mixed)
loaded end to end by `pingan etl load`, side by side with `ogr2ogr -f PostgreSQL` loading the
same file (which does none of the work: no decoding of GBK, no datum, no geocoding, no grid
assignment, no rejects, no upsert).

    .venv/bin/python bench/bench_etl.py --rows 1000000 --address-share 0.2

Each run creates a fresh database on the server of `pingan db url --admin`, loads the demo
district's hierarchy into it, and drops it at the end. Prints rows/s, the ratio to ogr2ogr and
the peak memory (max RSS) of each loader process, the load average of the machine before and
after the two loads, and (in the loader's summary) the seconds of each stage: read, map,
locate, then the load split into keys (which rows are new), copy direct (new rows copied into
the table), copy stage / upsert / events (rows the table knew, and chunks it refused) and
indexes (bulk mode's rebuild).
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cli.config import database_target  # noqa: E402
from cli.devdb import create_database, create_extensions  # noqa: E402
from etl.demo.samples import hazards_export  # noqa: E402
from layers.db import libpq_url, make_engine  # noqa: E402
from layers.settings import DatabaseSettings  # noqa: E402


def make_csv(engine, path: Path, rows: int, address_share: float, seed: int) -> None:
    """Resample the demo's hazards to ``rows`` rows with unique ids."""
    with engine.connect() as conn:
        df = pd.read_sql(
            "SELECT title, category, state, found_at, assigned_at, deadline, rectified_at, verified_at, "
            "closed_at, address, ST_X(geom) AS x, ST_Y(geom) AS y FROM pingan.hazards",
            conn,
        )
    rng = np.random.default_rng(seed)
    df = df.iloc[rng.integers(0, len(df), rows)].reset_index(drop=True)
    no_xy = rng.random(rows) < address_share
    out = hazards_export(df, [f"B{i:08d}" for i in range(rows)], datum="高德")
    out.loc[no_xy, ["经度", "纬度", "坐标系"]] = [np.nan, np.nan, ""]
    out.to_csv(path, index=False, encoding="gbk")


def fresh_db(admin_url: str, app_url: str) -> tuple[str, str]:
    from sqlalchemy.engine import make_url

    name = f"pingan_bench_{secrets.token_hex(3)}"
    owner = make_url(app_url).username
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        create_database(conn, name, owner=owner)
    admin_db = libpq_url(make_url(admin_url).set(database=name).render_as_string(hide_password=False))
    with psycopg.connect(admin_db, autocommit=True) as conn:
        create_extensions(conn)
    return name, libpq_url(make_url(app_url).set(database=name).render_as_string(hide_password=False))


_WRAP = (
    "import resource, subprocess, sys\n"
    "p = subprocess.run(sys.argv[1:], capture_output=True, text=True, errors='replace')\n"
    "sys.stdout.write(p.stdout + p.stderr)\n"
    "print(f'@@maxrss {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}')\n"
    "sys.exit(p.returncode)\n"
)


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``cmd`` under a small wrapper process of its own, so that the peak memory (max RSS)
    reported is that command's alone; return (seconds, peak MB, output)."""
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _WRAP, *cmd],
        env=env,
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    dt = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed:\n{out.stdout}\n{out.stderr}")
    text, _, rss = out.stdout.rpartition("@@maxrss ")
    return dt, int(rss) / 1024, text


def _loadavg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def gbk(arg: str) -> str:
    """An argument whose bytes on the command line are GBK (as the file's header is)."""
    return arg.encode("gbk").decode(sys.getfilesystemencoding(), "surrogateescape")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--address-share", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    target = database_target(start=True)
    names: list[str] = []
    try:
        ours_db, ours_url = fresh_db(target.admin_url, target.url)
        peer_db, peer_url = fresh_db(target.admin_url, target.url)
        names += [ours_db, peer_db]
        env = os.environ | {"PINGAN_DATABASE_URL": ours_url}
        py = sys.executable
        subprocess.run([py, "-m", "cli.main", "db", "migrate"], env=env, check=True, capture_output=True)
        subprocess.run([py, "-m", "cli.main", "demo", "load"], env=env, check=True, capture_output=True)
        engine = make_engine(DatabaseSettings(database_url=ours_url))
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "hazards.csv"
            t0 = time.perf_counter()
            make_csv(engine, csv, args.rows, args.address_share, args.seed)
            engine.dispose()
            size = csv.stat().st_size / 1e6
            print(
                f"file: {args.rows:,} rows, {size:.0f} MB GBK, {args.address_share:.0%} address-only "
                f"(made in {time.perf_counter() - t0:.1f} s)"
            )
            load_before = _loadavg()
            ours_s, ours_mb, ours_out = timed(
                [py, "-m", "cli.main", "etl", "load", str(csv), "--layer", "hazards", "--source", "bench"],
                env,
            )
            # ogr2ogr reads the CSV's bytes as they are: the column names go to it in GBK too, and
            # libpq is told the client encoding is GBK so the server converts the text.
            peer_s, peer_mb, _ = timed(
                [
                    "ogr2ogr",
                    "-f",
                    "PostgreSQL",
                    f"PG:{peer_url}",
                    str(csv),
                    "-nln",
                    "bench_hazards",
                    "-oo",
                    gbk("X_POSSIBLE_NAMES=经度"),
                    "-oo",
                    gbk("Y_POSSIBLE_NAMES=纬度"),
                    "-a_srs",
                    "EPSG:4326",
                    "--config",
                    "PG_USE_COPY",
                    "YES",
                    "-lco",
                    "SPATIAL_INDEX=GIST",
                ],
                os.environ | {"PGCLIENTENCODING": "GBK"},
            )
        print(ours_out.strip())
        print(f"load average (1/5/15 min) before the loads: {load_before}; after: {_loadavg()}")
        print(f"{'loader':<22} {'seconds':>8} {'rows/s':>10} {'peak MB':>8}")
        print(f"{'pingan etl load':<22} {ours_s:>8.1f} {args.rows / ours_s:>10,.0f} {ours_mb:>8.0f}")
        print(f"{'ogr2ogr -f PostgreSQL':<22} {peer_s:>8.1f} {args.rows / peer_s:>10,.0f} {peer_mb:>8.0f}")
        print(f"ratio (ours / ogr2ogr rows/s): {peer_s / ours_s:.2f}")
    finally:
        with psycopg.connect(libpq_url(target.admin_url), autocommit=True) as conn:
            for name in names:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
