"""`pingan etl roads FILE.osm.pbf`: an OpenStreetMap extract as a pgRouting network.

pyrosm reads the PBF (no osm2pgrouting mapconfig, no .osm XML step) into edges between OSM
nodes; OSM node ids become vertex ids, so a network is self-consistent without a topology
build. Costs are metres: ``cost`` along the way, ``reverse_cost`` back or -1 for one-way
streets (pgRouting's convention). Each load replaces the named network in one transaction.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import Engine, text

from layers import versions
from layers.copy import copy_frame
from layers.db import SYSTEM, set_principal

NO_CAR = {"footway", "path", "pedestrian", "steps", "cycleway", "bridleway", "track", "corridor"}
NO_FOOT = {"motorway", "motorway_link", "trunk", "trunk_link"}
ONEWAY_YES = {"yes", "true", "1"}


@dataclass(frozen=True)
class RoadsResult:
    network: str
    vertices: int
    edges: int


def read_pbf(path: Path) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Nodes and edges of every way a person, bicycle or car can use."""
    import pyrosm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyrosm's pandas/shapely deprecation chatter
        try:
            nodes, edges = pyrosm.OSM(str(path)).get_network(network_type="all", nodes=True)
        except Exception as exc:  # pyrosm raises several types for a bad file
            raise ValueError(f"{path.name}: not a readable OSM PBF extract ({type(exc).__name__})") from None
    if edges is None or len(edges) == 0:
        raise ValueError(f"{path.name}: no roads in this extract")
    return nodes, edges


def edge_frame(edges: gpd.GeoDataFrame, network: str) -> pd.DataFrame:
    highway = edges["highway"].astype(str)
    oneway = (
        edges["oneway"].astype(str).str.lower() if "oneway" in edges else pd.Series("", index=edges.index)
    )
    backwards = oneway == "-1"  # drawn against the direction of travel
    source = np.where(backwards, edges["v"], edges["u"]).astype("int64")
    target = np.where(backwards, edges["u"], edges["v"]).astype("int64")
    geom = edges.geometry.where(~backwards, edges.geometry.reverse())
    length = edges["length"].astype(float).to_numpy()
    one_way = oneway.isin(ONEWAY_YES) | backwards
    return pd.DataFrame(
        {
            "network": network,
            "source": source,
            "target": target,
            "osm_id": pd.to_numeric(edges["id"], errors="coerce").astype("Int64"),
            "name": edges.get("name"),
            "highway": highway,
            "length_m": length,
            "cost": length,
            "reverse_cost": np.where(one_way, -1.0, length),
            "foot": ~highway.isin(NO_FOOT),
            "bicycle": ~highway.isin(NO_FOOT),
            "car": ~highway.isin(NO_CAR),
            "geom": geom.to_numpy(),
        }
    )


def load_roads(engine: Engine, path: Path, network: str | None = None) -> RoadsResult:
    """Replace network ``network`` (default: the file's stem) with the roads of ``path``."""
    network = network or path.name.split(".")[0]
    nodes, edges = read_pbf(path)
    frame = edge_frame(edges, network)
    frame = frame[frame["geom"].notna()]
    used = np.unique(np.concatenate([frame["source"].to_numpy(), frame["target"].to_numpy()]))
    nodes = nodes.assign(id=nodes["id"].astype("int64")).drop_duplicates("id").set_index("id")
    vertices = pd.DataFrame({"id": used, "network": network, "geom": nodes.geometry.reindex(used).to_numpy()})
    if vertices["geom"].isna().any():
        raise ValueError(f"{path.name}: {int(vertices['geom'].isna().sum())} road nodes have no position")
    with engine.begin() as conn:
        set_principal(conn, SYSTEM)
        batch = conn.execute(
            text(
                "INSERT INTO pingan.etl_batches (source, layer, file_name) "
                "VALUES ('osm', 'roads', :f) RETURNING id"
            ),
            {"f": path.name},
        ).scalar_one()
        conn.execute(text("DELETE FROM pingan.road_edges WHERE network = :n"), {"n": network})
        conn.execute(text("DELETE FROM pingan.road_vertices WHERE network = :n"), {"n": network})
        copy_frame(conn, "pingan.road_vertices", vertices)
        copy_frame(conn, "pingan.road_edges", frame.assign(batch_id=batch))
        conn.execute(
            text(
                "UPDATE pingan.etl_batches SET status = 'done', finished_at = clock_timestamp(), "
                "n_read = :n, "
                "n_loaded = :n WHERE id = :b"
            ),
            {"n": len(frame), "b": batch},
        )
        versions.bump(conn, ["roads"])
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text("ANALYZE pingan.road_edges"))
        conn.execute(text("ANALYZE pingan.road_vertices"))
    return RoadsResult(network, len(vertices), len(frame))
