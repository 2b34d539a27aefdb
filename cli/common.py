"""What the command groups share: failing with a message, the database, the data key."""

from __future__ import annotations

import os

import typer

from cli import config
from cli.devdb import ClusterError


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def target(start: bool = False) -> config.DatabaseTarget:
    try:
        return config.database_target(start=start)
    except ClusterError as exc:
        raise fail(str(exc)) from None


def engine(start: bool = False):  # noqa: ANN201 - sqlalchemy Engine (imported lazily)
    """The owner's engine (migrations, ETL, administration); the caller disposes it."""
    from layers.db import make_engine
    from layers.settings import DatabaseSettings

    return make_engine(DatabaseSettings(database_url=target(start).url))


def keyring():  # noqa: ANN201 - layers.crypto.KeyRing
    """The data key: from PINGAN_DATA_KEY / PINGAN_DATA_KEY_FILE, or a development key file
    under the data dir, created once (0600) when neither is set."""
    from layers.crypto import DataKeyError, KeyRing
    from layers.settings import KeySettings

    settings = KeySettings()
    if not settings.data_key and not settings.data_key_file:
        path = config.data_dir() / "data.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(KeyRing.generate_text() + "\n")
            typer.echo(f"created a development data key at {path}")
        settings = KeySettings(data_key_file=path)
    try:
        return KeyRing.from_settings(settings)
    except DataKeyError as exc:
        raise fail(str(exc)) from None
