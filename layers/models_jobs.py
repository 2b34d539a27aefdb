"""Models of the OGC API - Processes jobs and their cell results (migration 0011).

Imported at the end of ``layers.models`` so that ``Base.metadata`` holds them. The view
``hotspot_results`` and the functions ``analysis_events`` and ``fail_interrupted_jobs`` are
not mapped (views and functions are not part of the metadata comparison).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import ARRAY, ForeignKey, Index, Integer, SmallInteger, Text, Uuid, text
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from layers.models import TZ, Base


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("jobs_owner_idx", "owner", text("created DESC")),
        Index("jobs_active_idx", "runner", postgresql_where=text("status IN ('accepted', 'running')")),
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    process_id: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(Text)
    owner_role: Mapped[str] = mapped_column(Text)
    owner_areas: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    mode: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text, server_default="''")
    progress: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    inputs: Mapped[dict] = mapped_column(JSONB, server_default="'{}'::jsonb")
    results: Mapped[dict | None] = mapped_column(JSONB)
    runner: Mapped[int] = mapped_column(Integer)
    created: Mapped[datetime] = mapped_column(TZ, server_default="now()")
    started: Mapped[datetime | None] = mapped_column(TZ)
    finished: Mapped[datetime | None] = mapped_column(TZ)
    updated: Mapped[datetime] = mapped_column(TZ, server_default="now()")


class JobCell(Base):
    __tablename__ = "job_cells"
    __table_args__ = (Index("job_cells_geom_idx", "geom", postgresql_using="gist"),)
    job_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("pingan.jobs.id", ondelete="CASCADE"),
                                              primary_key=True)
    cell: Mapped[str] = mapped_column(Text, primary_key=True)
    events: Mapped[int] = mapped_column(Integer)
    z: Mapped[float | None] = mapped_column(DOUBLE_PRECISION)
    p: Mapped[float | None] = mapped_column(DOUBLE_PRECISION)
    p_fdr: Mapped[float | None] = mapped_column(DOUBLE_PRECISION)
    bin: Mapped[int | None] = mapped_column(SmallInteger)
    local_i: Mapped[float | None] = mapped_column(DOUBLE_PRECISION)
    code: Mapped[int | None] = mapped_column(SmallInteger)
    label: Mapped[str | None] = mapped_column(Text)
    geom: Mapped[object] = mapped_column(Geometry("MULTIPOLYGON", srid=4490, spatial_index=False))
