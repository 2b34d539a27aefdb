"""Models of the raster products (migration 0012; layers/rasters.py writes and reads them).

Imported at the end of ``layers.models`` so that ``Base.metadata`` holds them.
"""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from sqlalchemy import ARRAY, BigInteger, Date, Index, Integer, LargeBinary, Text, text
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION, JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.orm import Mapped, mapped_column

from layers.models import TZ, Base, _fk


class Raster(Base):
    __tablename__ = "rasters"
    __table_args__ = (
        Index("rasters_monthly_idx", "kind", "layer", "period", unique=True,
              postgresql_where=text("audience = 'district'")),
        Index("rasters_owner_idx", "owner", "created"),
        Index("rasters_job_idx", "job_id", postgresql_where=text("job_id IS NOT NULL")),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    layer: Mapped[str] = mapped_column(Text)
    period: Mapped[date | None] = mapped_column(Date)
    title: Mapped[str] = mapped_column(Text)
    params: Mapped[dict] = mapped_column(JSONB, server_default="{}")
    crs: Mapped[str] = mapped_column(Text)
    bounds: Mapped[list[float]] = mapped_column(ARRAY(DOUBLE_PRECISION))
    bounds_crs84: Mapped[list[float]] = mapped_column(ARRAY(DOUBLE_PRECISION))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    cell_size: Mapped[float] = mapped_column(DOUBLE_PRECISION)
    stats: Mapped[dict] = mapped_column(JSONB)
    units: Mapped[str] = mapped_column(Text)
    audience: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(Text)
    job_id: Mapped[UUID | None] = mapped_column(PG_UUID(as_uuid=True), _fk("jobs.id", ondelete="CASCADE"))
    created: Mapped[datetime] = mapped_column(TZ, server_default="now()")
    sha256: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(Integer)
    cog: Mapped[bytes] = mapped_column(LargeBinary)
