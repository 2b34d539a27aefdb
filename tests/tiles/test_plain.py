"""The plain tile request (api/routes/tiles.py, served at the app's front door): served without
FastAPI's parameter and dependency resolution, it must answer exactly what FastAPI's handler
answers (status, headers, bytes), and anything not in the plain form must still reach FastAPI's
validation."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.deps import get_principal
from api.routes import tiles as tile_routes
from tests.tiles.reference import densest_tile, tile_url


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the plain path's calls of get_principal (FastAPI's path calls api.deps' own)."""
    calls: list[int] = []

    async def counting(request):  # noqa: ANN001, ANN202
        calls.append(1)
        return await get_principal(request)

    monkeypatch.setattr(tile_routes, "get_principal", counting)
    return calls


def _fastapi(client: TestClient, url: str, headers: dict[str, str] | None = None):  # noqa: ANN202
    """The answer of FastAPI's own handler: a dependency override (even by itself) turns the
    plain path off."""
    client.app.dependency_overrides[get_principal] = get_principal
    try:
        return client.get(url, headers=headers)
    finally:
        client.app.dependency_overrides.clear()


def _same(plain, full) -> None:  # noqa: ANN001
    assert plain.status_code == full.status_code, (plain.text, full.text)
    assert plain.content == full.content
    drop = {"date"}
    assert ({k: v for k, v in plain.headers.items() if k not in drop}
            == {k: v for k, v in full.headers.items() if k not in drop})


def _urls(engine) -> list[str]:  # noqa: ANN001
    grid, hazard = densest_tile(engine, "grids", 13), densest_tile(engine, "hazards", 14)
    z, x, y = hazard
    return [
        tile_url("grids", grid),
        tile_url("grids", grid, "?f=mvt"),
        tile_url("hazards", hazard),  # staff only: private, Vary
        tile_url("hazards", (12, x // 4, y // 4)),  # aggregated
        tile_url("hazards", hazard, "?state=found,closed&state=checking"),  # filters
        tile_url("persons", hazard),  # personal: audited
        f"/ogc/tiles/WebMercatorQuad/{z}/{y}/{x}",
        f"/ogc/tiles/WebMercatorQuad/{z}/{y}/{x}?collections=grids,hazards",
        tile_url("nope", grid),  # 404
        tile_url("hazards", (4, 1, 1)),  # below minzoom: 404
        tile_url("hazards", (23, 0, 0)),  # no such tile matrix: 400
        tile_url("hazards", (10, 0, 1024)),  # row out of range: 400
        tile_url("hazards", hazard, "?colour=red"),  # unknown property: 400
        "/ogc/tiles/WebMercatorQuad/10/0/0?collections=hazards,nope",  # 404
        "/ogc/tiles/WebMercatorQuad/10/0/0?collections=",  # 404
        "/ogc/collections/hazards/tiles/WorldCRS84Quad/14/6866/13683",  # 404
    ]


def test_plain_requests_answer_what_fastapi_answers(cold, demo_engine, logins, counted) -> None:
    urls = _urls(demo_engine)
    for url in urls:
        _same(cold.get(url), _fastapi(cold, url))
    assert len(counted) == len(urls)  # each was served by the plain path


def test_conditional_and_per_caller_answers_are_the_same(cold, demo_engine, logins, counted) -> None:
    url = tile_url("hazards", densest_tile(demo_engine, "hazards", 14))
    etag = cold.get(url).headers["etag"]
    for headers in ({"If-None-Match": etag}, {"If-None-Match": f'W/{etag}, "other"'},
                    logins["town"].headers, logins["analyst"].headers, {"Authorization": ""}):
        plain = cold.get(url, headers=headers)  # over the client's own (the command centre's)
        _same(plain, _fastapi(cold, url, headers))
    assert plain.status_code == 401  # no credentials: the plain path asks for them as FastAPI does
    forbidden = tile_url("persons", densest_tile(demo_engine, "hazards", 14))
    _same(cold.get(forbidden, headers=logins["analyst"].headers),
          _fastapi(cold, forbidden, logins["analyst"].headers))
    assert len(counted) == 7


@pytest.mark.parametrize("query", [
    "/ogc/collections/hazards/tiles/WebMercatorQuad/ten/0/0",
    "/ogc/collections/hazards/tiles/WebMercatorQuad/10/1.5/0",
    "/ogc/collections/hazards/tiles/WebMercatorQuad/-1/0/0",
    "/ogc/collections/hazards/tiles/WebMercatorQuad/10/+1/0",
    "/ogc/collections/hazards/tiles/WebMercatorQuad/10/0/0?f=png",
    "/ogc/collections/grids/tiles/WebMercatorQuad/13/3433/6841?f=mvt&f=mvt",
    "/ogc/tiles/WebMercatorQuad/13/3433/6841?collections=grids&collections=towns",
])
def test_requests_not_in_the_plain_form_go_through_fastapi(cold, counted, query) -> None:
    plain = cold.get(query)
    _same(plain, _fastapi(cold, query))
    assert counted == []  # not the plain path: FastAPI validated (and answered) these
