"""Tile URLs are matched against the tile routes alone (api/routes/tiles.py, ``TilesFirst``), and
that shadows no route of the app: every other URL reaches the route it reached before, and the
OpenAPI document keeps the routes' order."""

from __future__ import annotations

import json
import re

import pytest
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.routing import BaseRoute, Match, Mount

from api.app import create_app
from api.routes import tiles as tile_routes
from api.settings import ApiSettings
from layers.settings import DatabaseSettings


@pytest.fixture(scope="module")
def app() -> FastAPI:
    # no lifespan runs: nothing connects
    return create_app(ApiSettings(environment="test"), DatabaseSettings(database_url="postgresql://x@h/db"))


def _first_full(routes: list[BaseRoute], path: str) -> int | None:
    """The index of the route that serves ``path`` (Router.app's first full match)."""
    scope = {"type": "http", "method": "GET", "path": path, "root_path": "", "headers": [],
             "query_string": b""}
    return next((i for i, route in enumerate(routes) if route.matches(dict(scope))[0] == Match.FULL), None)


def _sample(path_format: str) -> str:
    return re.sub(r"{[^}]+}", "12", path_format)


def _app_paths(app: FastAPI) -> list[str]:
    """A URL for every route of the app (included routers' routes, mounts, the docs)."""
    paths = []
    for route in app.router.routes:
        if hasattr(route, "effective_route_contexts"):
            paths += [_sample(c.path_format) for c in route.effective_route_contexts()]
        elif isinstance(route, Mount):
            paths.append(route.path + "/x.js")
        elif hasattr(route, "path_format"):
            paths.append(_sample(route.path_format))
    return paths


def test_tile_urls_are_matched_by_the_tile_routes_first(app: FastAPI) -> None:
    routes = app.router.routes
    assert isinstance(routes[0], tile_routes.TilesFirst)
    tile_paths = [_sample(r.path) for r in tile_routes.router.routes]
    assert any(p.endswith("/12/12/12") for p in tile_paths)
    for path in tile_paths:
        assert _first_full(routes, path) == 0, path
        # and before, the tile router served it: nothing included earlier matched it
        assert routes[1 + _first_full(routes[1:], path)] is routes[0].included, path


def test_no_other_route_is_shadowed(app: FastAPI) -> None:
    routes = app.router.routes
    tiles = {_sample(r.path) for r in tile_routes.router.routes}
    others = [p for p in _app_paths(app) if p not in tiles]
    assert "/healthz" in others and "/ogc/collections/12/items/12" in others and len(others) > 40
    for path in others + ["/ogc/tiles/", "/ogc/collections/12/tiles/", "/ogc/collections/12/tilesx"]:
        before = _first_full(routes[1:], path)
        assert _first_full(routes, path) == (None if before is None else before + 1), path


def test_the_openapi_document_keeps_the_include_order(app: FastAPI) -> None:
    as_included = get_openapi(title=app.title, version=app.version, summary=app.summary,
                              routes=app.router.routes[1:])
    assert json.dumps(app.openapi()) == json.dumps(as_included)
    paths = list(app.openapi()["paths"])
    assert paths.index("/ogc/processes") < paths.index("/ogc/tileMatrixSets") < paths.index("/api/kpis")
