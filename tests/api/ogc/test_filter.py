"""Part 3: CQL2 text and JSON filters, datetime, checked against the database's own counts."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from api.ogc.cql import parse_filter

pytestmark = pytest.mark.usefixtures("exact_counts")  # compared with exact database counts

BOX = "ST_MakeEnvelope(120.55, 27.95, 120.70, 28.10, 4490)"
# (CQL2 text, the same as SQL); numberMatched is exact here (the exact_counts fixture)
CASES = [
    ("level = 'major' AND state <> 'closed'", "level = 'major' AND state <> 'closed'"),
    (
        "level IN ('major','severe') AND category NOT IN ('fire')",
        "level IN ('major','severe') AND category <> 'fire'",
    ),
    ("title LIKE '%电动车%'", "title LIKE '%电动车%'"),
    ("CASEI(state) = CASEI('CLOSED')", "state = 'closed'"),
    ("closed_at IS NULL OR NOT (level = 'general')", "closed_at IS NULL OR level <> 'general'"),
    (
        "found_at BETWEEN TIMESTAMP('2025-01-01T00:00:00Z') AND TIMESTAMP('2025-03-01T00:00:00Z')",
        "found_at BETWEEN '2025-01-01T00:00:00Z' AND '2025-03-01T00:00:00Z'",
    ),
    (
        "S_INTERSECTS(geometry, POLYGON((120.55 27.95, 120.7 27.95, 120.7 28.1, 120.55 28.1, 120.55 27.95)))",
        f"ST_Intersects(geom, {BOX})",
    ),
    ("S_WITHIN(geometry, BBOX(120.55, 27.95, 120.70, 28.10))", f"ST_Within(geom, {BOX})"),
    ("S_DISJOINT(geometry, BBOX(120.55, 27.95, 120.70, 28.10))", f"ST_Disjoint(geom, {BOX})"),
    ("T_AFTER(found_at, TIMESTAMP('2026-06-01T00:00:00Z'))", "found_at > '2026-06-01T00:00:00Z'"),
    ("T_BEFORE(found_at, DATE('2025-01-01'))", "found_at < '2025-01-01T00:00:00Z'"),
    (
        "T_DURING(found_at, INTERVAL('2025-01-01T00:00:00Z', '2025-02-01T00:00:00Z'))",
        "found_at > '2025-01-01T00:00:00Z' AND found_at < '2025-02-01T00:00:00Z'",
    ),
    ("T_INTERSECTS(found_at, INTERVAL('2026-01-01T00:00:00Z', '..'))", "found_at >= '2026-01-01T00:00:00Z'"),
    (
        "T_DISJOINT(found_at, INTERVAL('2025-01-01T00:00:00Z', '2026-01-01T00:00:00Z'))",
        "found_at < '2025-01-01T00:00:00Z' OR found_at > '2026-01-01T00:00:00Z'",
    ),
    (
        "T_INTERSECTS(found_at, DATE('2025-03-01'))",
        "found_at >= '2025-03-01T00:00:00Z' AND found_at < '2025-03-02T00:00:00Z'",
    ),
    ("closed_at > deadline", "closed_at > deadline"),  # property-property
]


def matched(client: TestClient, query: str) -> int:
    r = client.get(f"/ogc/collections/hazards/items?limit=1&{query}")
    assert r.status_code == 200, r.text
    return r.json()["numberMatched"]


@pytest.mark.parametrize("cql, sql", CASES)
def test_cql2_text(client: TestClient, count, cql: str, sql: str) -> None:
    expected = count(f"SELECT count(*) FROM pingan.hazards WHERE {sql}")  # noqa: S608 - literal test SQL
    assert expected > 0
    assert matched(client, "filter=" + quote(cql)) == expected
    assert matched(client, "filter-lang=cql2-text&filter=" + quote(cql)) == expected


JSON_CASES = [
    (
        {
            "op": "and",
            "args": [
                {"op": "=", "args": [{"property": "level"}, "major"]},
                {"op": "in", "args": [{"property": "state"}, ["found", "handling"]]},
            ],
        },
        "level = 'major' AND state IN ('found', 'handling')",
    ),
    (
        {
            "op": "between",
            "args": [
                {"property": "found_at"},
                {"timestamp": "2025-01-01T00:00:00Z"},
                {"timestamp": "2025-02-01T00:00:00Z"},
            ],
        },
        "found_at BETWEEN '2025-01-01T00:00:00Z' AND '2025-02-01T00:00:00Z'",
    ),
    (
        {"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": [120.55, 27.95, 120.70, 28.10]}]},
        f"ST_Intersects(geom, {BOX})",
    ),
    (
        {
            "op": "t_intersects",
            "args": [
                {"property": "found_at"},
                {"interval": ["2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z"]},
            ],
        },
        "found_at BETWEEN '2025-01-01T00:00:00Z' AND '2025-02-01T00:00:00Z'",
    ),
    ({"op": "like", "args": [{"property": "title"}, "%燃气%"]}, "title LIKE '%燃气%'"),
]


@pytest.mark.parametrize("cql, sql", JSON_CASES)
def test_cql2_json(client: TestClient, count, cql: dict, sql: str) -> None:
    expected = count(f"SELECT count(*) FROM pingan.hazards WHERE {sql}")  # noqa: S608 - literal test SQL
    assert expected > 0
    assert matched(client, "filter-lang=cql2-json&filter=" + quote(json.dumps(cql))) == expected


def test_filter_crs_takes_latitude_first(client: TestClient, count) -> None:
    cql = (
        "S_INTERSECTS(geometry, POLYGON((27.95 120.55, 27.95 120.7, 28.1 120.7, 28.1 120.55, 27.95 120.55)))"
    )
    query = f"filter-crs=http://www.opengis.net/def/crs/EPSG/0/4326&filter={quote(cql)}"
    assert matched(client, query) == count(
        f"SELECT count(*) FROM pingan.hazards WHERE ST_Intersects(geom, {BOX})"
    )


@pytest.mark.parametrize(
    "value, sql",
    [
        ("2025-03-01", "found_at >= '2025-03-01T00:00:00Z' AND found_at < '2025-03-02T00:00:00Z'"),
        (
            "2025-03-01T00:00:00Z/2025-04-01T00:00:00Z",
            "found_at BETWEEN '2025-03-01T00:00:00Z' AND '2025-04-01T00:00:00Z'",
        ),
        ("../2025-01-01T00:00:00Z", "found_at <= '2025-01-01T00:00:00Z'"),
        ("2026-06-01T00:00:00Z/..", "found_at >= '2026-06-01T00:00:00Z'"),
        ("1990-01-01T00:00:00Z/1990-02-01T00:00:00Z", "FALSE"),  # outside the extent: empty, not 400
    ],
)
def test_datetime(client: TestClient, count, value: str, sql: str) -> None:
    expected = count(f"SELECT count(*) FROM pingan.hazards WHERE {sql}")  # noqa: S608 - literal test SQL
    assert matched(client, "datetime=" + quote(value)) == expected


def test_filter_and_datetime_survive_paging(client: TestClient) -> None:
    doc = client.get(
        "/ogc/collections/hazards/items?limit=5&filter="
        + quote("level = 'major'")
        + "&datetime=2025-01-01T00:00:00Z/.."
    ).json()
    nxt = next(x["href"] for x in doc["links"] if x["rel"] == "next")
    assert "filter=level%20%3D%20%27major%27" in nxt and "datetime=2025-01-01T00%3A00%3A00Z%2F.." in nxt
    again = client.get(nxt.replace("http://testserver", "")).json()
    assert again["numberMatched"] == doc["numberMatched"]
    assert all(f["properties"]["level"] == "major" for f in again["features"])


@pytest.mark.parametrize(
    "query",
    [
        "filter=" + quote("nosuch = 1"),  # unknown property
        "filter=" + quote("level = 'major' AND"),  # malformed
        "filter=" + quote("level = 5"),  # wrong type
        "filter=" + quote("S_INTERSECTS(level, POINT(1 2))"),  # not a geometry
        "filter=" + quote("S_INTERSECTS(geometry, POINT(500 2))"),  # outside CRS84
        "filter=" + quote("T_AFTER(level, TIMESTAMP('2025-01-01T00:00:00Z'))"),
        "filter=" + quote("population + 1 > 3"),  # arithmetic: not offered
        "filter=" + quote("foo(level) = 1"),
        "filter-lang=cql2-json&filter=" + quote('{"op": "=", "args": [1]}'),
        "filter-lang=cql2-json&filter=" + quote("{not json"),
        "filter-lang=cql-text&filter=" + quote("level = 'major'"),
        "datetime=yesterday",
        "datetime=2025-02-01T00:00:00Z/2025-01-01T00:00:00Z",
        "datetime=a/b/c",
    ],
)
def test_bad_filters_are_400(client: TestClient, query: str) -> None:
    r = client.get(f"/ogc/collections/hazards/items?{query}")
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] == "InvalidParameterValue" and body["description"]


def test_datetime_on_a_collection_without_time_is_400(client: TestClient) -> None:
    assert client.get("/ogc/collections/towns/items?datetime=2025-01-01").status_code == 400


INJECTIONS = [
    "'; DROP TABLE pingan.hazards; --",
    "x' OR '1'='1",
    "1; SELECT pg_sleep(5)",
    "\x00",
    "' UNION SELECT password FROM pg_shadow --",
    '"; DELETE FROM pingan.towns; --',
]


@pytest.mark.parametrize("evil", INJECTIONS)
def test_injection_strings_are_values(client: TestClient, count, evil: str) -> None:
    before = count("SELECT count(*) FROM pingan.hazards") + count("SELECT count(*) FROM pingan.towns")
    q = quote(evil)
    for query in (
        f"filter={quote(f'title = {json.dumps(evil)[1:-1]!r}')}",
        f"level={q}",
        f"sortby={q}",
        f"properties={q}",
        f"bbox={q}",
        f"datetime={q}",
        f"crs={q}",
        f"limit={q}",
        f"filter={q}",
    ):
        r = client.get(f"/ogc/collections/hazards/items?{query}")
        assert r.status_code in (200, 400), (query, r.status_code, r.text)
    assert client.get(f"/ogc/collections/hazards/items/{q}").status_code == 404
    after = count("SELECT count(*) FROM pingan.hazards") + count("SELECT count(*) FROM pingan.towns")
    assert after == before


def test_parser_rejects_a_value_as_a_filter() -> None:
    with pytest.raises(ValueError, match="condition"):
        parse_filter("1", "cql2-json")
