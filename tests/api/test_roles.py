"""Every role against every route that reads data, over HTTP, on the demo district.

A town user never receives another town's rows, a grid user only its grids' rows, an analyst or
the public never a person-level row; anonymous callers get 401 everywhere but /healthz and the
login page. ``READ_ROUTES`` lists every GET route of the app: a route added without a line there
fails ``test_every_read_route_is_covered``, so new routes (processes, exports, the workflow API)
join this matrix when they land.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.settings import ApiSettings
from layers import audit
from layers.catalog import default_registry
from layers.settings import DatabaseSettings
from tests.tiles.reference import decode

ROLES = ("admin", "command", "town", "grid", "analyst", "public")
INDIVIDUALS = ("hazards", "cases", "persons")
Z14 = "/ogc/collections/{c}/tiles/WebMercatorQuad/{z}/{y}/{x}"

# Every GET route and how this file covers it ("public": no login needed).
READ_ROUTES = {
    "/healthz": "public", "/login": "public", "/": "redirect (the map screen: tests/web)",
    "/auth/me": "identity tests (tests/api/auth)",
    "/ogc": "listing", "/ogc/conformance": "listing", "/ogc/openapi": "listing",
    "/ogc/collections": "listing", "/ogc/collections/{collection_id}": "collections",
    "/ogc/collections/{collection_id}/queryables": "collections",
    "/ogc/collections/{collection_id}/items": "items",
    "/ogc/collections/{collection_id}/items/{feature_id}": "item",
    "/ogc/tileMatrixSets": "public", "/ogc/tileMatrixSets/{tileMatrixSetId}": "public",  # static definitions
    "/ogc/collections/{collectionId}/tiles": "collections",
    "/ogc/collections/{collectionId}/tiles/{tileMatrixSetId}": "collections",
    "/ogc/collections/{collectionId}/tiles/{tileMatrixSetId}/tilejson.json": "collections",
    "/ogc/collections/{collectionId}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}": "tiles",
    "/ogc/tiles": "listing", "/ogc/tiles/{tileMatrixSetId}": "listing",
    "/ogc/tiles/{tileMatrixSetId}/tilejson.json": "listing",
    "/ogc/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}": "tiles",
    "/api/persons/{person_id}": "person file (tests/layers/test_persons.py has the per-role fields)",
    "/api/etl/batches": "etl", "/api/etl/batches/{batch_id}/rejects": "etl",
    # saved patrol plans (issue 9): roles and towns in tests/api/test_patrol_api.py
    "/api/patrol/plans": "patrol", "/api/patrol/plans/{plan_id}": "patrol",
    "/api/patrol/plans/{plan_id}/export": "patrol",
    # ladder items, evidence, documents, index map exports (issue 6): tests/api/test_warnings.py
    "/api/warnings/{warning_id}": "warnings", "/api/warnings/{warning_id}/document": "warnings",
    "/api/warnings/{warning_id}/evidence/{evidence_id}/file": "warnings", "/api/index/export": "warnings",
    # the map screen's panels (issue 8): roles, RLS and numbers in tests/web/test_dashboard_api.py
    "/api/warnings": "map screen", "/api/kpis": "map screen", "/api/places/{code}": "map screen",
    "/api/hazards/{ref}/history": "map screen", "/api/cases/{ref}/history": "map screen",
    "/api/labels": "map screen", "/api/versions": "map screen",
    "/static/glyphs/{fontstack}/{name}": "public",  # label glyphs (no data)
    "/docs": "public", "/docs/oauth2-redirect": "public", "/redoc": "public", "/openapi.json": "public",
    # OGC API - Processes (issue 7): roles, owners and jobs in tests/api/ogc/test_processes.py
    "/ogc/processes": "processes", "/ogc/processes/{process_id}": "processes", "/ogc/jobs": "processes",
    "/ogc/jobs/{job_id}": "processes", "/ogc/jobs/{job_id}/results": "processes",
    # raster products (issue 7): roles, owners and RLS in tests/api/test_rasters.py
    "/api/rasters": "rasters", "/api/rasters/{raster_id}": "rasters",
    "/api/rasters/{raster_id}/cog.tif": "rasters",
    "/api/rasters/{raster_id}/tiles/{tileMatrixSetId}/tilejson.json": "rasters",
    "/api/rasters/{raster_id}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}.png": "rasters",
}


@pytest.fixture(scope="module")
def app(demo_service_url: str, logins) -> Iterator[TestClient]:
    from tests.demo import TEST_KEY

    application = create_app(ApiSettings(environment="test"),
                             DatabaseSettings(database_url=demo_service_url), keys=TEST_KEY)
    with TestClient(application) as c:
        yield c


def get(app: TestClient, login, path: str, **params: object):  # noqa: ANN001, ANN201
    return app.get(path, params=params, headers=login.headers if login else {})


def readable(role: str) -> list[str]:
    return [layer.id for layer in default_registry().served() if layer.readable_by(role)]


def get_paths(routes: list, prefix: str = "") -> set[str]:
    """GET paths of the app, walking included routers (FastAPI keeps them nested)."""
    paths: set[str] = set()
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            paths |= get_paths(inner.routes, prefix + route.include_context.prefix)
        elif "GET" in (getattr(route, "methods", None) or ()):
            paths.add(prefix + route.path)
    return paths


def test_every_read_route_is_covered(app: TestClient) -> None:
    assert get_paths(app.app.routes) == set(READ_ROUTES), "cover new routes in READ_ROUTES and below"


def test_the_map_screen_sends_anonymous_callers_to_the_login(app: TestClient) -> None:
    r = app.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/")


@pytest.mark.parametrize("path", [p for p, how in READ_ROUTES.items()
                                  if how != "public" and not how.startswith("redirect")])
def test_anonymous_gets_401_everywhere(app: TestClient, path: str) -> None:
    concrete = (path.replace("{collection_id}", "towns").replace("{collectionId}", "towns")
                .replace("{feature_id}", "330304001").replace("{tileMatrixSetId}", "WebMercatorQuad")
                .replace("{tileMatrix}", "10").replace("{tileRow}", "409").replace("{tileCol}", "857")
                .replace("{person_id}", "1").replace("{batch_id}", "1"))
    r = app.get(concrete)
    assert r.status_code == 401, (concrete, r.status_code)
    assert 'Basic realm="Pingan Map"' in r.headers.get("www-authenticate", "")


@pytest.mark.parametrize("role", ROLES)
def test_collections_listed_are_those_the_role_may_read(app, logins, role) -> None:
    listed = [c["id"] for c in get(app, logins[role], "/ogc/collections").json()["collections"]]
    assert listed == readable(role)
    paths = get(app, logins[role], "/ogc/openapi").json()["paths"]
    for lid in {layer.id for layer in default_registry().served()} - set(listed):
        assert f"/collections/{lid}/items" not in paths
        r = get(app, logins[role], f"/ogc/collections/{lid}/items")
        assert r.status_code == 403 and "not available" in r.json()["description"]
        r = get(app, logins[role], Z14.format(c=lid, z=14, x=13683, y=6866))
        assert r.status_code in (403, 404)  # 404 only when the zoom is outside the layer


def _jurisdiction(login, props: dict) -> bool:  # noqa: ANN001
    if login.role == "town":
        return props.get("town_code") in login.areas
    if login.role == "grid":
        return props.get("grid_code") in login.areas
    return True


@pytest.mark.parametrize("role", ROLES)
def test_items_stay_within_the_role(app, logins, demo_engine: Engine, role) -> None:
    login = logins[role]
    for lid in readable(role):
        layer = default_registry()[lid]
        body = get(app, login, f"/ogc/collections/{lid}/items", limit=10_000).json()
        features = body["features"]
        if lid in INDIVIDUALS:
            assert all(_jurisdiction(login, f["properties"]) for f in features), (role, lid)
            where = {"town": "town_code = ANY (:a)", "grid": "grid_code = ANY (:a)"}.get(role, "true")
            table = "persons" if lid == "persons" else lid
            with demo_engine.connect() as c:
                expected = c.execute(text(f"SELECT count(*) FROM pingan.{table} WHERE {where}"),  # noqa: S608
                                     {"a": list(login.areas)}).scalar_one()
            assert body["numberMatched"] == expected, (role, lid)
            assert len(features) == min(expected, 10_000)
        elif layer.id.startswith("persons-by-"):
            for f in features:
                counts = [v for k, v in f["properties"].items() if k not in ("code", "name", "village_code",
                                                                            "town_code", "suppressed")]
                assert all(v is None or v == 0 or v >= 5 for v in counts), (role, lid, f["properties"])


@pytest.mark.parametrize("role", ["town", "grid", "command"])
def test_single_items_of_other_jurisdictions_do_not_exist(app, logins, demo_engine: Engine, role) -> None:
    login = logins[role]
    with demo_engine.connect() as c:
        other = c.execute(text("SELECT id FROM pingan.hazards WHERE NOT (town_code = ANY (:a))"
                               " AND NOT (grid_code = ANY (:a)) ORDER BY id LIMIT 1"),
                          {"a": list(login.areas) or ["-"]}).scalar_one()
        mine = c.execute(text("SELECT id FROM pingan.hazards WHERE town_code = ANY (:a)"
                              " OR grid_code = ANY (:a) ORDER BY id LIMIT 1"),
                         {"a": list(login.areas) or ["-"]}).scalar()
    status = get(app, login, f"/ogc/collections/hazards/items/{other}").status_code
    assert status == (200 if role == "command" else 404)
    if mine is not None:
        assert get(app, login, f"/ogc/collections/hazards/items/{mine}").status_code == 200


def _tile_count(features: list[dict]) -> int:
    return sum(f["properties"].get("count", 1) for f in features)


@pytest.mark.parametrize("role", ["town", "grid", "command"])
@pytest.mark.parametrize("layer_id", INDIVIDUALS)
def test_tiles_stay_within_the_role(app, logins, demo_engine: Engine, role, layer_id) -> None:
    """Detailed tiles carry only the role's rows; aggregated ones count only them."""
    login = logins[role]
    table = layer_id
    where = {"town": "town_code = ANY (:a)", "grid": "grid_code = ANY (:a)"}.get(role, "true")
    with demo_engine.connect() as c:
        lon, lat = c.execute(text(
            f"SELECT ST_X(geom), ST_Y(geom) FROM pingan.{table} WHERE {where} ORDER BY id LIMIT 1"),  # noqa: S608
            {"a": list(login.areas)}).one()
    for z in (10, 16):
        import math

        n = 2**z
        x = int((lon + 180) / 360 * n)
        y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
        r = get(app, login, Z14.format(c=layer_id, z=z, x=x, y=y))
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"].startswith("private")
        features = decode(r.content).get(layer_id, [])
        with demo_engine.connect() as c:
            expected = c.execute(text(
                f"SELECT count(*) FROM pingan.{table} WHERE {where} AND "  # noqa: S608
                "ST_Intersects(ST_Transform(geom, 3857), ST_TileEnvelope(:z, :x, :y))"),
                {"a": list(login.areas), "z": z, "x": x, "y": y}).scalar_one()
        assert _tile_count(features) == expected, (role, layer_id, z)
        detailed = {f["properties"]["code"] for f in features
                    if not f["properties"].get("aggregated") and "code" in f["properties"]}
        if detailed:  # persons tiles carry no codes at all: their counts above say it
            with demo_engine.connect() as c:
                mine = set(c.execute(text(f"SELECT code FROM pingan.{table} WHERE {where}"),  # noqa: S608
                                     {"a": list(login.areas)}).scalars())
            assert detailed <= mine, (role, layer_id, z)


@pytest.mark.parametrize("role", ["analyst", "public"])
def test_aggregates_only_for_analysts_and_the_public(app, logins, role) -> None:
    login = logins[role]
    for lid in INDIVIDUALS:
        assert get(app, login, f"/ogc/collections/{lid}/items").status_code == 403
        tile = get(app, login, f"/ogc/collections/{lid}/tiles/WebMercatorQuad/14/6866/13683")
        assert tile.status_code == 403
    mixed = get(app, login, "/ogc/tiles/WebMercatorQuad/14/6866/13683", collections="towns,persons")
    assert mixed.status_code == 403
    dataset = get(app, login, "/ogc/tiles/WebMercatorQuad/11/856/1713")
    assert dataset.status_code == 200
    assert not set(decode(dataset.content)) & set(INDIVIDUALS)
    assert get(app, login, "/api/persons/1").status_code == 403
    r = get(app, login, "/ogc/collections/persons-by-village/items", limit=1000)
    assert r.status_code == 200 and r.json()["numberReturned"] > 0


def test_person_reads_are_audited_with_address_and_reason(app, logins, demo_engine: Engine) -> None:
    login = logins["grid"]
    r = app.get("/ogc/collections/persons/items", params={"limit": 5},
                headers={**login.headers, "X-Pingan-Reason": quote("排查走访")})
    ids = [str(f["id"]) for f in r.json()["features"]]
    assert ids
    entry = audit.query(demo_engine, actor=login.name, object_type="persons", limit=1)[0]
    assert entry.object_id.split(",") == ids and entry.reason == "排查走访"
    assert entry.client_addr == "testclient" or entry.client_addr is None or entry.client_addr
    pid = ids[0]
    file = app.get(f"/api/persons/{pid}", headers=login.headers)
    assert file.status_code == 200 and file.headers["cache-control"] == "no-store"
    assert "*" not in file.json()["name"]  # the grid worker reads the name in clear
    command = app.get(f"/api/persons/{pid}", headers=logins["command"].headers).json()
    assert command["id_number"][4:-4] == "*" * (len(command["id_number"]) - 8)
    other = logins["town"]
    with demo_engine.connect() as c:
        foreign = c.execute(text("SELECT id FROM pingan.persons WHERE town_code <> :t LIMIT 1"),
                            {"t": other.areas[0]}).scalar_one()
    assert app.get(f"/api/persons/{foreign}", headers=other.headers).status_code == 404
    tile_before = len(audit.query(demo_engine, actor=login.name, object_type="persons", limit=1000))
    app.get(Z14.format(c="persons", z=16, x=0, y=0), headers=login.headers)
    after = audit.query(demo_engine, actor=login.name, object_type="persons", limit=1000)
    assert len(after) == tile_before + 1 and after[0].details["via"] == "tile"


@pytest.mark.parametrize("role", ROLES)
def test_load_batches_for_staff_and_rejects_for_admins(app, logins, demo_engine: Engine, role) -> None:
    login = logins[role]
    with demo_engine.connect() as c:
        batch = c.execute(text("SELECT max(id) FROM pingan.etl_batches")).scalar_one()
    listed = get(app, login, "/api/etl/batches", limit=5)
    rejects = get(app, login, f"/api/etl/batches/{batch}/rejects")
    if role in ("analyst", "public"):
        assert listed.status_code == 403
    else:
        assert listed.status_code == 200 and listed.json()["batches"][0]["id"] == batch
    if role == "admin":
        body = rejects.json()
        assert rejects.status_code == 200 and body["batch"]["id"] == batch
        assert sum(body["by_reason"].values()) == body["batch"]["n_rejected"]
        assert get(app, login, "/api/etl/batches/999999999/rejects").status_code == 404
    else:
        assert rejects.status_code == 403
    assert get(app, login, "/api/etl/batches", status="bogus'--").status_code in (403, 422)


def test_an_admin_reads_a_batchs_rejects_with_row_column_reason_and_the_row(app, logins, demo_engine: Engine,
                                                                             tmp_path) -> None:
    """A batch whose rows were all refused: each reject with its row in the file, column, reason
    and cells, counted by reason, in pages; the batch names its file."""
    from etl.pipeline import load_file

    csv = tmp_path / "refused.csv"
    csv.write_text("事件编号,标题,类别,状态,发现时间,经度,纬度\n"
                   "R1,a,火灾,已发现,2025-03-01,116.40,39.90\n"  # Beijing: outside the district
                   "R2,b,火灾,丢失,2025-03-01,120.65,27.97\n"  # a state no profile knows
                   "R3,c,火灾,已发现,2025-03-01,116.41,39.91\n", encoding="utf-8")
    result = load_file(demo_engine, csv, "hazards", source="test-api-rejects")
    assert (result.status, result.loaded, result.rejected) == ("done", 0, 3)
    admin = logins["admin"]
    first = get(app, admin, f"/api/etl/batches/{result.batch_id}/rejects", limit=2)
    assert first.status_code == 200
    body = first.json()
    assert body["batch"]["file_name"] == "refused.csv" and body["batch"]["n_rejected"] == 3
    assert sum(body["by_reason"].values()) == 3 and len(body["by_reason"]) == 2
    rest = get(app, admin, f"/api/etl/batches/{result.batch_id}/rejects", limit=2, offset=2).json()["rejects"]
    got = body["rejects"] + rest
    assert [r["row_number"] for r in got] == [2, 3, 4]
    assert [r["raw"]["事件编号"] for r in got] == ["R1", "R2", "R3"]
    assert got[1]["column_name"] == "状态" and "丢失" in got[1]["reason"]
    assert all("outside" in got[i]["reason"] and got[i]["column_name"] == "经度" for i in (0, 2))
    listed = get(app, admin, "/api/etl/batches", layer="hazards", status="done", limit=1).json()["batches"]
    assert listed[0]["id"] == result.batch_id and listed[0]["n_loaded"] == 0


def test_the_published_index_needs_no_login(app: TestClient) -> None:
    """The monthly index is public (PINGAN_AUTH_ANONYMOUS_COLLECTIONS, default the two index
    collections); nothing else is."""
    for lid in ("index-villages", "index-towns"):
        assert app.get(f"/ogc/collections/{lid}/items").status_code == 200
        assert app.get(f"/ogc/collections/{lid}").status_code == 200
        assert app.get(f"/ogc/collections/{lid}/tiles/WebMercatorQuad/10/409/857").status_code == 200
    for lid in ("towns", "persons-by-village", "hotspots"):
        assert app.get(f"/ogc/collections/{lid}/items").status_code == 401
