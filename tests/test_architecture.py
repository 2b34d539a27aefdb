"""The dependency direction of ARCHITECTURE.md, checked on the source.

    gis  <-- layers <-- tiles <-- api        etl --> layers, gis        cli --> anything
    nothing imports api or cli; etl never imports tiles (it bumps layer versions instead)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gis", "layers", "tiles", "etl", "api", "cli")
ALLOWED: dict[str, set[str]] = {
    "gis": set(),
    "layers": {"gis"},
    "tiles": {"layers", "gis"},
    "etl": {"layers", "gis"},
    "api": {"tiles", "layers", "gis"},
    "cli": {"api", "etl", "tiles", "layers", "gis"},
}
# Only api/ talks HTTP (ARCHITECTURE.md section 2).
WEB_FRAMEWORKS = {"fastapi", "starlette", "uvicorn"}
WEB_ALLOWED = {"api", "cli"}


def imported_roots(source: str) -> set[str]:
    """Top-level names of every absolute import in ``source``."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def violations(root: Path) -> list[str]:
    found = []
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            roots = imported_roots(path.read_text(encoding="utf-8"))
            for other in (roots & set(PACKAGES)) - ALLOWED[pkg] - {pkg}:
                found.append(f"{path.relative_to(root)} imports {other}")
            if pkg not in WEB_ALLOWED:
                for web in roots & WEB_FRAMEWORKS:
                    found.append(f"{path.relative_to(root)} imports {web}")
    return found


def test_dependency_direction() -> None:
    assert violations(ROOT) == []


def test_checker_catches_a_violation(tmp_path: Path) -> None:
    for pkg in PACKAGES:
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "gis" / "bad.py").write_text("from layers.db import make_engine\n")
    (tmp_path / "etl" / "worse.py").write_text("import tiles.cache\nimport fastapi\n")
    (tmp_path / "layers" / "fine.py").write_text("from gis import datum\nfrom . import x\n")
    assert sorted(violations(tmp_path)) == [
        "etl/worse.py imports fastapi",
        "etl/worse.py imports tiles",
        "gis/bad.py imports layers",
    ]


@pytest.mark.parametrize("pkg", PACKAGES)
def test_every_package_exists(pkg: str) -> None:
    assert (ROOT / pkg / "__init__.py").exists()
