"""Settings of the web service."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    """How the service runs. Built by the CLI (or a test) and passed to ``create_app``."""

    model_config = SettingsConfigDict(env_prefix="PINGAN_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str | None = Field(
        default=None, description="the URL clients reach the service at, for links"
    )
    assets_dir: Path | None = Field(
        default=None, description="npm assets (node_modules; MapLibre GL for the map screen);"
        " default ./node_modules when it exists")
    max_body_bytes: int = Field(default=1 << 20, ge=1024, description="larger request bodies: 413")
    max_query_bytes: int = Field(default=8192, ge=256, description="longer query strings: 414")
    # The map screen's optional basemap (e.g. 天地图 for a deployment that can reach it): an XYZ
    # or WMTS RESTful tile URL template with {z}, {x} and {y}; off by default (the screen draws
    # the project's own plain basemap). When set, the page's CSP allows that origin only.
    basemap_url: str | None = Field(
        default=None, pattern=r"^https?://[^/\s]+/\S*$",
        description="map screen basemap tile URL template with {z}/{x}/{y} (PINGAN_BASEMAP_URL)")
    basemap_attribution: str = Field(default="", max_length=300, description="its attribution text")

    @field_validator("basemap_url")
    @classmethod
    def _tile_template(cls, v: str | None) -> str | None:
        if v and not all(p in v for p in ("{z}", "{x}", "{y}")):
            raise ValueError("PINGAN_BASEMAP_URL must be a tile URL template with {z}, {x} and {y}")
        return v or None
