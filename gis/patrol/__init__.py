"""Patrol planning (issue 9): routes for several teams through the places that need a patrol.

Pure computation on a distance matrix: :func:`solve` (OR-Tools: depots, shifts, travel modes,
service times, optional stops priced by priority), :func:`greedy` (the nearest-neighbour
baseline) and the exports for patrol devices (:func:`export`: GPX 1.1, KML, GeoJSON, CSV in
WGS84 or GCJ-02). The road network, snapping and the matrices come from ``layers.patrol``.
"""

from gis.patrol.export import DATUMS, FORMATS, ExportError, PlanGeometry, export, to_datum
from gis.patrol.greedy import greedy
from gis.patrol.model import MODES, Dropped, PatrolError, Plan, Route, Stop, Team, Visit, parse_shift
from gis.patrol.solve import Options, solve

__all__ = [
    "DATUMS",
    "FORMATS",
    "MODES",
    "Dropped",
    "ExportError",
    "Options",
    "PatrolError",
    "Plan",
    "PlanGeometry",
    "Route",
    "Stop",
    "Team",
    "Visit",
    "export",
    "greedy",
    "parse_shift",
    "solve",
    "to_datum",
]
