"""`pingan etl load --layer persons`: ID numbers checked, name/ID/phone sealed with the data key,
one file per person (the blind index), grade history, and no clear personal data in rejects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from etl.demo import people
from etl.demo.samples import persons_export
from etl.persons import check_id_numbers, mask_id
from etl.pipeline import load_file
from tests.etl.conftest import TEST_KEY

N = 60


@pytest.fixture(scope="module")
def people_frame(areas_engine) -> pd.DataFrame:
    """N persons placed in N grids, 5 of them with an address only."""
    rng = np.random.default_rng(7)
    male = rng.random(N) < 0.6
    birth = np.datetime64("1960-01-01") + rng.integers(0, 40 * 365, N).astype("timedelta64[D]")
    with areas_engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT g.code, ST_X(p) AS x, ST_Y(p) AS y, t.name || v.name AS address FROM "
            "(SELECT code, village_code, ST_PointOnSurface(geom) AS p FROM pingan.grids) g "
            "JOIN pingan.villages v ON v.code = g.village_code JOIN pingan.towns t ON t.code = v.town_code "
            "ORDER BY md5(g.code) LIMIT :n"), {"n": N}).all()
    cats = [["family_discord"], ["career_failure", "mental_imbalance"], ["abnormal_behaviour"]]
    df = pd.DataFrame({
        "name": people.names(rng, male), "id_number": people.id_numbers(rng, birth, male),
        "phone": people.phones(rng, N), "categories": [cats[i % 3] for i in range(N)],
        "grade": np.array(["red", "yellow", "green"], dtype=object)[np.arange(N) % 3],
        "registered_at": pd.Timestamp("2025-03-01 09:00", tz="Asia/Shanghai")
        + pd.to_timedelta(np.arange(N), unit="D"),
        "address": [r.address + "12号" for r in rows],
        "x": [r.x for r in rows], "y": [r.y for r in rows],
        "male": male, "birth_year": birth.astype("datetime64[Y]").astype(int) + 1970,
    })
    df.loc[N - 5:, ["x", "y"]] = np.nan  # address only: geocoded
    return df


def write(df: pd.DataFrame, path, bad_ids: int = 0) -> None:
    out = persons_export(df)
    for i in range(bad_ids):  # a wrong check character
        v = out.loc[i, "公民身份号码"]
        out.loc[i, "公民身份号码"] = v[:17] + ("0" if v[17] != "0" else "1")
    out.to_csv(path, index=False, encoding="gbk")


def sealed(engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(text("SELECT * FROM pingan.persons ORDER BY id"), conn)


def test_id_numbers() -> None:
    ids, why = check_id_numbers(pd.Series(["11010519491231002X", "110105194912310021", "110105491231002",
                                           "11010519491331002X", "abc"]))
    assert list(why.isna()) == [True, False, True, False, False]
    assert ids[2] == "11010519491231002X"  # 15 digits upgraded with its check character
    assert "1101**********0021" in why[1] and "check character" in why[1]
    assert "birth date" in why[3]
    assert mask_id("330304199001011234") == "3303**********1234"


def test_load_seals_and_reloads_unchanged(areas_engine, people_frame, tmp_path) -> None:
    path = tmp_path / "persons.csv"
    write(people_frame, path, bad_ids=2)
    r = load_file(areas_engine, path, "persons", source="ouhai", keys=TEST_KEY)
    assert (r.status, r.loaded, r.rejected) == ("done", N - 2, 2), r
    db = sealed(areas_engine)
    assert len(db) == N - 2
    good = people_frame.iloc[2:].reset_index(drop=True)
    by_hash = {bytes(h): i for i, h in enumerate(db["id_number_hash"])}
    for p in good.itertuples():
        row = db.iloc[by_hash[TEST_KEY.blind_index(p.id_number)]]
        # ciphertext is not the clear text, and opens to it with the key
        for field, value in (("name", p.name), ("id_number", p.id_number), ("phone", p.phone)):
            blob = bytes(row[f"{field}_enc"])
            assert value.encode() not in blob
            assert TEST_KEY.decrypt(blob, context=field.encode()) == value
        assert (row.gender, row.birth_year) == ("M" if p.male else "F", p.birth_year)
        assert list(row.categories) == p.categories and row.grade == p.grade
    assert (db["loc_method"] == "geocoded").sum() == 5
    assert not db["source_id"].str.contains(r"\d{17}").any()  # the key is no clear ID number
    # the same file again: nothing changes, not even a ciphertext
    again = load_file(areas_engine, path, "persons", source="ouhai", keys=TEST_KEY)
    assert (again.loaded, again.updated, again.unchanged, again.rejected) == (0, 0, N - 2, 2)
    after = sealed(areas_engine)
    for col in ("name_enc", "id_number_enc", "phone_enc", "updated_at"):
        assert list(map(bytes, after[col])) == list(map(bytes, db[col])) if col != "updated_at" else (
            after[col].equals(db[col]))
    with areas_engine.connect() as conn:
        grades = conn.execute(text("SELECT count(*) FROM pingan.person_grades")).scalar_one()
    assert grades == N - 2  # one registration each


def test_changed_rows_update_and_grade_changes_are_recorded(areas_engine, people_frame, tmp_path) -> None:
    path = tmp_path / "persons.csv"
    write(people_frame, path)
    load_file(areas_engine, path, "persons", source="ouhai", keys=TEST_KEY)  # the two fixed IDs
    before = sealed(areas_engine)
    df = people_frame.copy()
    df.loc[10, "grade"] = "red" if df.loc[10, "grade"] != "red" else "green"
    df.loc[11, "phone"] = "13900000000"
    write(df, path)
    r = load_file(areas_engine, path, "persons", source="another-system", keys=TEST_KEY)
    assert (r.loaded, r.updated, r.unchanged) == (0, 2, N - 2), r
    after = sealed(areas_engine)
    assert len(after) == N  # one file per person, whichever system sent it
    h11 = TEST_KEY.blind_index(df.loc[11, "id_number"])
    row = after[after["id_number_hash"].map(bytes) == h11].iloc[0]
    assert TEST_KEY.decrypt(bytes(row.phone_enc), context=b"phone") == "13900000000"
    assert row.source == "ouhai"  # the first registration keeps its provenance
    same = after["id_number_hash"].map(bytes) != h11
    assert list(map(bytes, after.loc[same, "name_enc"])) == list(map(bytes, before.loc[same, "name_enc"]))
    with areas_engine.connect() as conn:
        g = conn.execute(text(
            "SELECT g.grade, g.previous_grade FROM pingan.person_grades g JOIN pingan.persons p "
            "ON p.id = g.person_id WHERE p.id_number_hash = :h AND g.previous_grade IS NOT NULL"),
            {"h": TEST_KEY.blind_index(df.loc[10, "id_number"])}).all()
    assert [(x.grade, x.previous_grade) for x in g] == [(df.loc[10, "grade"], people_frame.loc[10, "grade"])]


def test_rejects_and_errors_hold_no_clear_personal_data(areas_engine, people_frame, tmp_path) -> None:
    df = people_frame.head(6).copy()
    df.loc[2, ["x", "y"]] = [100.0, 30.0]  # in China, outside the district
    path = tmp_path / "bad.csv"
    out = persons_export(df)
    out.loc[0, "公民身份号码"] = out.loc[0, "公民身份号码"][:17] + "5"
    out.loc[3, "人员类别"] = "失业"
    out.loc[4, "登记时间"] = "昨天"
    pd.concat([out, out.iloc[[5]]]).to_csv(path, index=False, encoding="utf-8")  # row 5 twice
    r = load_file(areas_engine, path, "persons", source="leaks", keys=TEST_KEY)
    assert r.rejected == 5, r.reasons
    with areas_engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT reason, raw::text FROM pingan.etl_rejects WHERE batch_id = :b"), {"b": r.batch_id}).all()
    blob = " ".join(f"{x.reason} {x.raw}" for x in rows) + " " + " ".join(r.reasons) + " ".join(r.warnings)
    for v in [*df["name"], *df["id_number"], *df["phone"]]:
        assert v not in blob
    assert mask_id(out.loc[0, "公民身份号码"]) in blob
    for i in (2, 3, 4, 5):  # outside, bad category, bad date, twice: masked, not dropped
        assert df.loc[i, "name"][0] + "*" * (len(df.loc[i, "name"]) - 1) in blob
        assert mask_id(df.loc[i, "id_number"]) in blob


def test_persons_need_the_key(areas_engine, tmp_path) -> None:
    with pytest.raises(ValueError, match="data key"):
        load_file(areas_engine, tmp_path / "x.csv", "persons")


def test_cli_loads_persons_and_prints_no_personal_data(areas_engine, people_frame, tmp_path) -> None:
    import base64
    import os
    import subprocess
    import sys

    path = tmp_path / "cli_persons.csv"
    df = people_frame.head(5).copy()
    df["id_number"] = df["id_number"].str.slice(0, 17) + "0"  # mostly wrong check characters
    persons_export(df).to_csv(path, index=False, encoding="utf-8-sig")
    key = "k1:" + base64.b64encode(TEST_KEY.keys["k1"]).decode()
    env = os.environ | {"PINGAN_DATABASE_URL": areas_engine.url.render_as_string(hide_password=False),
                        "PINGAN_DATA_KEY": key}
    out = subprocess.run([sys.executable, "-m", "cli.main", "etl", "load", str(path), "--layer", "persons",
                          "--source", "cli"], capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 0, out.stderr
    assert "rejected" in out.stdout and "check character" in out.stdout
    assert out.stderr == ""  # not a terminal: no progress bar
    for v in [*df["name"], *df["id_number"], *df["phone"]]:
        assert v not in out.stdout + out.stderr
