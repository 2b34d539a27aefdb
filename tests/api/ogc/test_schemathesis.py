"""schemathesis over /ogc/openapi against the running server, with each role's credentials: no
5xx for any generated request, and no response holding rows beyond the role's limits.

Bounded: ``MAX_EXAMPLES`` per operation and role, so the run stays near a few minutes.
Driven through Hypothesis directly: schemathesis' pytest plugin does not work on pytest 9.
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

MAX_EXAMPLES = {"command": 40, "town": 15, "grid": 10, "admin": 6, "analyst": 10, "public": 6}
STAFF_ONLY = ("hazards", "cases", "persons")


def within_role_limits(login, path: str, response) -> None:  # noqa: ANN001 - Login, a requests Response
    """No response may hold a row outside the caller's jurisdiction, nor individuals for those
    who only see aggregates."""
    if response.status_code != 200:
        return
    parts = path.strip("/").split("/")
    collection = parts[parts.index("collections") + 1] if "collections" in parts[:-1] else None
    if login.role in ("analyst", "public"):
        assert collection not in STAFF_ONLY, f"{login.role} got 200 from {path}"
    if "json" not in response.headers.get("content-type", ""):
        return
    body = response.json()
    features = body.get("features", [body] if body.get("type") == "Feature" else [])
    for feature in features:
        props = feature.get("properties") or {}
        if login.role == "town" and "town_code" in props:
            assert props["town_code"] in login.areas, f"town user got {props['town_code']} from {path}"
        if login.role == "grid" and collection in STAFF_ONLY:
            grid = props.get("grid_code")
            assert grid in login.areas, f"grid user got {grid} from {path}"


@pytest.mark.parametrize("role", list(MAX_EXAMPLES))
def test_no_server_errors_and_no_rows_beyond_the_role(server: str, logins, role: str) -> None:
    login = logins[role]
    schema = schemathesis.openapi.from_url(f"{server}/ogc/openapi", headers=login.headers)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES[role],
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            response = case.call(headers=login.headers, timeout=60)
            case.validate_response(response, checks=[not_a_server_error])
            within_role_limits(login, case.formatted_path, response)

        try:
            check()
        except Exception as err:  # noqa: BLE001 - collect every operation's failure, then report
            failures.append(f"{operation.label}: {str(err)[:1500]}")
    assert not failures, "\n\n".join(failures)


def test_openapi_lists_the_tile_paths(client: TestClient) -> None:
    """So that the schemathesis run covers tiles too."""
    paths = client.get("/ogc/openapi?f=json").json()["paths"]
    for wanted in ("/tileMatrixSets", "/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}",
                   "/collections/grids/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}",
                   "/collections/hazards/tiles/{tileMatrixSetId}/tilejson.json"):
        assert wanted in paths
    tile = paths["/collections/hazards/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}"]["get"]
    assert "application/vnd.mapbox-vector-tile" in tile["responses"]["200"]["content"]
    zoom = next(p for p in tile["parameters"] if p.get("name") == "tileMatrix")["schema"]
    assert (zoom["minimum"], zoom["maximum"]) == (8, 18)
