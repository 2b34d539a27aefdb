"""The conformance classes /ogc declares: what is implemented and tested, nothing more.

Sorting (Features Part 8) and property selection (Part 6) are drafts; their URIs are the
drafts'. CQL2: text and JSON encodings; basic CQL2; LIKE/BETWEEN/IN; CASEI; property-to-property
comparisons; all S_* and T_* functions. Not declared: arithmetic, arrays, accent-insensitive
comparison, custom functions. The Tiles classes describe the routes of ``api/routes/tiles.py``.
"""

from __future__ import annotations

_COMMON = "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/"
_F1 = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/"
_F3 = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/"
_CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf/"
_TILES = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/"
_PROC = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/"

CONFORMANCE: tuple[str, ...] = (
    *(_COMMON + c for c in ("core", "landing-page", "json", "html", "oas30")),
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
    *(_F1 + c for c in ("core", "oas30", "html", "geojson")),
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    *(_F3 + c for c in ("queryables", "queryables-query-parameters", "filter", "features-filter")),
    *(
        _CQL2 + c
        for c in (
            "cql2-text",
            "cql2-json",
            "basic-cql2",
            "advanced-comparison-operators",
            "case-insensitive-comparison",
            "property-property",
            "basic-spatial-functions",
            "basic-spatial-functions-plus",
            "spatial-functions",
            "temporal-functions",
        )
    ),
    "http://www.opengis.net/spec/ogcapi-features-8/1.0/conf/sorting",
    "http://www.opengis.net/spec/ogcapi-features-6/1.0/conf/properties-features",
    *(_TILES + c for c in ("core", "mvt", "tileset", "tilesets-list")),
    # OGC API - Processes Part 1 (api/ogc/processes): no callbacks, no HTML job pages
    *(_PROC + c for c in ("core", "ogc-process-description", "json", "oas30", "job-list", "dismiss")),
)
