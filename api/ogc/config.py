"""pygeoapi's configuration, generated from the layer registry and the database's extents.

One collection per served layer (``persons`` is ``served=False`` and never appears), titled in
Chinese and English (pygeoapi picks by ``lang`` / ``Accept-Language``; Chinese by default).
The provider entry names our plugin by its dotted path and carries only keys: the service key
(``data``) and the layer id — never a database URL or a password.
"""

from __future__ import annotations

from typing import Any

from api.ogc.crs import CRS84, STORAGE_URI, URIS
from api.ogc.extents import CollectionInfo
from api.ogc.params import DEFAULT_LIMIT, MAX_LIMIT
from api.ogc.processes.descriptions import pygeoapi_resources

PROVIDER = "api.ogc.provider.PinganProvider"
TILESETS_VECTOR = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
WORLD = [-180.0, -90.0, 180.0, 90.0]


def pygeoapi_config(service_key: str, infos: dict[str, CollectionInfo], base_url: str) -> dict[str, Any]:
    return {
        "server": {
            "bind": {"host": "127.0.0.1", "port": 0},  # never used: pygeoapi serves nothing itself
            "url": base_url,
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "languages": ["zh-CN", "en-US"],
            "limits": {"default_items": DEFAULT_LIMIT, "max_items": MAX_LIMIT, "on_exceed": "error"},
            "pretty_print": False,
            "map": {
                "url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                "attribution": "&copy; OpenStreetMap contributors",
            },
        },
        "logging": {"level": "WARNING"},
        "metadata": _metadata(),
        "resources": {
            **{lid: _resource(service_key, info, base_url) for lid, info in infos.items()},
            **pygeoapi_resources(),  # OGC API - Processes descriptions (api/ogc/processes)
        },
    }


def _resource(service_key: str, info: CollectionInfo, base_url: str) -> dict[str, Any]:
    layer = info.layer
    extents: dict[str, Any] = {"spatial": {"bbox": list(info.bbox or WORLD), "crs": CRS84}}
    if info.interval is not None:
        extents["temporal"] = {"begin": info.interval[0], "end": info.interval[1]}
    links = []
    if layer.tiles is not None:
        links.append(
            {
                "type": "application/json",
                "rel": TILESETS_VECTOR,
                "title": {"zh": "矢量瓦片", "en": "Vector tilesets"},
                "href": f"{base_url}/collections/{layer.id}/tiles",
            }
        )
    return {
        "type": "collection",
        "title": {"zh": layer.title_zh, "en": layer.title_en},
        "description": {
            "zh": layer.description_zh or layer.title_zh,
            "en": layer.description_en or layer.title_en,
        },
        "keywords": {"zh": ["平安一张图", layer.title_zh], "en": ["Pingan Map", layer.title_en]},
        "links": links,
        "extents": extents,
        "providers": [
            {
                "type": "feature",
                "name": PROVIDER,
                "data": service_key,
                "layer": layer.id,
                "id_field": layer.id_column,
                "time_field": layer.datetime_property,
                "storage_crs": STORAGE_URI,
                "crs": list(URIS),
            }
        ],
    }


def _metadata() -> dict[str, Any]:
    return {
        "identification": {
            "title": {"zh": "平安一张图 OGC API", "en": "Pingan Map OGC API"},
            "description": {
                "zh": "社会治理图层：镇街、村社、网格、重点场所、风险隐患、矛盾纠纷",
                "en": "Social governance layers: towns, villages, grids, key sites, "
                "hazards, disputes and incidents",
            },
            "keywords": {"zh": ["平安一张图", "社会治理"], "en": ["Pingan Map", "social governance"]},
            "keywords_type": "theme",
            "terms_of_service": "https://creativecommons.org/licenses/by/4.0/",
            "url": "https://example.org/pingan-map",
        },
        "license": {"name": "CC-BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"},
        "provider": {"name": "Pingan Map", "url": "https://example.org/pingan-map"},
        "contact": {
            "name": "Pingan Map",
            "position": "operator",
            "address": "",
            "city": "Wenzhou",
            "stateorprovince": "Zhejiang",
            "postalcode": "",
            "country": "China",
            "phone": "",
            "fax": "",
            "email": "",
            "url": "https://example.org/pingan-map",
            "hours": "",
            "instructions": "",
            "role": "pointOfContact",
        },
    }
