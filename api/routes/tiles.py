"""OGC API - Tiles (Mapbox Vector Tiles) at /ogc/.../tiles."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/ogc")
