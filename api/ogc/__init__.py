"""OGC API - Features (and the landing page, conformance, OpenAPI) at /ogc."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/ogc")
