"""Publishing a month's index map (layers/index_exports.py): the standalone HTML page and the PNG.

One database for the module: the demo district (scale 1, seed 42), monthly stats refreshed, the
default model computed for 2026-10. The PNG is saved in test-artifacts/ to be looked at.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from etl.refresh import refresh
from gis.index import COLOURS
from layers import index
from layers.db import make_engine
from layers.index_exports import (
    ExportError,
    NoIndexError,
    export_html,
    export_png,
    gauss_kruger_epsg,
    read_map,
)
from layers.settings import DatabaseSettings

PERIOD = date(2026, 10, 1)
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def eng(databases) -> Iterator[Engine]:
    e = make_engine(DatabaseSettings(database_url=databases.demo()))
    refresh(e, full=True)
    index.compute(e, PERIOD)
    yield e
    e.dispose()


@pytest.fixture(scope="module")
def places(eng) -> dict[str, dict]:
    with eng.connect() as c:
        rows = c.execute(text(
            "SELECT s.code, v.name, s.class, s.colour_hex, ST_X(p) AS x, ST_Y(p) AS y, "
            "ST_Area(v.geom::geography) AS m2 FROM pingan.index_scores s "
            "JOIN pingan.villages v ON v.code = s.code "
            "CROSS JOIN LATERAL ST_PointOnSurface(v.geom) p "
            "WHERE s.level = 'village' AND s.period = :p"), {"p": PERIOD}).all()
    return {r.code: r._asdict() for r in rows}


class Fetches(HTMLParser):
    """Every URL the page would fetch on opening: script src, link href, img/iframe/source src."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href") if tag in ("script", "link", "img", "iframe", "source", "embed") else ():
            if a.get(key):
                self.urls.append(a[key])


def geojson_of(page: str) -> dict:
    """The FeatureCollection folium embeds (``geo_json_<id>_add({...})``)."""
    m = re.search(r"geo_json_\w+_add\((\{)", page)
    assert m, "no GeoJSON layer in the page"
    data, _ = json.JSONDecoder().raw_decode(page, m.start(1))
    return data


def test_html_is_standalone_with_every_village_in_its_colour(eng, places) -> None:
    with eng.connect() as c:
        frame = read_map(c, PERIOD, "village")
    page = export_html(frame, PERIOD, "village")
    parser = Fetches()
    parser.feed(page)
    parser.close()
    assert parser.urls == [] and parser.scripts >= 2  # Leaflet inline, the map's own script
    assert "L.tileLayer" not in page and not re.search(r"url\(\s*['\"]?(https?:)?//", page)
    assert not re.search(r"@import", page)
    assert not re.search(r"(https?:)?//(cdn|code\.jquery|netdna|unpkg)", page)  # folium's defaults
    features = geojson_of(page)["features"]
    assert {f["properties"]["code"] for f in features} == set(places)
    for f in features:
        p = places[f["properties"]["code"]]
        assert f["properties"]["colour_hex"] == p["colour_hex"] == COLOURS[p["class"]][2]
        assert f["properties"]["name"] == p["name"]
    # the style folium computed per feature is the place's colour
    styler = re.search(r"function geo_json_\w+_styler\(feature\) \{(.*?)\n\s*\}\n", page, re.S).group(1)
    styled, pending = {}, []
    for m in re.finditer(r'case "(\d+)":|(default):|return (\{[^}]*\})', styler):
        code, default, style = m.groups()
        if style:
            for k in pending:
                styled[k] = json.loads(style)["fillColor"]
            pending = []
        else:
            pending.append(code or "*")
    assert len(styled) > 1
    for code, p in places.items():
        assert styled.get(code, styled.get("*")) == p["colour_hex"], code
    counts = {k: sum(p["class"] == k for p in places.values()) for k in COLOURS}
    for k, (zh, _, _) in COLOURS.items():
        assert f"{zh} " in page and f"：{counts[k]}</div>" in page
    assert "2026年10月" in page


def test_html_opens_offline_in_chromium(eng, tmp_path) -> None:
    """The page in a real browser makes no request off the file itself and draws a polygon per
    village."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("no /usr/bin/chromium: run `make test-deps`")
    with eng.connect() as c:
        frame = read_map(c, PERIOD, "village")
    path = tmp_path / "map.html"
    path.write_text(export_html(frame, PERIOD, "village"), encoding="utf-8")
    requests, errors = [], []
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                               args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = b.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(path.as_uri())
            page.wait_for_selector("path.leaflet-interactive")
            n_paths = page.locator("path.leaflet-interactive").count()
            legend = page.locator("#pingan-legend").inner_text()
        finally:
            b.close()
    assert errors == []
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    assert n_paths == len(frame)
    assert "红 高风险" in legend and "绿 低风险" in legend


def test_png(eng, places) -> None:
    with eng.connect() as c:
        frame = read_map(c, PERIOD, "village")
    png = export_png(frame, PERIOD, "village", width=1600, height=1200)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "index-map-2026-10-village.png").write_bytes(png.data)
    img = Image.open(io.BytesIO(png.data))
    assert img.format == "PNG" and img.size == (1600, 1200)
    rgb = np.asarray(img.convert("RGB"))
    # the demo district lies near 120E: the Gauss-Kruger zone of CM 120E
    assert png.epsg == gauss_kruger_epsg(float(frame.to_crs(4490).union_all().centroid.x)) == 4549

    def hex_of(px: np.ndarray) -> str:
        return "#" + "".join(f"{int(v):02x}" for v in px)

    # every sizable village's inner point shows its class colour
    checked = hits = 0
    for p in places.values():
        if p["m2"] < 1.5e6:  # a few pixels only: its border lines may cover the point
            continue
        col, row = png.to_pixel(p["x"], p["y"])
        checked += 1
        hits += hex_of(rgb[row, col]) == p["colour_hex"]
    assert checked > 50 and hits >= 0.95 * checked, (hits, checked)
    # the legend holds a patch of each of the five colours (also those with no village)
    left, top, right, bottom = png.legend_box
    legend = rgb[top:bottom, left:right].reshape(-1, 3)
    found = {hex_of(px) for px in np.unique(legend, axis=0)}
    assert all(c[2] in found for c in COLOURS.values())
    assert left < 800 and top > 600  # lower left, clear of the title
    small = export_png(frame, PERIOD, "village", width=640, height=480)
    assert Image.open(io.BytesIO(small.data)).size == (640, 480)
    with pytest.raises(ExportError, match="200"):
        export_png(frame, PERIOD, "village", width=50, height=50)


def test_towns_and_errors(eng) -> None:
    with eng.connect() as c:
        towns = read_map(c, PERIOD, "town")
        n = c.execute(text("SELECT count(*) FROM pingan.towns")).scalar_one()
        assert len(towns) == n
        with pytest.raises(NoIndexError, match="no village index for 2020-01"):
            read_map(c, date(2020, 1, 1), "village")
        with pytest.raises(ExportError, match="level"):
            read_map(c, PERIOD, "grid")
    assert "镇街" in export_html(towns, PERIOD, "town")
    with pytest.raises(ExportError, match="Leaflet not found"):
        export_html(towns, PERIOD, "town", assets=Path("/nonexistent"))


def test_cli_export(eng, tmp_path, monkeypatch) -> None:
    from cli.main import app

    monkeypatch.setenv("PINGAN_DATABASE_URL", eng.url.render_as_string(hide_password=False))
    out = tmp_path / "m.png"
    r = CliRunner().invoke(app, ["index", "export", "--period", "2026-10", "--level", "town",
                                 "--format", "png", "-o", str(out), "--width", "800", "--height", "600"])
    assert r.exit_code == 0, r.output
    with Image.open(out) as img:
        assert img.size == (800, 600)
    r = CliRunner().invoke(app, ["index", "export", "--period", "2026-10", "--format", "html", "-o",
                                 str(tmp_path / "m.html")])
    assert r.exit_code == 0
    assert (tmp_path / "m.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    r = CliRunner().invoke(app, ["index", "export", "--period", "2019-01", "--format", "html", "-o",
                                 str(tmp_path / "x.html")])
    assert r.exit_code != 0 and "no village index for 2019-01" in r.output
    r = CliRunner().invoke(app, ["index", "export", "--period", "2026-10", "--format", "svg", "-o", "x"])
    assert r.exit_code != 0 and "--format must be one of html, png" in r.output
