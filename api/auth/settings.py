"""Settings of authentication (environment prefix ``PINGAN_AUTH_``)."""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class AuthSettings(BaseSettings):
    """How callers log in and how long what they get lasts.

    Built by the app factory (or a test) and passed to :func:`api.auth.install`.
    """

    model_config = SettingsConfigDict(env_prefix="PINGAN_AUTH_", extra="ignore")

    # browser sessions
    session_lifetime_seconds: int = Field(default=12 * 3600, ge=60, le=30 * 86400,
                                          description="a session ends this long after login")
    session_idle_seconds: int = Field(default=30 * 60, ge=60, le=30 * 86400,
                                      description="a session ends after this long unused")
    cookie_name: str = Field(default="pingan_session", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    cookie_secure: bool = Field(default=True,
                                  description="Secure cookie flag; False only for plain-HTTP development")

    # HTTP Basic: successful verifications are remembered this long, so that QGIS (which sends
    # Basic with every tile) does not pay an argon2 verification per request. A disabled user or
    # a changed password takes effect on a worker within this many seconds. 0 turns it off.
    basic_cache_seconds: int = Field(default=60, ge=0, le=3600)
    # Bearer tokens and session cookies: checked at most once per this many seconds per worker
    # (revocation and expiry take effect within it; logout in the same worker at once). 0: off.
    credential_cache_seconds: int = Field(default=10, ge=0, le=3600)
    basic_cache_size: int = Field(default=10_000, ge=1, le=1_000_000)

    # failed logins (login form and Basic): per user name and per client address
    max_failures_per_user: int = Field(default=5, ge=1, le=1000)
    max_failures_per_address: int = Field(default=20, ge=1, le=100_000)
    failure_window_seconds: int = Field(default=15 * 60, ge=1, le=86400)
    lockout_seconds: int = Field(default=15 * 60, ge=1, le=86400,
                                 description="the first lock; each further lock in a row doubles it")
    max_lockout_seconds: int = Field(default=24 * 3600, ge=1, le=30 * 86400)

    # API tokens (`pingan tokens create`)
    token_default_days: int = Field(default=90, ge=1)
    token_max_days: int = Field(default=365, ge=1, le=3650)

    # collections published without login: the monthly index by default (issue 4: "every
    # endpoint except /healthz and the public index needs a login"); set it empty to publish
    # nothing, or add more. From the environment as JSON or comma-separated:
    # PINGAN_AUTH_ANONYMOUS_COLLECTIONS=a,b
    anonymous_collections: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["index-villages", "index-towns"])

    @field_validator("anonymous_collections", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [v.strip() for v in text.split(",") if v.strip()]
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AuthSettings:
        if self.token_default_days > self.token_max_days:
            raise ValueError("token_default_days must not exceed token_max_days")
        if self.session_idle_seconds > self.session_lifetime_seconds:
            raise ValueError("session_idle_seconds must not exceed session_lifetime_seconds")
        if self.max_lockout_seconds < self.lockout_seconds:
            raise ValueError("max_lockout_seconds must not be below lockout_seconds")
        return self
