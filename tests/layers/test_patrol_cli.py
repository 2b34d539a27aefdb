"""`pingan patrol plan` end to end on the demo district and its street network (read only)."""

from __future__ import annotations

import csv
import io

import gpxpy
import numpy as np
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from cli.main import app
from gis.datum import gcj02_to_wgs84


@pytest.fixture
def pingan(demo_engine, monkeypatch):
    monkeypatch.setenv("PINGAN_DATABASE_URL", demo_engine.url.render_as_string(hide_password=False))
    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["patrol", "plan", *args])


@pytest.fixture(scope="module")
def town(demo_engine) -> str:
    with demo_engine.connect() as c:
        return c.execute(
            text(
                "SELECT town_code FROM pingan.key_sites WHERE risk_level = 'high' "
                "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
            )
        ).scalar_one()


def test_plan_exports_gpx_in_gcj02_from_the_stored_team_depots(pingan, town, tmp_path, demo_engine) -> None:
    out = tmp_path / "plan.gpx"
    r = pingan(
        "--teams",
        "2",
        "--town",
        town,
        "--max-stops",
        "8",
        "--time-limit",
        "0.5",
        "--mode",
        "bicycle",
        "--export",
        "gpx",
        "--datum",
        "gcj02",
        "--out",
        str(out),
        "--date",
        "2026-11-24",
    )
    assert r.exit_code == 0, r.output
    assert "of 8 stops visited by 2 team(s)" in r.output and f"written {out} (gcj02)" in r.output
    gpx = gpxpy.parse(out.read_text(encoding="utf-8"))
    assert len(gpx.routes) == 2 and len(gpx.waypoints) >= 1
    # waypoints are stops of the town, shifted to GCJ-02: shifted back, each lies on a stored stop
    lon = np.array([w.longitude for w in gpx.waypoints])
    lat = np.array([w.latitude for w in gpx.waypoints])
    wlon, wlat = gcj02_to_wgs84(lon, lat)
    with demo_engine.connect() as c:
        for x, y in zip(wlon, wlat, strict=True):
            d = c.execute(
                text(
                    "SELECT min(ST_Distance(geom::geography, "
                    "ST_SetSRID(ST_MakePoint(:x, :y), 4490)::geography)) "
                    "FROM (SELECT geom FROM pingan.key_sites UNION ALL SELECT geom FROM pingan.hazards "
                    "UNION ALL SELECT ST_PointOnSurface(geom) FROM pingan.villages) s"
                ),
                {"x": x, "y": y},
            ).scalar_one()
            assert d < 1.0


def test_given_stops_and_depot_csv(pingan, tmp_path, demo_engine) -> None:
    with demo_engine.connect() as c:
        pts = c.execute(
            text(
                "SELECT ST_X(geom), ST_Y(geom) FROM pingan.road_vertices "
                "WHERE network = 'demo' ORDER BY id LIMIT 4"
            )
        ).all()
    stops = tmp_path / "stops.csv"
    stops.write_text(
        "id,name,lon,lat,priority\n"
        + "".join(f"s{k},站{k},{x},{y},{k + 1}\n" for k, (x, y) in enumerate(pts[1:]))
        + "far,海上,121.9,27.0,1\n",
        encoding="utf-8",
    )
    out = tmp_path / "plan.csv"
    x0, y0 = pts[0]
    r = pingan(
        "--teams",
        "1",
        "--stops",
        str(stops),
        "--depot",
        f"{x0},{y0}",
        "--time-limit",
        "0.3",
        "--export",
        "csv",
        "--out",
        str(out),
    )
    assert r.exit_code == 0, r.output
    assert "3 of 4 stops visited" in r.output and "unsnapped: st-far" in r.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [row["kind"] for row in rows] == ["depot", "given", "given", "given", "depot"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shift", "25:00-02:00"], "not a time of day"),
        (["--mode", "horse"], "--mode 'horse'"),
        (["--export", "gpx"], "--out FILE"),
        (["--datum", "bd09"], "--datum 'bd09'"),
        (["--network", "nowhere", "--depot", "120.6,28.0"], "no road network 'nowhere'"),
        (["--depot", "east"], "expected LON,LAT"),
        (["--input-datum", "mars"], "--input-datum: unknown datum 'mars'"),
        (["--sources", "persons", "--depot", "120.6,28.0"], "unknown stop source(s) persons"),
    ],
)
def test_bad_input_is_a_message_not_a_traceback(pingan, args, message) -> None:
    r = pingan(*args)
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output


# -- hot spots, saved plans: `pingan patrol plan --hotspots --save`, `plans`, `export` ----------
@pytest.fixture(scope="module")
def hot_demo(demo_engine):
    """The demo district with hot cells (and three saved plans) from the layer tests' fixture."""
    from tests.layers.test_patrol_layer import saved_demo_plans

    with saved_demo_plans(demo_engine) as ids:
        yield ids


@pytest.fixture
def cli(demo_engine, monkeypatch):
    monkeypatch.setenv("PINGAN_DATABASE_URL", demo_engine.url.render_as_string(hide_password=False))
    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["patrol", *args])


def test_hotspots_saved_listed_and_exported(cli, hot_demo, demo_engine, tmp_path) -> None:
    town = hot_demo["towns"][0]
    r = cli("plan", "--teams", "1", "--town", town, "--sources", "key_sites", "--hotspots",
            "--hotspot-priority", "3=9,2=8", "--max-stops", "4", "--time-limit", "0.3", "--save",
            "--name", "cli hot", "--date", "2026-11-24")
    assert r.exit_code == 0, r.output
    plan_id = int(r.output.split("saved as plan ")[1].split()[0])
    try:
        with demo_engine.connect() as c:
            kinds = c.execute(text("SELECT kind, priority, status FROM pingan.patrol_stops"
                                   " WHERE plan_id = :p"), {"p": plan_id}).all()
            owner = c.execute(text("SELECT town_code FROM pingan.patrol_plans WHERE id = :p"),
                              {"p": plan_id}).scalar_one()
        # hot spots outrank every key site at these priorities: the 4 stops are hot cells
        assert {k for k, _, _ in kinds} == {"hotspot"} and {p for _, p, _ in kinds} <= {9.0, 8.0}
        assert owner == town and "hot-spot cells in the area within 200 m" in r.output
        listed = cli("plans", "--town", town)
        assert listed.exit_code == 0 and f"{plan_id:>6}  2026-11-24  {town}  cli hot: " in listed.output
        out = tmp_path / "p.kml"
        r = cli("export", str(plan_id), "--format", "kml", "--datum", "gcj02", "--out", str(out))
        assert r.exit_code == 0, r.output
        assert "datum: gcj02" in out.read_text(encoding="utf-8")
        assert cli("export", "999999999", "--out", str(out)).output.count("no saved plan 999999999") == 1
        bad = cli("export", str(plan_id), "--format", "shp", "--out", str(out))
        assert bad.exit_code == 2 and "--format 'shp'" in bad.output
    finally:
        with demo_engine.begin() as c:
            c.execute(text("DELETE FROM pingan.patrol_plans WHERE id = :p"), {"p": plan_id})


@pytest.mark.parametrize("spec", ["3=x", "4=1", "2=-1", "hot"])
def test_bad_hotspot_priority(cli, spec) -> None:
    r = cli("plan", "--hotspots", "--hotspot-priority", spec)
    assert r.exit_code == 2 and "--hotspot-priority" in r.output and "Traceback" not in r.output
