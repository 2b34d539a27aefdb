"""The drop folder: files are loaded once, filed under done/ or failed/ with a log."""

from __future__ import annotations

from sqlalchemy import text

from etl.watch import source_of, watch
from tests.etl.test_pipeline import etl_engine, export, sample  # noqa: F401 - fixtures


def test_watch_once(etl_engine, sample, tmp_path) -> None:  # noqa: F811
    drop = tmp_path / "drop"
    (drop / "hazards").mkdir(parents=True)
    export(sample.head(12), "W-").to_csv(
        drop / "hazards" / "jingshan_20250301.csv", index=False, encoding="gbk"
    )
    (drop / "hazards" / "broken_20250301.xlsx").write_bytes(b"PK\x03\x04 not really")
    (drop / "hazards" / "notes.txt.bak").write_text("ignored")
    seen = []
    n = watch(
        etl_engine, drop, once=True, settle_seconds=0.05, report=lambda p, r: seen.append((p.name, r.status))
    )
    assert n == 2
    assert sorted(seen) == [("broken_20250301.xlsx", "failed"), ("jingshan_20250301.csv", "done")]
    assert (drop / "hazards" / "done" / "jingshan_20250301.csv").exists()
    log = (drop / "hazards" / "failed" / "broken_20250301.xlsx.log").read_text(encoding="utf-8")
    assert "failed" in log and "XLSX" in log
    assert (drop / "hazards" / "notes.txt.bak").exists()  # not a data file: left alone
    with etl_engine.connect() as conn:
        assert (
            conn.execute(text("SELECT count(*) FROM pingan.hazards WHERE source = 'jingshan'")).scalar_one()
            == 12
        )
    assert watch(etl_engine, drop, once=True, settle_seconds=0.05) == 0  # nothing left to do


def test_source_from_file_name() -> None:
    from pathlib import Path

    assert source_of(Path("jingshan_20250301.xlsx"), None) == "jingshan"
    assert source_of(Path("x.csv"), "ouhai") == "ouhai"
