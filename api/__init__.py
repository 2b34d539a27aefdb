"""Pingan Map: api package."""
