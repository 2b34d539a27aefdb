"""The public survey (知晓率 / 参与率 / 满意度 per village and month) as an ETL layer.

``pingan etl load survey.xlsx --layer survey`` maps the columns with the built-in profile
(etl/profiles/survey.toml), then :func:`prepare` reads what the profile leaves as text:

- the month: ``2026-10``, ``2026/10``, ``2026.10``, ``2026年10月``, ``202610``, or a date in the
  month (an Excel date cell: ``2026-10-01 00:00:00``);
- each rate as a percentage: ``85%`` and ``85`` are 85 %, a bare number up to 1 is a fraction
  (``0.85`` is 85 %, ``1`` is 100 %); outside 0..100 % the row is rejected;
- the village by 村社代码 (12 digits) or, without one, by a 村社 name that is unique in the
  district (the database resolves it: migration 0014's trigger, which also rejects a place that
  is not loaded).

The upsert is keyed on (period, level, code): the same file twice changes nothing, a corrected
value updates the row. The index reads ``pingan.index_survey`` when it is next computed.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from etl.profile import Mapped
from etl.readers import RawTable

RATES = {"awareness": "知晓率", "participation": "参与率", "satisfaction": "满意度"}
_MONTH = re.compile(
    r"^\s*(\d{4})\s*(?:[-/.年]\s*(\d{1,2})\s*月?|(\d{2}))"  # 2026-10, 2026年10月, 202610
    r"(?:\s*[-/.]?\s*\d{1,2}\s*日?)?(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?\s*$"  # a day, a time
)
_RATE = re.compile(r"^\s*([+-]?\d+(?:\.\d*)?|[+-]?\.\d+)\s*(%|％)?\s*$")


def parse_month(s: object) -> pd.Timestamp | None:
    """The first day of the month ``s`` names, or None."""
    if s is None or (isinstance(s, float) and np.isnan(s)):
        return None
    m = _MONTH.match(str(s))
    if not m:
        return None
    year, month = int(m.group(1)), int(m.group(2) or m.group(3))
    if not (1 <= month <= 12 and 2000 <= year <= 2100):
        return None
    return pd.Timestamp(year=year, month=month, day=1)


def parse_rate(s: object) -> tuple[float | None, str | None]:
    """(percent, None), (None, None) when empty, or (None, why)."""
    if s is None or (isinstance(s, float) and np.isnan(s)) or str(s).strip() == "":
        return None, None
    m = _RATE.match(str(s))
    if not m:
        return None, "is not a percentage (85%, 85 or 0.85)"
    value = float(m.group(1))
    percent = value if m.group(2) or value > 1 else value * 100
    if not 0 <= percent <= 100:
        return None, "is out of range 0-100%"
    return round(percent, 4), None


def _text(f: pd.DataFrame, col: str) -> pd.Series:
    """A text column, stripped, None where absent or blank."""
    if col not in f:
        return pd.Series(None, index=f.index, dtype=object)
    return f[col].map(lambda v: None if v is None or pd.isna(v) else (str(v).strip() or None)).astype(object)


def prepare(mapped: Mapped, raw: RawTable) -> pd.DataFrame:
    """Typed survey rows in ``mapped.frame``; the rows that cannot be loaded as rejects."""
    f = mapped.frame
    reasons = pd.Series("", index=f.index, dtype=object)
    column = pd.Series(None, index=f.index, dtype=object)

    def bad(mask: pd.Series, col: str, why: pd.Series | str) -> None:
        new = mask & (reasons == "")
        reasons[new] = why[new] if isinstance(why, pd.Series) else why
        column[new] = mapped.matched.get(col, col)

    code, name = _text(f, "code"), _text(f, "name")
    bad(code.isna() & name.isna(), "code", "村社代码 or 村社 (a village name) is required")
    bad(
        code.notna() & ~code.fillna("").str.fullmatch(r"\d{12}"),
        "code",
        "村社代码: " + code.fillna("").str.slice(0, 30) + " is not a 12-digit village code",
    )
    period = f["period"].map(parse_month)
    bad(
        period.isna(),
        "period",
        "月份: " + f["period"].astype(str).str.slice(0, 30) + " is not a month (2026-10, 2026年10月, 202610)",
    )
    rates = {}
    for key, label in RATES.items():
        parsed = (f[key] if key in f else pd.Series(None, index=f.index, dtype=object)).map(parse_rate)
        rates[key] = parsed.map(lambda p: p[0])
        why = parsed.map(lambda p: p[1])
        raw_text = (f[key] if key in f else pd.Series("", index=f.index)).astype(str).str.slice(0, 30)
        bad(why.notna(), key, label + ": " + raw_text + " " + why.fillna(""))
    none = rates["awareness"].isna() & rates["participation"].isna() & rates["satisfaction"].isna()
    bad(none, "satisfaction", "no rate: give at least one of 知晓率, 参与率, 满意度")
    if "respondents" in f:
        r = pd.to_numeric(f["respondents"], errors="coerce")
        bad(r.notna() & (r <= 0), "respondents", "样本量 must be a positive number")
    failed = reasons != ""
    rejects = pd.DataFrame(
        {
            "row_number": mapped.row_numbers[failed].to_numpy(),
            "column_name": column[failed].to_numpy(),
            "reason": reasons[failed].to_numpy(),
            "raw": raw.records(f.index[failed].to_numpy()),
        }
    )
    ok = ~failed
    out = pd.DataFrame(
        {
            "period": period[ok].map(lambda p: p.date()),
            "level": "village",
            "code": code[ok],
            "name": name[ok],
            "respondents": f["respondents"][ok] if "respondents" in f else None,
            **{k: v[ok].astype(float) for k, v in rates.items()},
        },
        index=f.index[ok],
    )
    out["source_id"] = out["code"].fillna(out["name"]) + ":" + period[ok].map(lambda p: f"{p:%Y-%m}")
    out["_row"] = mapped.row_numbers[ok].to_numpy()
    if len(out):
        first, last = min(out["period"]), max(out["period"])
        span = f"{first:%Y-%m}" + (f"..{last:%Y-%m}" if last != first else "")
        mapped.warnings.append(
            f"the index uses the survey when next computed: pingan index compute --period {span}"
        )
    mapped.frame, mapped.row_numbers = out, mapped.row_numbers[ok]
    return rejects
