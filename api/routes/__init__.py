"""Route modules of the service; each exposes ``router``."""
