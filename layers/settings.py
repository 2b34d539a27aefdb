"""Settings of the storage package."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class DatabaseSettings(BaseSettings):
    """Where the database is and how to talk to it.

    Built by the CLI or the API app factory and passed down; never at import time.
    """

    model_config = SettingsConfigDict(env_prefix="PINGAN_", extra="ignore")

    database_url: str = Field(description="postgresql:// URL of the Pingan database")
    pool_size: int = Field(default=10, ge=1, le=200)
    statement_timeout_ms: int = Field(default=60_000, ge=0)

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
            raise ValueError("PINGAN_DATABASE_URL must be a postgresql:// URL")
        return value


class ServiceDatabaseSettings(DatabaseSettings):
    """The web service's database connection: PINGAN_SERVICE_DATABASE_URL, a role that row-level
    security binds (not the owner, not a superuser, NOBYPASSRLS); the app refuses any other."""

    model_config = SettingsConfigDict(env_prefix="PINGAN_SERVICE_", extra="ignore")


class KeySettings(BaseSettings):
    """Where the data-encryption keys of person data come from.

    ``data_key`` (base64 of 32 bytes, optionally several as ``id:key,id:key`` with the first
    used for new writes) or ``data_key_file`` (a file holding the same text). The key never
    lives in the database.
    """

    model_config = SettingsConfigDict(env_prefix="PINGAN_", extra="ignore")

    data_key: str | None = Field(default=None, repr=False)
    data_key_file: Path | None = None
