"""Patrol exports: GPX 1.1 against its schema and through gpxpy, KML through lxml, every format
through GDAL (ogrinfo), and the GCJ-02 offset for Amap-based phones."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import gpxpy
import numpy as np
import pytest
from lxml import etree

from gis.datum import gcj02_to_wgs84
from gis.patrol import ExportError, Options, PlanGeometry, Stop, Team, export, solve

XSD = Path(__file__).resolve().parents[1] / "data" / "gpx.xsd"
CST = timezone(timedelta(hours=8))
# A depot and four stops in Lucheng, Wenzhou (CGCS2000 ~ WGS84), with a road detour as track.
COORDS = np.array(
    [
        [120.6500, 28.0100],
        [120.6530, 28.0100],
        [120.6560, 28.0120],
        [120.6540, 28.0150],
        [120.6490, 28.0130],
        [120.6470, 28.0080],
    ]
)
EARTH = 6_371_008.8


def metres(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lat = np.radians((a[..., 1] + b[..., 1]) / 2)
    dx = np.radians(b[..., 0] - a[..., 0]) * np.cos(lat) * EARTH
    dy = np.radians(b[..., 1] - a[..., 1]) * EARTH
    return np.hypot(dx, dy)


@pytest.fixture(scope="module")
def geo() -> PlanGeometry:
    d = metres(COORDS[:, None, :], COORDS[None, :, :]) * 1.3  # roads are longer than the crow flies
    stops = [
        Stop("ks-1", 1, 3, "学校 School", "key_site"),
        Stop("hz-2", 2, 2, "燃气 Gas <leak> & co", "hazard"),
        Stop("vl-3", 3, 1, "红 village", "village"),
        Stop("ks-4", 4, 2, "Market", "key_site"),
    ]
    # 50-minute shifts: one team cannot walk to all four stops (54 min with the visits)
    teams = [
        Team("t1", 0, 0, (72000.0, 75000.0), "foot", name="一队"),
        Team("t2", 5, 5, (72000.0, 75000.0), "foot", name="二队"),
    ]
    plan = solve(d, stops, teams, Options(service_s=300, time_limit_s=0.3))
    assert plan.visited == 4 and all(r.stops for r in plan.routes)
    tracks = {}
    for r in plan.routes:  # a track with bends between the visits, as a road route has
        pts = [COORDS[r.nodes[0]]]
        for a, b in zip(r.nodes, r.nodes[1:], strict=False):
            pts += [np.array([COORDS[b][0], COORDS[a][1]]), COORDS[b]]
        tracks[r.team.id] = np.array(pts)
    origin = datetime(2026, 11, 24, tzinfo=CST)
    return PlanGeometry(plan, COORDS, origin, tracks, title="夜巡 night patrol")


def write(tmp_path: Path, geo: PlanGeometry, fmt: str, datum: str = "wgs84") -> Path:
    path = tmp_path / f"plan-{datum}.{fmt}"
    path.write_text(export(geo, fmt, datum), encoding="utf-8")
    return path


def ogrinfo(path: Path, *args: str) -> str:
    if shutil.which("ogrinfo") is None:
        pytest.fail("ogrinfo (GDAL) is not installed")
    out = subprocess.run(
        ["ogrinfo", "-ro", "-al", *args, str(path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("datum", ["wgs84", "gcj02"])
def test_gpx_validates_against_the_gpx_11_schema(tmp_path, geo, datum) -> None:
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    doc = etree.parse(str(write(tmp_path, geo, "gpx", datum)))
    assert schema.validate(doc), schema.error_log


def test_schema_check_can_fail(tmp_path, geo) -> None:
    """The shipped XSD is strict: a GPX with <name> before <time> in a waypoint is refused."""
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    text = export(geo, "gpx").replace("<time>", "<cmt>x</cmt><time>", 1)
    assert not schema.validate(etree.fromstring(text.encode()))


def test_gpx_parses_back_with_gpxpy(geo) -> None:
    gpx = gpxpy.parse(export(geo, "gpx"))
    plan = geo.plan
    assert len(gpx.waypoints) == plan.visited
    assert [r.name for r in gpx.routes] == ["一队", "二队"]
    for rte, trk, route in zip(gpx.routes, gpx.tracks, plan.routes, strict=True):
        assert len(rte.points) == len(route.visits)
        got = np.array([[p.longitude, p.latitude] for p in rte.points])
        np.testing.assert_allclose(got, COORDS[route.nodes], atol=1e-7)
        assert rte.points[1].time == geo.when(route.visits[1].arrival_s)
        track = np.array([[p.longitude, p.latitude] for p in trk.segments[0].points])
        np.testing.assert_allclose(track, geo.tracks[route.team.id], atol=1e-7)
    names = {w.name for w in gpx.waypoints}
    assert "燃气 Gas <leak> & co" in names  # escaped on the way out, intact on the way back


def test_gpx_opens_in_gdal(tmp_path, geo) -> None:
    out = ogrinfo(write(tmp_path, geo, "gpx"), "-so")
    for layer in ("waypoints", "routes", "tracks", "route_points", "track_points"):
        assert f"Layer name: {layer}" in out
    assert "Feature Count: 4" in out.split("Layer name: waypoints")[1].split("Layer name:")[0]


def test_kml_parses_and_opens_in_gdal(tmp_path, geo) -> None:
    path = write(tmp_path, geo, "kml")
    doc = etree.parse(str(path))
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    assert len(doc.findall(".//k:Folder", ns)) == 2
    assert len(doc.findall(".//k:Placemark/k:Point", ns)) == 4
    assert len(doc.findall(".//k:Placemark/k:LineString", ns)) == 2
    out = ogrinfo(path)
    assert out.count("POINT") == 4 and out.count("LINESTRING") == 2


def test_geojson_opens_in_gdal(tmp_path, geo) -> None:
    path = write(tmp_path, geo, "geojson")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["datum"] == "wgs84" and len(doc["features"]) == 6
    out = ogrinfo(path, "-so")
    assert "Feature Count: 6" in out and "arrival" in out


def test_csv_opens_in_gdal_with_points(tmp_path, geo) -> None:
    path = write(tmp_path, geo, "csv")
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert len(rows) == sum(len(r.visits) for r in geo.plan.routes)
    assert [r["kind"] for r in rows if r["team"] == "t1"][0] == "depot"
    out = ogrinfo(
        path, "-oo", "X_POSSIBLE_NAMES=lon", "-oo", "Y_POSSIBLE_NAMES=lat", "-oo", "KEEP_GEOM_COLUMNS=NO"
    )
    assert out.count("POINT (") == len(rows)


def _points(text: str, fmt: str) -> np.ndarray:
    if fmt == "gpx":
        gpx = gpxpy.parse(text)
        return np.array(
            [[p.longitude, p.latitude] for t in gpx.tracks for p in t.segments[0].points]
            + [[w.longitude, w.latitude] for w in gpx.waypoints]
        )
    if fmt == "csv":
        return np.array([[float(r["lon"]), float(r["lat"])] for r in csv.DictReader(io.StringIO(text))])
    if fmt == "geojson":
        out = []
        for f in json.loads(text)["features"]:
            c = f["geometry"]["coordinates"]
            out += c if f["geometry"]["type"] == "LineString" else [c]
        return np.array(out)
    root = etree.fromstring(text.encode())
    coords = " ".join(e.text for e in root.iter("{http://www.opengis.net/kml/2.2}coordinates"))
    return np.array([[float(v) for v in p.split(",")] for p in coords.split()])


@pytest.mark.parametrize("fmt", ["gpx", "kml", "geojson", "csv"])
def test_gcj02_is_shifted_by_hundreds_of_metres_and_round_trips(geo, fmt) -> None:
    wgs = _points(export(geo, fmt, "wgs84"), fmt)
    gcj = _points(export(geo, fmt, "gcj02"), fmt)
    assert wgs.shape == gcj.shape and len(wgs) > 5
    offset = metres(wgs, gcj)
    assert (offset > 300).all() and (offset < 900).all()  # Wenzhou: about 550 m to the south-east
    back = np.column_stack(gcj02_to_wgs84(gcj[:, 0], gcj[:, 1]))
    assert metres(wgs, back).max() < 1.0


def test_unknown_format_or_datum_is_refused(geo) -> None:
    with pytest.raises(ExportError, match="format"):
        export(geo, "shp")
    with pytest.raises(ExportError, match="datum"):
        export(geo, "gpx", "bd09")
