"""The production files, checked by reading them (no Docker engine runs here)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_compose_services_and_secrets() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"db", "app"}
    assert services["app"]["build"] == "."
    assert services["app"]["depends_on"]["db"]["condition"] == "service_healthy"
    env = services["app"]["environment"]
    # no default secrets: each one is required with ${VAR:?...}
    for key in ("PINGAN_DATABASE_URL", "PINGAN_DATA_KEY"):
        assert ":?" in env[key], key
    assert ":?" in services["db"]["environment"]["POSTGRES_PASSWORD"]
    assert env["PINGAN_DATABASE_URL"].startswith("postgresql://pingan:")  # not the superuser
    assert services["app"]["ports"] == ["127.0.0.1:8000:8000"]


def test_db_image_is_pinned_postgis() -> None:
    dockerfile = (ROOT / compose_db_build() / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", dockerfile, re.M).group(1)
    assert re.fullmatch(r"postgis/postgis:15-3\.\d+", base), base


def compose_db_build() -> str:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["db"]["build"]


def test_dockerfile_copies_what_exists() -> None:
    text = (ROOT / "Dockerfile").read_text()
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.M):
        *sources, _dest = line.split()
        for src in sources:
            assert (ROOT / src).exists(), f"Dockerfile copies missing {src}"
    # every package of the distribution goes into the image
    for pkg in ("gis", "layers", "tiles", "etl", "api", "cli"):
        assert f"COPY {pkg} ./{pkg}" in text


def test_shell_scripts_parse() -> None:
    for script in ("docker/entrypoint.sh", "docker/db/initdb/20-pingan.sh", "scripts/system-deps.sh",
                   ".ci/run"):
        shell = "sh" if script.endswith("entrypoint.sh") else "bash"
        proc = subprocess.run([shell, "-n", str(ROOT / script)], capture_output=True, text=True,
                              check=False)
        assert proc.returncode == 0, f"{script}: {proc.stderr}"


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci/run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
