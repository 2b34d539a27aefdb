"""Rejects: how a row that cannot be loaded is recorded.

What the database raises for rows it refuses (:data:`REFUSED`) and the rule such a row broke,
in words (:func:`db_reason`); the rejects of a batch written to ``pingan.etl_rejects`` with their
row number, column, reason and raw values, and counted by reason for the summary. Guarantees:
a reject's raw values are stored as JSON whatever they hold (NaN/NaT become null).
"""

from __future__ import annotations

import json

import pandas as pd
import psycopg
from sqlalchemy import Connection

from etl.targets import CONSTRAINT_REASONS
from layers.copy import copy_frame

#: what the database raises for rows it refuses (a CHECK, a unique key, a trigger's RAISE)
REFUSED = (psycopg.errors.IntegrityError, psycopg.errors.DataError, psycopg.errors.RaiseException)


def no_rejects() -> pd.DataFrame:
    return pd.DataFrame(columns=["row_number", "column_name", "reason", "raw"])


def db_reason(exc: psycopg.Error) -> str:
    diag = exc.diag
    if diag.constraint_name in CONSTRAINT_REASONS:
        return CONSTRAINT_REASONS[diag.constraint_name]
    return (diag.message_primary or str(exc)).split("\n")[0]


def write_rejects(conn: Connection, batch_id: int, rejects: pd.DataFrame) -> None:
    if rejects.empty:
        return
    frame = rejects.assign(
        batch_id=batch_id,
        raw=[json.dumps(_json_safe(r), ensure_ascii=False, default=str) for r in rejects["raw"]],
    )[["batch_id", "row_number", "column_name", "reason", "raw"]]
    copy_frame(conn, "pingan.etl_rejects", frame, geometry_columns=())


def _json_safe(record: object) -> object:
    """The raw row as JSON can hold it: NaN/NaT (not JSON) become null."""
    if not isinstance(record, dict):
        return record
    return {str(k): (None if not isinstance(v, list | dict) and pd.isna(v) else v) for k, v in record.items()}


def reason_counts(rejects: pd.DataFrame) -> dict[str, int]:
    """How many rows were refused for each rule: the reasons without the row's own value
    (``状态: 丢失 is not one of 发现, ...`` counts as ``状态: … is not one of 发现, ...``), cut to
    80 characters."""
    if rejects.empty:
        return {}
    rows = zip(rejects["reason"], rejects["column_name"], rejects["raw"], strict=True)
    rules = [_rule(str(reason), column, raw) for reason, column, raw in rows]
    return pd.Series(rules, dtype=object).value_counts().to_dict()


def _rule(reason: str, column: object, raw: object) -> str:
    value = raw.get(column) if isinstance(raw, dict) and isinstance(column, str) else None
    if isinstance(value, str) and value:
        reason = reason.replace(f"{column}: {value[:60]}", f"{column}: …", 1)
    return reason[:80]
