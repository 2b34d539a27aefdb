"""Bulk writes with COPY: frames in, rows in a table, in the caller's transaction."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection

SRID = 4490
CHUNK_ROWS = 100_000


def _geometry_column(values: pd.Series) -> pd.Series:
    # Hex EWKB carries the SRID, so the typmod geometry(…, 4490) accepts it without a cast.
    geoms = shapely.set_srid(np.asarray(values, dtype=object), SRID)
    return pd.Series(shapely.to_wkb(geoms, hex=True, include_srid=True), index=values.index)


def _timestamps(s: pd.Series) -> np.ndarray:
    # pandas formats tz-aware timestamps one by one in Python (~0.1 ms each); numpy's
    # datetime_as_string does the same in C. UTC with an explicit offset is unambiguous.
    utc = s.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    text = np.char.add(np.datetime_as_string(utc, unit="us"), "+00")
    return np.where(np.isnat(utc), None, text).astype(object)


def _first(s: pd.Series) -> object:
    present = s.dropna()
    return present.iloc[0] if len(present) else None


def _csv_ready(df: pd.DataFrame, geometry_columns: tuple[str, ...]) -> pd.DataFrame:
    """Turn each column into values whose text form PostgreSQL's CSV COPY reads right."""
    out = {}
    for col in df.columns:
        s = df[col]
        sample = _first(s) if s.dtype == object else None
        if col in geometry_columns:
            out[col] = _geometry_column(s)
        elif isinstance(sample, bytes):
            out[col] = s.map(lambda b: None if b is None else "\\x" + b.hex())
        elif isinstance(sample, list | tuple):
            out[col] = s.map(lambda v: None if v is None else "{" + ",".join(v) + "}")
        elif isinstance(s.dtype, pd.DatetimeTZDtype):
            out[col] = _timestamps(s)
        elif pd.api.types.is_float_dtype(s) and s.isna().any() and (s.dropna() % 1 == 0).all():
            out[col] = s.astype("Int64")  # integer column with NULLs: no "3.0"
        else:
            out[col] = s
    return pd.DataFrame(out, index=df.index)


def copy_frame(
    conn: Connection,
    table: str,
    df: pd.DataFrame,
    *,
    geometry_columns: tuple[str, ...] = ("geom",),
) -> int:
    """COPY ``df`` into ``table`` (schema-qualified, trusted name); returns the row count.

    Missing values become NULL. Text is sent as CSV, so commas, quotes and new lines in Chinese
    free text survive unchanged.
    """
    if df.empty:
        return 0
    cols = ", ".join(f'"{c}"' for c in df.columns)
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN WITH (FORMAT csv)") as cp:
        # typed once for the whole frame (so every chunk writes a column the same way), then
        # sent in chunks: the CSV text of a million wide rows is another half gigabyte at once
        frame = _csv_ready(df, geometry_columns)
        for start in range(0, len(frame), CHUNK_ROWS):
            buf = io.StringIO()
            frame.iloc[start : start + CHUNK_ROWS].to_csv(buf, index=False, header=False, na_rep="")
            cp.write(buf.getvalue())
    return len(df)
