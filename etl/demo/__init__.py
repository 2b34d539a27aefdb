"""Pingan Map: etl/demo package."""
