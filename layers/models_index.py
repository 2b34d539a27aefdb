"""GeoAlchemy2/SQLAlchemy models of the index tables (migration 0007, issue 6).

Imported at the end of ``layers.models`` so that ``Base.metadata`` holds them and
tests/layers/test_migrations.py checks them against the migrated schema.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Date,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    SmallInteger,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION, JSONB, REAL
from sqlalchemy.orm import Mapped, mapped_column

from layers.models import TZ, Base, _fk


class IndexModelRow(Base):
    __tablename__ = "index_models"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    version: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(Text, unique=True)
    toml: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default="now()")


class IndexMonth(Base):
    """One month of one level (migration 0016): arrays over the places in the order of ``codes``;
    ``pingan.index_scores`` is the view of one row per place."""

    __tablename__ = "index_months"
    period: Mapped[date] = mapped_column(Date, primary_key=True)
    level: Mapped[str] = mapped_column(Text, primary_key=True)
    model_id: Mapped[int] = mapped_column(BigInteger, _fk("index_models.id"))
    class_keys: Mapped[list[str]] = mapped_column(ARRAY(Text))
    class_hex: Mapped[list[str]] = mapped_column(ARRAY(Text))
    indicators: Mapped[list[str]] = mapped_column(ARRAY(Text))
    weights: Mapped[list[float]] = mapped_column(ARRAY(DOUBLE_PRECISION))
    veto_reasons: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    notes: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    codes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    town_codes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    score_x100: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    class_: Mapped[list[int]] = mapped_column("class", ARRAY(SmallInteger))
    rank: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    rank_change: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    change_x100: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    veto_mask: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    # [indicator][place] as big-endian float4 bytes (migration 0020)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    risk: Mapped[bytes] = mapped_column(LargeBinary)
    computed_at: Mapped[datetime] = mapped_column(TZ, server_default="now()")


class IndexInput(Base):
    """The counted inputs of one month (migration 0020, layers/index_inputs.py): ``counts`` is a
    len(sources) × len(codes) matrix of big-endian int32 (int4send's format), row-major; ``codes``
    are every village, then every town (a town's column: its records placed to no village)."""

    __tablename__ = "index_inputs"
    period: Mapped[date] = mapped_column(Date, primary_key=True)
    codes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    sources: Mapped[list[str]] = mapped_column(ARRAY(Text))
    counts: Mapped[bytes] = mapped_column(LargeBinary)
    refreshed_at: Mapped[datetime] = mapped_column(TZ, server_default="now()")


class IndexSurvey(Base):
    __tablename__ = "index_survey"
    period: Mapped[date] = mapped_column(Date, primary_key=True)
    level: Mapped[str] = mapped_column(Text, primary_key=True)
    code: Mapped[str] = mapped_column(Text, primary_key=True)
    respondents: Mapped[int | None] = mapped_column(Integer)
    awareness: Mapped[float | None] = mapped_column(REAL)
    participation: Mapped[float | None] = mapped_column(REAL)
    satisfaction: Mapped[float | None] = mapped_column(REAL)
    batch_id: Mapped[int | None] = mapped_column(BigInteger, _fk("etl_batches.id"))
    # 0014: an ETL layer (etl/targets.py "survey")
    name: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text, server_default="'import'")
    source_id: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default="now()")


class IndexWarning(Base):
    __tablename__ = "index_warnings"
    __table_args__ = (
        Index("index_warnings_town_idx", "town_code", "status"),
        UniqueConstraint("level", "code", "opened"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    level: Mapped[str] = mapped_column(Text)
    code: Mapped[str] = mapped_column(Text)
    town_code: Mapped[str] = mapped_column(Text, _fk("towns.code", onupdate="CASCADE"))
    opened: Mapped[date] = mapped_column(Date)
    step: Mapped[int] = mapped_column(SmallInteger)
    step_since: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(Text)
    closed: Mapped[date | None] = mapped_column(Date)
    owner: Mapped[str] = mapped_column(Text)
    deadline: Mapped[date] = mapped_column(Date)
    evidence: Mapped[str | None] = mapped_column(Text)
    document: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default="now()")
    steps_md5: Mapped[str | None] = mapped_column(Text)  # 0020: md5 of the item's steps


class IndexWarningEvent(Base):
    __tablename__ = "index_warning_events"
    __table_args__ = (Index("index_warning_events_warning_idx", "warning_id", "period"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    warning_id: Mapped[int] = mapped_column(BigInteger, _fk("index_warnings.id", ondelete="CASCADE"))
    period: Mapped[date] = mapped_column(Date)
    from_step: Mapped[int] = mapped_column(SmallInteger)
    to_step: Mapped[int] = mapped_column(SmallInteger)
    reason: Mapped[str] = mapped_column(Text)


class IndexWarningEvidence(Base):
    """Evidence notes of ladder items, append-only (migration 0014)."""

    __tablename__ = "index_warning_evidence"
    __table_args__ = (
        Index("index_warning_evidence_warning_idx", "warning_id", "id"),
        Index("index_warning_evidence_item_idx", "level", "code", "opened"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    warning_id: Mapped[int | None] = mapped_column(BigInteger, _fk("index_warnings.id", ondelete="SET NULL"))
    level: Mapped[str] = mapped_column(Text)
    code: Mapped[str] = mapped_column(Text)
    town_code: Mapped[str] = mapped_column(Text)
    opened: Mapped[date] = mapped_column(Date)
    step: Mapped[int] = mapped_column(SmallInteger)
    note: Mapped[str] = mapped_column(Text)
    file_name: Mapped[str | None] = mapped_column(Text)
    media_type: Mapped[str | None] = mapped_column(Text)
    file_size: Mapped[int | None] = mapped_column(Integer)
    file_sha256: Mapped[str | None] = mapped_column(Text)
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_by: Mapped[str] = mapped_column(Text)
    created_role: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default="now()")


class IndexStar(Base):
    __tablename__ = "index_stars"
    year: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    village_code: Mapped[str] = mapped_column(
        Text, _fk("villages.code", onupdate="CASCADE"), primary_key=True
    )
    town_code: Mapped[str] = mapped_column(Text, _fk("towns.code", onupdate="CASCADE"))
    model_id: Mapped[int] = mapped_column(BigInteger, _fk("index_models.id"))
    percent: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    stars: Mapped[int] = mapped_column(SmallInteger)
    veto: Mapped[bool] = mapped_column(Boolean, server_default="false")
    card: Mapped[dict] = mapped_column(JSONB)
    computed_at: Mapped[datetime] = mapped_column(TZ, server_default="now()")
