"""GeoAlchemy2/SQLAlchemy models of the patrol plan tables (migrations 0009 and 0013, issue 9).

Imported at the end of ``layers.models`` so that ``Base.metadata`` holds them and
tests/layers/test_migrations.py checks them against the migrated schema.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ARRAY, BigInteger, Date, Index, Integer, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from layers.models import TZ, Base, _fk, _geom


class PatrolPlan(Base):
    __tablename__ = "patrol_plans"
    __table_args__ = (Index("patrol_plans_town_idx", "town_code"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    network: Mapped[str] = mapped_column(Text)
    plan_date: Mapped[date] = mapped_column(Date)
    solver: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    messages: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    params: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    teams: Mapped[int] = mapped_column(Integer)
    stops_total: Mapped[int] = mapped_column(Integer)
    stops_visited: Mapped[int] = mapped_column(Integer)
    length_m: Mapped[float] = mapped_column(DOUBLE_PRECISION)
    coverage: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    created_by: Mapped[str] = mapped_column(
        Text, server_default=text("COALESCE(NULLIF(pingan.ctx_user(), ''), CURRENT_USER)"))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default="now()")
    town_code: Mapped[str | None] = mapped_column(Text, _fk("towns.code"))  # 0013: who may read it


class PatrolRoute(Base):
    __tablename__ = "patrol_routes"
    __table_args__ = (
        UniqueConstraint("plan_id", "team"),
        Index("patrol_routes_geom_idx", "geom", postgresql_using="gist"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    plan_id: Mapped[int] = mapped_column(BigInteger, _fk("patrol_plans.id", ondelete="CASCADE"))
    team: Mapped[str] = mapped_column(Text)
    team_name: Mapped[str | None] = mapped_column(Text)
    travel_mode: Mapped[str] = mapped_column(Text)
    shift_start: Mapped[datetime] = mapped_column(TZ)
    shift_end: Mapped[datetime] = mapped_column(TZ)
    start_at: Mapped[datetime] = mapped_column(TZ)
    end_at: Mapped[datetime] = mapped_column(TZ)
    stops: Mapped[int] = mapped_column(Integer)
    length_m: Mapped[float] = mapped_column(DOUBLE_PRECISION)
    duration_s: Mapped[float] = mapped_column(DOUBLE_PRECISION)
    geom: Mapped[object | None] = mapped_column(_geom("LINESTRING"), nullable=True)


class PatrolStop(Base):
    __tablename__ = "patrol_stops"
    __table_args__ = (
        UniqueConstraint("plan_id", "stop_id"),
        Index("patrol_stops_plan_idx", "plan_id", "route_id", "seq"),
        Index("patrol_stops_route_idx", "route_id"),
        Index("patrol_stops_geom_idx", "geom", postgresql_using="gist"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    plan_id: Mapped[int] = mapped_column(BigInteger, _fk("patrol_plans.id", ondelete="CASCADE"))
    route_id: Mapped[int | None] = mapped_column(BigInteger, _fk("patrol_routes.id", ondelete="CASCADE"))
    seq: Mapped[int | None] = mapped_column(Integer)
    stop_id: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    ref: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[float] = mapped_column(DOUBLE_PRECISION)
    status: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    arrival: Mapped[datetime | None] = mapped_column(TZ)
    departure: Mapped[datetime | None] = mapped_column(TZ)
    vertex: Mapped[int | None] = mapped_column(BigInteger)
    snap_m: Mapped[float | None] = mapped_column(DOUBLE_PRECISION)
    geom: Mapped[object] = mapped_column(_geom("POINT"))
    leg_m: Mapped[float | None] = mapped_column(DOUBLE_PRECISION)  # 0013
