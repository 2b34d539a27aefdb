"""Pingan Map: vector tiles (MVT) from the layer registry.

- ``tms``: the WebMercatorQuad tile matrix set (tile bounds, validation, OGC definition);
- ``sql``: tile SQL built once per layer, kind and filter shape (ST_AsMVTGeom -> ST_AsMVT);
- ``render``: ``get_tile(conn, layer, z, x, y)`` and the multi-layer ``get_tiles``;
- ``cache``, ``versions``, ``service``: the byte-bounded LRU, the polled layer versions, and the
  service tying them to keys, ETags and renders in the caller's transaction;
- ``metadata``: OGC API - Tiles tilesets, tile matrix sets and TileJSON documents;
- ``errors``, ``settings``.

Returns bytes and dicts; knows nothing of HTTP (``api.routes.tiles`` serves it).
"""
