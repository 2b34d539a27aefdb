"""Pingan Map: gis package."""
