"""The pygeoapi feature provider of Pingan Map: PostGIS writes the GeoJSON.

pygeoapi instantiates this class per request with its config entry (see ``config.py``); the
entry's ``data`` names the service (``service.py``), which owns the connection pool. Each query
runs in a transaction stating the caller (``layers.db.transaction``), taken from the request
context the route set (``context.py``). The database returns the features as one JSON text;
pygeoapi wants a dict, so the text is parsed once (orjson, in C) — nothing per feature in Python.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any

import orjson
from pygeoapi.provider.base import (
    BaseProvider,
    ProviderConnectionError,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
)

from api.ogc import params
from api.ogc.context import current
from api.ogc.crs import STORAGE_URI, SUPPORTED, envelope_xy
from api.ogc.errors import InvalidParameterError, OgcError
from api.ogc.fragments import all_of
from api.ogc.queries import ItemsQuery, item_steps, page_steps
from api.ogc.service import get_service
from api.ogc.store import database_errors, run
from layers import audit
from layers.db import transaction
from layers.registry import Layer

_JSON_TYPES = {"datetime": ("string", "date-time"), "date": ("string", "date")}


def fields(layer: Layer) -> dict[str, dict[str, Any]]:
    """The layer's properties in pygeoapi's ``fields`` shape (queryables, OpenAPI, sortby)."""
    out: dict[str, dict[str, Any]] = {}
    for p in layer.properties:
        kind, fmt = _JSON_TYPES.get(p.type, (p.type, None))
        out[p.name] = {"type": kind, "format": fmt, "title": p.title_zh}
        if p.enum:
            out[p.name]["values"] = list(p.enum)
    return out


class PinganProvider(BaseProvider):
    """Features of one registry layer."""

    def __init__(self, provider_def: dict[str, Any]) -> None:
        super().__init__(provider_def)
        self.service = get_service(provider_def["data"])
        self.layer = self.service.registry[provider_def["layer"]]
        self._fields = fields(self.layer)

    def get_fields(self) -> dict[str, dict[str, Any]]:
        return self._fields

    def query(
        self,
        offset: int = 0,
        limit: int = 10,
        resulttype: str = "results",
        bbox: list[float] | None = None,
        datetime_: str | None = None,
        properties: list[tuple[str, str]] | None = None,
        sortby: list[dict[str, str]] | None = None,
        select_properties: list[str] | None = None,
        skip_geometry: bool = False,
        q: str | None = None,
        filterq: Any = None,
        crs_transform_spec: Any = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        if filterq is not None or datetime_ or q:
            # the OGC routes parse filter/datetime themselves (context.where); anything else
            # reaching us would be silently ignored, so refuse it
            raise ProviderInvalidQueryError("filter, datetime and q go through the /ogc routes")
        query = self._items_query(
            offset,
            0 if resulttype == "hits" else limit,
            bbox or [],
            properties or [],
            sortby or [],
            select_properties or [],
            skip_geometry,
            crs_transform_spec,
        )
        with pygeoapi_errors(), transaction(self.service.engine, current().principal) as conn:
            page = run(conn.connection.driver_connection, page_steps(query, self.service.exact_count_limit))
            features = orjson.loads(page.features)
            if self.layer.sensitivity == "personal":  # in the same transaction as the read
                audit.record(conn, current().principal, "read", self.layer.id,
                             [f.get("id") for f in features], {"via": "ogc items (pygeoapi)"})
        return {
            "type": "FeatureCollection",
            "features": features,
            "numberMatched": page.matched,
            "numberReturned": page.returned,
        }

    def _items_query(
        self,
        offset: int,
        limit: int,
        bbox: list[float],
        equals: list[tuple[str, str]],
        sortby: list[dict[str, str]],
        select: list[str],
        skip_geometry: bool,
        spec: Any,
    ) -> ItemsQuery:
        layer = self.layer
        conds = [params.equality(layer, k, v) for k, v in equals]
        if bbox:  # pygeoapi hands it over in the storage CRS, EPSG:4490: latitude first
            box = (bbox[0], bbox[1], *bbox[-2:]) if len(bbox) == 4 else (bbox[0], bbox[1], bbox[3], bbox[4])
            storage = SUPPORTED[STORAGE_URI]
            conds.append(params.envelope_condition(layer, envelope_xy(box, storage), storage))
        conds.append(current().where)
        sort = tuple((layer.get_property(s["property"]), s.get("order", "+") != "-") for s in sortby)
        props = tuple(layer.get_property(n) for n in dict.fromkeys(select)) if select else None
        out = SUPPORTED[spec.target_crs_uri if spec is not None else STORAGE_URI]
        return ItemsQuery(layer, all_of(conds), sort, props, None if skip_geometry else out, limit, offset)

    def get(self, identifier: str, crs_transform_spec: Any = None, **kwargs: Any) -> dict[str, Any]:
        info = self.service.info(self.layer.id)
        key: object = identifier
        if info.id_is_integer:
            if not (identifier.isascii() and identifier.isdigit()) or len(identifier) > 18:
                raise ProviderItemNotFoundError(f"no item {identifier[:100]!r}")
            key = int(identifier)
        out = SUPPORTED[crs_transform_spec.target_crs_uri if crs_transform_spec else STORAGE_URI]
        with pygeoapi_errors(), transaction(self.service.engine, current().principal) as conn:
            text = run(conn.connection.driver_connection, item_steps(self.layer, out, key))
            if text is not None and self.layer.sensitivity == "personal":
                audit.record(conn, current().principal, "read", self.layer.id, [identifier],
                             {"via": "ogc item"})
        if text is None:
            raise ProviderItemNotFoundError(f"no item {identifier[:100]!r} in {self.layer.id}")
        return orjson.loads(text)


class ProviderUnavailableError(ProviderConnectionError):
    http_status_code = HTTPStatus.SERVICE_UNAVAILABLE
    ogc_exception_code = "ServiceUnavailable"


@contextmanager
def pygeoapi_errors() -> Iterator[None]:
    """Our errors and the database's as the pygeoapi errors it turns into statuses."""
    try:
        with database_errors():
            yield
    except InvalidParameterError as bad:
        raise ProviderInvalidQueryError(user_msg=bad.description) from None
    except OgcError as down:
        raise ProviderUnavailableError(user_msg=down.description) from None
