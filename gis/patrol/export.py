"""Patrol plans for the devices patrols carry: GPX 1.1, KML 2.2, GeoJSON and CSV.

Coordinates come in CGCS2000 (the database's datum; treated as WGS84, see ``gis.datum``) and
go out in the datum the device expects: ``wgs84`` for GPS receivers and GPX tools, ``gcj02``
for phone apps on Amap (高德) or Tencent maps, whose base maps are drawn in GCJ-02 — a WGS84
point shown on them lands some hundreds of metres off. Every file says which datum it is in.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from xml.etree import ElementTree as ET  # noqa: S405 - we only write XML here, never parse it

import numpy as np
import numpy.typing as npt

from gis import datum as gd
from gis.patrol.model import Plan, Route, Visit

FORMATS = ("gpx", "kml", "geojson", "csv")
DATUMS = ("wgs84", "gcj02")
GPX_NS = "http://www.topografix.com/GPX/1/1"
KML_NS = "http://www.opengis.net/kml/2.2"
CREATOR = "Pingan Map patrol planner"
DIGITS = 7  # 1e-7 degrees: about a centimetre


class ExportError(ValueError):
    """An unknown format or datum, or coordinates missing for a node."""


@dataclass(frozen=True)
class PlanGeometry:
    """A plan with its places: ``coords[node]`` is (lon, lat) in CGCS2000; ``tracks[team id]`` the
    route along the roads ((m, 2) lon/lat; straight lines between the visits when absent);
    ``origin`` the aware datetime that plan seconds count from (the day's local midnight)."""

    plan: Plan
    coords: npt.NDArray[np.float64]
    origin: datetime
    tracks: Mapping[str, npt.NDArray[np.float64]] = field(default_factory=dict)
    title: str = "patrol plan"

    @property
    def moving(self) -> tuple[Route, ...]:
        """The routes that visit something (a team with no stop stays at its depot: no line)."""
        return tuple(r for r in self.plan.routes if r.stops)

    def track(self, route: Route) -> npt.NDArray[np.float64]:
        got = self.tracks.get(route.team.id)
        if got is not None and len(got) >= 2:
            return np.asarray(got, np.float64)
        return self.coords[route.nodes]

    def when(self, seconds: float) -> datetime:
        return self.origin + timedelta(seconds=round(seconds))


def to_datum(lonlat: npt.ArrayLike, datum: str) -> npt.NDArray[np.float64]:
    """(m, 2) CGCS2000/WGS84 lon/lat to ``datum`` (``wgs84`` or ``gcj02``)."""
    xy = np.asarray(lonlat, np.float64).reshape(-1, 2)
    if datum == "wgs84":
        return xy.copy()
    if datum == "gcj02":
        return np.column_stack(gd.wgs84_to_gcj02(xy[:, 0], xy[:, 1]))
    raise ExportError(f"unknown output datum {datum!r}: {' or '.join(DATUMS)}")


def _label(v: Visit, route: Route, last: bool) -> str:
    if v.stop is not None:
        return v.stop.name or v.stop.id
    team = route.team.name or route.team.id
    return f"{team} {'终点 end' if last else '起点 start'}"


def _fmt(x: float) -> str:
    return f"{x:.{DIGITS}f}"


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = text
    return el


def to_gpx(geo: PlanGeometry, datum: str = "wgs84") -> str:
    """GPX 1.1: a waypoint per stop, and per team a route (its visits in order) and a track
    (the road geometry). GPX is defined on WGS84; a GCJ-02 file says so in its description."""
    ET.register_namespace("", GPX_NS)
    q = f"{{{GPX_NS}}}"
    root = ET.Element(f"{q}gpx", {"version": "1.1", "creator": CREATOR})
    meta = _sub(root, f"{q}metadata")
    _sub(meta, f"{q}name", geo.title)
    _sub(meta, f"{q}desc", f"datum: {datum}; solver: {geo.plan.solver}; status: {geo.plan.status}")
    routes = geo.plan.routes
    for r in routes:
        xy = to_datum(geo.coords[[v.node for v in r.stops]], datum)
        for (lon, lat), v in zip(xy, r.stops, strict=True):
            w = _sub(root, f"{q}wpt", lat=_fmt(lat), lon=_fmt(lon))
            _sub(w, f"{q}time", _iso(geo.when(v.arrival_s)))
            _sub(w, f"{q}name", _label(v, r, False))
            _sub(w, f"{q}desc", f"{r.team.name or r.team.id}; {v.stop.kind}; priority {v.stop.priority:g}")
            _sub(w, f"{q}type", v.stop.kind)
    for i, r in enumerate(routes):
        rte = _sub(root, f"{q}rte")
        _sub(rte, f"{q}name", r.team.name or r.team.id)
        _sub(rte, f"{q}desc", f"{r.team.mode}; {r.length_m / 1000:.2f} km; {r.duration_s / 60:.0f} min")
        _sub(rte, f"{q}number", str(i + 1))
        xy = to_datum(geo.coords[r.nodes], datum)
        for k, ((lon, lat), v) in enumerate(zip(xy, r.visits, strict=True)):
            p = _sub(rte, f"{q}rtept", lat=_fmt(lat), lon=_fmt(lon))
            _sub(p, f"{q}time", _iso(geo.when(v.arrival_s)))
            _sub(p, f"{q}name", _label(v, r, k == len(r.visits) - 1))
    for i, r in enumerate(routes):
        if not r.stops:
            continue
        trk = _sub(root, f"{q}trk")
        _sub(trk, f"{q}name", r.team.name or r.team.id)
        _sub(trk, f"{q}number", str(i + 1))
        seg = _sub(trk, f"{q}trkseg")
        for lon, lat in to_datum(geo.track(r), datum):
            _sub(seg, f"{q}trkpt", lat=_fmt(lat), lon=_fmt(lon))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def to_kml(geo: PlanGeometry, datum: str = "wgs84") -> str:
    """KML 2.2: a folder per team with its route line and its stops in order."""
    ET.register_namespace("", KML_NS)
    q = f"{{{KML_NS}}}"
    root = ET.Element(f"{q}kml")
    doc = _sub(root, f"{q}Document")
    _sub(doc, f"{q}name", geo.title)
    _sub(doc, f"{q}description", f"datum: {datum}; solver: {geo.plan.solver}; status: {geo.plan.status}")
    for r in geo.moving:  # a team without stops has nothing to show on the map
        folder = _sub(doc, f"{q}Folder")
        _sub(folder, f"{q}name", r.team.name or r.team.id)
        line = _sub(folder, f"{q}Placemark")
        _sub(line, f"{q}name", f"{r.team.name or r.team.id} route")
        _sub(
            line, f"{q}description", f"{r.team.mode}; {r.length_m / 1000:.2f} km; {r.duration_s / 60:.0f} min"
        )
        ls = _sub(line, f"{q}LineString")
        _sub(ls, f"{q}tessellate", "1")
        _sub(
            ls, f"{q}coordinates", " ".join(f"{_fmt(x)},{_fmt(y)}" for x, y in to_datum(geo.track(r), datum))
        )
        xy = to_datum(geo.coords[[v.node for v in r.stops]], datum)
        for k, ((lon, lat), v) in enumerate(zip(xy, r.stops, strict=True)):
            pm = _sub(folder, f"{q}Placemark")
            _sub(pm, f"{q}name", f"{k + 1}. {_label(v, r, False)}")
            _sub(pm, f"{q}description", f"{v.stop.kind}; priority {v.stop.priority:g}")
            _sub(_sub(pm, f"{q}TimeStamp"), f"{q}when", _iso(geo.when(v.arrival_s)))  # KML order
            _sub(_sub(pm, f"{q}Point"), f"{q}coordinates", f"{_fmt(lon)},{_fmt(lat)}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def to_geojson(geo: PlanGeometry, datum: str = "wgs84") -> str:
    """A FeatureCollection: a LineString per team route and a Point per visited stop.

    RFC 7946 GeoJSON is WGS84; a GCJ-02 file is for Amap-based apps only, and says so in
    its ``datum`` member."""
    features = []
    for r in geo.moving:
        track = to_datum(geo.track(r), datum).round(DIGITS)
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": track.tolist()},
                "properties": {
                    "kind": "route",
                    "team": r.team.id,
                    "team_name": r.team.name,
                    "mode": r.team.mode,
                    "stops": len(r.stops),
                    "length_m": round(r.length_m, 1),
                    "duration_s": round(r.duration_s),
                    "start": _iso(geo.when(r.visits[0].departure_s)),
                    "end": _iso(geo.when(r.visits[-1].arrival_s)),
                },
            }
        )
        xy = to_datum(geo.coords[[v.node for v in r.stops]], datum).round(DIGITS)
        for k, (p, v) in enumerate(zip(xy, r.stops, strict=True)):
            features.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": p.tolist()},
                    "properties": {
                        "kind": "stop",
                        "team": r.team.id,
                        "seq": k + 1,
                        "stop_id": v.stop.id,
                        "name": v.stop.name,
                        "stop_kind": v.stop.kind,
                        "priority": v.stop.priority,
                        "arrival": _iso(geo.when(v.arrival_s)),
                        "departure": _iso(geo.when(v.departure_s)),
                    },
                }
            )
    doc = {"type": "FeatureCollection", "name": geo.title, "datum": datum, "features": features}
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"


CSV_COLUMNS = (
    "team",
    "team_name",
    "mode",
    "seq",
    "kind",
    "stop_id",
    "name",
    "priority",
    "lon",
    "lat",
    "datum",
    "arrival",
    "departure",
    "leg_m",
)


def to_csv(geo: PlanGeometry, datum: str = "wgs84") -> str:
    """One row per visit (depots included) in route order; ``lon``/``lat`` in ``datum``."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in geo.plan.routes:
        xy = to_datum(geo.coords[r.nodes], datum)
        for k, ((lon, lat), v) in enumerate(zip(xy, r.visits, strict=True)):
            s = v.stop
            w.writerow(
                [
                    r.team.id,
                    r.team.name,
                    r.team.mode,
                    k,
                    s.kind if s else "depot",
                    s.id if s else "",
                    _label(v, r, k == len(r.visits) - 1),
                    f"{s.priority:g}" if s else "",
                    _fmt(lon),
                    _fmt(lat),
                    datum,
                    _iso(geo.when(v.arrival_s)),
                    _iso(geo.when(v.departure_s)),
                    f"{v.leg_m:.1f}",
                ]
            )
    return out.getvalue()


_WRITERS = {"gpx": to_gpx, "kml": to_kml, "geojson": to_geojson, "csv": to_csv}


def export(geo: PlanGeometry, fmt: str, datum: str = "wgs84") -> str:
    """The plan as text in ``fmt`` (gpx, kml, geojson, csv) with coordinates in ``datum``."""
    fmt, datum = str(fmt).lower(), str(datum).lower().replace("-", "")
    if fmt not in _WRITERS:
        raise ExportError(f"unknown export format {fmt!r}: one of {', '.join(FORMATS)}")
    if datum not in DATUMS:
        raise ExportError(f"unknown output datum {datum!r}: {' or '.join(DATUMS)}")
    n = len(geo.coords)
    if any(node >= n for r in geo.plan.routes for node in r.nodes):
        raise ExportError("a route visits a node without coordinates")
    return _WRITERS[fmt](geo, datum)
