"""One demo district, one server and one headless Chromium for all of tests/web (package scope):
the district with its derived layers (statistics, index, ladder, hot spots) as ``demo load``
makes it, users of several roles, the service on 127.0.0.1 (started and stopped here, by PID)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from sqlalchemy import Engine, text

from layers.db import make_engine
from layers.settings import DatabaseSettings
from tests.conftest import Login
from tests.serve import uvicorn_app

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="package")
def district(databases) -> Iterator[Engine]:
    """The demo district with its derived layers (statistics, index, hot spots), as demo load makes it."""
    from etl.derive import derive

    eng = make_engine(DatabaseSettings(database_url=databases.demo()))
    derive(eng, full=True)
    yield eng
    eng.dispose()


@pytest.fixture(scope="package")
def users(district: Engine) -> dict[str, Login]:
    """command, a town user (the town with the most open ladder items), a grid user (two grids of
    that town) and an analyst."""
    from api.auth import store

    with district.begin() as c:
        town = c.execute(text(
            "SELECT t.code FROM pingan.towns t LEFT JOIN pingan.index_warnings w ON w.town_code = t.code"
            " AND w.status = 'open' GROUP BY t.code ORDER BY count(w.id) DESC, t.code LIMIT 1")).scalar_one()
        grids = tuple(c.execute(text(
            "SELECT g.code FROM pingan.grids g JOIN pingan.index_warnings w ON w.code = g.village_code"
            " AND w.status = 'open' WHERE g.code LIKE :t || '%' ORDER BY g.code LIMIT 2"),
            {"t": town}).scalars())
        made = {"command": Login("web-command", "web-command-password", "command", ()),
                "town": Login("web-town", "web-town-password!", "town", (town,)),
                "grid": Login("web-grid", "web-grid-password!", "grid", grids or ()),
                "analyst": Login("web-analyst", "web-analyst-password", "analyst", ())}
        if not grids:
            made.pop("grid")
        for login in made.values():
            store.add_user(c, store.Actor("tests"), login.name, login.role, list(login.areas), login.password)
    return made


@pytest.fixture(scope="package")
def server(district: Engine, databases, users) -> Iterator[str]:
    url = databases.service_url(district.url.render_as_string(hide_password=False))
    env = {"PINGAN_ASSETS_DIR": str(ROOT / "node_modules"), "PINGAN_AUTH_COOKIE_SECURE": "false",
           "PINGAN_TILES_VERSION_TTL_S": "0.5", "PINGAN_BASEMAP_URL": None}
    with uvicorn_app(url, env) as base:
        yield base


@pytest.fixture(scope="package")
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


def api(base: str, login: Login, path: str) -> tuple[int, Any]:
    """GET ``path`` as ``login`` (HTTP Basic): (status, JSON body)."""
    token = base64.b64encode(f"{login.name}:{login.password}".encode()).decode()
    req = urllib.request.Request(base + path, headers={"Authorization": f"Basic {token}"})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=60) as r:  # noqa: S310 - our loopback server
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        return e.code, (json.loads(body) if body.startswith(b"{") else body)


class Watched:
    """A logged-in page whose console errors, outgoing requests and responses are recorded."""

    def __init__(self, browser, base: str, login: Login, size: tuple[int, int] = (1920, 1080),  # noqa: ANN001
                 query: str = "") -> None:
        self.context = browser.new_context(viewport={"width": size[0], "height": size[1]}, locale="zh-CN")
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.hosts: set[str] = set()
        self.requests: list[str] = []
        self.failed: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(f"{m.text} {m.location}"))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.context.on("request", self._request)
        self.context.on("response", lambda r: r.status >= 400 and self.failed.append(f"{r.status} {r.url}"))
        self.page.goto(base + "/" + query)
        assert "/login" in self.page.url  # not logged in: the login page
        self.page.fill("input[name=username]", login.name)
        self.page.fill("input[name=password]", login.password)
        self.page.click("button[type=submit]")
        self.page.wait_for_load_state()
        assert urlparse(self.page.url).path == "/", (self.page.url, self.page.inner_text("body")[:500])
        if query and query not in self.page.url:  # the login goes to "/": the query again
            self.page.goto(base + "/" + query)
        self.page.wait_for_selector("body[data-ready='1'][data-panels-at]", timeout=60_000)
        self.page.wait_for_function("() => window.pinganMap && window.pinganMap.loaded()", timeout=60_000)

    def _request(self, r) -> None:  # noqa: ANN001 - a Playwright request
        url = r.url.removeprefix("blob:")  # MapLibre's worker: a blob of our own origin's script
        self.hosts.add(urlparse(url).hostname or url)
        self.requests.append(r.url)

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"map-{name}.png"))

    def rendered(self, layer: str) -> list[dict]:
        return self.page.evaluate(
            "(l) => window.pinganMap.queryRenderedFeatures({layers: [l]}).map(f => f.properties)", layer)

    def settle(self) -> None:
        self.page.wait_for_timeout(300)
        self.page.wait_for_function("() => window.pinganMap.areTilesLoaded() && window.pinganMap.loaded()",
                                    timeout=60_000)

    def clean(self) -> None:
        """No console error, no request off 127.0.0.1, no failed response."""
        assert self.errors == [], self.errors
        assert self.hosts <= {"127.0.0.1"}, self.hosts
        assert self.failed == [], self.failed
