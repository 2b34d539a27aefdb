"""GeoAlchemy2 models of the Pingan schema.

The migrations' SQL (``migrations/sql``) is what the database enforces; these classes describe
the same tables to Python (ORM reads and writes, loaders). ``tests/layers/test_models.py``
checks that the two agree, so neither can drift.
"""

from __future__ import annotations

from datetime import date, datetime, time

from geoalchemy2 import Geometry
from sqlalchemy import (
    ARRAY,
    REAL,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION, INET, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA = "pingan"
SRID = 4490  # CGCS2000, the national datum; see ARCHITECTURE.md section 3


def _geom(kind: str) -> Geometry:
    # spatial_index=False: the migrations name their GiST indexes; the models declare them.
    return Geometry(kind, srid=SRID, spatial_index=False)


TZ = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


def _fk(target: str, **kw: str) -> ForeignKey:
    return ForeignKey(f"{SCHEMA}.{target}", **kw)


class Provenance:
    """Columns of every table that ETL writes: (source, source_id) is the natural key."""

    source: Mapped[str] = mapped_column(Text)
    source_id: Mapped[str] = mapped_column(Text)
    batch_id: Mapped[int | None] = mapped_column(BigInteger, _fk("etl_batches.id"))
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default="now()")


class Located:
    """Columns of point records: where, in which datum it came, and how it was placed."""

    # a record placed only to a village has no grid, one placed to a town no village either (0027)
    grid_code: Mapped[str | None] = mapped_column(Text, _fk("grids.code", onupdate="CASCADE"))
    village_code: Mapped[str | None] = mapped_column(Text, _fk("villages.code", onupdate="CASCADE"))
    town_code: Mapped[str] = mapped_column(Text, _fk("towns.code", onupdate="CASCADE"))
    geom: Mapped[object] = mapped_column(_geom("POINT"))
    src_datum: Mapped[str] = mapped_column(Text, server_default="cgcs2000")
    loc_method: Mapped[str] = mapped_column(Text, server_default="coordinates")
    geocode_level: Mapped[str | None] = mapped_column(Text)
    geocode_score: Mapped[float | None] = mapped_column(REAL)


class EtlBatch(Base):
    __tablename__ = "etl_batches"
    __table_args__ = (Index("etl_batches_source_idx", "source", "layer", "started_at"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    layer: Mapped[str] = mapped_column(Text)
    file_name: Mapped[str | None] = mapped_column(Text)
    file_hash: Mapped[str | None] = mapped_column(Text)
    params: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    status: Mapped[str] = mapped_column(Text, server_default="running")
    started_at: Mapped[datetime] = mapped_column(TZ, server_default="now()")
    finished_at: Mapped[datetime | None] = mapped_column(TZ)
    n_read: Mapped[int] = mapped_column(Integer, server_default="0")
    n_loaded: Mapped[int] = mapped_column(Integer, server_default="0")
    n_updated: Mapped[int] = mapped_column(Integer, server_default="0")
    n_unchanged: Mapped[int] = mapped_column(Integer, server_default="0")
    n_rejected: Mapped[int] = mapped_column(Integer, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    refreshed_at: Mapped[datetime | None] = mapped_column(TZ)  # taken by the monthly statistics' refresh
    seconds: Mapped[dict | None] = mapped_column(JSONB)  # the stages' seconds (etl.pipeline)


class EtlReject(Base):
    __tablename__ = "etl_rejects"
    __table_args__ = (Index("etl_rejects_batch_idx", "batch_id", "row_number"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    batch_id: Mapped[int] = mapped_column(BigInteger, _fk("etl_batches.id", ondelete="CASCADE"))
    row_number: Mapped[int | None] = mapped_column(Integer)
    column_name: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[dict | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default="now()")


class LayerVersion(Base):
    __tablename__ = "layer_versions"
    layer_id: Mapped[str] = mapped_column(Text, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, server_default="1")
    changed_at: Mapped[datetime] = mapped_column(TZ, server_default="now()")


class Town(Provenance, Base):
    __tablename__ = "towns"
    __table_args__ = (
        UniqueConstraint("source", "source_id"),
        UniqueConstraint("name", "county_code"),
        Index("towns_geom_idx", "geom", postgresql_using="gist"),
    )
    code: Mapped[str] = mapped_column(Text, primary_key=True)
    county_code: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    population: Mapped[int] = mapped_column(Integer)
    households: Mapped[int] = mapped_column(Integer)
    geom: Mapped[object] = mapped_column(_geom("MULTIPOLYGON"))


class Village(Provenance, Base):
    __tablename__ = "villages"
    __table_args__ = (
        UniqueConstraint("source", "source_id"),
        Index("villages_geom_idx", "geom", postgresql_using="gist"),
        Index("villages_town_idx", "town_code"),
    )
    code: Mapped[str] = mapped_column(Text, primary_key=True)
    town_code: Mapped[str] = mapped_column(Text, _fk("towns.code", onupdate="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    population: Mapped[int] = mapped_column(Integer)
    households: Mapped[int] = mapped_column(Integer)
    geom: Mapped[object] = mapped_column(_geom("MULTIPOLYGON"))


class GridWorker(Provenance, Base):
    __tablename__ = "grid_workers"
    __table_args__ = (
        UniqueConstraint("source", "source_id"),
        Index("grid_workers_village_idx", "village_code"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    code: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text)
    village_code: Mapped[str] = mapped_column(Text, _fk("villages.code", onupdate="CASCADE"))
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")


class Grid(Provenance, Base):
    __tablename__ = "grids"
    __table_args__ = (
        UniqueConstraint("source", "source_id"),
        Index("grids_geom_idx", "geom", postgresql_using="gist"),
        Index("grids_village_idx", "village_code"),
    )
    code: Mapped[str] = mapped_column(Text, primary_key=True)
    village_code: Mapped[str] = mapped_column(Text, _fk("villages.code", onupdate="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text, server_default="comprehensive")
    population: Mapped[int] = mapped_column(Integer)
    households: Mapped[int] = mapped_column(Integer)
    worker_id: Mapped[int | None] = mapped_column(BigInteger, _fk("grid_workers.id", ondelete="SET NULL"))
    geom: Mapped[object] = mapped_column(_geom("MULTIPOLYGON"))


class PatrolTeam(Provenance, Base):
    __tablename__ = "patrol_teams"
    __table_args__ = (
        UniqueConstraint("source", "source_id"),
        Index("patrol_teams_depot_idx", "depot", postgresql_using="gist"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    code: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    town_code: Mapped[str] = mapped_column(Text, _fk("towns.code", onupdate="CASCADE"))
    kind: Mapped[str] = mapped_column(Text)
    members: Mapped[int] = mapped_column(Integer)
    travel_mode: Mapped[str] = mapped_column(Text)
    shift_start: Mapped[time] = mapped_column(Time)
    shift_end: Mapped[time] = mapped_column(Time)
    depot: Mapped[object] = mapped_column(_geom("POINT"))


class KeySite(Located, Provenance, Base):
    __tablename__ = "key_sites"
    __table_args__ = (
        UniqueConstraint("source", "source_id"),
        Index("key_sites_geom_idx", "geom", postgresql_using="gist"),
        Index("key_sites_grid_idx", "grid_code"),
        Index("key_sites_town_idx", "town_code", "category"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    code: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(Text)
    risk_level: Mapped[str] = mapped_column(Text, server_default="low")
    capacity: Mapped[int | None] = mapped_column(Integer)
    address: Mapped[str | None] = mapped_column(Text)


class Person(Located, Provenance, Base):
    __tablename__ = "persons"
    __table_args__ = (
        UniqueConstraint("source", "source_id"),
        Index("persons_geom_idx", "geom", postgresql_using="gist"),
        Index("persons_grid_idx", "grid_code"),
        Index("persons_town_idx", "town_code", "grade"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    id_number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    id_number_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    gender: Mapped[str] = mapped_column(Text)
    birth_year: Mapped[int] = mapped_column(SmallInteger)
    categories: Mapped[list[str]] = mapped_column(ARRAY(Text))
    grade: Mapped[str] = mapped_column(Text)
    grade_since: Mapped[datetime] = mapped_column(TZ)
    status: Mapped[str] = mapped_column(Text, server_default="active")
    closed_at: Mapped[datetime | None] = mapped_column(TZ)
    registered_at: Mapped[datetime] = mapped_column(TZ)
    responsible_worker_id: Mapped[int | None] = mapped_column(
        BigInteger, _fk("grid_workers.id", ondelete="SET NULL")
    )
    address: Mapped[str | None] = mapped_column(Text)


class PersonGrade(Base):
    __tablename__ = "person_grades"
    __table_args__ = (Index("person_grades_person_idx", "person_id", "changed_at"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    person_id: Mapped[int] = mapped_column(BigInteger, _fk("persons.id", ondelete="CASCADE"))
    grade: Mapped[str] = mapped_column(Text)
    previous_grade: Mapped[str | None] = mapped_column(Text)
    changed_at: Mapped[datetime] = mapped_column(TZ)
    reason: Mapped[str | None] = mapped_column(Text)
    changed_by: Mapped[str | None] = mapped_column(Text)
    batch_id: Mapped[int | None] = mapped_column(BigInteger, _fk("etl_batches.id"))


class PersonVisit(Base):
    __tablename__ = "person_visits"
    __table_args__ = (Index("person_visits_person_idx", "person_id", "visited_at"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    person_id: Mapped[int] = mapped_column(BigInteger, _fk("persons.id", ondelete="CASCADE"))
    worker_id: Mapped[int | None] = mapped_column(BigInteger, _fk("grid_workers.id", ondelete="SET NULL"))
    visited_at: Mapped[datetime] = mapped_column(TZ)
    method: Mapped[str] = mapped_column(Text)
    finding: Mapped[str | None] = mapped_column(Text)
    next_due: Mapped[date | None] = mapped_column(Date)
    batch_id: Mapped[int | None] = mapped_column(BigInteger, _fk("etl_batches.id"))


class WorkflowTransition(Base):
    __tablename__ = "workflow_transitions"
    workflow: Mapped[str] = mapped_column(Text, primary_key=True)
    from_state: Mapped[str] = mapped_column(Text, primary_key=True)
    to_state: Mapped[str] = mapped_column(Text, primary_key=True)


class Hazard(Located, Provenance, Base):
    __tablename__ = "hazards"
    __table_args__ = (
        UniqueConstraint("source", "source_id"),
        Index("hazards_geom_idx", "geom", postgresql_using="gist"),
        Index("hazards_found_idx", "found_at"),
        Index("hazards_grid_idx", "grid_code"),
        Index("hazards_town_state_idx", "town_code", "state"),
        Index("hazards_coarse_idx", text("coalesce(village_code, town_code)"),
              postgresql_where=text("grid_code IS NULL")),  # 0027: the few without a grid
        Index("hazards_severe_idx", "village_code", postgresql_where=text("level = 'severe'")),  # 0016
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    code: Mapped[str] = mapped_column(Text, unique=True)
    category: Mapped[str] = mapped_column(Text)
    level: Mapped[str] = mapped_column(Text, server_default="general")
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    reporter_kind: Mapped[str] = mapped_column(Text)
    assigned_to: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(Text)
    found_at: Mapped[datetime] = mapped_column(TZ)
    assigned_at: Mapped[datetime | None] = mapped_column(TZ)
    deadline: Mapped[datetime | None] = mapped_column(TZ)
    rectified_at: Mapped[datetime | None] = mapped_column(TZ)
    verified_at: Mapped[datetime | None] = mapped_column(TZ)
    closed_at: Mapped[datetime | None] = mapped_column(TZ)


class Case(Located, Provenance, Base):
    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint("source", "source_id"),
        Index("cases_geom_idx", "geom", postgresql_using="gist"),
        Index("cases_accepted_idx", "accepted_at"),
        Index("cases_grid_idx", "grid_code"),
        Index("cases_town_state_idx", "town_code", "state"),
        Index("cases_coarse_idx", text("coalesce(village_code, town_code)"),
              postgresql_where=text("grid_code IS NULL")),  # 0027: the few without a grid
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    code: Mapped[str] = mapped_column(Text, unique=True)
    kind: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(Text)
    parties: Mapped[int] = mapped_column(Integer, server_default="2")
    state: Mapped[str] = mapped_column(Text)
    accepted_at: Mapped[datetime] = mapped_column(TZ)
    deadline: Mapped[datetime] = mapped_column(TZ)
    mediating_at: Mapped[datetime | None] = mapped_column(TZ)
    resolved_at: Mapped[datetime | None] = mapped_column(TZ)
    transferred_at: Mapped[datetime | None] = mapped_column(TZ)
    closed_at: Mapped[datetime | None] = mapped_column(TZ)
    resolution_level: Mapped[str | None] = mapped_column(Text)
    transferred_to: Mapped[str | None] = mapped_column(Text)


class _Event:
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    from_state: Mapped[str | None] = mapped_column(Text)
    to_state: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(TZ)
    actor: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    batch_id: Mapped[int | None] = mapped_column(BigInteger, _fk("etl_batches.id"))


class HazardEvent(_Event, Base):
    __tablename__ = "hazard_events"
    __table_args__ = (Index("hazard_events_hazard_idx", "hazard_id", "at"),)
    hazard_id: Mapped[int] = mapped_column(BigInteger, _fk("hazards.id", ondelete="CASCADE"))


class CaseEvent(_Event, Base):
    __tablename__ = "case_events"
    __table_args__ = (Index("case_events_case_idx", "case_id", "at"),)
    case_id: Mapped[int] = mapped_column(BigInteger, _fk("cases.id", ondelete="CASCADE"))


class AddressPoint(Provenance, Base):
    __tablename__ = "address_points"
    __table_args__ = (
        UniqueConstraint("source", "source_id"),
        Index("address_points_geom_idx", "geom", postgresql_using="gist"),
        Index("address_points_normalized_idx", "normalized"),
        Index("address_points_village_idx", "village_code", "road"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    address: Mapped[str] = mapped_column(Text)
    normalized: Mapped[str] = mapped_column(Text)
    road: Mapped[str | None] = mapped_column(Text)
    number: Mapped[str | None] = mapped_column(Text)
    building: Mapped[str | None] = mapped_column(Text)
    grid_code: Mapped[str] = mapped_column(Text, _fk("grids.code", onupdate="CASCADE"))
    village_code: Mapped[str] = mapped_column(Text, _fk("villages.code", onupdate="CASCADE"))
    town_code: Mapped[str] = mapped_column(Text, _fk("towns.code", onupdate="CASCADE"))
    geom: Mapped[object] = mapped_column(_geom("POINT"))
    src_datum: Mapped[str] = mapped_column(Text, server_default="cgcs2000")


class MonthlyStat(Base):
    __tablename__ = "monthly_stats"
    __table_args__ = (Index("monthly_stats_code_idx", "level", "code", "period"),)
    period: Mapped[date] = mapped_column(Date, primary_key=True)
    level: Mapped[str] = mapped_column(Text, primary_key=True)
    code: Mapped[str] = mapped_column(Text, primary_key=True)
    hazards_found: Mapped[int] = mapped_column(Integer, server_default="0")
    hazards_rectified: Mapped[int] = mapped_column(Integer, server_default="0")
    hazards_rectified_on_time: Mapped[int] = mapped_column(Integer, server_default="0")
    hazards_closed: Mapped[int] = mapped_column(Integer, server_default="0")
    hazards_overdue: Mapped[int] = mapped_column(Integer, server_default="0")
    cases_accepted: Mapped[int] = mapped_column(Integer, server_default="0")
    cases_resolved: Mapped[int] = mapped_column(Integer, server_default="0")
    cases_resolved_grassroots: Mapped[int] = mapped_column(Integer, server_default="0")
    cases_overdue: Mapped[int] = mapped_column(Integer, server_default="0")
    refreshed_at: Mapped[datetime] = mapped_column(TZ, server_default="now()")


class RefreshState(Base):
    __tablename__ = "refresh_state"
    job: Mapped[str] = mapped_column(Text, primary_key=True)
    last_batch_id: Mapped[int] = mapped_column(BigInteger, server_default="0")
    refreshed_at: Mapped[datetime] = mapped_column(TZ, server_default="now()")


class RefreshMoved(Base):
    """A place and start an update took a record away from, for the refresh of its batch (0027)."""

    __tablename__ = "refresh_moved"
    __table_args__ = (Index("refresh_moved_batch_idx", "batch_id"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    batch_id: Mapped[int] = mapped_column(BigInteger, _fk("etl_batches.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(Text)
    t0: Mapped[datetime] = mapped_column(TZ)


class PersonCountsPattern(Base):
    """Which counts of persons per area are withheld (0028): written by a trigger on persons,
    read by the count views; owner only."""

    __tablename__ = "person_counts_pattern"
    level: Mapped[str] = mapped_column(Text, primary_key=True)
    code: Mapped[str] = mapped_column(Text, primary_key=True)
    names: Mapped[list[str]] = mapped_column(ARRAY(Text))


class RoadVertex(Base):
    __tablename__ = "road_vertices"
    __table_args__ = (Index("road_vertices_geom_idx", "geom", postgresql_using="gist"),)
    network: Mapped[str] = mapped_column(Text, primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    geom: Mapped[object] = mapped_column(_geom("POINT"))


class RoadEdge(Base):
    __tablename__ = "road_edges"
    __table_args__ = (
        Index("road_edges_geom_idx", "geom", postgresql_using="gist"),
        Index("road_edges_source_idx", "source"),
        Index("road_edges_target_idx", "target"),
        Index("road_edges_network_idx", "network"),
        ForeignKeyConstraint(
            ["network", "source"],
            [f"{SCHEMA}.road_vertices.network", f"{SCHEMA}.road_vertices.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["network", "target"],
            [f"{SCHEMA}.road_vertices.network", f"{SCHEMA}.road_vertices.id"],
            ondelete="CASCADE",
        ),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    network: Mapped[str] = mapped_column(Text)
    source: Mapped[int] = mapped_column(BigInteger)
    target: Mapped[int] = mapped_column(BigInteger)
    osm_id: Mapped[int | None] = mapped_column(BigInteger)
    name: Mapped[str | None] = mapped_column(Text)
    highway: Mapped[str | None] = mapped_column(Text)
    length_m: Mapped[float] = mapped_column(DOUBLE_PRECISION)
    cost: Mapped[float] = mapped_column(DOUBLE_PRECISION)
    reverse_cost: Mapped[float] = mapped_column(DOUBLE_PRECISION)
    foot: Mapped[bool] = mapped_column(Boolean, server_default="true")
    bicycle: Mapped[bool] = mapped_column(Boolean, server_default="true")
    car: Mapped[bool] = mapped_column(Boolean, server_default="true")
    geom: Mapped[object] = mapped_column(_geom("LINESTRING"))
    batch_id: Mapped[int | None] = mapped_column(BigInteger, _fk("etl_batches.id"))


class PrivacyConfig(Base):
    """Privacy settings the service cannot change (0005): the small-count threshold."""

    __tablename__ = "privacy_config"
    singleton: Mapped[bool] = mapped_column(Boolean, primary_key=True, server_default="true")
    min_count: Mapped[int] = mapped_column(Integer, server_default="5")


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("audit_log_at_idx", "at"),
        Index("audit_log_actor_idx", "actor", "at"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(TZ, server_default="now()")
    actor: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    object_type: Mapped[str | None] = mapped_column(Text)
    object_id: Mapped[str | None] = mapped_column(Text)
    client_addr: Mapped[str | None] = mapped_column(INET)
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict] = mapped_column(JSONB, server_default="{}")


# -- identity (0006) ---------------------------------------------------------------------------
class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    role: Mapped[str] = mapped_column(Text)
    areas: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    password_hash: Mapped[str] = mapped_column(Text)
    disabled: Mapped[bool] = mapped_column(Boolean, server_default="false")
    created_at: Mapped[datetime] = mapped_column(TZ, server_default="now()")
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default="now()")
    last_login_at: Mapped[datetime | None] = mapped_column(TZ)


class Session(Base):
    __tablename__ = "sessions"
    __table_args__ = (
        Index("sessions_user_idx", "user_id"),
        Index("sessions_expires_idx", "expires_at"),
    )
    id_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, _fk("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(TZ, server_default="now()")
    expires_at: Mapped[datetime] = mapped_column(TZ)
    last_seen_at: Mapped[datetime] = mapped_column(TZ, server_default="now()")
    client_addr: Mapped[str | None] = mapped_column(INET)
    user_agent: Mapped[str | None] = mapped_column(Text)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    __table_args__ = (Index("api_tokens_user_idx", "user_id"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, _fk("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default="now()")
    expires_at: Mapped[datetime] = mapped_column(TZ)
    revoked_at: Mapped[datetime | None] = mapped_column(TZ)
    last_used_at: Mapped[datetime | None] = mapped_column(TZ)


class LoginThrottle(Base):
    __tablename__ = "login_throttle"
    __table_args__ = (Index("login_throttle_updated_idx", "updated_at"),)
    scope: Mapped[str] = mapped_column(Text, primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, server_default="0")
    window_start: Mapped[datetime] = mapped_column(TZ, server_default="now()")
    locked_until: Mapped[datetime | None] = mapped_column(TZ)
    lockouts: Mapped[int] = mapped_column(Integer, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default="now()")


# the tables of later migrations join Base.metadata (tests/layers/test_migrations.py checks them)
from layers import (  # noqa: E402,F401 - 0007 index, 0008 tile shapes, 0009 patrol, 0010 hot spots
    models_hotspots,
    models_index,
    models_jobs,  # 0011 jobs
    models_patrol,
    models_rasters,  # 0012 rasters
    models_tiles,
)
