"""The layer registry: the one place where a layer is declared.

Everything that lists layers — OGC API collections, tilesets, the map screen's layer list,
the cache invalidation of ETL refreshes — reads the registry. A layer says where its rows are,
which properties it exposes (with zh/en titles and types, so queryables and filters are checked
against it), how sensitive it is and who may see it, how its tiles generalise by zoom, and how
it is drawn by default.

Identifiers in SQL (tables, columns) come only from here, never from a request.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

PropertyType = Literal["string", "integer", "number", "boolean", "datetime", "date", "array"]
GeometryType = Literal["Point", "LineString", "MultiLineString", "MultiPolygon"]
_DIMENSION = {"Point": 0, "LineString": 1, "MultiLineString": 1, "MultiPolygon": 2}
Sensitivity = Literal["public", "internal", "personal"]

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
_LAYER_ID = re.compile(r"^[a-z][a-z0-9-]*$")
ALL_ROLES = frozenset({"admin", "command", "town", "grid", "analyst", "public"})
STAFF = frozenset({"admin", "command", "town", "grid"})


class RegistryError(ValueError):
    """A layer declaration is inconsistent, or a layer is registered twice."""


@dataclass(frozen=True)
class Property:
    """An exposed property: a column (or a trusted SQL expression) with its titles and type."""

    name: str
    type: PropertyType
    title_zh: str
    title_en: str
    enum: tuple[str, ...] | None = None
    column: str | None = None  # defaults to ``name``

    def __post_init__(self) -> None:
        for ident in (self.name, self.column or self.name):
            if not _IDENT.match(ident):
                raise RegistryError(f"property {ident!r} is not a plain identifier")

    @property
    def sql(self) -> str:
        return f'"{self.column or self.name}"'


@dataclass(frozen=True)
class Tiles:
    """How the layer becomes vector tiles.

    Polygons and lines are simplified to ``simplify_px`` tile pixels at every zoom. Points are
    aggregated into square cells of ``cell_px`` pixels (counts per ``group_by`` value) below
    ``detail_zoom``; from ``detail_zoom`` on, every feature is in the tile. ``max_features``
    bounds a detailed point or polygon tile: past it the tile is aggregated too, never silently
    truncated. Line tiles are never aggregated (a line has no one place to count it at): every
    line crossing the tile is in it, simplified.
    """

    minzoom: int = 8
    maxzoom: int = 18
    detail_zoom: int = 0
    cell_px: int = 32
    simplify_px: float = 0.5
    group_by: str | None = None
    max_features: int = 20_000
    properties: tuple[str, ...] = ()  # the properties carried in detailed tiles


@dataclass(frozen=True)
class Style:
    """Default drawing on the map screen (MapLibre paint values)."""

    color: str = "#3388ff"
    outline: str = "#1f4e99"
    opacity: float = 0.6
    radius: float = 4.0


@dataclass(frozen=True)
class Layer:
    """One layer of the map and of the OGC API."""

    id: str
    title_zh: str
    title_en: str
    table: str
    geometry_type: GeometryType
    properties: tuple[Property, ...]
    id_column: str = "id"
    geometry_column: str = "geom"
    datetime_property: str | None = None
    sensitivity: Sensitivity = "internal"
    roles: frozenset[str] = STAFF
    instead: str | None = None  # the layer shown to roles outside ``roles`` (aggregates)
    served: bool = True
    per_user: bool = False  # rows depend on the caller's user (owner RLS): caches key on the user
    # Layers whose data this one is made from (a view over their tables): a bump of any of them
    # changes what this layer holds, so caches key on their versions too.
    data_from: tuple[str, ...] = ()
    tiles: Tiles = field(default_factory=Tiles)
    style: Style = field(default_factory=Style)
    description_zh: str = ""
    description_en: str = ""

    def __post_init__(self) -> None:
        if not _LAYER_ID.match(self.id):
            raise RegistryError(f"layer id {self.id!r} must be lower-case letters, digits, '-'")
        schema, _, table = self.table.partition(".")
        if not (_IDENT.match(schema) and _IDENT.match(table)):
            raise RegistryError(f"layer {self.id}: table {self.table!r} must be schema.table")
        for ident in (self.id_column, self.geometry_column):
            if not _IDENT.match(ident):
                raise RegistryError(f"layer {self.id}: {ident!r} is not a plain identifier")
        names = [p.name for p in self.properties]
        if len(set(names)) != len(names):
            raise RegistryError(f"layer {self.id}: duplicate property names")
        known = set(names)
        for ref in (self.datetime_property, self.tiles.group_by, *self.tiles.properties):
            if ref is not None and ref not in known:
                raise RegistryError(f"layer {self.id}: {ref!r} is not one of its properties")
        if self.geometry_type not in _DIMENSION:
            raise RegistryError(f"layer {self.id}: geometry type {self.geometry_type!r} is not one of "
                                f"{', '.join(_DIMENSION)}")
        if not self.roles <= ALL_ROLES:
            raise RegistryError(f"layer {self.id}: unknown roles {sorted(self.roles - ALL_ROLES)}")

    @property
    def version_ids(self) -> tuple[str, ...]:
        """The layer versions (``pingan.layer_versions``) its rows follow: its own and ``data_from``."""
        return (self.id, *self.data_from)

    @property
    def dimension(self) -> int:
        """0 for points, 1 for lines, 2 for polygons (OGC tiles' ``geometryDimension``)."""
        return _DIMENSION[self.geometry_type]

    def readable_by(self, role: str) -> bool:
        """May a caller of ``role`` read this layer at all? The system role reads every layer.
        (The database enforces the same again: privileges and row-level security.)"""
        return role == "system" or role in self.roles

    def get_property(self, name: str) -> Property:
        for p in self.properties:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def table_sql(self) -> str:
        schema, _, table = self.table.partition(".")
        return f'"{schema}"."{table}"'


class Registry(Mapping[str, Layer]):
    """An immutable set of layers; ``register`` returns a new registry."""

    def __init__(self, layers: Mapping[str, Layer] | None = None) -> None:
        self._layers = MappingProxyType(dict(layers or {}))

    def register(self, *layers: Layer) -> Registry:
        new = dict(self._layers)
        for layer in layers:
            if layer.id in new:
                raise RegistryError(f"layer {layer.id!r} is already registered")
            new[layer.id] = layer
        return Registry(new)

    def validate(self) -> Registry:
        """Check references between layers once the registry is complete."""
        for layer in self.values():
            if layer.instead is not None and layer.instead not in self:
                raise RegistryError(f"layer {layer.id}: 'instead' names unknown {layer.instead!r}")
            for source in layer.data_from:
                if source not in self:
                    raise RegistryError(f"layer {layer.id}: 'data_from' names unknown {source!r}")
        return self

    def served(self) -> Iterator[Layer]:
        return (layer for layer in self.values() if layer.served)

    def __getitem__(self, key: str) -> Layer:
        return self._layers[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)
