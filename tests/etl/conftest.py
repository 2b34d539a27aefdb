"""ETL test helpers; the shared ``demo_engine`` fixture lives in tests/conftest.py."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import text

from etl.demo.samples import areas_export
from etl.pipeline import load_file
from gis.datum import wgs84_to_gcj02
from layers import migrate
from layers.db import make_engine
from layers.settings import DatabaseSettings
from tests.demo import DIVISIONS, TEST_KEY, demo_params, load  # noqa: F401 - imported by tests


def demo_areas(engine, layer: str) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(text(
            f"SELECT code, name, population, households, ST_AsBinary(geom) AS wkb "  # noqa: S608
            f"FROM pingan.{layer} ORDER BY code")).all()
    return pd.DataFrame({
        "code": [r.code for r in rows], "name": [r.name for r in rows],
        "population": [r.population for r in rows], "households": [r.households for r in rows],
        "geom": shapely.from_wkb([bytes(r.wkb) for r in rows]),
    })


@pytest.fixture(scope="session")
def area_files(demo_engine, tmp_path_factory) -> dict[str, Path]:
    """The demo district's boundaries as offices send them: towns as GeoJSON (WGS84), villages
    as a GeoPackage in GCJ-02 (高德, said by a 坐标系 column), grids as a zipped Shapefile in the
    CGCS2000 Gauss-Krüger zone CM 120E (EPSG:4549) with a GBK .dbf and no .cpg."""
    folder = tmp_path_factory.mktemp("areas")
    towns = areas_export(demo_areas(demo_engine, "towns"), "towns").set_crs("EPSG:4326", allow_override=True)
    towns.to_file(folder / "towns.geojson", driver="GeoJSON")
    villages = areas_export(demo_areas(demo_engine, "villages"), "villages")
    villages["geometry"] = shapely.transform(
        villages.geometry.to_numpy(), lambda c: np.column_stack(wgs84_to_gcj02(c[:, 0], c[:, 1])))
    villages["坐标系"] = "高德"
    villages.set_crs("EPSG:4326", allow_override=True).to_file(folder / "villages.gpkg", driver="GPKG")
    grids = areas_export(demo_areas(demo_engine, "grids"), "grids").to_crs("EPSG:4549")
    shp = folder / "shp"
    shp.mkdir()
    grids.to_file(shp / "grids.shp", driver="ESRI Shapefile", encoding="GBK")
    with zipfile.ZipFile(folder / "grids.zip", "w") as zf:
        for p in sorted(shp.iterdir()):
            if p.suffix != ".cpg":  # GDAL writes one; many offices' tools do not
                zf.write(p, p.name)
    return {"towns": folder / "towns.geojson", "villages": folder / "villages.gpkg",
            "grids": folder / "grids.zip"}


@pytest.fixture(scope="session")
def areas_engine(databases, area_files):
    """A fresh database whose towns, villages and grids were loaded by `pingan etl load`."""
    engine = make_engine(DatabaseSettings(database_url=databases.create()))
    migrate.upgrade(engine)
    engine.area_results = {  # type: ignore[attr-defined]
        layer: load_file(engine, area_files[layer], layer, source="bureau")
        for layer in ("towns", "villages", "grids")
    }
    yield engine
    engine.dispose()

