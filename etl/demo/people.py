"""People of the demo district: grid workers, patrol teams and five-loss persons (五失人员).

Names come from Faker's zh_CN name lists (surname weights nudged towards Wenzhou's common
surnames) drawn with numpy, so they are fast and reproducible for a seed; Faker's own
``ssn()`` is not used because it dates people from *today*, which would make the output change
from day to day. ID numbers are built here: area code, birth date, sequence, sex digit and the
GB 11643 (ISO 7064 MOD 11-2) check character.
"""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from faker.providers.person.zh_CN import Provider as _FakerNames
from faker.providers.phone_number.zh_CN import Provider as _FakerPhones

from etl.demo import geometry
from etl.demo import spacetime as st
from etl.demo.spacetime import DAY, HOUR, Window

_WENZHOU = set("陈林黄王张李周吴郑潘徐金叶胡朱杨刘谢蔡戴")
_SURNAMES = np.array(list(_FakerNames.last_names), dtype=object)
_SURNAME_P = np.array([w * (4 if s in _WENZHOU else 1) for s, w in _FakerNames.last_names.items()])
_MALE = np.array(_FakerNames.first_names_male, dtype=object)
_FEMALE = np.array(_FakerNames.first_names_female, dtype=object)
_PREFIXES = np.array([str(p) for p in _FakerPhones.phonenumber_prefixes], dtype=object)
_ID_WEIGHTS = np.array([2 ** (17 - i) % 11 for i in range(17)])
_CHECK = np.array(list("10X98765432"), dtype=object)  # check character by (sum mod 11)
# where registered residents' IDs were issued: Ouhai, the rest of Wenzhou, migrant provinces
_AREAS = (["330304"], ["330302", "330303", "330381", "330382", "330324", "330327"],
          ["522422", "513029", "362330", "342623", "412723", "431022", "511322"])
CATEGORIES = ["career_failure", "family_discord", "life_frustration", "mental_imbalance",
              "abnormal_behaviour"]
_CATEGORY_W = np.array([0.30, 0.32, 0.20, 0.12, 0.06])
GRADES = np.array(["red", "yellow", "green"], dtype=object)
_METHODS = ["home", "phone", "video", "office"]
CADENCE_DAYS = {"red": 7, "yellow": 30, "green": 91}  # weekly, monthly, quarterly visits
_FINDINGS = {
    "red": ["情绪波动较大，已联系家属加强看护", "仍有过激言论，已报派出所关注", "拒绝沟通，需持续跟进"],
    "yellow": ["情绪基本稳定，仍有经济困难", "家庭矛盾有所缓和", "已介绍就业岗位，待落实"],
    "green": ["情绪稳定，生活正常", "工作稳定，家庭和睦", "无异常情况"],
}


def names(rng: np.random.Generator, male: np.ndarray) -> np.ndarray:
    """Chinese names for people of the given sex (one- or two-character given names)."""
    n = len(male)
    surname = rng.choice(_SURNAMES, n, p=_SURNAME_P / _SURNAME_P.sum())
    pool = [np.where(male, rng.choice(_MALE, n), rng.choice(_FEMALE, n)) for _ in range(2)]
    length = [np.char.str_len(p.astype(str)) for p in pool]
    # most given names have two characters: add a second single-character part to a single one
    two = (rng.random(n) < 0.6) & (length[0] == 1) & (length[1] == 1)
    second = np.where(two, pool[1], "")
    return surname + pool[0] + second


def phones(rng: np.random.Generator, n: int) -> np.ndarray:
    """Mobile numbers: an operator prefix 1[3-9]x and eight digits."""
    tail = np.char.zfill(rng.integers(0, 10**8, n).astype(str), 8).astype(object)
    return rng.choice(_PREFIXES, n) + tail


def id_check(first17: np.ndarray) -> np.ndarray:
    """GB 11643 check character of 17-digit strings (ISO 7064 MOD 11-2)."""
    digits = np.array([list(s) for s in first17.astype(str)], dtype=np.int64)
    return _CHECK[(digits @ _ID_WEIGHTS) % 11]


def id_numbers(rng: np.random.Generator, birth: np.ndarray, male: np.ndarray) -> np.ndarray:
    """18-character resident ID numbers consistent with birth date (datetime64[D]) and sex."""
    n = len(birth)
    group = rng.choice(3, n, p=[0.7, 0.15, 0.15])
    area = np.where(
        group == 0, _AREAS[0][0],
        np.where(group == 1, rng.choice(_AREAS[1], n), rng.choice(_AREAS[2], n)),
    ).astype(object)
    ymd = np.char.replace(np.datetime_as_string(birth, unit="D"), "-", "").astype(object)
    sex_parity = male.astype(int)  # the 17th digit is odd for men, even for women
    ids = np.empty(n, dtype=object)
    todo = np.arange(n)
    while len(todo):  # redraw the sequence digits of the rare duplicate (UNIQUE in the table)
        seq = rng.integers(0, 500, len(todo))  # 15th-17th digits: sequence and sex
        digits = np.char.zfill((seq // 5 * 10 + 2 * (seq % 5) + sex_parity[todo]).astype(str), 3)
        first17 = area[todo] + ymd[todo] + digits.astype(object)
        ids[todo] = first17 + id_check(first17)
        todo = todo[pd.Series(ids).duplicated().to_numpy()[todo]]
    return ids


def grid_workers(admin, seed: int, scale: int) -> pd.DataFrame:
    """One full-time worker per grid plus part-time and specialist workers per village."""
    rng = np.random.default_rng([seed, scale, 301])
    v = admin.villages["code"].to_numpy()
    n_part, n_spec = rng.integers(1, 4, len(v)), rng.integers(0, 3, len(v))
    codes = np.concatenate([
        "GW" + admin.grids["code"].to_numpy(dtype=object),
        [f"GP{c}{k:02d}" for c, m in zip(v, n_part, strict=True) for k in range(1, m + 1)],
        [f"GS{c}{k:02d}" for c, m in zip(v, n_spec, strict=True) for k in range(1, m + 1)],
    ])
    role = np.select([np.char.startswith(codes.astype(str), "GW"),
                      np.char.startswith(codes.astype(str), "GP")],
                     ["full_time", "part_time"], "specialist").astype(object)
    village = pd.Series(codes).str[2:14].to_numpy(dtype=object)
    order = np.argsort(codes, kind="stable")
    n = len(codes)
    return pd.DataFrame({
        "code": codes[order], "name": names(rng, rng.random(n) < 0.45), "phone": phones(rng, n),
        "role": role[order], "village_code": village[order], "active": True, "source": "demo",
        "source_id": "worker-" + codes[order],
    })


_TEAMS = {  # kind: (name pattern, members range, travel modes, shifts)
    "police": ("{short}派出所巡逻组", (3, 7), ["car"], [("20:00", "02:00")]),
    "auxiliary": ("{town}平安巡防队", (4, 11), ["bicycle", "car"], [("18:00", "00:00")]),
    "volunteer": ("{town}红袖章志愿巡逻队", (8, 31), ["foot"], [("08:00", "17:00"), ("18:30", "21:00")]),
    "security": ("{town}保安巡逻队", (2, 7), ["foot", "bicycle"], [("22:00", "06:00")]),
}


def patrol_teams(admin, seed: int) -> gpd.GeoDataFrame:
    """Two to four teams per town (always one police team), depots in busy grids."""
    rng = np.random.default_rng([seed, 302])
    rows, depot_grid = [], []
    grids = admin.grids.reset_index(drop=True)
    for town in admin.towns.itertuples():
        kinds = ["police", *rng.choice(["auxiliary", "volunteer", "security"],
                                       int(rng.integers(1, 4)), replace=False)]
        mine = np.flatnonzero(grids["code"].str.startswith(town.code).to_numpy()
                              & (grids["kind"] == "comprehensive").to_numpy())
        pop = grids["population"].to_numpy(dtype=float)[mine] ** 2  # depots sit where it is busy
        for k, kind in enumerate(kinds, start=1):
            pattern, (lo, hi), modes, shifts = _TEAMS[kind]
            start, end = shifts[int(rng.integers(len(shifts)))]
            code = f"PT{town.code}{k:02d}"
            rows.append({
                "code": code, "name": pattern.format(short=town.short, town=town.name),
                "town_code": town.code, "kind": kind, "members": int(rng.integers(lo, hi)),
                "travel_mode": str(rng.choice(modes)), "shift_start": dt.time.fromisoformat(start),
                "shift_end": dt.time.fromisoformat(end), "source": "demo",
                "source_id": "patrol-" + code,
            })
            depot_grid.append(int(rng.choice(mine, p=pop / pop.sum())))
    lon, lat = geometry.points_in_grids(admin, np.array(depot_grid), rng)
    frame = pd.DataFrame(rows)
    frame.insert(8, "depot", shapely.points(lon, lat))
    return gpd.GeoDataFrame(frame, geometry="depot", crs=geometry.CRS)


def _grade_history(rng, n: int, window: Window, registered: np.ndarray):
    """Grades over time: registration grade, then 0-3 changes; returns (grades, times, k)."""
    final = rng.choice(GRADES, n, p=[0.1, 0.3, 0.6])
    k = rng.choice(4, n, p=[0.45, 0.30, 0.17, 0.08])  # number of changes after registration
    grades = np.empty((n, 4), dtype=object)
    grades[np.arange(n), k] = final
    for j in range(3, 0, -1):  # walk back: each earlier grade differs from the next one
        has = k >= j
        nxt = grades[has, j]
        other = np.where(rng.random(has.sum()) < 0.5, 1, 2)
        idx = pd.Index(GRADES).get_indexer(nxt)
        grades[has, j - 1] = GRADES[(idx + other) % 3]
    span = (window.end - 3 * HOUR) - registered
    u = np.sort(rng.random((n, 3)), axis=1)
    times = np.column_stack([registered, registered[:, None] + (u * span[:, None]).round()])
    times = times.astype(np.int64) + np.arange(4)  # strictly increasing even on a tie
    return grades, times, k


def persons(admin, lab: pd.DataFrame, window: Window, seed: int, scale: int):
    """Five-loss persons (700 x scale) with their grade history and visits."""
    rng = np.random.default_rng([seed, scale, 303])
    n = 700 * scale
    pop = admin.grids["population"].to_numpy(dtype=float)
    pop[admin.grids["kind"].to_numpy() != "comprehensive"] = 0  # residents only
    grid_idx = rng.choice(len(pop), n, p=pop / pop.sum())
    lon, lat = geometry.points_in_grids(admin, grid_idx, rng)
    grid_idx = geometry.locate(admin, lon, lat)
    male = rng.random(n) < 0.62
    ref_day = np.datetime64(pd.Timestamp(window.end, unit="s", tz=st.TZ).date(), "D")
    age_days = (np.clip(rng.normal(46, 13, n), 18.1, 79.9) * 365.25).astype(np.int64)
    birth = ref_day - age_days.astype("timedelta64[D]")
    first_month = rng.random(n) < 0.45  # the roll-out registered many people at once
    registered = np.where(
        first_month, window.start + rng.integers(0, 45 * DAY, n),
        window.start + rng.integers(0, window.end - window.start - 30 * DAY, n),
    ).astype(np.int64)
    grades, times, k = _grade_history(rng, n, window, registered)
    last = np.arange(n), k
    ids = st.source_ids("person", n)
    code = lab["grid_code"].to_numpy(dtype=object)[grid_idx]
    frame = pd.DataFrame({
        "name": names(rng, male), "id_number": id_numbers(rng, birth, male),
        "phone": phones(rng, n), "gender": np.where(male, "M", "F"),
        "birth_year": birth.astype("datetime64[Y]").astype(int) + 1970,
        "categories": _categories(rng, n), "grade": grades[last],
        "grade_since": st.local_times(times[last]), "status": "active",
        "closed_at": pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns, Asia/Shanghai]"),
        "registered_at": st.local_times(registered), "responsible_worker_code": "GW" + code,
        "address": st.addresses(lab, grid_idx, rng),
        **st.located(lab, grid_idx, lon, lat), "source": "demo", "source_id": ids,
    })
    history = _grades_frame(ids, grades, times, k, lab["town"].to_numpy(dtype=object)[grid_idx])
    visits = _visits(rng, window, ids, grades, times, k, frame)
    return frame, history, visits


def _categories(rng, n: int) -> list[list[str]]:
    """One to three distinct categories per person, weighted, in canonical order."""
    k = rng.choice([1, 2, 3], n, p=[0.55, 0.33, 0.12])
    keys = np.log(_CATEGORY_W) + rng.gumbel(size=(n, len(CATEGORIES)))  # weighted, no repeats
    rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
    pick = rank < k[:, None]
    return [[c for c, p in zip(CATEGORIES, row, strict=True) if p] for row in pick]


def _grades_frame(ids, grades, times, k, town) -> pd.DataFrame:
    """person_grades rows: the registration grade and each change after it."""
    n = len(ids)
    j = np.tile(np.arange(4), n)
    person = np.repeat(np.arange(n), 4)
    keep = j <= np.repeat(k, 4)
    person, j = person[keep], j[keep]
    grade = grades[person, j]
    prev = np.where(j > 0, grades[person, np.maximum(j - 1, 0)], None)
    rank = pd.Index(GRADES).get_indexer
    up = (j > 0) & (rank(grade) < rank(np.where(j > 0, prev, grade)))  # towards red
    reason = st.where(j == 0, "初次登记", st.where(up, "出现过激言行，风险升级", "情绪趋于稳定，经评估降级"))
    return pd.DataFrame({
        "person_source_id": ids[person], "grade": grade, "previous_grade": prev,
        "changed_at": st.local_times(times[person, j]), "reason": reason,
        "changed_by": town[person] + "社会治理中心",
    })


def _visit_times(rng, window: Window, grades, times, k):
    """When visits happen: (person index, grade in force, epoch seconds) per visit.

    Each grade period (registration or regrade until the next one) is visited from its start
    at a spacing of 70-85 % of its cadence plus up to 10 % jitter, so a gap never exceeds the
    cadence. For ~8 % of persons visits stop 1.2-2.5 cadences before the reference time (after
    their last regrade): they are overdue.
    """
    n = len(k)
    cadence = {g: CADENCE_DAYS[g] * DAY for g in GRADES}
    final_cad = st.lookup(grades[np.arange(n), k], cadence).astype(np.int64)
    eligible = np.flatnonzero(times[np.arange(n), k] < window.end - 2.6 * final_cad)
    overdue = rng.choice(eligible, min(len(eligible), round(0.08 * n)), replace=False)
    stop = np.full(n, window.end + 1, dtype=np.int64)  # visits happen before ``stop``
    stop[overdue] -= (final_cad[overdue] * rng.uniform(1.2, 2.5, len(overdue))).astype(np.int64)
    person, j = np.nonzero(np.arange(4)[None, :] <= k[:, None])  # one row per grade period
    start = times[person, j]
    end = np.where(j < k[person], times[person, np.minimum(j + 1, 3)], stop[person])
    end = np.minimum(end, stop[person])
    grade = grades[person, j]
    spacing = (st.lookup(grade, cadence).astype(np.int64) * rng.uniform(0.7, 0.85, len(j))).astype(np.int64)
    count = np.maximum((end - start) // spacing + 1, 0)
    period = np.repeat(np.arange(len(j)), count)
    i = np.arange(len(period)) - np.repeat(np.cumsum(count) - count, count)
    jitter = (rng.random(len(period)) * 0.1 * spacing[period]).astype(np.int64)
    at = start[period] + i * spacing[period] + jitter
    keep = at < end[period]
    return person[period[keep]], grade[period[keep]], at[keep]


def _visits(rng, window: Window, ids, grades, times, k, persons: pd.DataFrame) -> pd.DataFrame:
    """person_visits rows: who visited, how, what they found and when the next one is due."""
    who, grade, at = _visit_times(rng, window, grades, times, k)
    m = len(at)
    red = grade == "red"  # red persons are mostly seen at home
    method = st.where(red, st.choose(rng, _METHODS, m, [0.7, 0.15, 0.05, 0.1]),
                      st.choose(rng, _METHODS, m, [0.45, 0.35, 0.08, 0.12]))
    finding = st.const(None, m)
    for g, texts in _FINDINGS.items():
        idx = np.flatnonzero(grade == g)
        finding[idx] = st.choose(rng, texts, len(idx))
    local_day = ((at + st.UTC_OFFSET) // DAY).astype("datetime64[D]")
    days = st.lookup(grade, CADENCE_DAYS).astype(np.int64).astype("timedelta64[D]")
    worker = persons["responsible_worker_code"].to_numpy(dtype=object)[who]
    # now and then the village's part-time worker goes instead (every village has GP..01)
    part_time = st.shared("GP" + persons["village_code"].to_numpy(dtype=object)[who] + "01")
    return pd.DataFrame({
        "person_source_id": ids[who], "worker_code": st.where(rng.random(m) < 0.15, part_time, worker),
        "visited_at": st.local_times(at), "method": method, "finding": finding,
        "next_due": local_day + days,
    })
