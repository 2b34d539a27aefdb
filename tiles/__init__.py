"""Pingan Map: tiles package."""
