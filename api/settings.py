"""Settings of the web service."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
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
