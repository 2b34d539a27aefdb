"""The command-centre map screen in a real headless Chromium (Debian's chromium, driven by
Playwright with executable_path=/usr/bin/chromium): it loads with no console error and no
request leaving 127.0.0.1, the choropleth has the right colour at known villages, the slider
changes the month, a click opens the details, a town user sees only its town. Screenshots of
each state go to test-artifacts/ (look at them)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from sqlalchemy import Engine, text

from layers import migrate
from layers.db import make_engine
from layers.settings import DatabaseSettings
from tests.conftest import Login
from tests.demo import load

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
# where on the screen the first drawn village is (the mean of its outer ring's vertices)
CENTRE_OF_A_VILLAGE = """() => {
  const m = window.pinganMap, f = m.queryRenderedFeatures({layers: ['index-fill']})[0];
  const c = m.getCanvas().getBoundingClientRect();
  const g = f.geometry.type === 'Polygon' ? f.geometry.coordinates[0] : f.geometry.coordinates[0][0];
  const p = m.project(g.reduce((a, b) => [a[0] + b[0] / g.length, a[1] + b[1] / g.length], [0, 0]));
  return {x: c.left + p.x, y: c.top + p.y};
}"""


@pytest.fixture(scope="module")
def district(databases) -> Iterator[Engine]:
    """The demo district with its derived layers (statistics, index, hot spots), as demo load makes it."""
    from etl.derive import derive

    eng = make_engine(DatabaseSettings(database_url=databases.create()))
    migrate.upgrade(eng)
    load(eng)
    derive(eng, full=True)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def users(district: Engine) -> dict[str, Login]:
    from api.auth import store

    with district.begin() as c:
        town = c.execute(text("SELECT min(code) FROM pingan.towns")).scalar_one()
        made = {"command": Login("web-command", "web-command-password", "command", ()),
                "town": Login("web-town", "web-town-password!", "town", (town,))}
        for login in made.values():
            store.add_user(c, store.Actor("tests"), login.name, login.role, list(login.areas), login.password)
    return made


@pytest.fixture(scope="module")
def server(district: Engine, databases, users) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = databases.service_url(district.url.render_as_string(hide_password=False))
    env = {**os.environ, "PINGAN_SERVICE_DATABASE_URL": url, "PINGAN_ENVIRONMENT": "test",
           "PINGAN_ASSETS_DIR": str(ROOT / "node_modules"), "PINGAN_AUTH_COOKIE_SECURE": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "api.asgi:app", "--host",
                             "127.0.0.1", "--port", str(port), "--log-level", "warning"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2)  # noqa: S310 - our loopback server
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(proc.stderr.read().decode()[-2000:]) from None
                time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stderr.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():  # make test installs it (scripts/system-deps.sh --test): a failure
        pytest.fail("no /usr/bin/chromium: run `make test-deps`")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--use-gl=swiftshader", "--enable-unsafe-swiftshader"])
        yield b
        b.close()


class Watched:
    """A logged-in page whose console errors and outgoing requests are recorded."""

    def __init__(self, browser, base: str, login: Login, size: tuple[int, int] = (1920, 1080)) -> None:  # noqa: ANN001
        self.context = browser.new_context(viewport={"width": size[0], "height": size[1]}, locale="zh-CN")
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.hosts: set[str] = set()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(f"{m.text} {m.location}"))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.hosts.add(urlparse(r.url).hostname or r.url))
        self.page.goto(base + "/")
        assert "/login" in self.page.url  # not logged in: the login page
        self.page.fill("input[name=username]", login.name)
        self.page.fill("input[name=password]", login.password)
        self.page.click("button[type=submit]")
        self.page.wait_for_load_state()
        assert urlparse(self.page.url).path == "/", (self.page.url, self.page.inner_text("body")[:500])
        self.page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        self.page.wait_for_function("() => window.pinganMap && window.pinganMap.loaded()", timeout=60_000)

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"map-{name}.png"))

    def rendered(self, layer: str) -> list[dict]:
        return self.page.evaluate(
            "(l) => window.pinganMap.queryRenderedFeatures({layers: [l]}).map(f => f.properties)", layer)


def _settle(w: Watched) -> None:
    w.page.wait_for_timeout(300)
    w.page.wait_for_function("() => window.pinganMap.areTilesLoaded() && window.pinganMap.loaded()",
                             timeout=60_000)


def test_command_screen(browser, server: str, users, district: Engine) -> None:
    w = Watched(browser, server, users["command"])
    _settle(w)
    w.shot("command-1920")
    assert w.errors == []
    assert w.hosts <= {"127.0.0.1"}, w.hosts
    period = w.page.get_attribute("body", "data-period")
    with district.connect() as c:
        truth = dict(c.execute(text("SELECT code, colour_hex FROM pingan.index_villages WHERE period = :p"),
                               {"p": period}).all())
        counts = dict(c.execute(text("SELECT class, count(*) FROM pingan.index_villages"
                                     " WHERE period = :p GROUP BY 1"), {"p": period}).all())
    shown = w.rendered("index-fill")
    assert len({f["code"] for f in shown}) > 50
    assert all(f["colour_hex"] == truth[f["code"]] and f["period"] == period for f in shown)
    for cls, n in counts.items():  # the legend counts the month's villages per colour
        assert w.page.text_content(f".legend-row[data-class={cls}] strong") == str(n)

    # the slider changes the month, and the map follows
    w.page.fill("#period", "0")
    w.page.dispatch_event("#period", "input")
    _settle(w)
    first = w.page.get_attribute("body", "data-period")
    assert first < period
    assert {f["period"] for f in w.rendered("index-fill")} == {first}
    w.shot("command-first-month")

    # a click on a village opens its details
    box = w.page.evaluate(CENTRE_OF_A_VILLAGE)
    w.page.mouse.click(box["x"], box["y"])
    w.page.wait_for_selector("#details:not([hidden]) #detail-score", timeout=20_000)
    code = w.page.get_attribute("#details", "data-code")
    with district.connect() as c:
        score = c.execute(text("SELECT score FROM pingan.index_villages WHERE code = :c AND period = :p"),
                          {"c": code, "p": first}).scalar_one()
    assert w.page.text_content("#detail-score") == f"{score:.2f}"
    w.shot("command-details")
    assert w.errors == [] and w.hosts <= {"127.0.0.1"}
    w.context.close()


def test_town_user_sees_only_its_town(browser, server: str, users, district: Engine) -> None:
    login = users["town"]
    w = Watched(browser, server, login, size=(3840, 2160))
    w.page.check("input[data-layer=hazards]")
    w.page.evaluate("() => window.pinganMap.jumpTo({zoom: 14.5, center: window.pinganMap.getCenter()})")
    with district.connect() as c:
        lon, lat = c.execute(text("SELECT ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)) FROM pingan.towns"
                                  " WHERE code = :t"), {"t": login.areas[0]}).one()
        mine = set(c.execute(text("SELECT code FROM pingan.hazards WHERE town_code = :t"),
                             {"t": login.areas[0]}).scalars())
    w.page.evaluate(f"() => window.pinganMap.jumpTo({{center: [{lon}, {lat}], zoom: 14.5}})")
    _settle(w)
    w.shot("town-3840")
    hazards = [f for f in w.rendered("hazards") if "code" in f]
    assert hazards, "no hazard drawn near the town centre"
    assert {f["code"] for f in hazards} <= mine
    assert w.errors == [] and w.hosts <= {"127.0.0.1"}
    w.context.close()
