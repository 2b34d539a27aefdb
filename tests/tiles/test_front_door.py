"""The front door (api.app.PinganApp, api.routes.tiles.serve_at_front): plain tile requests are
served before the middleware and the routing. Whatever it serves must be answered exactly as the
routed app answers it (status, every header, bytes, audit rows); whatever it must not serve (other
methods, bodies, over-long queries, other forms) must reach the routed app untouched."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.auth import store
from api.routes import tiles as tile_routes
from layers import audit
from tests.tiles.conftest import make_client
from tests.tiles.reference import densest_tile, tile_url
from tests.tiles.test_plain import _urls


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What the front door answered for each request it saw (True: it served it)."""
    seen: list[bool] = []
    front = tile_routes.serve_at_front

    async def recording(*args):  # noqa: ANN002, ANN202
        seen.append(await front(*args))
        return seen[-1]

    monkeypatch.setattr(tile_routes, "serve_at_front", recording)
    return seen


def _routed(client: TestClient, method: str, url: str, **kwargs):  # noqa: ANN003, ANN202
    client.app.front_door = False
    try:
        return client.request(method, url, **kwargs)
    finally:
        client.app.front_door = True


def _same(front, routed) -> None:  # noqa: ANN001
    assert front.status_code == routed.status_code, (front.text, routed.text)
    assert front.content == routed.content
    # every header, in order and repeated ones too (uvicorn adds date and server, TestClient neither)
    assert front.headers.multi_items() == routed.headers.multi_items()


def _tile_audits(engine) -> int:  # noqa: ANN001
    with engine.connect() as c:
        sql = "SELECT count(*) FROM pingan.audit_log WHERE details->>'via' = 'tile'"
        return c.execute(text(sql)).scalar_one()


def test_what_the_front_door_serves_is_what_the_routed_app_answers(cold, demo_engine, logins, served) -> None:
    urls = _urls(demo_engine)
    hazard = tile_url("hazards", densest_tile(demo_engine, "hazards", 14))
    etag = cold.get(hazard).headers["etag"]
    cases = [(url, {}) for url in urls] + [
        (hazard, {"If-None-Match": etag}),  # 304
        (hazard, {"If-None-Match": f'W/{etag}, "other"'}),
        (hazard, logins["town"].headers),
        (hazard, {"Authorization": ""}),  # 401 by the app's handler, with its challenges
        (hazard, {"Authorization": "Bearer wrong"}),
        (tile_url("persons", densest_tile(demo_engine, "hazards", 14)), logins["analyst"].headers),  # 403
    ]
    served.clear()
    for url, headers in cases:
        audits = _tile_audits(demo_engine)
        front = cold.get(url, headers=headers)
        audited = _tile_audits(demo_engine) - audits
        routed = _routed(cold, "GET", url, headers=headers)
        _same(front, routed)
        assert _tile_audits(demo_engine) - audits == 2 * audited  # each way records the same
    assert served == [True] * len(cases)
    statuses = {cold.get(url, headers=headers).status_code for url, headers in cases}
    assert statuses == {200, 304, 400, 401, 403, 404}
    assert _tile_audits(demo_engine) > 0  # the persons tile was audited (by both ways, above)


def test_a_bearer_token_is_resolved_at_the_front_door_as_the_routes_resolve_it(demo_url, demo_engine, logins,
                                                                              served) -> None:
    """The front door reads a bearer token and the reason off the headers itself: the same answer
    as the routed app, and the same audit row (user, client address, reason), for each reason
    (the caller with its address and reason is cached; a new reason is a new caller)."""
    login = logins["grid"]
    with demo_engine.begin() as c:
        token = store.create_token(c, store.Actor("tests"), login.name, "front door", 1, 30).token
    url = tile_url("persons", densest_tile(demo_engine, "hazards", 14))
    app = make_client(demo_url, cache_enabled=False).app
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}, client=("203.0.113.9", 4321)) as c:
        served.clear()
        for reason in ("排查走访", "回访", None, "排查走访"):
            headers = {"X-Pingan-Reason": quote(reason)} if reason else {}
            front = c.get(url, headers=headers)
            assert front.status_code == 200
            entry = audit.query(demo_engine, actor=login.name, object_type="persons", limit=1)[0]
            _same(front, _routed(c, "GET", url, headers=headers))
            routed = audit.query(demo_engine, actor=login.name, object_type="persons", limit=1)[0]
            assert entry.id != routed.id
            assert (entry.reason, entry.client_addr, entry.details) == (reason, "203.0.113.9", routed.details)
            assert (routed.reason, routed.client_addr) == (reason, "203.0.113.9")
    assert served == [True] * 4


def test_the_front_door_serves_behind_a_proxy_with_a_root_path(demo_url, logins, served) -> None:
    """Mounted under a root path (``uvicorn --root-path /pingan`` behind a proxy that keeps the
    prefix, or one that strips it): tile URLs are matched as the router matches them."""
    app = make_client(demo_url, cache_enabled=False).app
    with TestClient(app, headers=logins["command"].headers, root_path="/pingan") as c:
        for url in ("/pingan/ogc/collections/grids/tiles/WebMercatorQuad/13/3433/6841",
                    "/ogc/collections/grids/tiles/WebMercatorQuad/13/3433/6841"):
            served.clear()
            front = c.get(url)
            assert front.status_code == 200 and front.content
            _same(front, _routed(c, "GET", url))
            assert served == [True]


def test_https_requests_get_the_same_strict_transport_header(demo_url, served) -> None:
    with make_client(demo_url, cache_enabled=False) as c:
        c.base_url = c.base_url.copy_with(scheme="https")
        url = "/ogc/collections/grids/tiles/WebMercatorQuad/13/3433/6841"
        front = c.get(url)
        assert "strict-transport-security" in front.headers
        _same(front, _routed(c, "GET", url))
    assert served[0] is True


@pytest.mark.parametrize(("method", "url", "kwargs", "status"), [
    ("HEAD", "/ogc/collections/grids/tiles/WebMercatorQuad/13/3433/6841", {}, 405),
    ("POST", "/ogc/collections/grids/tiles/WebMercatorQuad/13/3433/6841", {}, 405),
    ("GET", "/ogc/collections/grids/tiles/WebMercatorQuad/13/3433/6841", {"content": b"x" * 10}, 200),
    ("GET", "/ogc/collections/hazards/tiles/WebMercatorQuad/14/6866/13683?state=" + "a" * 9000, {}, 414),
    ("GET", "/ogc/collections/hazards/tiles/WebMercatorQuad/10/0/0?f=png", {}, 400),
    ("GET", "/ogc/collections/hazards/tiles/WebMercatorQuad/ten/0/0", {}, 400),
    ("GET", "/ogc/collections/grids/tiles/WebMercatorQuad/13/3433/6841/", {"follow_redirects": False}, 307),
    ("GET", "/ogc/collections/grids/tiles", {}, 200),
])
def test_anything_else_reaches_the_routed_app(cold, served, method, url, kwargs, status) -> None:
    front = cold.request(method, url, **kwargs)
    assert front.status_code == status
    _same(front, _routed(cold, method, url, **kwargs))
    assert True not in served  # the front door looked (where it was on) and left each to the app


def test_another_middleware_turns_the_front_door_off(demo_url, served) -> None:
    from starlette.middleware.gzip import GZipMiddleware

    with make_client(demo_url, cache_enabled=False) as c:
        url = "/ogc/collections/grids/tiles/WebMercatorQuad/13/3433/6841"
        assert c.get(url).status_code == 200 and served == [True]
    app = make_client(demo_url, cache_enabled=False).app
    app.add_middleware(GZipMiddleware, minimum_size=1)
    served.clear()
    with TestClient(app, headers=c.headers) as c:
        answer = c.get(url, headers={"Accept-Encoding": "gzip"})
        assert answer.status_code == 200 and answer.headers["content-encoding"] == "gzip"
    assert served == []  # the middleware's work was not skipped
