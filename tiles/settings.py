"""Settings of the tile service."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TileSettings(BaseSettings):
    """The tile cache and how fresh its view of layer versions is.

    Built by the API app factory (or a test, or a benchmark) and passed down.
    """

    model_config = SettingsConfigDict(env_prefix="PINGAN_TILES_", extra="ignore")

    cache_enabled: bool = Field(default=True, description="keep rendered tiles in memory")
    cache_bytes: int = Field(default=256 * 1024 * 1024, ge=0, description="bound of the tile cache")
    version_ttl_s: float = Field(
        default=1.0, ge=0.0, le=60.0,
        description="how long a read of pingan.layer_versions is trusted (0: read on every request)",
    )
    batch_inflight: int = Field(
        default=4, ge=1, le=256,
        description="tile messages out to the database at once per process; renders beyond wait and "
                    "go together, per caller (tiles.batch)",
    )
    batch_statements: int = Field(
        default=16, ge=1, le=256, description="most tile statements in one message (1: one request each)",
    )
    cache_control: str = Field(default="public, max-age=60", description="Cache-Control of tiles")
