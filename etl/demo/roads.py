"""The demo district's street network (network ``demo``): a pgRouting graph that fits its towns.

A jittered lattice of streets (:data:`SPACING` metres) is laid over the district in the local
metric frame (:func:`etl.demo.geometry.to_metric`); every fifth line is an arterial
(``secondary``), the others are ``residential`` streets, thinned where settlement is sparse (the
mountains of the west). A street is kept only where it runs inside the district. Then:

- each town's streets are made one connected network: every piece cut off by the town's shape
  is joined to the town's main network by a ``tertiary`` link between their nearest crossings;
- each pair of neighbouring towns is joined: when no lattice street crosses their border, a
  ``primary`` link joins their nearest crossings;
- whatever is still apart (it should not be) is joined to the largest network the same way.

So a route exists between any two crossings of the district, and every crossing lies inside it.
Vertex ids are 1..n in lattice order; costs are metres in both directions (no one-way streets).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from etl.demo import geometry

NETWORK = "demo"
SPACING = 300.0  # metres between lattice streets
JITTER = 0.15  # of SPACING: crossings move this much at most, so streets are not ruler-straight
ARTERIAL_EVERY = 5


def _components(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _nearest_pair(xy: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    """The closest (node of a, node of b)."""
    dist, idx = cKDTree(xy[b]).query(xy[a])
    i = int(np.argmin(dist))
    return int(a[i]), int(b[idx[i]])


def _join(xy: np.ndarray, label: np.ndarray, members: np.ndarray, links: list) -> None:
    """Link every component among ``members`` to the largest one (nearest nodes), in place."""
    comps, sizes = np.unique(label[members], return_counts=True)
    if len(comps) < 2:
        return
    main = members[label[members] == comps[np.argmax(sizes)]]
    for c in comps[comps != comps[np.argmax(sizes)]]:
        links.append(_nearest_pair(xy, members[label[members] == c], main))


def street_network(towns: gpd.GeoDataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Vertices (id, network, geom) and edges (network, source, target, name, highway, length_m,
    cost, reverse_cost, foot, bicycle, car, geom) of the demo network, EPSG:4490 geometries."""
    rng = np.random.default_rng([seed, 501])
    town_m = np.array([geometry._apply(geometry.to_metric, g) for g in towns.geometry], dtype=object)
    district = shapely.buffer(shapely.union_all(town_m), 1.0)  # 1 m: streets along the edge stay
    shapely.prepare(district)
    shapely.prepare(town_m)
    x0, y0, x1, y1 = district.bounds
    nx, ny = int((x1 - x0) // SPACING) + 2, int((y1 - y0) // SPACING) + 2
    ii, jj = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    x = x0 + ii.ravel() * SPACING + rng.uniform(-JITTER, JITTER, ii.size) * SPACING
    y = y0 + jj.ravel() * SPACING + rng.uniform(-JITTER, JITTER, ii.size) * SPACING
    pts = shapely.points(x, y)
    tree = shapely.STRtree(town_m)
    hit_pt, hit_town = tree.query(pts, predicate="within")
    town_of = np.full(ii.size, -1)
    town_of[hit_pt[::-1]] = hit_town[::-1]  # a point on a shared border: the first town
    # lattice neighbours: east and north
    lattice = np.arange(ii.size).reshape(nx, ny)
    pairs = np.concatenate([
        np.column_stack([lattice[:-1, :].ravel(), lattice[1:, :].ravel()]),
        np.column_stack([lattice[:, :-1].ravel(), lattice[:, 1:].ravel()]),
    ])
    arterial = np.concatenate([
        (jj[:-1, :].ravel() % ARTERIAL_EVERY) == 0,  # east-west street on an arterial row
        (ii[:, :-1].ravel() % ARTERIAL_EVERY) == 0,
    ])
    keep = (town_of[pairs[:, 0]] >= 0) & (town_of[pairs[:, 1]] >= 0)
    pairs, arterial = pairs[keep], arterial[keep]
    segs = shapely.linestrings(np.stack([np.column_stack([x[pairs[:, 0]], y[pairs[:, 0]]]),
                                         np.column_stack([x[pairs[:, 1]], y[pairs[:, 1]]])], axis=1))
    inside = shapely.covered_by(segs, district)
    mx, my = (x[pairs[:, 0]] + x[pairs[:, 1]]) / 2, (y[pairs[:, 0]] + y[pairs[:, 1]]) / 2
    dense = np.clip(0.6 + geometry.density(mx, my), 0.6, 1.0)  # sparse hills, fewer streets
    keep = inside & (arterial | (rng.random(len(pairs)) < dense))
    pairs, arterial = pairs[keep], arterial[keep]
    # the vertices: lattice points inside a town, renumbered 0..n-1
    used = np.flatnonzero(town_of >= 0)
    new = np.full(ii.size, -1)
    new[used] = np.arange(len(used))
    xy, town = np.column_stack([x[used], y[used]]), town_of[used]
    src, dst = new[pairs[:, 0]], new[pairs[:, 1]]
    kind = np.where(arterial, "secondary", "residential").astype(object)
    links: list[tuple[int, int]] = []
    # 1. connected within each town (streets between two nodes of the town)
    same = town[src] == town[dst]
    label = _components(len(xy), src[same], dst[same])
    for t in range(len(towns)):
        _join(xy, label, np.flatnonzero(town == t), links)
    n_town_links = len(links)
    # 2. neighbouring towns are joined
    crossing = {(min(a, b), max(a, b)) for a, b in zip(town[src], town[dst], strict=True) if a != b}
    left, right = tree.query(town_m, predicate="touches")
    for a, b in {(min(p, q), max(p, q)) for p, q in zip(left, right, strict=True) if p != q} - crossing:
        links.append(_nearest_pair(xy, np.flatnonzero(town == a), np.flatnonzero(town == b)))
    # 3. anything still apart joins the largest network
    all_src = np.concatenate([src, [a for a, _ in links]]).astype(int)
    all_dst = np.concatenate([dst, [b for _, b in links]]).astype(int)
    _join(xy, _components(len(xy), all_src, all_dst), np.arange(len(xy)), links)
    link_kind = ["tertiary"] * n_town_links + ["primary"] * (len(links) - n_town_links)
    src = np.concatenate([src, [a for a, _ in links]]).astype(np.int64)
    dst = np.concatenate([dst, [b for _, b in links]]).astype(np.int64)
    kind = np.concatenate([kind, np.array(link_kind, dtype=object)])
    length = np.hypot(*(xy[src] - xy[dst]).T)
    lon, lat = geometry.to_lonlat(xy[:, 0], xy[:, 1])
    ll = np.column_stack([lon, lat])
    vertices = pd.DataFrame({"id": np.arange(1, len(xy) + 1, dtype=np.int64), "network": NETWORK,
                             "geom": shapely.points(ll)})
    edges = pd.DataFrame({
        "network": NETWORK, "source": src + 1, "target": dst + 1, "name": None, "highway": kind,
        "length_m": length, "cost": length, "reverse_cost": length, "foot": True, "bicycle": True,
        "car": True, "geom": shapely.linestrings(np.stack([ll[src], ll[dst]], axis=1)),
    })
    return vertices, edges
