"""Models of the tile-shape store (migrations 0008 and 0023; tiles/shapes.py fills it).

Imported at the end of ``layers.models`` so that ``Base.metadata`` holds them.
"""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import BigInteger, Index, SmallInteger, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from layers.models import TZ, Base


class TileShape(Base):
    __tablename__ = "tile_shapes"
    __table_args__ = (Index("tile_shapes_geom_idx", "geom", postgresql_using="gist"),)
    layer_id: Mapped[str] = mapped_column(Text, primary_key=True)
    zoom: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    geom: Mapped[object] = mapped_column(Geometry(spatial_index=False))  # SRID 0: tile units
    props: Mapped[dict] = mapped_column(JSONB)
    tiles: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))  # tiles its source intersects: x << 20 | y


class TileShapeVersion(Base):
    __tablename__ = "tile_shape_versions"
    layer_id: Mapped[str] = mapped_column(Text, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    built_at: Mapped[datetime] = mapped_column(TZ, server_default="now()")
