"""Column-mapping profiles: which header of a file is which field, with types, enums and dates.

A built-in profile per layer (``etl/profiles/*.toml``) recognises the common Chinese and English
headers without any flag; a custom TOML profile maps other columns. Applying a profile turns a
:class:`~etl.readers.RawTable` of text into typed columns, and every value that does not fit
into a reject (row, column, reason) — a bad value never stops the file, and is never dropped
without a trace.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from etl.readers import RawTable, ReaderError

TZ = "Asia/Shanghai"
DATUM_VALUES = {
    "wgs84": "wgs84",
    "wgs-84": "wgs84",
    "gps": "wgs84",
    "epsg:4326": "wgs84",
    "4326": "wgs84",
    "cgcs2000": "cgcs2000",
    "2000": "cgcs2000",
    "国家2000": "cgcs2000",
    "epsg:4490": "cgcs2000",
    "4490": "cgcs2000",
    "gcj02": "gcj02",
    "gcj-02": "gcj02",
    "高德": "gcj02",
    "腾讯": "gcj02",
    "火星": "gcj02",
    "火星坐标": "gcj02",
    "amap": "gcj02",
    "tencent": "gcj02",
    "bd09": "bd09",
    "bd-09": "bd09",
    "百度": "bd09",
    "baidu": "bd09",
    "bd09ll": "bd09",
}
DEFAULT_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%Y.%m.%d",
    "%Y年%m月%d日 %H:%M:%S",
    "%Y年%m月%d日 %H:%M",
    "%Y年%m月%d日",
    "%Y%m%d",
    "%Y-%m-%dT%H:%M:%S",
)


class ProfileError(ValueError):
    """A profile is malformed, or no column of the file matches a required field."""


class ColumnSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    aliases: list[str] = Field(min_length=1)
    type: Literal["string", "integer", "number", "datetime", "enum", "enum_list", "datum"] = "string"
    required: bool = False
    default: str | None = None
    values: dict[str, str] | None = None
    formats: list[str] | None = None

    @model_validator(mode="after")
    def _enum_has_values(self) -> ColumnSpec:
        if self.type in ("enum", "enum_list") and not self.values:
            raise ValueError(f"an {self.type} column needs 'values'")
        return self


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    layer: str
    datum: str = "wgs84"
    source: str | None = None
    columns: dict[str, ColumnSpec]


def _norm_header(text: str) -> str:
    # '经度(°)', ' 经 度 ', 'Longitude' all become the same key
    text = re.sub(r"[（(].*?[)）]", "", str(text))
    return re.sub(r"[\s_\-:：]+", "", text).lower()


def builtin(layer: str) -> Profile:
    try:
        text = resources.files("etl.profiles").joinpath(f"{layer}.toml").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError(f"no built-in profile for layer {layer!r}") from None
    return Profile.model_validate(tomllib.loads(text))


def load_profile(path: Path) -> Profile:
    try:
        return Profile.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as exc:
        raise ProfileError(f"profile {path}: {exc}") from None


@dataclass
class Mapped:
    """Typed values of the fields the profile found, and the rejected rows."""

    frame: pd.DataFrame  # canonical field names; rows that failed are removed
    row_numbers: pd.Series
    rejects: pd.DataFrame  # row_number, column_name, reason, raw (dict)
    matched: dict[str, str]  # field -> file header
    warnings: list[str] = field(default_factory=list)


def match_columns(profile: Profile, headers: list[str]) -> dict[str, str]:
    by_norm: dict[str, str] = {}
    for h in headers:
        by_norm.setdefault(_norm_header(h), h)
    matched: dict[str, str] = {}
    for name, spec in profile.columns.items():
        for alias in spec.aliases:
            h = by_norm.get(_norm_header(alias))
            if h is not None and h not in matched.values():
                matched[name] = h
                break
    missing = [n for n, s in profile.columns.items() if s.required and n not in matched]
    if missing:
        wanted = "; ".join(f"{n}: one of {', '.join(profile.columns[n].aliases[:4])}" for n in missing)
        raise ProfileError(
            f"the headers ({', '.join(headers[:12])}) match no profile for layer {profile.layer}: "
            f"missing {wanted}. Give a custom profile with --profile."
        )
    return matched


def apply_profile(raw: RawTable, profile: Profile) -> Mapped:
    """Type every matched column; rows with a bad value become rejects with their reasons."""
    matched = match_columns(profile, list(raw.frame.columns))
    reasons = pd.Series("", index=raw.frame.index, dtype=object)
    first_col = pd.Series(None, index=raw.frame.index, dtype=object)
    out: dict[str, pd.Series] = {}
    for name, spec in profile.columns.items():
        header = matched.get(name)
        text = raw.frame[header] if header else pd.Series(None, index=raw.frame.index, dtype=object)
        if spec.default is not None:
            text = text.where(text.notna(), spec.default)
        values, bad = convert(text, spec)
        if spec.required:
            bad = bad | (values.isna() & ~bad)
        label = header or name
        if bad.any():  # messages only for the rows that need one
            t = text[bad]
            msg = np.where(
                t.isna(), f"{label} is required", f"{label}: " + t.astype(str).str.slice(0, 60) + _why(spec)
            )
            reasons[bad] = reasons[bad] + np.where(reasons[bad] == "", "", "; ") + msg
            first_col[bad & first_col.isna()] = label
        out[name] = values
    frame = pd.DataFrame(out, index=raw.frame.index)
    failed = reasons != ""
    rejects = pd.DataFrame(
        {
            "row_number": raw.row_numbers[failed].to_numpy(),
            "column_name": first_col[failed].to_numpy(),
            "reason": reasons[failed].to_numpy(),
            "raw": raw.frame[failed].to_dict("records"),
        }
    )
    return Mapped(frame[~failed], raw.row_numbers[~failed], rejects, matched, list(raw.warnings))


def _why(spec: ColumnSpec) -> str:
    if spec.type in ("enum", "enum_list"):
        return " is not one of " + ", ".join(list(spec.values or {})[:8])
    if spec.type == "datum":
        return " is not a known coordinate system (WGS84, CGCS2000, GCJ-02/高德, BD-09/百度)"
    return {
        "integer": " is not a whole number",
        "number": " is not a number",
        "datetime": " is not a date/time this profile knows",
    }.get(spec.type, " is invalid")


def convert(text: pd.Series, spec: ColumnSpec) -> tuple[pd.Series, pd.Series]:
    """Return (typed values, bad mask): bad = present but not convertible."""
    present = text.notna()
    if spec.type == "string":
        return text, pd.Series(False, index=text.index)
    if spec.type in ("integer", "number"):
        values = pd.to_numeric(text, errors="coerce")
        retry = present & values.isna()
        if retry.any():  # "1,234": thousands separators
            values = values.astype(float)
            values[retry] = pd.to_numeric(text[retry].astype(str).str.replace(",", "", regex=False),
                                          errors="coerce")
        bad = present & values.isna()
        if spec.type == "integer":
            bad |= present & values.notna() & (values % 1 != 0)
            values = values.where(~bad).astype("Int64") if not bad.all() else values
        return values, bad
    if spec.type == "datetime":
        return _parse_datetimes(text, spec.formats or list(DEFAULT_FORMATS))
    table = DATUM_VALUES if spec.type == "datum" else (spec.values or {})
    lookup = {k.strip().lower(): v for k, v in table.items()}
    lookup.update({v.lower(): v for v in table.values()})  # canonical values are accepted too
    if spec.type == "enum_list":
        return _enum_lists(text, lookup)
    values = _by_value(text, lambda v: lookup.get(str(v).strip().lower()))
    return values, present & values.isna()


def _by_value(text: pd.Series, func) -> pd.Series:  # noqa: ANN001 - a function of one value
    """``func`` of each distinct present value, spread back over the rows (None where absent):
    exports repeat a few values a million times, and factorising them runs in C."""
    codes, uniques = pd.factorize(text.to_numpy(dtype=object), use_na_sentinel=True)
    mapped = np.empty(len(uniques), dtype=object)
    mapped[:] = [func(u) for u in uniques]
    out = np.full(len(text), None, dtype=object)
    ok = codes >= 0
    out[ok] = mapped[codes[ok]]
    return pd.Series(out, index=text.index, dtype=object)


_LIST_SEPARATORS = re.compile(r"[、,，;；/|+\s]+")


def _enum_lists(text: pd.Series, lookup: dict[str, str]) -> tuple[pd.Series, pd.Series]:
    """Several enum values in one cell ("家庭失和、心态失衡"): a sorted list of canonical values;
    bad when any part is unknown."""
    order = {v: i for i, v in enumerate(dict.fromkeys(lookup.values()))}
    bad_value = ("bad",)

    def one(cell: object) -> object:
        parts = [p for p in _LIST_SEPARATORS.split(str(cell).strip().lower()) if p]
        mapped = [lookup.get(p) for p in parts]
        if not parts or None in mapped:
            return bad_value
        return sorted(set(mapped), key=order.__getitem__)

    values = _by_value(text, one)
    bad = values.map(lambda v: v is bad_value)
    return values.where(~bad, None), bad


def _parse_datetimes(text: pd.Series, formats: list[str]) -> tuple[pd.Series, pd.Series]:
    present = text.notna()
    s = text.astype(str)  # the readers strip cells; a profile's default has no blanks
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    for fmt in formats:
        todo = present & out.isna()
        if not todo.any():
            break
        out[todo] = pd.to_datetime(s[todo], format=fmt, errors="coerce")
    todo = present & out.isna()
    if todo.any():  # ISO 8601 with offsets, e.g. 2025-03-01T09:00:00+08:00
        iso = pd.to_datetime(s[todo], errors="coerce", utc=True, format="ISO8601")
        out[todo] = iso.dt.tz_convert(TZ).dt.tz_localize(None)
    values = out.dt.tz_localize(TZ, ambiguous="NaT", nonexistent="NaT")
    return values, present & values.isna()


def read_error_message(exc: Exception) -> str:
    return str(exc) if isinstance(exc, ProfileError | ReaderError) else f"{type(exc).__name__}: {exc}"
