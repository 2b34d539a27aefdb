"""Monthly hot spots stored by the refresh (etl/hotspots.py) on the demo district."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import Engine, text

from etl.hotspots import METRIC_SRID, latest_periods, refresh_hotspots
from gis.hotspots.gistar import gi_star
from gis.hotspots.weights import contiguity
from layers.db import make_engine
from layers.settings import DatabaseSettings


@pytest.fixture(scope="module")
def district(databases) -> Iterator[Engine]:
    eng = make_engine(DatabaseSettings(database_url=databases.demo()))
    yield eng
    eng.dispose()


def test_refresh_stores_gi_star_that_recomputes_from_the_stored_cells(district: Engine) -> None:
    runs = refresh_hotspots(district)
    latest = latest_periods(district)
    assert {(r.layer, r.period) for r in runs} == set(latest.items())
    with district.connect() as c:
        rows = c.execute(text(
            "SELECT events, z, bin, ST_AsBinary(ST_Transform(geom, :srid)) FROM pingan.hotspot_cells"
            " WHERE layer = 'hazards' AND period = :p ORDER BY cell"),
            {"srid": METRIC_SRID, "p": latest["hazards"]}).all()
        start = (pd.Timestamp(latest["hazards"]) - pd.DateOffset(months=2)).date()  # a 3-month window
        in_window = c.execute(text(
            "SELECT count(*) FROM pingan.hazards WHERE found_at >= :s"
            " AND found_at < (:p + interval '1 month')"), {"s": start, "p": latest["hazards"]}).scalar_one()
    events = np.array([r[0] for r in rows], dtype=float)
    assert events.sum() == in_window  # every event of the window in exactly one cell
    # independent weights: queen contiguity of the stored polygons (the hexagons' lattice)
    polygons = shapely.from_wkb([bytes(r[3]) for r in rows])
    polygons = np.array([shapely.set_precision(p, 0.01) for p in polygons])
    again = gi_star(events, contiguity(polygons, "queen"), fdr=True)
    stored_z = np.array([np.nan if r[1] is None else r[1] for r in rows])
    assert np.allclose(again.z, stored_z, atol=1e-6, equal_nan=True)
    bins = np.array([r[2] for r in rows])
    assert (bins == again.bins).all()
    assert (bins > 0).any()  # the demo's clusters are found
    assert events[bins == 3].mean() > 3 * events[bins == 0].mean()


def test_refresh_again_replaces_the_month(district: Engine) -> None:
    refresh_hotspots(district)
    with district.connect() as c:
        before = c.execute(text("SELECT count(*), sum(events) FROM pingan.hotspot_cells")).one()
        version = c.execute(text(
            "SELECT version FROM pingan.layer_versions WHERE layer_id = 'hotspots'")).scalar_one()
    refresh_hotspots(district)
    with district.connect() as c:
        assert c.execute(text("SELECT count(*), sum(events) FROM pingan.hotspot_cells")).one() == before
        assert c.execute(text(
            "SELECT version FROM pingan.layer_versions WHERE layer_id = 'hotspots'")).scalar_one() > version


def test_latest_view_shows_each_layers_newest_month(district: Engine) -> None:
    latest = latest_periods(district)
    earlier = {layer: [date(p.year - 1, p.month, 1)] for layer, p in latest.items()}
    refresh_hotspots(district, earlier)
    with district.connect() as c:
        shown = dict(c.execute(text(
            "SELECT layer, max(period) FROM pingan.hotspots_latest GROUP BY 1")).all())
        months = c.execute(text("SELECT count(DISTINCT period) FROM pingan.hotspot_cells")).scalar_one()
    assert shown == latest and months == 2


def test_served_as_a_collection_with_its_month(district: Engine, databases) -> None:
    """A layer whose datetime property is a date (hot spots, the index) gets a temporal extent
    (a date column once made every collection answer 500)."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.auth import store
    from api.settings import ApiSettings
    from layers.settings import DatabaseSettings
    from tests.conftest import Login

    refresh_hotspots(district)
    login = Login("hs-command", "a-long-enough-password", "command", ())
    with district.begin() as c:
        store.add_user(c, store.Actor("tests"), login.name, "command", [], login.password)
    url = databases.service_url(district.url.render_as_string(hide_password=False))
    app = create_app(ApiSettings(environment="test"), DatabaseSettings(database_url=url))
    with TestClient(app, headers=login.headers) as client:
        doc = client.get("/ogc/collections/hotspots").json()
        latest = max(latest_periods(district).values())
        assert doc["extent"]["temporal"]["interval"][0][1].startswith(latest.isoformat())
        items = client.get("/ogc/collections/hotspots/items", params={"limit": 10, "bin": 3}).json()
        assert items["numberReturned"] > 0 and all(f["properties"]["bin"] == 3 for f in items["features"])
        assert client.get("/ogc/collections/index-villages").status_code == 200
