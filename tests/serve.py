"""The app served by uvicorn on 127.0.0.1, for the tests and benchmarks that drive it over HTTP
(GDAL, OWSLib, QGIS, schemathesis, Chromium): a free port, ``/healthz`` waited for, and the
process stopped by its PID at the end."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def uvicorn_app(
    service_url: str, env: Mapping[str, str | None] | None = None, *, timeout_s: float = 120
) -> Iterator[str]:
    """``api.asgi:app`` acting as the service role of ``service_url``; yields its base URL.
    ``env`` adds to this process's environment (a None value removes the variable)."""
    port = free_port()
    merged = {**os.environ, "PINGAN_SERVICE_DATABASE_URL": service_url, "PINGAN_ENVIRONMENT": "test",
              **(env or {})}
    full = {k: v for k, v in merged.items() if v is not None}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "api.asgi:app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, env=full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(proc, base + "/healthz", timeout_s)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def _wait(proc: subprocess.Popen, url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - our own loopback server
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"uvicorn did not answer /healthz within {timeout_s:.0f} s")
