"""Models of the monthly hot spots (migration 0010; etl/hotspots.py fills them).

Imported at the end of ``layers.models`` so that ``Base.metadata`` holds them.
"""

from __future__ import annotations

from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import Date, ForeignKeyConstraint, Index, Integer, SmallInteger, Text
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION, REAL
from sqlalchemy.orm import Mapped, mapped_column

from layers.models import TZ, Base


class HotspotRun(Base):
    __tablename__ = "hotspot_runs"
    layer: Mapped[str] = mapped_column(Text, primary_key=True)
    period: Mapped[date] = mapped_column(Date, primary_key=True)
    method: Mapped[str] = mapped_column(Text)
    window_months: Mapped[int] = mapped_column(SmallInteger)
    cell_side_m: Mapped[float] = mapped_column(REAL)
    n_cells: Mapped[int] = mapped_column(Integer)
    n_events: Mapped[int] = mapped_column(Integer)
    n_hot: Mapped[int] = mapped_column(Integer)
    n_cold: Mapped[int] = mapped_column(Integer)
    report: Mapped[str] = mapped_column(Text, server_default="''")
    computed_at: Mapped[datetime] = mapped_column(TZ, server_default="now()")


class HotspotCell(Base):
    __tablename__ = "hotspot_cells"
    __table_args__ = (
        ForeignKeyConstraint(["layer", "period"], ["pingan.hotspot_runs.layer", "pingan.hotspot_runs.period"],
                             ondelete="CASCADE"),
        Index("hotspot_cells_geom_idx", "geom", postgresql_using="gist"),
    )
    layer: Mapped[str] = mapped_column(Text, primary_key=True)
    period: Mapped[date] = mapped_column(Date, primary_key=True)
    cell: Mapped[str] = mapped_column(Text, primary_key=True)
    events: Mapped[int] = mapped_column(Integer)
    z: Mapped[float | None] = mapped_column(DOUBLE_PRECISION)
    p: Mapped[float | None] = mapped_column(DOUBLE_PRECISION)
    p_fdr: Mapped[float | None] = mapped_column(DOUBLE_PRECISION)
    bin: Mapped[int] = mapped_column(SmallInteger)
    geom: Mapped[object] = mapped_column(Geometry("MULTIPOLYGON", srid=4490, spatial_index=False))
