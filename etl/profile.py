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
from collections.abc import Collection
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from etl.readers import RawTable, ReaderError, text_objects
from gis.datum import datum_name
from layers.copy import arrow_text

TZ = "Asia/Shanghai"
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
            f"the headers ({', '.join(_short(h) for h in headers[:12])}{', ...' * (len(headers) > 12)}) "
            f"match no profile for layer {profile.layer}: "
            f"missing {wanted}. Give a custom profile with --profile."
        )
    return matched


def _short(header: str, width: int = 40) -> str:
    """A header as an error message shows it: a line of garbage read as one header is cut."""
    return header if len(header) <= width else header[:width] + f"... ({len(header):,} characters)"


def column_text(raw: RawTable, spec: ColumnSpec, header: str | None) -> pd.Series:
    """The text of the file's column ``header`` for a field of ``spec`` (all empty when no
    header matched it), the field's default where a cell is empty: what :func:`convert` types."""
    text = raw.column(header) if header else pd.Series(None, index=pd.RangeIndex(len(raw)), dtype=object)
    if spec.default is not None:
        text = text.where(text.notna(), spec.default)
    return text


def apply_profile(raw: RawTable, profile: Profile, *, as_read: Collection[str] = ()) -> Mapped:
    """Type every matched column; rows with a bad value become rejects with their reasons.

    ``as_read``: text fields whose column keeps the reader's Arrow text instead of a Python
    string per cell, for a caller that only hands them to COPY (:mod:`layers.copy` writes them
    from Arrow's buffers, byte for byte as the strings; missing cells are ``NA``, not None)."""
    matched = match_columns(profile, raw.columns)
    index = pd.RangeIndex(len(raw))
    reasons = pd.Series("", index=index, dtype=object)
    first_col = pd.Series(None, index=index, dtype=object)
    out: dict[str, pd.Series] = {}
    for name, spec in profile.columns.items():
        header = matched.get(name)
        text = column_text(raw, spec, header)
        if name in as_read and spec.type == "string" and arrow_text(text) is not None:
            values, bad = text, pd.Series(False, index=text.index)
        else:
            values, bad = convert(text, spec)
        if spec.required:
            bad = bad | (values.isna() & ~bad)
        label = header or name
        if bad.any():  # messages only for the rows that need one
            t = _objects(text[bad])
            msg = np.where(
                t.isna(), f"{label} is required", f"{label}: " + t.astype(str).str.slice(0, 60) + _why(spec)
            )
            reasons[bad] = reasons[bad] + np.where(reasons[bad] == "", "", "; ") + msg
            first_col[bad & first_col.isna()] = label
        out[name] = values
    frame = pd.DataFrame(out, index=index)
    failed = reasons != ""
    rejects = pd.DataFrame(
        {
            "row_number": raw.row_numbers[failed].to_numpy(),
            "column_name": first_col[failed].to_numpy(),
            "reason": reasons[failed].to_numpy(),
            "raw": raw.records(failed.to_numpy()),
        }
    )
    return Mapped(frame[~failed], raw.row_numbers[~failed], rejects, matched, list(raw.warnings))


def _objects(text: pd.Series) -> pd.Series:
    """``text`` as an object column of ``str | None``, whatever holds it."""
    held = arrow_text(text)
    return text if held is None else pd.Series(text_objects(held), index=text.index, dtype=object)


def _why(spec: ColumnSpec) -> str:
    if spec.type in ("enum", "enum_list"):
        return " is not one of " + ", ".join(list(spec.values or {})[:8])
    if spec.type == "datum":
        return (" is not a known coordinate system (WGS84/GPS, CGCS2000/国家2000, GCJ-02/高德/火星坐标,"
                " BD-09/百度坐标, EPSG:4326, EPSG:4490-4554)")
    return {
        "integer": " is not a whole number",
        "number": " is not a number",
        "datetime": " is not a date/time this profile knows",
    }.get(spec.type, " is invalid")


def convert(text: pd.Series, spec: ColumnSpec) -> tuple[pd.Series, pd.Series]:
    """Return (typed values, bad mask): bad = present but not convertible.

    ``text``: an object column of ``str | None``, or an Arrow-backed one from the CSV reader,
    which is typed in Arrow where that gives the very values the object path gives (tested
    side by side), and through the object path for the rest."""
    present = text.notna()
    if spec.type == "string":
        return _objects(text), pd.Series(False, index=text.index)
    if spec.type in ("integer", "number"):
        values = _numbers(text, present)
        bad = present & values.isna()
        if spec.type == "integer":
            bad |= present & values.notna() & (values % 1 != 0)
            values = values.where(~bad).astype("Int64") if not bad.all() else values
        return values, bad
    if spec.type == "datetime":
        return _parse_datetimes(text, spec.formats or list(DEFAULT_FORMATS))
    if spec.type == "datum":  # gis.datum's names: the column takes what the datum option takes
        values = _by_value(text, datum_name)
        return values, present & values.isna()
    table = spec.values or {}
    lookup = {k.strip().lower(): v for k, v in table.items()}
    lookup.update({v.lower(): v for v in table.values()})  # canonical values are accepted too
    if spec.type == "enum_list":
        return _enum_lists(text, lookup)
    values = _by_value(text, lambda v: lookup.get(str(v).strip().lower()))
    return values, present & values.isna()


# a decimal number as Arrow's cast and pandas' to_numeric read it alike (correctly rounded)
_PLAIN_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"


def _numbers(text: pd.Series, present: pd.Series) -> pd.Series:
    """Numbers (NaN where absent or not a number); "1,234" has thousands separators."""
    arrow = arrow_text(text)
    if arrow is not None:
        plain = pc.fill_null(pc.match_substring_regex(arrow, _PLAIN_NUMBER), False).to_numpy()
        values = pd.Series(np.nan, index=text.index)
        values[plain] = pc.cast(arrow.filter(pa.array(plain)), pa.float64()).to_numpy()
        other = present.to_numpy() & ~plain
        if other.any():  # the rest as the object path reads it
            values[other] = _numbers(_objects(text[other]), present[other]).astype(float)
        return values
    values = pd.to_numeric(text, errors="coerce")
    retry = present & values.isna()
    if retry.any():  # "1,234": thousands separators
        values = values.astype(float)
        values[retry] = pd.to_numeric(text[retry].astype(str).str.replace(",", "", regex=False),
                                      errors="coerce")
    return values


def _by_value(text: pd.Series, func) -> pd.Series:  # noqa: ANN001 - a function of one value
    """``func`` of each distinct present value, spread back over the rows (None where absent):
    exports repeat a few values a million times, and factorising them runs in C (in Arrow for
    the CSV reader's columns)."""
    arrow = arrow_text(text)
    if arrow is not None:
        encoded = pc.dictionary_encode(arrow).combine_chunks()
        codes = pc.fill_null(encoded.indices, -1).to_numpy()
        uniques = encoded.dictionary.to_pylist()
    else:
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
    arrow = arrow_text(text)
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    for fmt in formats:
        todo = present & out.isna()
        if not todo.any():
            break
        iso = _iso_shape(fmt) if arrow is not None else None
        if iso is not None:
            _arrow_times(arrow, todo, iso, out)
            todo = present & out.isna()
            if not todo.any():
                break
        parsed = pd.to_datetime(_cells(text, todo), format=fmt, errors="coerce")
        out[todo] = _nanoseconds(parsed.to_numpy())
    todo = present & out.isna()
    if todo.any():  # ISO 8601 with offsets, e.g. 2025-03-01T09:00:00+08:00
        iso = pd.to_datetime(_cells(text, todo), errors="coerce", utc=True, format="ISO8601")
        out[todo] = _nanoseconds(iso.dt.tz_convert(TZ).dt.tz_localize(None).to_numpy())
    values = out.dt.tz_localize(TZ, ambiguous="NaT", nonexistent="NaT")
    return values, present & values.isna()


_FIELD_WIDTH = {"%Y": 4, "%m": 2, "%d": 2, "%H": 2, "%M": 2, "%S": 2}
_ISO_LITERALS = (["", "-", "-", ""], ["", "-", "-", " ", ":", ""], ["", "-", "-", " ", ":", ":", ""])


def _iso_shape(fmt: str) -> tuple[str, list[tuple[int, int]] | None, list] | None:
    """For a format of year, month, day [, hour, minute [, second]] in that order with any
    literal text between them (``%Y年%m月%d日 %H:%M``): a pattern that matches the format's
    zero-padded cells, where in such a cell each field is (None when the cell is ISO 8601
    already), and the same shape byte by byte (:func:`_shaped`). None for any other format (it
    goes to pandas)."""
    parts = re.split(r"(%.)", fmt)
    fields, literals = parts[1::2], parts[0::2]
    if fields not in [["%Y", "%m", "%d", *time] for time in ([], ["%H", "%M"], ["%H", "%M", "%S"])]:
        return None
    if any("%" in lit for lit in literals):
        return None
    pattern = "^" + "".join(
        f"[0-9]{{{_FIELD_WIDTH[p]}}}" if i % 2 else re.escape(p) for i, p in enumerate(parts)
    )
    # the same shape byte by byte: True where a digit goes, else the literal's UTF-8 byte
    template = [b for i, p in enumerate(parts) for b in ([True] * _FIELD_WIDTH[p] if i % 2 else p.encode())]
    if literals in _ISO_LITERALS:
        return pattern + "$", None, template
    spans, at = [], len(literals[0])
    for name, literal in zip(fields, literals[1:], strict=True):
        spans.append((at, at + _FIELD_WIDTH[name]))
        at += _FIELD_WIDTH[name] + len(literal)
    return pattern + "$", spans, template


def _shaped(cells: pa.Array, pattern: str, template: list) -> np.ndarray:
    """Which of ``cells`` (text, none missing) match ``pattern``: when all have the shape's
    byte length, their bytes are one (cells, length) block that numpy checks against the
    ``template`` (a digit where it says True, its byte elsewhere: what the pattern says, 20
    times cheaper than the regex); else the regex."""
    n, width = len(cells), len(template)
    offsets = np.frombuffer(cells.buffers()[1], dtype=np.int32, count=n + 1, offset=cells.offset * 4)
    if cells.null_count or not n or not (np.diff(offsets) == width).all():
        return pc.fill_null(pc.match_substring_regex(cells, pattern), False).to_numpy(zero_copy_only=False)
    block = np.frombuffer(cells.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]].reshape(n, width)
    digit = np.array([b is True for b in template])
    literal = np.array([0 if b is True else b for b in template], dtype=np.uint8)
    ok = ((block[:, digit] - np.uint8(48)) < 10).all(axis=1)
    return ok & (block[:, ~digit] == literal[~digit]).all(axis=1)


def _arrow_times(
    arrow: pa.ChunkedArray, todo: pd.Series, iso: tuple[str, list[tuple[int, int]] | None, list],
    out: pd.Series,
) -> None:
    """Fill ``out`` where ``todo`` for the cells written exactly in the format's shape, by
    Arrow's strict ISO 8601 parser: it gives the time pandas gives for such a cell, and refuses
    a day or hour that does not exist (02-30, 24:00), which then goes to pandas with the rest.
    Parsed a block at a time, so that one such cell sends only its block to pandas."""
    pattern, spans, template = iso
    mask = todo.to_numpy()
    cells = arrow.filter(pa.array(mask)).combine_chunks()
    shaped = _shaped(cells.cast(pa.string()), pattern, template)
    rows, cells = np.flatnonzero(mask)[shaped], cells.filter(pa.array(shaped))
    if spans is not None:  # written again as ISO 8601 from the fields' fixed places
        pieces = [pc.utf8_slice_codeunits(cells, a, b) for a, b in spans]
        seps = ["-", "-", " ", ":", ":", ""][: len(pieces)]
        cells = pc.binary_join_element_wise(*[x for pair in zip(pieces, seps, strict=True) for x in pair], "")
    for lo in range(0, len(rows), _TIME_BLOCK):
        try:
            times = pc.cast(cells.slice(lo, _TIME_BLOCK), pa.timestamp("s")).to_numpy()
        except pa.ArrowInvalid:
            continue
        out.iloc[rows[lo : lo + _TIME_BLOCK]] = _nanoseconds(times)


_TIME_BLOCK = 65_536
_NS_RANGE = (np.datetime64("1677-09-22", "s"), np.datetime64("2262-04-11", "s"))


def _nanoseconds(times: np.ndarray) -> np.ndarray:
    """Times as ``datetime64[ns]``; a time outside its range (before 1677-09-22 or after
    2262-04-10) is NaT, which makes its cell a reject, not a failed file."""
    inside = (times >= _NS_RANGE[0]) & (times < _NS_RANGE[1])
    return np.where(inside, times, np.datetime64("NaT")).astype("datetime64[ns]")


def _cells(text: pd.Series, rows: pd.Series) -> pd.Series:
    """The cells of ``rows`` as ``str`` (the readers strip cells; a profile's default has no
    blanks)."""
    return _objects(text[rows]).astype(str)


def read_error_message(exc: Exception) -> str:
    return str(exc) if isinstance(exc, ProfileError | ReaderError) else f"{type(exc).__name__}: {exc}"
