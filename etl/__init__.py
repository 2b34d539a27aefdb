"""Pingan Map: etl package."""
