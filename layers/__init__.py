"""Pingan Map: layers package."""
