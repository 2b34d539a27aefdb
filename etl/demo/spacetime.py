"""Where and when, shared by the demo's record layers: time window, places, hot spots.

- The window: 24 months ending at the reference time, in epoch seconds, Asia/Shanghai.
- Places: a record's grid/village/town columns and a plausible address from real names.
- Hot spots and :func:`spread`: events (hazards, cases) mix a background proportional to
  population with a handful of Gaussian clusters whose intensity rises (emerging), falls
  (fading) or holds (steady) over the window, so that analysts' hot-spot and emerging-hot-spot
  tools have a known answer; times follow per-category seasonality.
- Text-array helpers that keep one Python object per distinct string (memory at scale 10).

Everything is vectorised: loops run over groups (a hot spot, a category), never over records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import shapely

from etl.demo import geometry
from etl.demo.geometry import Admin

TZ = "Asia/Shanghai"
UTC_OFFSET = 8 * 3600  # China has kept UTC+8 without daylight saving since 1991
HOUR, DAY = 3600, 86400
WINDOW_MONTHS = 24

# 春节 (Spring Festival) dates: disputes peak around it, labour disputes in the weeks before.
SPRING_FESTIVALS = np.array(
    ["2023-01-22", "2024-02-10", "2025-01-29", "2026-02-17", "2027-02-06", "2028-01-26"],
    dtype="datetime64[D]",
)


@dataclass(frozen=True)
class Window:
    """The event window: ``start <= t <= end`` in epoch seconds; ``end`` is the reference time."""

    start: int
    end: int

    @classmethod
    def ending_at(cls, reference_time: datetime) -> Window:
        """The ``WINDOW_MONTHS`` months ending at (and including) ``reference_time``."""
        ref = pd.Timestamp(reference_time)
        ref = ref.tz_localize(TZ) if ref.tz is None else ref.tz_convert(TZ)
        ref = ref.floor("s")
        # 23:59:59 on 31 Oct -> the window opens at 00:00:00 on 1 Nov, 24 months earlier
        start = ref + pd.Timedelta(seconds=1) - pd.DateOffset(months=WINDOW_MONTHS)
        return cls(int(start.timestamp()), int(ref.timestamp()))

    def days(self) -> np.ndarray:
        """Epoch seconds of the local midnights of every day that overlaps the window."""
        first = (self.start + UTC_OFFSET) // DAY * DAY - UTC_OFFSET
        return np.arange(first, self.end + 1, DAY, dtype=np.int64)

    def fraction(self, secs: np.ndarray) -> np.ndarray:
        """Position in the window, 0 at the start and 1 at the reference time."""
        return (np.asarray(secs, dtype=float) - self.start) / (self.end - self.start)


def local_month(secs: np.ndarray) -> np.ndarray:
    """Calendar month (1-12) in China of epoch seconds."""
    m = (np.asarray(secs, dtype=np.int64) + UTC_OFFSET).astype("datetime64[s]").astype("datetime64[M]")
    return m.astype(np.int64) % 12 + 1


def local_times(secs: np.ndarray) -> pd.DatetimeIndex:
    """Epoch seconds (NaN = missing) -> tz-aware Asia/Shanghai timestamps (NaT = missing)."""
    return pd.to_datetime(np.asarray(secs, dtype=float), unit="s", utc=True).tz_convert(TZ)


def sample_times(
    rng: np.random.Generator, n: int, window: Window, day_weight: np.ndarray, hour_weight
) -> np.ndarray:
    """Epoch seconds drawn from a day profile times an hour-of-day profile, inside the window."""
    days = window.days()
    d = rng.choice(len(days), n, p=day_weight / day_weight.sum())
    h = rng.choice(24, n, p=np.asarray(hour_weight) / np.sum(hour_weight))
    secs = days[d] + h * HOUR + rng.integers(0, HOUR, n)
    return np.clip(secs, window.start, window.end)


def festival_bump(days: np.ndarray, shift_days: float, width_days: float) -> np.ndarray:
    """Gaussian bump (peak 1) around each Spring Festival shifted by ``shift_days``."""
    centre = (SPRING_FESTIVALS.astype("datetime64[s]").astype(np.int64) - UTC_OFFSET) + shift_days * DAY
    d = (days[:, None] - centre[None, :]) / (width_days * DAY)
    return np.exp(-0.5 * d**2).sum(axis=1)


# --------------------------------------------------------------------------------------------
# Places: the grid, village and town of a record, and its address


def labels(admin: Admin) -> pd.DataFrame:
    """Per grid (by position): its village and town codes and names, for text and joins."""
    v = admin.villages.set_index("code")
    t = admin.towns.set_index("code")
    vc = admin.grids["village_code"].to_numpy()
    tc = v.loc[vc, "town_code"].to_numpy()
    return pd.DataFrame(
        {
            "grid_code": admin.grids["code"].to_numpy(),
            "village_code": vc,
            "town_code": tc,
            "village": v.loc[vc, "name"].to_numpy(),
            "village_short": v.loc[vc, "short"].to_numpy(),
            "town": t.loc[tc, "name"].to_numpy(),
            "town_short": t.loc[tc, "short"].to_numpy(),
        }
    )


_ROAD_SUFFIX = np.array(["路", "街", "东路", "西路", "中路", "一巷", "二巷", "三巷"], dtype=object)
_TOWN_ROAD = np.array(["大道", "路", "中路", "南路", "北路"], dtype=object)
_COMMON_ROAD = np.array(
    ["温瑞大道", "瓯海大道", "府东路", "兴业路", "商贸街", "育英路", "振兴路", "学院路", "新安路"],
    dtype=object,
)


def addresses(lab: pd.DataFrame, grid_idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Plausible door addresses: '浙江省温州市瓯海区{town}{village}{road}{n}号'.

    Roads are named after the village or town (as most local roads are) or are one of a few
    district roads; real door numbers are not known to the demo.
    """
    n = len(grid_idx)
    l_ = lab.iloc[grid_idx]
    kind = rng.choice(3, n, p=[0.6, 0.25, 0.15])
    road = np.where(
        kind == 0,
        l_["village_short"].to_numpy(dtype=object) + rng.choice(_ROAD_SUFFIX, n),
        np.where(
            kind == 1,
            l_["town_short"].to_numpy(dtype=object) + rng.choice(_TOWN_ROAD, n),
            rng.choice(_COMMON_ROAD, n),
        ),
    )
    number = rng.integers(1, 300, n).astype(str).astype(object)
    town = l_["town"].to_numpy(dtype=object)
    village = l_["village"].to_numpy(dtype=object)
    return "浙江省温州市瓯海区" + town + village + road + number + "号"


def located(lab: pd.DataFrame, grid_idx: np.ndarray, lon, lat) -> dict[str, object]:
    """The located-record columns shared by key_sites, persons, hazards and cases."""
    l_ = lab.iloc[grid_idx]
    n = len(grid_idx)
    return {
        "grid_code": l_["grid_code"].to_numpy(),
        "village_code": l_["village_code"].to_numpy(),
        "town_code": l_["town_code"].to_numpy(),
        "geom": shapely.points(lon, lat),
        "src_datum": pd.Series("cgcs2000", index=range(n)).to_numpy(object),
        "loc_method": pd.Series("coordinates", index=range(n)).to_numpy(object),
        "geocode_level": np.full(n, None, dtype=object),
        "geocode_score": np.full(n, np.nan, dtype=np.float32),
    }


# --------------------------------------------------------------------------------------------
# Hot spots

_SHAPES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "emerging": lambda t: 0.03 + t**2,
    "fading": lambda t: 0.03 + (1 - t) ** 2,
    "steady": lambda t: np.ones_like(t),
}
_THEMES = {
    "hazards": ["fire", "electrical", "construction", "road_traffic", "gas"],
    "cases": ["labour", "neighbour", "fight", "property_management", "public_order"],
}


def make_hotspots(admin: Admin, rng: np.random.Generator) -> list[dict]:
    """Place 6-10 hot spots in dense urban grids, at least 2.5 km apart.

    The first four are fixed in kind so that each layer has one emerging and one fading hot
    spot to test against; the rest are drawn.
    """
    g = admin.grids
    area = shapely.area(g["geom"].to_numpy())  # square degrees: only used to rank
    dens = g["population"].to_numpy() / area
    probe = shapely.point_on_surface(g["geom"].to_numpy())
    # dense residential grids, ~1 km or more inside the district so clusters are not cut off
    ok = (g["kind"].to_numpy() == "comprehensive") & (dens >= np.quantile(dens, 0.7))
    ok &= shapely.distance(probe, admin.outline.boundary) > 0.01
    pts = shapely.get_coordinates(probe[ok])
    xy = np.column_stack(geometry.to_metric(pts[:, 0], pts[:, 1]))
    n = int(rng.integers(6, 11))
    fixed = [("emerging", ["hazards"]), ("fading", ["hazards"]), ("emerging", ["cases"]),
             ("fading", ["cases"])]
    layer_sets = [["hazards"], ["cases"], ["hazards", "cases"]]
    chosen: list[int] = []
    for i in rng.permutation(len(pts)):
        if all(np.hypot(*(xy[i] - xy[j])) >= 2500 for j in chosen):
            chosen.append(int(i))
        if len(chosen) == n:
            break
    spots = []
    for k, i in enumerate(chosen):
        kind, layers = fixed[k] if k < len(fixed) else (
            str(rng.choice(["emerging", "fading", "steady"], p=[0.3, 0.3, 0.4])),
            layer_sets[int(rng.integers(3))],
        )
        spots.append(
            {
                "id": f"HS{k + 1:02d}",
                "lon": round(float(pts[i, 0]), 6),
                "lat": round(float(pts[i, 1]), 6),
                "sigma_m": round(float(rng.uniform(150, 600)), 1),
                "kind": kind,
                "layers": layers,
                "share": {lay: round(float(rng.uniform(0.025, 0.04)), 4) for lay in layers},
                "category": {lay: str(rng.choice(_THEMES[lay])) for lay in layers},
            }
        )
    return spots


@dataclass(frozen=True)
class Spread:
    """Where, when and what: one entry per event, sorted by time."""

    secs: np.ndarray
    grid_idx: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    category: np.ndarray
    hotspot: np.ndarray  # index into the hot-spot list, -1 for background


def spread(
    admin: Admin,
    rng: np.random.Generator,
    n: int,
    layer: str,
    hotspots: list[dict],
    mix: dict[str, float],
    window: Window,
    season: Callable[[str, np.ndarray], np.ndarray],
    hours: np.ndarray,
) -> Spread:
    """Draw ``n`` events of ``layer``: background by population plus the layer's hot spots.

    ``season(category, day_secs)`` gives a relative intensity per day for a category.
    """
    spots = [(i, h) for i, h in enumerate(hotspots) if layer in h["layers"]]
    counts = [int(round(n * h["share"][layer])) for _, h in spots]
    comp = np.repeat([-1] + [i for i, _ in spots], [n - sum(counts), *counts])
    names = np.array(list(mix), dtype=object)
    category = rng.choice(names, n, p=np.array(list(mix.values())) / sum(mix.values()))
    for i, h in spots:  # 60 % of a hot spot's events are its theme (e.g. fire in 城中村)
        mine = (comp == i) & (rng.random(n) < 0.6)
        category[mine] = h["category"][layer]
    secs = _times(rng, comp, category, hotspots, window, season, hours)
    lon, lat, grid_idx = _places(admin, rng, comp, hotspots)
    order = np.lexsort((np.arange(n), secs))
    return Spread(secs[order], grid_idx[order], lon[order], lat[order], category[order],
                  comp[order])


def _times(rng, comp, category, hotspots, window, season, hours) -> np.ndarray:
    """Timestamps per (component, category) group: trend or hot-spot shape times season."""
    days = window.days()
    t = window.fraction(days + DAY // 2)
    secs = np.empty(len(comp), dtype=np.int64)
    for c in np.unique(comp):
        # the background grows a little as reporting through the system catches on
        shape = 0.9 + 0.2 * t if c < 0 else _SHAPES[hotspots[c]["kind"]](t)
        in_c = comp == c
        for cat in np.unique(category[in_c]):
            idx = np.flatnonzero(in_c & (category == cat))
            secs[idx] = sample_times(rng, len(idx), window, shape * season(cat, days), hours)
    return secs


def _places(admin: Admin, rng, comp, hotspots):
    """Background points uniform in grids chosen by population; hot spots Gaussian."""
    n = len(comp)
    pop = admin.grids["population"].to_numpy(dtype=float)
    grid_idx = np.full(n, -1, dtype=np.intp)
    lon, lat = np.empty(n), np.empty(n)
    bg = np.flatnonzero(comp < 0)
    grid_idx[bg] = rng.choice(len(pop), len(bg), p=pop / pop.sum())
    lon[bg], lat[bg] = geometry.points_in_grids(admin, grid_idx[bg], rng)
    for c in np.unique(comp[comp >= 0]):
        h = hotspots[c]
        todo = np.flatnonzero(comp == c)
        cx, cy = geometry.to_metric(h["lon"], h["lat"])
        for _ in range(100):  # redraw the few that fall outside the district
            x, y = geometry.to_lonlat(
                cx + rng.normal(0, h["sigma_m"], len(todo)),
                cy + rng.normal(0, h["sigma_m"], len(todo)),
            )
            lon[todo], lat[todo] = np.round(x, 7), np.round(y, 7)
            grid_idx[todo] = geometry.locate(admin, lon[todo], lat[todo])
            todo = todo[grid_idx[todo] < 0]
            if len(todo) == 0:
                break
    # the spatial join is the authority, also for background points (edges, rounding)
    found = geometry.locate(admin, lon, lat)
    if (found < 0).any():
        raise RuntimeError("an event point fell outside every grid")
    return lon, lat, found


def seq_codes(prefix: str, secs: np.ndarray) -> np.ndarray:
    """Codes like 'YH202507000123': prefix, local year-month, sequence within the month.

    ``secs`` must be sorted; the sequence follows that order.
    """
    month = (secs + UTC_OFFSET).astype("datetime64[s]").astype("datetime64[M]")
    first = np.r_[0, np.flatnonzero(month[1:] != month[:-1]) + 1]
    start = np.repeat(first, np.diff(np.r_[first, len(secs)]))
    seq = np.arange(len(secs)) - start + 1
    ym = np.datetime_as_string(month, unit="M").astype(object)
    return prefix + np.char.replace(ym.astype(str), "-", "").astype(object) + np.char.zfill(
        seq.astype(str), 6
    ).astype(object)


def source_ids(prefix: str, n: int) -> np.ndarray:
    """Stable ids 'prefix-000001' ... in row order."""
    return prefix + "-" + np.char.zfill(np.arange(1, n + 1).astype(str), 6).astype(object)


def steps_to_events(
    parent_ids: np.ndarray, steps: list[tuple[object, str, np.ndarray, object, object]], end: int
) -> pd.DataFrame:
    """One event row per step a record actually took by ``end``, per record in step order.

    ``steps`` lists, in workflow order, ``(from_state, to_state, secs, actor, note)``; a step
    with a NaN time, or a time after ``end``, was not taken. ``from_state``, ``actor`` and
    ``note`` are per-record arrays or scalars.
    """
    rec, step, cols = [], [], {"from_state": [], "to_state": [], "at": [], "actor": [], "note": []}
    for k, (frm, to, secs, actor, note) in enumerate(steps):
        idx = np.flatnonzero(np.isfinite(secs) & (secs <= end))
        rec.append(idx)
        step.append(np.full(len(idx), k, dtype=np.int8))
        for col, value in zip(cols, (frm, to, secs, actor, note), strict=True):
            cols[col].append(_pick(value, idx))
    r = np.concatenate(rec)
    order = np.lexsort((np.concatenate(step), r))  # by record, then workflow order
    data = {col: np.concatenate(parts)[order] for col, parts in cols.items()}
    data["at"] = local_times(data["at"].astype(float))
    return compact(pd.DataFrame({"parent": parent_ids[r[order]], **data}))


def compact(frame: pd.DataFrame) -> pd.DataFrame:
    """Make equal strings in a text column one shared Python object (in place; returned).

    numpy creates a new ``str`` for every element it casts from its fixed-width text type, so
    a ``state`` column would hold 300,000 separate copies of 'closed'; factorising and taking
    back leaves one object per distinct value. This halves the frames' memory at scale 10.
    """
    for col in frame.columns:
        s = frame[col]
        text = isinstance(s.dtype, pd.StringDtype) or (
            s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) == "string"
        )
        if not text:
            continue
        codes, uniques = pd.factorize(s)
        if 2 * len(uniques) < len(s):
            frame[col] = pd.Series(uniques.take(codes, fill_value=np.nan), index=frame.index)
    return frame


def _pick(value, idx: np.ndarray):
    """A per-record array restricted to ``idx``, or a scalar broadcast."""
    return value[idx] if isinstance(value, np.ndarray) else const(value, len(idx))


# Text arrays. numpy creates a new Python ``str`` for every element it casts from its
# fixed-width text type (``np.full(n, "x", dtype=object)``, ``rng.choice(list_of_str)``,
# ``np.where(c, "a", "b")``), so 300,000 hazards would carry 300,000 copies of 'closed'. These
# helpers keep one object per distinct value, which halves the peak memory at scale 10.


def const(value, n: int) -> np.ndarray:
    """An object array of ``n`` references to ``value``."""
    out = np.empty(n, dtype=object)
    out[:] = value
    return out


def choose(rng: np.random.Generator, options, n: int, p=None) -> np.ndarray:
    """``n`` random picks from ``options`` (shared objects), optionally weighted."""
    opts = const(None, len(options))
    opts[:] = list(options)
    return opts[rng.choice(len(opts), n, p=None if p is None else np.asarray(p) / np.sum(p))]


def shared(values: np.ndarray) -> np.ndarray:
    """The same strings with one object per distinct value (for repetitive composed text)."""
    codes, uniques = pd.factorize(values)
    return np.asarray(uniques, dtype=object)[codes]


def lookup(keys: np.ndarray, mapping: dict, default=None) -> np.ndarray:
    """``mapping[key]`` for every key (a vectorised dict lookup), ``default`` if missing."""
    values = pd.Series(keys).map(mapping).to_numpy(dtype=object)
    if default is not None:
        values[pd.isna(values)] = default
    return values


def where(cond: np.ndarray, a, b) -> np.ndarray:
    """``np.where`` for text that keeps object arrays (scalars become shared objects)."""
    n = len(cond)
    return np.where(cond, a if isinstance(a, np.ndarray) else const(a, n),
                    b if isinstance(b, np.ndarray) else const(b, n))
