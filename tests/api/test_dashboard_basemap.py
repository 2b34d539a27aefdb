"""The map screen's optional external basemap (PINGAN_BASEMAP_URL): off by default; when set, the
map page's CSP allows that origin (and only that one) for images and fetches, nothing else
changes; a template without {z}/{x}/{y} is refused. Also: label glyph ranges."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.app import create_app
from api.settings import ApiSettings
from layers.settings import DatabaseSettings

TIANDITU = "https://t0.tianditu.gov.cn/vec_w/wmts?tk=KEY&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}"


@pytest.fixture(scope="module")
def own_db(databases) -> Iterator[tuple[str, str]]:
    """A database of its own (a user is added: the session's shared database stays as it was)."""
    from layers import migrate
    from layers.db import make_engine

    url = databases.create()
    eng = make_engine(DatabaseSettings(database_url=url))
    migrate.upgrade(eng)
    yield url, databases.service_url(url)
    eng.dispose()


@pytest.fixture(scope="module")
def service_url(own_db: tuple[str, str]) -> str:
    return own_db[1]


@pytest.fixture(scope="module")
def user(own_db: tuple[str, str]) -> tuple[str, str]:
    from api.auth import store
    from layers.db import make_engine

    eng = make_engine(DatabaseSettings(database_url=own_db[0]))
    with eng.begin() as c:
        store.add_user(c, store.Actor("tests"), "basemap-user", "command", [], "basemap-password-123")
    eng.dispose()
    return "basemap-user", "basemap-password-123"


def client(service_url: str, **settings: str) -> Iterator[TestClient]:
    app = create_app(ApiSettings(environment="test", **settings), DatabaseSettings(database_url=service_url))
    with TestClient(app) as c:
        yield c


def boot(page: str) -> dict:
    found = re.search(r'<script id="boot" type="application/json">(.*?)</script>', page, re.S)
    return json.loads(found.group(1))


def test_no_basemap_by_default(service_url: str, user) -> None:
    for c in client(service_url):
        r = c.get("/", auth=user)
        assert r.status_code == 200
        csp = r.headers["content-security-policy"]
        assert "connect-src 'self';" in csp and "tianditu" not in csp
        assert boot(r.text)["basemap"] is None


def test_a_configured_basemap_opens_its_origin_on_the_map_page_only(service_url: str, user) -> None:
    for c in client(service_url, basemap_url=TIANDITU, basemap_attribution="天地图"):
        r = c.get("/", auth=user)
        csp = r.headers["content-security-policy"]
        assert "connect-src 'self' https://t0.tianditu.gov.cn;" in csp
        assert "img-src 'self' data: blob: https://t0.tianditu.gov.cn;" in csp
        assert "script-src 'self';" in csp  # scripts stay our own
        assert boot(r.text)["basemap"] == {"url": TIANDITU, "attribution": "天地图"}
        assert "tianditu" not in c.get("/healthz").headers["content-security-policy"]
        assert "tianditu" not in c.get("/login").headers["content-security-policy"]


def test_a_basemap_template_needs_z_x_y() -> None:
    with pytest.raises(ValidationError):
        ApiSettings(basemap_url="https://example.org/tiles/{z}/{x}.png")
    with pytest.raises(ValidationError):
        ApiSettings(basemap_url="javascript:alert(1)//{z}{x}{y}")


def _fields(data: bytes):
    """(field, value) pairs of a protobuf message: varints and length-delimited bytes only."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        if key & 7 == 0:
            value, i = _varint(data, i)
        else:
            size, i = _varint(data, i)
            value, i = data[i:i + size], i + size
        yield key >> 3, value


def _varint(data: bytes, i: int) -> tuple[int, int]:
    out = shift = 0
    while True:
        byte = data[i]
        i += 1
        out |= (byte & 127) << shift
        shift += 7
        if byte < 128:
            return out, i


def _glyphs(pbf: bytes) -> dict[int, int]:
    """Code point -> pixels of its SDF bitmap that are inside the glyph, from a glyphs.proto PBF."""
    out = {}
    for _, stack in _fields(pbf):
        for field, glyph in _fields(stack):
            if field == 3:
                g = dict(_fields(glyph))
                out[g[1]] = sum(1 for b in g.get(2, b"") if b >= 192)
    return out


def test_glyph_ranges(service_url: str) -> None:
    for c in client(service_url, assets_dir="node_modules"):
        if c.app.state.glyphs_dir is None:
            pytest.fail("no label glyphs: npm ci builds them (scripts/build-glyphs.mjs)")
        r = c.get("/static/glyphs/Noto Sans Regular/0-255.pbf")
        assert r.status_code == 200 and len(r.content) > 10_000  # digits and Latin letters
        # Chinese punctuation, which MapLibre does not draw locally: built from the CJK font
        drawn = {
            **_glyphs(c.get("/static/glyphs/Noto Sans Regular/12288-12543.pbf").content),
            **_glyphs(c.get("/static/glyphs/Noto Sans Regular/65280-65535.pbf").content),
        }
        for ch in "、。《》「」（）：，！？；":
            assert drawn.get(ord(ch), 0) > 0, f"no glyph for {ch!r}: npm ci with fonts-wqy-microhei"
        assert ord("の") not in drawn and ord("ｱ") not in drawn  # kana: drawn by the browser
        empty = c.get("/static/glyphs/Noto Sans Regular/19968-20223.pbf")  # CJK: drawn by the browser
        assert empty.status_code == 200 and b"19968-20223" in empty.content and len(empty.content) < 64
        assert c.get("/static/glyphs/Noto Sans Regular/1-256.pbf").status_code == 404
        assert c.get("/static/glyphs/Nope/0-255.pbf").status_code == 404
        assert c.get("/static/glyphs/..%2F..%2Fetc/0-255.pbf").status_code == 404
