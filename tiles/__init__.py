"""Pingan Map: vector tiles (MVT) from the layer registry.

- ``tms``: the WebMercatorQuad tile matrix set (tile bounds, validation, OGC definition);
- ``sql``: tile SQL built once per layer, kind and filter shape (ST_AsMVTGeom -> ST_AsMVT);
- ``render``: ``get_tile(conn, layer, z, x, y)`` and the multi-layer ``get_tiles`` in a transaction
  of the caller's, and ``draw``: the caller's transaction and the tile statements in one round trip;
- ``cache``, ``versions``, ``service``: the byte-bounded LRU, the polled layer versions, and the
  service tying them to keys, ETags and renders (``draw``) for the caller;
- ``metadata``: OGC API - Tiles tilesets, tile matrix sets and TileJSON documents;
- ``errors``, ``settings``.

Returns bytes and dicts; knows nothing of HTTP (``api.routes.tiles`` serves it).
"""
