"""`pingan etl load` end to end against the real PostGIS: readers, profiles, datums, rejects,
idempotence, updates with events, and all-or-nothing batches."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest
from sqlalchemy import text

from etl.demo.samples import hazards_export
from etl.pipeline import load_file
from gis.datum import wgs84_to_gcj02
from layers.db import make_engine
from layers.settings import DatabaseSettings


@pytest.fixture(scope="module")
def etl_engine(databases):
    """A database of its own (loads change it) with the demo district in it."""
    engine = make_engine(DatabaseSettings(database_url=databases.demo()))
    yield engine
    engine.dispose()


def hazards_sample(engine, n: int, where: str = "true") -> pd.DataFrame:
    """The first ``n`` demo hazards (``where``) with what :func:`export` needs."""
    with engine.connect() as conn:
        return pd.read_sql(text(
            "SELECT source_id, title, category, state, found_at, assigned_at, deadline, rectified_at, "
            "verified_at, closed_at, address, grid_code, ST_X(geom) AS x, ST_Y(geom) AS y "
            f"FROM pingan.hazards WHERE {where} ORDER BY id LIMIT {int(n)}"), conn)  # noqa: S608 - tests' own


@pytest.fixture(scope="module")
def sample(etl_engine) -> pd.DataFrame:
    """300 demo hazards as a town would export them (WGS84 coordinates, Chinese values)."""
    return hazards_sample(etl_engine, 300)


def export(df: pd.DataFrame, prefix: str, datum: str = "WGS84") -> pd.DataFrame:
    return hazards_export(df, prefix + df.source_id, datum)


def rows(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).all()


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig", "utf-8"])
def test_csv_encodings_and_gcj02(etl_engine, sample, tmp_path, encoding) -> None:
    path = tmp_path / f"hazards-{encoding}.csv"
    export(sample, f"E{encoding}-", datum="高德").to_csv(path, index=False, encoding=encoding)
    result = load_file(etl_engine, path, "hazards", source="test-enc")
    assert (result.status, result.loaded, result.rejected) == ("done", 300, 0), result
    digest = rows(etl_engine, "SELECT file_hash FROM pingan.etl_batches WHERE id = :b", b=result.batch_id)
    assert digest[0][0] == hashlib.sha256(path.read_bytes()).hexdigest()
    # GCJ-02 came back to the original point (< 1 cm) and into the same grid
    moved = rows(
        etl_engine,
        """
        SELECT count(*) FROM pingan.hazards n JOIN pingan.hazards o ON n.source_id = :p || o.source_id
        WHERE n.source = 'test-enc' AND o.source = 'demo'
          AND (ST_Distance(n.geom::geography, o.geom::geography) > 0.01 OR n.grid_code <> o.grid_code)
    """,
        p=f"E{encoding}-",
    )
    assert moved[0][0] == 0
    assert (
        rows(
            etl_engine,
            "SELECT count(DISTINCT src_datum) FROM pingan.hazards WHERE source_id LIKE :p",
            p=f"E{encoding}-%",
        )[0][0]
        == 1
    )


def test_same_file_twice_changes_nothing_and_a_change_updates_with_event(
    etl_engine, sample, tmp_path
) -> None:
    path = tmp_path / "h.csv"
    data = export(sample.head(50), "T-")
    data.to_csv(path, index=False)
    first = load_file(etl_engine, path, "hazards", source="test-twice")
    assert (first.loaded, first.updated, first.unchanged) == (50, 0, 0)
    snapshot = rows(
        etl_engine,
        "SELECT id, updated_at, batch_id FROM pingan.hazards WHERE source = 'test-twice' ORDER BY id",
    )
    second = load_file(etl_engine, path, "hazards", source="test-twice")
    assert (second.loaded, second.updated, second.unchanged, second.rejected) == (0, 0, 50, 0)
    assert (
        rows(
            etl_engine,
            "SELECT id, updated_at, batch_id FROM pingan.hazards WHERE source = 'test-twice' ORDER BY id",
        )
        == snapshot
    )

    data.loc[0, "标题"] = "标题已修改"
    data.to_csv(path, index=False)
    third = load_file(etl_engine, path, "hazards", source="test-twice")
    assert (third.loaded, third.updated, third.unchanged) == (0, 1, 49)
    title, events = rows(
        etl_engine,
        """
        SELECT h.title, (SELECT count(*) FROM pingan.hazard_events e WHERE e.hazard_id = h.id)
        FROM pingan.hazards h WHERE source = 'test-twice' AND source_id = :s""",
        s=data.loc[0, "事件编号"],
    )[0]
    assert (title, events) == ("标题已修改", 1)  # the update; a new record needs no event


def test_bad_rows_become_rejects_with_reasons(etl_engine, sample, tmp_path) -> None:
    data = export(sample.head(20), "R-").astype(object)
    closed = data.index[data["状态"] == "已销号"][0]
    data.loc[1, "状态"] = "丢失"
    data.loc[2, "经度"] = "abc"
    data.loc[3, ["经度", "纬度"]] = [121.47, 31.23]  # Shanghai: not in the district
    data.loc[closed, "销号时间"] = ""  # closed without its time: the database's CHECK refuses
    data.loc[5, "发现时间"] = "去年夏天"
    data.loc[6, ["经度", "纬度"]] = [data.loc[6, "纬度"], data.loc[6, "经度"]]  # swapped: corrected
    path = tmp_path / "bad.csv"
    data.to_csv(path, index=False, encoding="gbk")
    result = load_file(etl_engine, path, "hazards", source="test-bad")
    assert result.status == "done", result.error
    assert result.rejected == 5 and result.loaded == 15
    assert any("swapped" in w for w in result.warnings)
    got = {
        r.row_number: (r.column_name, r.reason)
        for r in rows(
            etl_engine,
            "SELECT row_number, column_name, reason FROM pingan.etl_rejects WHERE batch_id = :b",
            b=result.batch_id,
        )
    }
    assert set(got) == {3, 4, 5, closed + 2, 7}  # file rows: header is row 1
    assert got[3][0] == "状态" and "丢失" in got[3][1]
    assert got[4][0] == "经度" and "not a number" in got[4][1]
    assert "outside the district" in got[5][1]
    assert "状态与时间不符" in got[closed + 2][1]
    assert got[7][0] == "发现时间"
    batch = rows(
        etl_engine,
        "SELECT n_read, n_loaded, n_rejected, status FROM pingan.etl_batches WHERE id = :b",
        b=result.batch_id,
    )[0]
    assert tuple(batch) == (20, 15, 5, "done")


def test_xlsx_and_baidu(etl_engine, sample, tmp_path) -> None:
    path = tmp_path / "h.xlsx"
    export(sample.head(30), "X-", datum="百度").to_excel(path, index=False)
    result = load_file(etl_engine, path, "hazards", source="test-xlsx")
    assert (result.status, result.loaded, result.rejected) == ("done", 30, 0)


def test_geojson_points(etl_engine, sample, tmp_path) -> None:
    import geopandas as gpd

    data = export(sample.head(25), "G-").drop(columns=["经度", "纬度", "坐标系"])
    gdf = gpd.GeoDataFrame(data, geometry=gpd.points_from_xy(sample.head(25).x, sample.head(25).y), crs=4326)
    path = tmp_path / "h.geojson"
    gdf.to_file(path, driver="GeoJSON")
    result = load_file(etl_engine, path, "hazards", source="test-geojson")
    assert (result.status, result.loaded, result.rejected) == ("done", 25, 0), result
    # placed by their geometry (WGS84 -> CGCS2000: the same numbers), not by their 地址
    got = rows(etl_engine, "SELECT source_id, loc_method, ST_X(geom), ST_Y(geom) FROM pingan.hazards "
                           "WHERE source = 'test-geojson' ORDER BY source_id")
    want = sorted(zip(data["事件编号"], sample.head(25).x, sample.head(25).y, strict=True))
    assert [r[1] for r in got] == ["coordinates"] * 25
    assert [r[0] for r in got] == [w[0] for w in want]
    assert max(abs(r[2] - w[1]) + abs(r[3] - w[2]) for r, w in zip(got, want, strict=True)) < 1e-9


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\x00\x01\x02garbage\xff\xfe" * 100, "neither UTF-8 nor GBK"),
        ("编号,名字\n1,张三\n".encode(), "match no profile"),
    ],
)
def test_unreadable_files_fail_cleanly(etl_engine, tmp_path, content, message) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    before = rows(etl_engine, "SELECT count(*) FROM pingan.hazards")[0][0]
    result = load_file(etl_engine, path, "hazards", source="test-garbage")
    assert result.status == "failed" and message in result.error
    assert rows(etl_engine, "SELECT count(*) FROM pingan.hazards")[0][0] == before
    # the file's SHA-256 (hashed in a thread while the file is read) is recorded on a failed batch too
    batch = rows(etl_engine, "SELECT status, file_hash FROM pingan.etl_batches WHERE id = :b",
                 b=result.batch_id)
    assert batch[0] == ("failed", hashlib.sha256(content).hexdigest())


def test_a_file_that_is_not_there_is_a_failed_batch(etl_engine, tmp_path) -> None:
    """What the watch folder or the API may hand over after the file went: a failed batch with
    the reason, no hash, and no exception."""
    result = load_file(etl_engine, tmp_path / "gone.csv", "hazards", source="test-gone")
    assert result.status == "failed" and "no such file" in result.error
    batch = rows(etl_engine, "SELECT status, file_hash FROM pingan.etl_batches WHERE id = :b",
                 b=result.batch_id)
    assert batch[0] == ("failed", None)


def test_truncated_xlsx(etl_engine, sample, tmp_path) -> None:
    good = tmp_path / "g.xlsx"
    export(sample.head(5), "Z-").to_excel(good, index=False)
    bad = tmp_path / "t.xlsx"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    result = load_file(etl_engine, bad, "hazards", source="test-trunc")
    assert result.status == "failed" and "XLSX" in result.error


@pytest.mark.parametrize("way", ["direct", "staged"])
def test_sigkill_mid_batch_then_rerun_loads_exactly_once(etl_engine, tmp_path, way) -> None:
    """The loader is parked in the middle of its batch (rows of the first chunks written, in
    the batch's transaction) and killed there; the way: new rows copied straight into the
    table, or staged and upserted."""
    import os
    import signal
    import subprocess
    import sys
    import time

    with etl_engine.connect() as conn:
        df = pd.read_sql(
            text(
                "SELECT source_id, title, category, state, found_at, assigned_at, deadline, rectified_at, "
                "verified_at, closed_at, address, grid_code, ST_X(geom) AS x, ST_Y(geom) AS y "
                "FROM pingan.hazards WHERE source = 'demo' ORDER BY id LIMIT 20000"
            ),
            conn,
        )
    path = tmp_path / "big.csv"
    source = f"test-kill-{way}"
    export(df, f"K{way}-").to_csv(path, index=False, encoding="gbk")
    url = etl_engine.url.render_as_string(hide_password=False)
    script = (
        "import sys, time; from pathlib import Path\n"
        "from etl import direct, pipeline, upsert\nfrom layers.db import make_engine\n"
        "from layers.settings import DatabaseSettings\n"
        # set on the modules that read them; getattr first: a name that moved fails here
        "def patch(module, name, value):\n"
        "    getattr(module, name)\n"
        "    setattr(module, name, value)\n"
        "patch(upsert, 'UPSERT_CHUNK', 2000)\n"
        + ("patch(direct, 'ok', lambda target: False)\n" if way == "staged" else "")
        + "def progress(stage, done=None, total=None):\n"
        "    print(stage, done, total, flush=True)\n"
        "    if stage == 'loading' and done and done < total:\n"
        "        time.sleep(600)  # parked in the middle of the batch, to be killed\n"
        f"e = make_engine(DatabaseSettings(database_url={url!r}))\n"
        f"r = pipeline.load_file(e, Path({str(path)!r}), 'hazards', source={source!r}, progress=progress)\n"
        "print('result', r.status, r.loaded, flush=True)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    for line in child.stdout:
        words = line.split()
        if words[0] == "loading" and words[1] != "0":
            break
    else:
        raise AssertionError("the loader finished without stopping in the middle")
    assert words[1:] == ["2000", "20000"], line
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    def state():
        return rows(
            etl_engine,
            """SELECT (SELECT count(*) FROM pingan.hazards WHERE source = :s),
            (SELECT count(*) FROM pingan.etl_batches WHERE source = :s)""",
            s=source,
        )[0]

    deadline = time.monotonic() + 30  # the server notices the dead client and rolls back
    while state() != (0, 0) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert state() == (0, 0)

    result = load_file(etl_engine, path, "hazards", source=source)
    assert (result.status, result.loaded, result.rejected) == ("done", 20000, 0)
    assert state() == (20000, 1)
    dupes = rows(
        etl_engine,
        "SELECT count(*) - count(DISTINCT source_id) FROM pingan.hazards WHERE source = :s",
        s=source,
    )
    assert dupes[0][0] == 0


def test_projected_shapefile_of_key_sites(etl_engine, tmp_path) -> None:
    """A zipped, GBK, CGCS2000 Gauss-Krüger (EPSG:4549) shapefile of key sites."""
    import zipfile

    import geopandas as gpd

    with etl_engine.connect() as conn:
        df = pd.read_sql(
            text("SELECT code, name, ST_X(geom) x, ST_Y(geom) y FROM pingan.key_sites ORDER BY id LIMIT 10"),
            conn,
        )
    gdf = gpd.GeoDataFrame(
        {"场所编号": "S-" + df.code, "场所名称": df.name, "场所类别": "学校"},
        geometry=gpd.points_from_xy(df.x, df.y),
        crs=4490,
    ).to_crs(4549)
    shp = tmp_path / "s" / "sites.shp"
    shp.parent.mkdir()
    gdf.to_file(shp, encoding="GBK")
    z = tmp_path / "sites.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in shp.parent.iterdir():
            zf.write(f, f.name)
    result = load_file(etl_engine, z, "key_sites", source="test-shp")
    assert (result.status, result.loaded, result.rejected) == ("done", 10, 0), result
    far = rows(
        etl_engine,
        """SELECT count(*) FROM pingan.key_sites n JOIN pingan.key_sites o ON n.code = 'S-' || o.code
        WHERE n.source = 'test-shp' AND ST_Distance(n.geom::geography, o.geom::geography) > 0.01""",
    )
    assert far[0][0] == 0
    assert (
        rows(etl_engine, "SELECT DISTINCT src_datum FROM pingan.key_sites WHERE source = 'test-shp'")[0][0]
        == "epsg:4549"
    )


def test_custom_profile(etl_engine, sample, tmp_path) -> None:
    from etl.profile import load_profile

    profile = tmp_path / "p.toml"
    profile.write_text(
        """
name = "jingshan-weird"
layer = "hazards"
datum = "gcj02"
[columns.source_id]
aliases = ["流水号"]
required = true
[columns.title]
aliases = ["事由"]
required = true
[columns.state]
aliases = ["进度"]
type = "enum"
required = true
values = { "A" = "found", "Z" = "closed" }
[columns.found_at]
aliases = ["日期"]
type = "datetime"
required = true
formats = ["%d/%m/%Y %H:%M"]
[columns.lon]
aliases = ["X坐标"]
type = "number"
[columns.lat]
aliases = ["Y坐标"]
type = "number"
""",
        encoding="utf-8",
    )
    s = sample.head(5)
    x, y = wgs84_to_gcj02(s.x.to_numpy(), s.y.to_numpy())
    data = pd.DataFrame(
        {
            "流水号": "C-" + s.source_id,
            "事由": s.title,
            "进度": "A",
            "日期": s.found_at.dt.tz_convert("Asia/Shanghai").dt.strftime("%d/%m/%Y %H:%M"),
            "X坐标": x,
            "Y坐标": y,
        }
    )
    path = tmp_path / "weird.csv"
    data.to_csv(path, index=False)
    result = load_file(
        etl_engine, path, "hazards", profile=load_profile(path.with_name("p.toml")), source="test-custom"
    )
    assert (result.status, result.loaded, result.rejected) == ("done", 5, 0), result
    found = rows(etl_engine, "SELECT min(found_at) FROM pingan.hazards WHERE source = 'test-custom'")[0][0]
    assert found == s.found_at.min().floor("min")


def test_cli_load_and_rejects(etl_engine, sample, tmp_path) -> None:
    import os
    import subprocess
    import sys

    data = export(sample.head(8), "CLI-").astype(object)
    data.loc[2, "状态"] = "不存在的状态"
    path = tmp_path / "cli.csv"
    data.to_csv(path, index=False, encoding="gbk")
    env = os.environ | {"PINGAN_DATABASE_URL": etl_engine.url.render_as_string(hide_password=False)}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "etl",
            "load",
            str(path),
            "--layer",
            "hazards",
            "--source",
            "test-cli",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "read 8, loaded 7, updated 0, unchanged 0, rejected 1" in out.stdout
    assert "rejected       1  状态: … is not one of 发现, 已发现" in out.stdout  # the rule, not the value
    batch = out.stdout.split("batch ")[1].split()[0]
    data.loc[3, "标题"] = "改过的标题"
    data.to_csv(path, index=False, encoding="gbk")
    again = subprocess.run([sys.executable, "-m", "cli.main", "etl", "load", str(path), "--layer", "hazards",
                            "--source", "test-cli"], capture_output=True, text=True, env=env, check=False)
    assert "read 8, loaded 0, updated 1, unchanged 6, rejected 1" in again.stdout, again.stdout + again.stderr
    listed = subprocess.run([sys.executable, "-m", "cli.main", "etl", "batches"], capture_output=True,
                            text=True, env=env, check=False).stdout.splitlines()
    line = next(x.split() for x in listed if x.split()[:1] == [batch])
    assert line[1:4] == ["test-cli", "hazards", "done"] and line[-5:-1] == ["7", "0", "0", "1"]
    # timings: from the start of reading, and each stage's seconds as the summary printed them
    (took, span, stages), = rows(etl_engine, "SELECT (seconds->>'total')::float, extract(epoch FROM "
                                 "finished_at - started_at), seconds FROM pingan.etl_batches WHERE id = :b",
                                 b=int(batch))
    assert float(line[-1]) == round(took, 1) and 0 < took <= span
    assert {"read", "map", "locate", "load", "total"} <= set(stages)
    assert f"read {stages['read']:.1f} s" in out.stdout
    rej = subprocess.run(
        [sys.executable, "-m", "cli.main", "etl", "rejects", batch],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert "不存在的状态" in rej.stdout and "4" in rej.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "cli.main", "etl", "load", str(path), "--layer", "nope"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert bad.returncode == 2 and "unknown layer" in bad.stderr and "Traceback" not in bad.stderr


def test_the_batch_seconds_include_the_commit(etl_engine, sample, tmp_path, monkeypatch) -> None:
    """The commit (made to take 0.5 s here by a deferred trigger, as index builds deferred to it
    and the WAL flush make a large batch's commit take seconds) is in the batch's seconds, and
    finished_at is after it. When its seconds are recorded, the batch is already done and whole
    for everyone: a crash there costs only the commit's figure."""
    from etl import pipeline

    path = tmp_path / "commit.csv"
    export(sample.head(20), "COMMIT-").to_csv(path, index=False, encoding="utf-8")
    with etl_engine.begin() as conn:
        conn.execute(text("CREATE TABLE pingan.test_commit_marks (at timestamptz NOT NULL)"))
        conn.execute(text(
            "CREATE FUNCTION pingan.test_slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "PERFORM pg_sleep(0.5); INSERT INTO pingan.test_commit_marks VALUES (clock_timestamp()); "
            "RETURN NULL; END $$"))
        conn.execute(text(
            "CREATE CONSTRAINT TRIGGER test_slow_commit AFTER UPDATE ON pingan.etl_batches "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (OLD.status = 'running' AND NEW.status = 'done' "
            "AND NEW.source = 'test-commit') EXECUTE FUNCTION pingan.test_slow_commit()"))
    seen, record = [], pipeline._record_commit

    def spy(engine, result):  # noqa: ANN001, ANN202
        seen.append(rows(etl_engine, "SELECT status, n_loaded, seconds FROM pingan.etl_batches WHERE id = :b",
                         b=result.batch_id)[0])
        record(engine, result)

    monkeypatch.setattr(pipeline, "_record_commit", spy)
    try:
        result = load_file(etl_engine, path, "hazards", source="test-commit")
        (committed,), = rows(etl_engine, "SELECT max(at) FROM pingan.test_commit_marks")
    finally:
        with etl_engine.begin() as conn:
            conn.execute(text("DROP TRIGGER test_slow_commit ON pingan.etl_batches"))
            conn.execute(text("DROP FUNCTION pingan.test_slow_commit()"))
            conn.execute(text("DROP TABLE pingan.test_commit_marks"))
    assert (result.status, result.loaded) == ("done", 20), result
    (status, loaded, before), = seen  # seen from another connection, between the commit and the update
    assert (status, loaded) == ("done", 20) and "commit" not in before
    (seconds, finished), = rows(etl_engine, "SELECT seconds, finished_at FROM pingan.etl_batches "
                                "WHERE id = :b", b=result.batch_id)
    assert seconds["commit"] >= 0.5 and seconds["total"] >= before["total"] + 0.5
    assert seconds == {k: round(v, 3) for k, v in result.seconds.items()}
    assert committed is not None and finished > committed  # the mark was written at commit, after the sleep


def test_address_only_rows_are_geocoded(etl_engine, sample, tmp_path) -> None:
    data = export(sample.head(30), "A-").astype(object)
    data.loc[:19, ["经度", "纬度", "坐标系"]] = None  # 20 rows with only an address
    data.loc[0, "地址"] = "浙江省杭州市西湖区文三路1号"  # elsewhere: a reject with the reason
    path = tmp_path / "addr.csv"
    data.to_csv(path, index=False, encoding="gbk")
    result = load_file(etl_engine, path, "hazards", source="test-addr")
    assert (result.status, result.loaded, result.rejected) == ("done", 29, 1), result
    got = rows(
        etl_engine,
        """SELECT count(*) FILTER (WHERE n.loc_method = 'geocoded'),
                  count(*) FILTER (WHERE n.loc_method = 'geocoded' AND n.village_code = o.village_code)
           FROM pingan.hazards n JOIN pingan.hazards o ON n.source_id = 'A-' || o.source_id
           WHERE n.source = 'test-addr' AND o.source = 'demo'""",
    )[0]
    assert tuple(got) == (19, 19)  # placed in the village the address names
    reason = rows(etl_engine, "SELECT reason FROM pingan.etl_rejects WHERE batch_id = :b", b=result.batch_id)[
        0
    ][0]
    assert "杭州市" in reason


def test_standard_addresses_make_door_level_geocoding(etl_engine, sample, tmp_path) -> None:
    pts = sample.iloc[100:110]
    std = pd.DataFrame(
        {
            "标准地址编码": "SA-" + pts.source_id,
            "标准地址": pts.address,
            "经度": pts.x,
            "纬度": pts.y,
            "坐标系": "CGCS2000",
        }
    )
    std_path = tmp_path / "std.csv"
    std.to_csv(std_path, index=False)
    loaded = load_file(etl_engine, std_path, "address_points", source="test-std")
    assert (loaded.status, loaded.loaded, loaded.rejected) == ("done", 10, 0), loaded
    data = export(pts, "D-").astype(object)
    data[["经度", "纬度", "坐标系"]] = None
    path = tmp_path / "door.csv"
    data.to_csv(path, index=False, encoding="gbk")
    result = load_file(etl_engine, path, "hazards", source="test-door")
    assert (result.loaded, result.rejected) == (10, 0), result
    levels = rows(
        etl_engine, "SELECT geocode_level, count(*) FROM pingan.hazards WHERE source = 'test-door' GROUP BY 1"
    )
    assert dict(levels) == {"door": 10}


def test_an_update_that_moves_records_to_another_town_is_told(etl_engine, sample, tmp_path) -> None:
    """Two towns' exports loaded with the same --source share one key space: the second
    town's rows with the first's 编号 update those records. It may be a correction, so it is
    loaded, but the summary says how many records moved 镇街 and what to do if that was wrong."""
    towns = sample.assign(town=sample.grid_code.str.slice(0, 9))
    first, other = towns.town.unique()[:2]
    a = towns[towns.town == first].head(5).reset_index(drop=True)
    b = towns[towns.town == other].head(4).reset_index(drop=True).assign(source_id=a.source_id[:4])
    b = pd.concat([b, a.tail(1).assign(title="更正的标题")], ignore_index=True)  # a correction, same town
    for name, part in (("a.csv", a), ("b.csv", b)):
        export(part, "MV-").to_csv(tmp_path / name, index=False, encoding="gbk")
    r = load_file(etl_engine, tmp_path / "a.csv", "hazards", source="test-moved")
    assert (r.loaded, r.warnings) == (5, [])
    r = load_file(etl_engine, tmp_path / "b.csv", "hazards", source="test-moved")
    assert (r.loaded, r.updated) == (0, 5)
    moved = [w for w in r.warnings if w.startswith("4 records moved to another 镇街 on update")]
    assert len(moved) == 1 and "--source" in moved[0]
    again = load_file(etl_engine, tmp_path / "b.csv", "hazards", source="test-moved")
    assert (again.unchanged, [w for w in again.warnings if "moved" in w]) == (5, [])


def test_english_headers_and_values_load_without_a_profile(etl_engine, sample, tmp_path) -> None:
    """An export from an English system: its headers and its stored values (the layer's own
    codes) need no profile either."""
    part = sample.head(6).reset_index(drop=True)

    def local(s: pd.Series) -> pd.Series:  # the district's wall-clock time, as exports write it
        return s.dt.tz_convert("Asia/Shanghai").dt.strftime("%Y-%m-%d %H:%M:%S")

    english = pd.DataFrame({
        "ID": "EN-" + part.source_id, "Title": part.title, "Category": part.category, "Status": part.state,
        "Reported_At": local(part.found_at), "Assigned_At": local(part.assigned_at),
        "Deadline": local(part.deadline), "Rectified_At": local(part.rectified_at),
        "Verified_At": local(part.verified_at), "Closed_At": local(part.closed_at),
        "Longitude": part.x, "Latitude": part.y, "CRS": "WGS84",
    })
    path = tmp_path / "english.csv"
    english.to_csv(path, index=False)
    r = load_file(etl_engine, path, "hazards", source="test-english")
    assert (r.status, r.loaded, r.rejected) == ("done", 6, 0), (r.error, r.reasons)
    got = rows(etl_engine, "SELECT source_id, category, state, found_at FROM pingan.hazards "
                           "WHERE source = 'test-english' ORDER BY source_id")
    want = sorted(zip(english.ID, part.category, part.state, part.found_at, strict=True))
    assert [g[:3] for g in got] == [w[:3] for w in want]
    assert [g[3] for g in got] == [w[3] for w in want]


def test_a_workbook_with_a_notes_sheet_first_loads_its_data_sheet(etl_engine, sample, tmp_path) -> None:
    """说明 first, the records on the second sheet: the sheet the profile matches is read and
    the summary says so; ``sheet=`` reads the named one, and a wrong name lists the sheets."""
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path) as book:
        notes = pd.DataFrame({"填表说明": ["1. 每行一条隐患", "2. 时间按 年-月-日 填写"]})
        notes.to_excel(book, sheet_name="说明", index=False)
        export(sample.head(5), "WB-").to_excel(book, sheet_name="隐患清单", index=False)
        export(sample.iloc[5:8], "WB3-").to_excel(book, sheet_name="补录", index=False)
    r = load_file(etl_engine, path, "hazards", source="test-book")
    assert (r.status, r.loaded) == ("done", 5), r.error
    assert any("the first sheet, '说明', matches no profile" in w for w in r.warnings)
    assert any("sheet '隐患清单' read; the workbook has 2 more (说明, 补录)" in w for w in r.warnings)
    r = load_file(etl_engine, path, "hazards", source="test-book", sheet="补录")
    assert (r.status, r.loaded) == ("done", 3), r.error
    r = load_file(etl_engine, path, "hazards", source="test-book", sheet="没有")
    assert r.status == "failed" and "no sheet '没有'; sheets: 说明, 隐患清单, 补录" in r.error
    r = load_file(etl_engine, path, "hazards", source="test-book", sheet="说明")
    assert r.status == "failed" and "match no profile" in r.error  # named: no other sheet is tried
