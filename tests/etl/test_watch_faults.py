"""The drop folder keeps going: a database it cannot reach leaves the files for the next sweep;
a file that breaks the loader is filed as failed; a Shapefile's parts move together."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl import watch as watching
from etl.pipeline import BatchResult
from layers.db import make_engine
from layers.settings import DatabaseSettings


def _drop(tmp_path: Path, names: list[str]) -> Path:
    root = tmp_path / "drop"
    (root / "hazards").mkdir(parents=True)
    for name in names:
        (root / "hazards" / name).write_bytes(b"x")
    return root


def test_a_database_out_of_reach_leaves_the_files_for_the_next_sweep(tmp_path: Path) -> None:
    root = tmp_path / "drop"
    (root / "hazards").mkdir(parents=True)
    csv = root / "hazards" / "jingshan_20250301.csv"
    csv.write_text("事件编号,标题,类别,状态,发现时间,经度,纬度\nH1,a,火灾,已发现,2025-03-01,120.6,28.0\n",
                   encoding="utf-8")
    nowhere = make_engine(DatabaseSettings(database_url="postgresql://u:p@127.0.0.1:9/none"))
    seen: list[tuple[str, str, str]] = []
    try:
        handled = watching.watch(nowhere, root, once=True, settle_seconds=0.01,
                                 report=lambda p, r: seen.append((p.name, r.status, r.error or "")))
    finally:
        nowhere.dispose()
    assert handled == 0
    assert [(name, status) for name, status, _ in seen] == [("jingshan_20250301.csv", "waiting")]
    assert "next sweep" in seen[0][2]
    assert csv.exists()  # not filed: the next sweep loads it
    assert not (root / "hazards" / "failed").exists()


def test_a_file_that_breaks_the_loader_is_filed_and_the_watch_goes_on(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    root = _drop(tmp_path, ["a_1.csv", "b_2.csv"])

    def load(engine, path, layer, **kw):  # noqa: ANN001, ANN202
        if path.name == "a_1.csv":
            raise RuntimeError("a bug the file found")
        return BatchResult(7, "done", read=1, loaded=1)

    monkeypatch.setattr(watching, "load_file", load)
    seen = []
    assert watching.watch(None, root, once=True, settle_seconds=0.01,
                          report=lambda p, r: seen.append((p.name, r.status))) == 2
    assert sorted(seen) == [("a_1.csv", "failed"), ("b_2.csv", "done")]
    log = (root / "hazards" / "failed" / "a_1.csv.log").read_text(encoding="utf-8")
    assert "RuntimeError: a bug the file found" in log
    assert (root / "hazards" / "done" / "b_2.csv").exists()


def test_a_shapefile_moves_with_its_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = ["ouhai_1.shp", "ouhai_1.dbf", "ouhai_1.shx", "ouhai_1.prj", "ouhai_1.cpg", "ouhai_1.shp.xml"]
    root = _drop(tmp_path, [*parts, "other.csv", "ouhai_10.dbf"])  # another's part stays
    loaded = []
    monkeypatch.setattr(watching, "load_file",
                        lambda engine, path, layer, **kw: loaded.append(path.name) or BatchResult(1, "done"))
    assert watching.watch(None, root, once=True, settle_seconds=0.01) == 2
    assert sorted(loaded) == ["other.csv", "ouhai_1.shp"]  # the .dbf and .shx are parts, not files
    done = root / "hazards" / "done"
    moved = sorted(p.name for p in done.iterdir() if not p.name.endswith(".log"))
    assert moved == sorted([*parts, "other.csv"])
    assert sorted(p.name for p in (root / "hazards").iterdir()) == ["done", "ouhai_10.dbf"]
    # the same Shapefile again: all its parts under one new name
    for name in parts:
        (root / "hazards" / name).write_bytes(b"y")
    assert watching.watch(None, root, once=True, settle_seconds=0.01) == 1
    assert sorted(p.name for p in done.iterdir() if p.name.startswith("ouhai_1.1.")) == sorted(
        [name.replace("ouhai_1.", "ouhai_1.1.") for name in parts] + ["ouhai_1.1.shp.log"])
