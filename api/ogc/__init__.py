"""OGC API - Features (Parts 1-3), the landing page, conformance and OpenAPI at /ogc.

pygeoapi is the engine, configured from the layer registry, with our provider plugin; see
docs/ogc-api.md for the module layout and for what is served natively and why.
"""

from __future__ import annotations

from api.ogc.routes import router
from api.ogc.service import open_service

__all__ = ["open_service", "router"]
