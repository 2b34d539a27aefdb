"""Where the CLI finds its database: PINGAN_DATABASE_URL, or the private cluster."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cli.devdb import Cluster


def project_root() -> Path:
    """The checkout we run from: the nearest parent with this project's pyproject.toml."""
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        p = d / "pyproject.toml"
        if p.exists() and 'name = "pingan-map"' in p.read_text(encoding="utf-8"):
            return d
    return here


def data_dir() -> Path:
    env = os.environ.get("PINGAN_DATA_DIR")
    return Path(env).resolve() if env else project_root() / ".data"


def cluster() -> Cluster:
    port = os.environ.get("PINGAN_PG_PORT")
    return Cluster(data_dir(), int(port) if port else None)


@dataclass(frozen=True)
class DatabaseTarget:
    """The database in use: its app URL, an admin URL (to create test databases), and whether
    it is the private cluster (which the CLI may start) or an external one."""

    url: str
    admin_url: str
    private: bool


def database_target(*, start: bool = False) -> DatabaseTarget:
    """Resolve the database; with ``start`` the private cluster is initialised/started."""
    external = os.environ.get("PINGAN_DATABASE_URL")
    if external:
        return DatabaseTarget(external, os.environ.get("PINGAN_ADMIN_DATABASE_URL", external), False)
    c = cluster()
    info = c.ensure() if start else c.info()
    return DatabaseTarget(info.url(), info.url(admin=True), True)
