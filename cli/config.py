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
    """The database in use: the owner's URL (migrations, ETL, CLI), an admin URL (to create
    test databases), the web service's URL (role ``pingan_service``, subject to row-level
    security; None when an external database gives none), and whether it is the private
    cluster (which the CLI may start) or an external one."""

    url: str
    admin_url: str
    private: bool
    service_url: str | None = None


def database_target(*, start: bool = False) -> DatabaseTarget:
    """Resolve the database; with ``start`` the private cluster is initialised/started."""
    external = os.environ.get("PINGAN_DATABASE_URL")
    if external:
        service = os.environ.get("PINGAN_SERVICE_DATABASE_URL") or private_service_url(external)
        return DatabaseTarget(external, os.environ.get("PINGAN_ADMIN_DATABASE_URL", external), False,
                              service)
    c = cluster()
    info = c.ensure() if start else c.info()
    return DatabaseTarget(info.url(), info.url(admin=True), True,
                          info.url(service=True) if info.service_password else None)


def private_service_url(url: str) -> str | None:
    """The service role's URL for ``url`` when ``url`` is a database on our own private cluster
    (tests and benchmarks make such databases); None otherwise."""
    from sqlalchemy.engine import make_url

    c = cluster()
    if not c.info_file.exists():
        return None
    info = c.info()
    parsed = make_url(url)
    if parsed.host not in ("127.0.0.1", "localhost") or parsed.port != info.port or not info.service_password:
        return None
    return info.url(service=True, database=parsed.database or "pingan")
