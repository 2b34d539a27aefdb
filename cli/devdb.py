"""The private PostgreSQL cluster that `make demo` and `make test` run on.

A cluster under the project's data dir (``.data/pg``), on its own port on 127.0.0.1, reused on
every run (never re-initialised). Password authentication everywhere (scram-sha-256), with
generated passwords kept in ``.data/cluster.json`` (mode 0600). Three roles:

- ``pingan_admin``: the cluster superuser, used only to create databases and extensions;
- ``pingan``: owns the ``pingan`` database and its schema; migrations, ETL jobs and the CLI run
  as it. It is not a superuser, but as the tables' owner it is not subject to their
  row-level-security policies, so the network-facing service never connects as it;
- ``pingan_service``: what the web service connects as: not the owner, not a superuser,
  NOBYPASSRLS, NOINHERIT. By itself it may read almost nothing; each request's transaction
  switches to the caller's access role (``pingan_as_command``, ``pingan_as_town``, ...: NOLOGIN
  roles it is a member of), whose privileges and row-level-security policies the migrations
  define (layers/migrations/sql/0005_access.up.sql).

PostgreSQL refuses to run as root, and sessions and CI run as root: then the cluster belongs to
the ``postgres`` system user that Debian's package creates, and its commands run through
``runuser``.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

ADMIN_ROLE = "pingan_admin"
APP_ROLE = "pingan"
SERVICE_ROLE = "pingan_service"
# One NOLOGIN role per access level; the service switches to the caller's for each transaction.
ACCESS_ROLES = tuple(f"pingan_as_{r}" for r in ("admin", "command", "town", "grid", "analyst", "public",
                                                "system"))
APP_DB = "pingan"
DEFAULT_PORT = 54329
EXTENSIONS = ("postgis", "pgrouting")

# Settings for a small service on a 2-core machine; durability is left at PostgreSQL's defaults
# because the ETL crash tests rely on it.
_CONF = """
# --- added by pingan (cli/devdb.py) ---
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{rundir}'
unix_socket_permissions = 0700
max_connections = 200
shared_buffers = '512MB'
work_mem = '32MB'
maintenance_work_mem = '512MB'
effective_cache_size = '4GB'
random_page_cost = 1.1
jit = off
timezone = 'Asia/Shanghai'
log_timezone = 'Asia/Shanghai'
"""


class ClusterError(RuntimeError):
    """The private cluster cannot be used; the message says what to do."""


def pg_bin() -> Path:
    return Path(os.environ.get("PINGAN_PG_BIN", "/usr/lib/postgresql/15/bin"))


@dataclass(frozen=True)
class ClusterInfo:
    port: int
    admin_password: str
    app_password: str
    service_password: str = ""  # clusters made before the service role get one on `db up`

    def url(self, *, admin: bool = False, service: bool = False, database: str = APP_DB) -> str:
        if admin:
            user, pw = ADMIN_ROLE, self.admin_password
        elif service:
            user, pw = SERVICE_ROLE, self.service_password
        else:
            user, pw = APP_ROLE, self.app_password
        return f"postgresql://{user}:{pw}@127.0.0.1:{self.port}/{database}"


class Cluster:
    """The private cluster below ``data_dir``."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.info_file = self.data_dir / "cluster.json"
        self.requested_port = port
        home = self.data_dir
        if os.geteuid() == 0 and not _others_can_traverse(self.data_dir.parent):
            # The postgres user cannot reach a checkout under, say, /root (mode 0700): keep the
            # cluster files where it can, one folder per data dir, and say so.
            digest = hashlib.sha1(str(self.data_dir).encode()).hexdigest()[:12]  # noqa: S324
            home = Path("/var/lib/pingan-clusters") / digest
        self.pgdata = home / "pg"
        self.rundir = home / "run"

    # -- running commands as the cluster's owner --------------------------------------------
    def _owner(self) -> str | None:
        """The system user that owns the cluster: 'postgres' when we are root, else us."""
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise ClusterError(
                "running as root, and PostgreSQL refuses to run as root; no 'postgres' system "
                "user exists to own the cluster. Install postgresql-15 (make system-deps), run as "
                "an ordinary user, or set PINGAN_DATABASE_URL."
            ) from None
        return "postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(pg_bin() / args[0]), *args[1:]]
        owner = self._owner()
        if owner:
            cmd = ["runuser", "-u", owner, "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise ClusterError(f"{args[0]} failed:\n{proc.stdout}{proc.stderr}")
        return proc

    def _chown(self, path: Path) -> None:
        owner = self._owner()
        if owner:
            shutil.chown(path, user=owner, group=owner)

    # -- state --------------------------------------------------------------------------------
    def info(self) -> ClusterInfo:
        if not self.info_file.exists():
            raise ClusterError(
                f"no private database cluster at {self.pgdata}; run `pingan db up` "
                "(or `make db`), or set PINGAN_DATABASE_URL"
            )
        return ClusterInfo(**json.loads(self.info_file.read_text()))

    def initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists() and self.info_file.exists()

    def running(self) -> bool:
        if not (self.pgdata / "postmaster.pid").exists():
            return False
        return self._run("pg_ctl", "status", "-D", str(self.pgdata), check=False).returncode == 0

    # -- lifecycle ----------------------------------------------------------------------------
    def ensure(self) -> ClusterInfo:
        """Initialise (first time only), start (if stopped) and bootstrap; idempotent."""
        if not (pg_bin() / "initdb").exists():
            raise ClusterError(
                f"PostgreSQL 15 binaries not found in {pg_bin()}. Run `make system-deps` "
                "(installs postgresql-15, PostGIS 3 and pgRouting with apt), or use "
                "`docker compose up`, or point PINGAN_DATABASE_URL at a PostGIS database."
            )
        if not self.initialised():
            self._initdb()
        if not self.running():
            self.start()
        info = self.info()
        if not info.service_password:
            info = ClusterInfo(info.port, info.admin_password, info.app_password, secrets.token_urlsafe(24))
            self._save(info)
        self._bootstrap(info)
        return info

    def _initdb(self) -> None:
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise ClusterError(
                f"{self.pgdata} exists but holds no usable cluster (cluster.json or PG_VERSION "
                "missing); move it away and run again"
            )
        port = self._free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o755)  # the cluster owner must traverse it
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        for d in (self.pgdata, self.rundir):
            d.mkdir(mode=0o700, exist_ok=True)
            self._chown(d)
        info = ClusterInfo(port, secrets.token_urlsafe(24), secrets.token_urlsafe(24),
                           secrets.token_urlsafe(24))
        with tempfile.NamedTemporaryFile("w", delete=False, prefix="pingan-pw-") as f:
            f.write(info.admin_password + "\n")
        pwfile = Path(f.name)
        try:
            self._chown(pwfile)
            self._run(
                "initdb", "-D", str(self.pgdata), "-U", ADMIN_ROLE, f"--pwfile={pwfile}",
                "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8", "--lc-collate=C",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        conf = self.pgdata / "postgresql.conf"
        extra = _CONF.format(port=port, rundir=self.rundir)
        self._run("pg_ctl", "--version")  # the owner can run binaries: fail early if not
        with conf.open("a") as fh:
            fh.write(extra)
        self._save(info)

    def _save(self, info: ClusterInfo) -> None:
        fd = os.open(self.info_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(info.__dict__, fh)

    def _free_port(self) -> int:
        """The requested port; without a request, the first free one from 54329 on (another
        checkout's cluster may hold 54329)."""
        if self.requested_port is not None:
            if _port_in_use(self.requested_port):
                raise ClusterError(f"port {self.requested_port} on 127.0.0.1 is taken (PINGAN_PG_PORT)")
            return self.requested_port
        for port in range(DEFAULT_PORT, DEFAULT_PORT + 100):
            if not _port_in_use(port):
                return port
        raise ClusterError(f"no free port in {DEFAULT_PORT}-{DEFAULT_PORT + 99}; set PINGAN_PG_PORT")

    def start(self) -> None:
        log = self.pgdata / "server.log"
        proc = self._run(
            "pg_ctl", "-D", str(self.pgdata), "-l", str(log), "-w", "-t", "60", "start",
            check=False,
        )
        if proc.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise ClusterError(f"the database did not start:\n{proc.stderr}{tail}")

    def stop(self) -> None:
        if self.running():
            self._run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop")

    def _bootstrap(self, info: ClusterInfo) -> None:
        """Create the roles, the database and the extensions when missing."""
        with psycopg.connect(info.url(admin=True, database="postgres"), autocommit=True) as conn:
            ensure_login_role(conn, APP_ROLE, info.app_password)
            ensure_login_role(conn, SERVICE_ROLE, info.service_password)
            ensure_access_roles(conn)
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (APP_DB,)).fetchone():
                create_database(conn, APP_DB, owner=APP_ROLE)
        with psycopg.connect(info.url(admin=True), autocommit=True) as conn:
            create_extensions(conn)


def ensure_login_role(admin_conn: psycopg.Connection, name: str, password: str) -> None:
    """Create login role ``name`` (no superuser, no CREATEDB/CREATEROLE, NOBYPASSRLS) if missing;
    an existing one gets ``password`` and those attributes again."""
    exists = admin_conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
    verb = "ALTER" if exists else "CREATE"
    admin_conn.execute(
        sql.SQL(
            "{} ROLE {} LOGIN PASSWORD {} NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS"
        ).format(sql.SQL(verb), sql.Identifier(name), sql.Literal(password))
    )


def ensure_access_roles(admin_conn: psycopg.Connection, service: str = SERVICE_ROLE) -> None:
    """The NOLOGIN access roles, each granted to the (NOINHERIT) service role."""
    admin_conn.execute(sql.SQL("ALTER ROLE {} NOINHERIT").format(sql.Identifier(service)))
    for role in ACCESS_ROLES:
        if not admin_conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
            admin_conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN NOBYPASSRLS").format(sql.Identifier(role)))
        admin_conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(service)))


def create_database(admin_conn: psycopg.Connection, name: str, *, owner: str) -> None:
    """CREATE DATABASE ``name`` owned by ``owner`` (UTF-8, from template0), with collation C.

    Collation C compares text as bytes (memcmp, with abbreviated keys in sorts), where libc's
    ``C.UTF-8`` goes through ``strcoll`` for every comparison: the B-trees of the text keys
    (codes, ``(source, source_id)``) build and grow faster, a million-row load ~0.7 s faster.
    The order is the same: UTF-8's byte order is code point order, which is how glibc's
    ``C.UTF-8`` sorts. The character classes (``upper``, ``ILIKE``) stay the cluster's."""
    admin_conn.execute(
        sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8' LC_COLLATE 'C' TEMPLATE template0").format(
            sql.Identifier(name), sql.Identifier(owner)
        )
    )


def create_extensions(admin_conn: psycopg.Connection) -> list[str]:
    """Create the extensions the schema uses; pgRouting only where it is installed."""
    available = {
        r[0]
        for r in admin_conn.execute(
            "SELECT name FROM pg_available_extensions WHERE name = ANY(%s)", (list(EXTENSIONS),)
        )
    }
    if "postgis" not in available:
        raise ClusterError(
            "PostGIS is not installed in this PostgreSQL; run `make system-deps` "
            "(apt: postgresql-15-postgis-3)"
        )
    made = []
    for ext in EXTENSIONS:
        if ext in available:
            admin_conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(ext)))
            made.append(ext)
    return made


def _others_can_traverse(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in (path, *path.parents) if p.exists())


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
