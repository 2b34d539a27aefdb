"""Pingan Map: cli package."""
