"""Item pages in GeoJSON, served without pygeoapi on the same URL, with the same response.

Why (measured, docs/ogc-api.md): through pygeoapi a 1,000-feature page is parsed from the
database's JSON into dicts (pygeoapi wants a dict), re-encoded by ``json.dumps``, and preceded by
pyproj work per request (a Transformer for the bbox, CRS objects and WKT for the output CRS),
all in a worker thread. Here the features stay the text PostgreSQL wrote and are spliced into
the envelope; the SQL, the count rules, the links and the headers are the ones the pygeoapi path
produces (``tests/api/ogc`` compares the two).
"""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime

import orjson
from fastapi.responses import Response
from pygeoapi import l10n
from pygeoapi.api import API, F_HTML, F_JSON, F_JSONLD, FORMAT_TYPES, SYSTEM_LOCALE, APIRequest
from pygeoapi.api.itemtypes import set_content_crs_header
from pygeoapi.util import get_provider_by_type

from api.ogc.bridge import to_response
from api.ogc.queries import ItemsQuery, Page, page_steps
from api.ogc.service import OgcService
from api.ogc.store import arun, database_errors
from layers import audit
from layers.db import Principal, atransaction

GEOJSON = "application/geo+json"


def serves(req: APIRequest) -> bool:
    """GeoJSON pages are native; HTML, JSON-LD and ``resulttype`` stay with pygeoapi."""
    return req.format in (None, F_JSON) and "resulttype" not in req.params


async def items(
    service: OgcService, api: API, req: APIRequest, query: ItemsQuery, principal: Principal
) -> Response:
    with database_errors():
        async with atransaction(service.pool, principal) as conn:
            page = await arun(conn, page_steps(query, service.exact_count_limit))
            if query.layer.sensitivity == "personal":  # in the same transaction as the read
                ids = [f.get("id") for f in orjson.loads(page.features)]
                await audit.arecord(conn, principal, "read", query.layer.id, ids, {"via": "ogc items"})
    dataset = query.layer.id
    body = b"".join(
        (
            b'{"type":"FeatureCollection","features":',
            page.features.encode(),
            b',"numberMatched":',
            str(page.matched).encode(),
            b',"numberReturned":',
            str(page.returned).encode(),
            b',"links":',
            orjson.dumps(page_links(api, req, dataset, query, page)),
            b',"timeStamp":"',
            datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode(),
            b'"}',
        )
    )
    return to_response(_headers(api, req, dataset), 200, body, geojson=True)


def page_links(
    api: API, req: APIRequest, dataset: str, query: ItemsQuery, page: Page
) -> list[dict[str, str]]:
    """The links pygeoapi's ``get_collection_items`` writes, by its rules."""
    extra = "".join(
        f"&{urllib.parse.quote(k, safe='')}={urllib.parse.quote(str(v), safe=',')}"
        for k, v in req.params.items()
        if k not in ("f", "offset")
    )
    uri = f"{api.get_collections_url()}/{dataset}/items"
    links = [
        {
            "type": GEOJSON,
            "rel": req.get_linkrel(F_JSON),
            "title": _t("This document as GeoJSON", req),
            "href": f"{uri}?f={F_JSON}{extra}",
        },
        {
            "rel": req.get_linkrel(F_JSONLD),
            "type": FORMAT_TYPES[F_JSONLD],
            "title": _t("This document as RDF (JSON-LD)", req),
            "href": f"{uri}?f={F_JSONLD}{extra}",
        },
        {
            "type": FORMAT_TYPES[F_HTML],
            "rel": req.get_linkrel(F_HTML),
            "title": _t("This document as HTML", req),
            "href": f"{uri}?f={F_HTML}{extra}",
        },
    ]
    offset, limit = query.offset, query.limit
    if offset > 0:
        links.append(
            {
                "type": GEOJSON,
                "rel": "prev",
                "title": _t("Items (prev)", req),
                "href": f"{uri}?offset={max(0, offset - limit)}{extra}",
            }
        )
    if page.matched > limit + offset or page.returned == limit:
        links.append(
            {
                "type": GEOJSON,
                "rel": "next",
                "title": _t("Items (next)", req),
                "href": f"{uri}?offset={offset + limit}{extra}",
            }
        )
    links.append(
        {
            "type": FORMAT_TYPES[F_JSON],
            "rel": "collection",
            "href": uri.rsplit("/", 1)[0],
            "title": _t(api.config["resources"][dataset]["title"], req),
        }
    )
    return links


def _t(value: object, req: APIRequest) -> str:
    return l10n.translate(value, req.locale)


def _headers(api: API, req: APIRequest, dataset: str) -> dict[str, str]:
    provider_def = get_provider_by_type(api.config["resources"][dataset]["providers"], "feature")
    headers = req.get_response_headers(SYSTEM_LOCALE, **api.api_headers)
    set_content_crs_header(headers, provider_def, req.params.get("crs"))
    l10n.set_response_language(headers, l10n.get_plugin_locale(provider_def, req.raw_locale), req.locale)
    return headers
