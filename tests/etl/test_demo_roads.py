"""The demo district's generated street network (network 'demo'): inside the district, one
connected network per town and across towns, and routable with pgRouting."""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sqlalchemy import text

EDGES = "SELECT id, source, target, cost, reverse_cost FROM pingan.road_edges WHERE network = ''demo''"


def one(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).one()


def test_network_fits_the_district(demo_engine) -> None:
    n_v, n_e = one(demo_engine, "SELECT (SELECT count(*) FROM pingan.road_vertices WHERE network = 'demo'), "
                                "(SELECT count(*) FROM pingan.road_edges WHERE network = 'demo')")
    assert n_v > 2000 and n_e > n_v  # more streets than crossings: a mesh, not a tree
    assert demo_engine.demo_result.counts["road_edges"] == n_e
    outside = one(demo_engine, """
        SELECT count(*) FROM pingan.road_vertices v
        WHERE v.network = 'demo' AND NOT EXISTS (
            SELECT 1 FROM pingan.towns t WHERE ST_Covers(t.geom, v.geom))""")[0]
    assert outside == 0
    # every town has crossings; the edges meet their vertices exactly
    assert one(demo_engine, """
        SELECT count(*) FROM pingan.towns t WHERE NOT EXISTS (
            SELECT 1 FROM pingan.road_vertices v
            WHERE v.network = 'demo' AND ST_Covers(t.geom, v.geom))""")[0] == 0
    assert one(demo_engine, """
        SELECT count(*) FROM pingan.road_edges e
        JOIN pingan.road_vertices a ON a.network = e.network AND a.id = e.source
        JOIN pingan.road_vertices b ON b.network = e.network AND b.id = e.target
        WHERE e.network = 'demo' AND NOT (ST_Equals(ST_StartPoint(e.geom), a.geom)
                                          AND ST_Equals(ST_EndPoint(e.geom), b.geom))""")[0] == 0


def test_connected_within_each_town_and_across(demo_engine) -> None:
    total = one(demo_engine, f"SELECT count(DISTINCT component) FROM pgr_connectedComponents('{EDGES}')")[0]
    assert total == 1
    # within a town: the streets between two of its own crossings join all of its crossings
    with demo_engine.connect() as conn:
        town = dict(conn.execute(text("""
            SELECT v.id, min(t.code) FROM pingan.road_vertices v
            JOIN pingan.towns t ON ST_Covers(t.geom, v.geom)
            WHERE v.network = 'demo' GROUP BY v.id""")).all())
        edges = conn.execute(text(
            "SELECT source, target FROM pingan.road_edges WHERE network = 'demo'")).all()
    ids = np.array(sorted(town))
    pos = {v: i for i, v in enumerate(ids)}
    inside = [(pos[s], pos[t]) for s, t in edges if town[s] == town[t]]
    src, dst = np.array(inside).T
    labels = connected_components(coo_matrix((np.ones(len(src)), (src, dst)), shape=(len(ids),) * 2))[1]
    codes = np.array([town[v] for v in ids])
    for code in set(codes):
        assert len(set(labels[codes == code])) == 1, code


def test_route_between_two_town_centres(demo_engine) -> None:
    # the crossings nearest to the centres of 泽雅镇 (west, hills) and 梧田街道 (east, city)
    a, b, crow = one(demo_engine, """
        WITH c AS (SELECT name, ST_PointOnSurface(geom) AS p FROM pingan.towns),
             near AS (SELECT c.name, (SELECT v.id FROM pingan.road_vertices v WHERE v.network = 'demo'
                                      ORDER BY v.geom <-> c.p LIMIT 1) AS id FROM c)
        SELECT a.id, b.id, ST_Distance(va.geom::geography, vb.geom::geography)
        FROM near a, near b, pingan.road_vertices va, pingan.road_vertices vb
        WHERE a.name = '泽雅镇' AND b.name = '梧田街道' AND va.network = 'demo' AND va.id = a.id
          AND vb.network = 'demo' AND vb.id = b.id""")
    cost, steps = one(demo_engine, f"""
        SELECT sum(cost), count(*) FROM pgr_dijkstra('{EDGES}', CAST(:a AS bigint), CAST(:b AS bigint),
                                                      directed => false)""", a=a, b=b)
    assert steps > 10 and crow > 5000
    assert crow <= cost < 2 * crow  # a detour, but a plausible one
