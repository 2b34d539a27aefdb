"""OGC API - Processes at /ogc/processes and /ogc/jobs (api/ogc/processes) on the demo district.

Results are checked against the gis functions called directly on events read independently
(the owner's plain SQL, not the SECURITY DEFINER function the processes read through).
"""

from __future__ import annotations

import time
from datetime import date, datetime

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from gis.hotspots import emerging_hotspots, gi_star, local_moran, space_time_cube
from layers.analysis import LOCAL_TZ, area_mask, hexagon_cells, month_add

PROCESS_IDS = {
    "hotspot-gistar",
    "hotspot-local-moran",
    "kernel-density",
    "emerging-hotspots",
    "index-compute",
    "patrol-plan",
}


@pytest.fixture(scope="module")
def latest(demo_engine: Engine) -> date:
    with demo_engine.connect() as c:
        t = c.execute(text("SELECT max(found_at) FROM pingan.hazards")).scalar_one()
    t = t.astimezone(LOCAL_TZ)
    return month_add(date(t.year, t.month, 1), -1)  # the last complete month


def as_role(client: TestClient, logins, role: str) -> TestClient:
    return TestClient(client.app, headers=logins[role].headers)


def owner_points(
    engine: Engine, layer: str, first: date, last: date, *, town: str | None = None
) -> np.ndarray:
    """The events of the local months first..last straight from the table (as the owner)."""
    column = {"hazards": "found_at", "cases": "accepted_at"}[layer]
    with engine.connect() as c:
        rows = c.execute(
            text(
                f"SELECT ST_X(p), ST_Y(p), to_char({column} AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')"  # noqa: S608
                f" FROM (SELECT ST_Transform(geom, 4549) AS p, {column} FROM pingan.{layer}"
                f" WHERE {column} >= :a AND {column} < :b AND (CAST(:t AS text) IS NULL OR town_code = :t)) e"
            ),
            {
                "a": datetime(first.year, first.month, 1, tzinfo=LOCAL_TZ),
                "b": datetime(*month_add(last, 1).timetuple()[:3], tzinfo=LOCAL_TZ),
                "t": town,
            },
        ).all()
    return rows


def district_cells(engine: Engine, side: float):  # noqa: ANN201
    with engine.connect() as c:
        return hexagon_cells(area_mask(c), side)


def run_sync(client: TestClient, pid: str, inputs: dict, status: int = 200) -> dict:
    r = client.post(f"/ogc/processes/{pid}/execution", json={"inputs": inputs})
    assert r.status_code == status, r.text
    return r.json()


# -- descriptions -----------------------------------------------------------------------------------
def test_process_list_and_descriptions_by_role(client: TestClient, logins) -> None:
    doc = client.get("/ogc/processes?f=json").json()
    assert {p["id"] for p in doc["processes"]} == PROCESS_IDS
    analyst = as_role(client, logins, "analyst").get("/ogc/processes?f=json").json()
    assert {p["id"] for p in analyst["processes"]} == PROCESS_IDS - {"index-compute", "patrol-plan"}
    assert as_role(client, logins, "public").get("/ogc/processes?f=json").json()["processes"] == []
    d = client.get("/ogc/processes/hotspot-gistar?f=json&lang=en").json()
    assert d["id"] == "hotspot-gistar" and d["title"] == "Hot spots (Getis-Ord Gi*)"
    assert d["inputs"]["layer"]["schema"]["enum"] == ["cases", "hazards"]
    assert {"cells", "report", "summary", "links"} <= set(d["outputs"])
    assert "async-execute" in d["jobControlOptions"]
    assert client.get("/ogc/processes/hotspot-gistar?f=json&lang=zh-CN").json()["title"].startswith("热点")
    r = as_role(client, logins, "analyst").get("/ogc/processes/index-compute?f=json")
    assert r.status_code == 403 and r.json()["code"] == "Forbidden"
    landing = client.get("/ogc?f=json").json()
    assert any(link["href"].split("?")[0].endswith("/ogc/processes") for link in landing["links"])
    classes = client.get("/ogc/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core" in classes


# -- synchronous results equal the gis functions ---------------------------------------------------
def test_gistar_sync_equals_gi_star_on_the_same_events(
    client: TestClient, demo_engine: Engine, latest: date
) -> None:
    first = month_add(latest, -2)
    out = run_sync(
        client,
        "hotspot-gistar",
        {
            "layer": "hazards",
            "period_start": f"{first:%Y-%m}",
            "period_end": f"{latest:%Y-%m}",
            "cell_size_m": 400,
            "weights": "contiguity",
        },
    )
    cells = district_cells(demo_engine, 400)
    xy = np.array([r[:2] for r in owner_points(demo_engine, "hazards", first, latest)], float)
    counts, _ = cells.counts(xy)
    expected = gi_star(counts, cells.lattice, fdr=True)
    got = {c["cell"]: c for c in out["cells"]}
    assert list(got) == cells.ids
    assert np.array_equal([got[c]["events"] for c in cells.ids], counts)
    z = np.array([np.nan if got[c]["z"] is None else got[c]["z"] for c in cells.ids])
    assert np.allclose(z, expected.z, atol=1e-6, equal_nan=True)
    assert [got[c]["bin"] for c in cells.ids] == expected.bins.tolist()
    assert out["summary"]["hot"] == expected.n_hot > 0
    assert out["summary"]["events"] == len(xy)
    assert any("contiguity" in line for line in out["report"])


def test_gistar_automatic_size_reports_its_choices(client: TestClient, latest: date) -> None:
    out = run_sync(
        client,
        "hotspot-gistar",
        {"layer": "cases", "period_start": f"{month_add(latest, -2):%Y-%m}", "period_end": f"{latest:%Y-%m}"},
    )
    assert any(line.startswith("Hexagon side") for line in out["report"])
    assert any("Incremental spatial autocorrelation" in line or "No peak" in line for line in out["report"])
    assert out["summary"]["cell_size_m"] > 0 and len(out["cells"]) == out["summary"]["cells"]


def test_local_moran_sync_equals_local_moran_with_the_seed(
    client: TestClient, demo_engine: Engine, latest: date
) -> None:
    first = month_add(latest, -5)
    out = run_sync(
        client,
        "hotspot-local-moran",
        {
            "layer": "cases",
            "period_start": f"{first:%Y-%m}",
            "period_end": f"{latest:%Y-%m}",
            "cell_size_m": 600,
            "permutations": 99,
            "seed": 7,
        },
    )
    cells = district_cells(demo_engine, 600)
    xy = np.array([r[:2] for r in owner_points(demo_engine, "cases", first, latest)], float)
    counts, _ = cells.counts(xy)
    expected = local_moran(counts, cells.lattice, permutations=99, seed=7)
    got = out["cells"]
    assert np.allclose([c["local_i"] for c in got], expected.Is, atol=1e-9)
    assert np.allclose([c["p_sim"] for c in got], expected.p_sim)
    assert [c["label"] for c in got] == expected.labels.tolist()
    assert out["summary"]["significant"]["HH"] == int((expected.labels == "HH").sum()) > 0


def test_emerging_sync_equals_emerging_hotspots(
    client: TestClient, demo_engine: Engine, latest: date
) -> None:
    first = month_add(latest, -11)
    out = run_sync(
        client,
        "emerging-hotspots",
        {
            "layer": "hazards",
            "period_start": f"{first:%Y-%m}",
            "period_end": f"{latest:%Y-%m}",
            "cell_size_m": 800,
        },
    )
    cells = district_cells(demo_engine, 800)
    rows = owner_points(demo_engine, "hazards", first, latest)
    xy = np.array([r[:2] for r in rows], float)
    step = np.array([(int(r[2][:4]) - first.year) * 12 + int(r[2][5:]) - first.month for r in rows])
    cube = space_time_cube(cells.locate(xy), step, len(cells), 12)
    expected = emerging_hotspots(cube, cells.lattice, time_window=1)
    assert [c["code"] for c in out["cells"]] == expected.category.tolist()
    assert [c["category"] for c in out["cells"]] == expected.names.tolist()
    assert sum(out["summary"]["categories"].values()) == int((expected.category != 0).sum())


# -- jobs ---------------------------------------------------------------------------------------------
def follow(client: TestClient, url: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = client.get(url).json()
        if doc["status"] not in ("accepted", "running"):
            return doc
        time.sleep(0.2)
    raise AssertionError(f"job not finished in {timeout} s: {doc}")


def test_async_job_to_success_with_results_as_a_layer(client: TestClient, latest: date, count) -> None:
    inputs = {
        "layer": "hazards",
        "period_start": f"{month_add(latest, -2):%Y-%m}",
        "period_end": f"{latest:%Y-%m}",
        "cell_size_m": 500,
        "weights": "k-nearest",
        "k": 8,
    }
    r = client.post(
        "/ogc/processes/hotspot-gistar/execution",
        json={"inputs": inputs},
        headers={"Prefer": "respond-async"},
    )
    assert r.status_code == 201, r.text
    job = r.json()
    assert r.headers["location"].endswith(f"/ogc/jobs/{job['jobID']}")
    assert job["status"] in ("accepted", "running", "successful") and job["processID"] == "hotspot-gistar"
    done = follow(client, r.headers["location"])
    assert done["status"] == "successful" and done["progress"] == 100 and done["finished"]
    assert any(link["rel"].endswith("/results") for link in done["links"])
    results = client.get(f"/ogc/jobs/{job['jobID']}/results").json()
    n = len(results["cells"])
    items = client.get(
        next(link["href"] for link in results["links"] if link["rel"] == "items") + "&limit=10000"
    )
    assert items.status_code == 200
    assert (
        items.json()["numberMatched"]
        == n
        == count("SELECT count(*) FROM pingan.job_cells WHERE job_id = CAST(:j AS uuid)", j=job["jobID"])
    )
    tiles = next(link["href"] for link in results["links"] if link["rel"].endswith("tilesets-vector"))
    tile = client.get(tiles.replace("{tileMatrix}/{tileRow}/{tileCol}", "10/406/853"))
    assert tile.status_code in (200, 204)
    listed = client.get("/ogc/jobs?limit=1000").json()
    assert job["jobID"] in {j["jobID"] for j in listed["jobs"]}
    with_audit = count(
        "SELECT count(*) FROM pingan.audit_log WHERE action = 'execute' AND object_type = 'process'"
        " AND details->>'job_id' = :j AND actor = 't-command'",
        j=job["jobID"],
    )
    assert with_audit == 1


def test_jobs_belong_to_their_owner(client: TestClient, logins, latest: date) -> None:
    inputs = {
        "layer": "cases",
        "period_start": f"{latest:%Y-%m}",
        "cell_size_m": 1000,
        "weights": "contiguity",
    }
    r = client.post(
        "/ogc/processes/hotspot-gistar/execution",
        json={"inputs": inputs},
        headers={"Prefer": "respond-async"},
    )
    job_id = r.json()["jobID"]
    follow(client, f"/ogc/jobs/{job_id}")
    analyst = as_role(client, logins, "analyst")
    for path in (f"/ogc/jobs/{job_id}", f"/ogc/jobs/{job_id}/results"):
        assert analyst.get(path).status_code == 404
    assert analyst.delete(f"/ogc/jobs/{job_id}").status_code == 404
    assert job_id not in {j["jobID"] for j in analyst.get("/ogc/jobs").json()["jobs"]}
    items = analyst.get(f"/ogc/collections/hotspot-results/items?job_id={job_id}").json()
    assert items["numberReturned"] == 0  # the cells are the owner's too
    admin = as_role(client, logins, "admin")
    assert admin.get(f"/ogc/jobs/{job_id}").json()["status"] == "successful"
    assert admin.get(f"/ogc/jobs/{job_id}/results").status_code == 200
    assert as_role(client, logins, "public").get("/ogc/jobs").status_code == 403
    # the owner dismisses it: results and cells are gone
    gone = client.delete(f"/ogc/jobs/{job_id}")
    assert gone.status_code == 200 and gone.json()["status"] == "dismissed"
    assert client.get(f"/ogc/jobs/{job_id}/results").status_code == 404
    assert client.get(f"/ogc/collections/hotspot-results/items?job_id={job_id}").json()["numberReturned"] == 0


def test_analyst_gets_aggregates_only_and_the_minimum_size(client: TestClient, logins, latest: date) -> None:
    analyst = as_role(client, logins, "analyst")
    assert analyst.get("/ogc/collections/hazards/items").status_code == 403  # still no individuals
    base = {
        "layer": "hazards",
        "period_start": f"{month_add(latest, -2):%Y-%m}",
        "period_end": f"{latest:%Y-%m}",
    }
    small = analyst.post(
        "/ogc/processes/hotspot-gistar/execution", json={"inputs": {**base, "cell_size_m": 150}}
    )
    assert small.status_code == 400 and "at least 200" in small.json()["description"]
    bw = analyst.post("/ogc/processes/kernel-density/execution", json={"inputs": {**base, "bandwidth_m": 50}})
    assert bw.status_code == 400 and "bandwidth_m" in bw.json()["description"]
    out = run_sync(analyst, "hotspot-gistar", {**base, "cell_size_m": 250, "weights": "contiguity"})
    assert {k for c in out["cells"] for k in c} == {"cell", "events", "z", "p", "p_fdr", "bin"}
    auto = run_sync(analyst, "hotspot-gistar", base)
    assert auto["summary"]["cell_size_m"] >= 200
    # the same call by the command centre may use smaller cells
    assert run_sync(client, "hotspot-gistar", {**base, "cell_size_m": 150, "weights": "contiguity"})["cells"]


def test_town_user_counts_only_its_town(
    client: TestClient, logins, demo_engine: Engine, latest: date
) -> None:
    town = logins["town"].areas[0]
    first = month_add(latest, -2)
    out = run_sync(
        as_role(client, logins, "town"),
        "hotspot-gistar",
        {
            "layer": "hazards",
            "period_start": f"{first:%Y-%m}",
            "period_end": f"{latest:%Y-%m}",
            "cell_size_m": 400,
            "weights": "contiguity",
        },
    )
    mine = len(owner_points(demo_engine, "hazards", first, latest, town=town))
    everyone = len(owner_points(demo_engine, "hazards", first, latest))
    assert out["summary"]["events"] == mine < everyone
    assert sum(c["events"] for c in out["cells"]) == out["summary"]["events_counted"] == mine
    assert out["summary"]["events_without_place"] == 0  # the demo places every event by coordinates


def test_restart_fails_the_jobs_of_a_dead_runner(
    client: TestClient, demo_engine: Engine, demo_service_url: str, logins
) -> None:
    from api.app import create_app
    from api.settings import ApiSettings
    from layers.settings import DatabaseSettings

    live = client.app.state.processes.runner_id
    with demo_engine.begin() as c:
        dead, alive = (
            c.execute(
                text(
                    "INSERT INTO pingan.jobs (id, process_id, owner, owner_role, mode, status, runner,"
                    " started) VALUES (gen_random_uuid(), 'hotspot-gistar', 't-command', 'command', 'async',"
                    " 'running', :r, now())"
                    " RETURNING id::text"
                ),
                {"r": r},
            ).scalar_one()
            for r in (live % (2**31 - 2) + 1, live)
        )
    app = create_app(ApiSettings(environment="test"), DatabaseSettings(database_url=demo_service_url))
    with TestClient(app, headers=logins["command"].headers) as restarted:
        failed = restarted.get(f"/ogc/jobs/{dead}").json()
        assert failed["status"] == "failed" and failed["message"].startswith("interrupted")
        assert restarted.get(f"/ogc/jobs/{alive}").json()["status"] == "running"  # its runner lives
        r = restarted.get(f"/ogc/jobs/{dead}/results")
        assert r.status_code == 400 and "interrupted" in r.json()["description"]
    with demo_engine.begin() as c:
        c.execute(text("UPDATE pingan.jobs SET status = 'failed' WHERE id = CAST(:a AS uuid)"), {"a": alive})


# -- bad input -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pid", "body", "status", "fragment"),
    [
        ("no-such", {"inputs": {}}, 404, "not found"),
        ("hotspot-gistar", b"{not json", 400, "JSON"),
        ("hotspot-gistar", [1, 2], 400, "JSON object"),
        ("hotspot-gistar", {"inputs": []}, 400, "'inputs'"),
        ("hotspot-gistar", {"inputs": {"layer": "persons", "period_start": "2024-01"}}, 400, "layer"),
        ("hotspot-gistar", {"inputs": {"layer": "hazards"}}, 400, "period_start"),
        ("hotspot-gistar", {"inputs": {"layer": "hazards", "period_start": "2024-13"}}, 400, "period_start"),
        ("hotspot-gistar", {"inputs": {"layer": "hazards", "period_start": 202401}}, 400, "expected str"),
        (
            "hotspot-gistar",
            {"inputs": {"layer": "hazards", "period_start": "2024-05", "period_end": "2024-01"}},
            400,
            "before",
        ),
        (
            "hotspot-gistar",
            {"inputs": {"layer": "hazards", "period_start": "2010-01", "period_end": "2024-01"}},
            400,
            "at most",
        ),
        (
            "hotspot-gistar",
            {"inputs": {"layer": "hazards", "period_start": "2024-01", "types": ["theft"]}},
            400,
            "theft",
        ),
        (
            "hotspot-gistar",
            {"inputs": {"layer": "hazards", "period_start": "2024-01", "area": "999999999"}},
            400,
            "area",
        ),
        (
            "hotspot-gistar",
            {"inputs": {"layer": "hazards", "period_start": "2024-01", "cell_size_m": 1}},
            400,
            "200,000",
        ),
        (
            "hotspot-gistar",
            {"inputs": {"layer": "hazards", "period_start": "2024-01", "cell_size_m": "big"}},
            400,
            "cell_size_m",
        ),
        (
            "hotspot-gistar",
            {"inputs": {"layer": "hazards", "period_start": "2024-01", "weights": "k-nearest"}},
            400,
            "'k'",
        ),
        (
            "hotspot-gistar",
            {"inputs": {"layer": "hazards", "period_start": "2024-01", "colour": "red"}},
            400,
            "unknown input",
        ),
        (
            "hotspot-local-moran",
            {"inputs": {"layer": "cases", "period_start": "2024-01", "permutations": 10**6}},
            400,
            "permutations",
        ),
        ("emerging-hotspots", {"inputs": {"layer": "cases", "period_start": "2024-01"}}, 400, "3 months"),
        (
            "kernel-density",
            {"inputs": {"layer": "cases", "period_start": "2024-01", "cell_size_m": 5}},
            400,
            "cell_size_m",
        ),
        (
            "kernel-density",
            {"inputs": {"layer": "cases", "period_start": "2024-01", "type_weights": {"gas": 2}}},
            400,
            "type_weights",
        ),
        ("index-compute", {"inputs": {"period": "May"}}, 400, "period"),
        ("patrol-plan", {"inputs": {"town": "3303"}}, 400, "town"),
        ("patrol-plan", {"inputs": {"town": "330304002", "sources": ["rumours"]}}, 400, "sources"),
    ],
)
def test_bad_execute_requests_are_client_errors(
    client: TestClient, pid: str, body, status: int, fragment: str
) -> None:
    kw = {"content": body} if isinstance(body, bytes) else {"json": body}
    r = client.post(f"/ogc/processes/{pid}/execution", **kw)
    assert r.status_code == status, r.text
    doc = r.json()
    assert set(doc) == {"code", "type", "description"} and fragment in doc["description"], doc


def test_unknown_jobs_and_bad_job_queries(client: TestClient) -> None:
    for path in (
        "/ogc/jobs/not-a-uuid",
        "/ogc/jobs/00000000-0000-0000-0000-000000000000",
        "/ogc/jobs/00000000-0000-0000-0000-000000000000/results",
    ):
        r = client.get(path)
        assert r.status_code == 404 and r.json()["code"] == "NoSuchJob"
    assert client.delete("/ogc/jobs/nope").status_code == 404
    for query in ("limit=0", "limit=x", "offset=-1", "status=done", "processID=nope"):
        assert client.get(f"/ogc/jobs?{query}").status_code == 400, query


def test_owslib_processes(server: str, logins, latest: date) -> None:
    from owslib.ogcapi.processes import Processes
    from owslib.util import Authentication

    login = logins["command"]
    api = Processes(f"{server}/ogc", auth=Authentication(login.name, login.password))
    assert {p["id"] for p in api.processes()} == PROCESS_IDS
    assert api.process("emerging-hotspots")["inputs"]["time_window"]["schema"]["maximum"] == 12
    done = api.execute(
        "hotspot-gistar",
        {
            "layer": "cases",
            "period_start": f"{month_add(latest, -2):%Y-%m}",
            "period_end": f"{latest:%Y-%m}",
            "cell_size_m": 1500,
            "weights": "contiguity",
        },
    )
    assert len(done["cells"]) == done["summary"]["cells"] > 0


# -- processes that write other helpers' tables (rasters, patrol plans, the index) -------------------
def test_kernel_density_stores_the_density_of_the_same_events(
    client: TestClient, demo_engine: Engine, latest: date
) -> None:
    import rasterio
    from rasterio.io import MemoryFile

    from gis.hotspots import kernel_density
    from layers.rasters import read_cog

    out = run_sync(
        client,
        "kernel-density",
        {"layer": "hazards", "period_start": f"{latest:%Y-%m}", "bandwidth_m": 500, "cell_size_m": 100},
    )
    xy = np.array([r[:2] for r in owner_points(demo_engine, "hazards", latest, latest)], float)
    with demo_engine.connect() as c:
        expected = kernel_density(xy, extent=area_mask(c).bounds, cell_size=100, bandwidth=500.0)
        cog = read_cog(c, out["raster"]["id"])
    with MemoryFile(cog) as mem, mem.open() as src:
        assert isinstance(src, rasterio.io.DatasetReader)
        assert np.allclose(src.read(1), expected.values.astype("float32"), rtol=1e-5, atol=1e-12)
    assert any(link["href"].endswith("/cog.tif") for link in out["links"])
    # dismissed, the job takes its raster with it (migration 0019)
    with demo_engine.connect() as c:
        job_id = c.execute(text("SELECT job_id FROM pingan.rasters WHERE id = :i"),
                           {"i": out["raster"]["id"]}).scalar_one()
    assert client.get(f"/api/rasters/{out['raster']['id']}").status_code == 200
    assert client.delete(f"/ogc/jobs/{job_id}").status_code == 200
    assert client.get(f"/api/rasters/{out['raster']['id']}").status_code == 404
    with demo_engine.connect() as c:
        left = c.execute(text("SELECT count(*) FROM pingan.rasters WHERE job_id = :j"), {"j": job_id})
        assert left.scalar_one() == 0


def test_patrol_plan_saves_a_plan(client: TestClient, demo_engine: Engine, logins) -> None:
    town = logins["town"].areas[0]
    out = run_sync(client, "patrol-plan", {"town": town, "teams": 2, "time_limit_s": 1})
    with demo_engine.connect() as c:
        stored = c.execute(
            text("SELECT teams, stops_visited FROM pingan.patrol_plans WHERE id = :i"),
            {"i": out["plan"]["id"]},
        ).one()
    assert stored.teams == len(out["plan"]["teams"])
    assert stored.stops_visited == sum(t["stops"] for t in out["plan"]["teams"])


def test_patrol_plan_visits_hot_spots_of_its_town(client: TestClient, demo_engine: Engine, logins) -> None:
    """The current hot-spot cells are stops (a month far ahead is the latest: the demo test
    database computes none); the plan belongs to the town it was asked for."""
    town, period = logins["town"].areas[0], date(2099, 2, 1)
    with demo_engine.begin() as c:
        c.execute(text(
            "INSERT INTO pingan.hotspot_runs (layer, period, method, window_months, cell_side_m, n_cells,"
            " n_events, n_hot, n_cold) VALUES ('hazards', :p, 'test', 3, 150, 4, 12, 4, 0)"), {"p": period})
        c.execute(text(
            "INSERT INTO pingan.hotspot_cells (layer, period, cell, events, z, p, p_fdr, bin, geom)"
            " SELECT 'hazards', :p, '800,' || n, 3, 3.0, 0.001, 0.01, 3,"
            " ST_Multi(ST_Buffer(geom, 0.0012, 3))"
            " FROM (SELECT geom, row_number() OVER (ORDER BY id) AS n FROM pingan.hazards"
            " WHERE town_code = :t) h WHERE n <= 4"), {"p": period, "t": town})
    try:
        out = run_sync(client, "patrol-plan",
                       {"town": town, "teams": 1, "time_limit_s": 1, "sources": ["hotspots"]})
        with demo_engine.connect() as c:
            plan_town = c.execute(text("SELECT town_code FROM pingan.patrol_plans WHERE id = :i"),
                                  {"i": out["plan"]["id"]}).scalar_one()
            kinds = c.execute(text("SELECT kind, count(*) FROM pingan.patrol_stops WHERE plan_id = :i"
                                   " GROUP BY 1"), {"i": out["plan"]["id"]}).all()
        assert plan_town == town
        assert dict(kinds) == {"hotspot": 4}  # every hot cell of the town, nothing else asked for
        assert out["plan"]["candidates"] == 4
    finally:
        with demo_engine.begin() as c:
            c.execute(text("DELETE FROM pingan.hotspot_runs WHERE period = :p"), {"p": period})


def test_index_compute_for_command_only(
    client: TestClient, demo_engine: Engine, logins, latest: date
) -> None:
    r = as_role(client, logins, "town").post(
        "/ogc/processes/index-compute/execution", json={"inputs": {"period": f"{latest:%Y-%m}"}}
    )
    assert r.status_code == 403
    from etl.refresh import refresh

    derived = ("monthly_stats", "index_warning_events", "index_warnings", "index_months")
    with demo_engine.connect() as c:
        empty = {t: not c.execute(text(f"SELECT EXISTS (SELECT 1 FROM pingan.{t})")).scalar_one()  # noqa: S608
                 for t in derived}
    refresh(demo_engine, full=True)  # the index reads the monthly statistics (the owner's ETL job)
    try:
        _index_compute_as_command(client, demo_engine, latest)
    finally:  # the session's demo database goes back to how other modules found it
        with demo_engine.begin() as c:
            for t in derived:
                if empty[t]:
                    c.execute(text(f"DELETE FROM pingan.{t}"))  # noqa: S608 - fixed names


def _index_compute_as_command(client: TestClient, demo_engine: Engine, latest: date) -> None:
    version = "SELECT coalesce(max(version), 0) FROM pingan.layer_versions WHERE layer_id = 'index-villages'"
    with demo_engine.connect() as c:
        before = c.execute(text(version)).scalar_one()
    out = run_sync(client, "index-compute", {"period": f"{latest:%Y-%m}"})
    with demo_engine.connect() as c:
        places = c.execute(text(
            "SELECT (SELECT count(*) FROM pingan.villages) + (SELECT count(*) FROM pingan.towns)"
        )).scalar_one()
        stored = c.execute(text("SELECT count(*) FROM pingan.index_scores WHERE period = :p"),
                           {"p": latest.replace(day=1)}).scalar_one()
        after = c.execute(text(version)).scalar_one()
    # every village and town scored for the month, as the caller, and the tiles' version renewed
    assert out["summary"]["rows"] == stored == places
    assert after > before
