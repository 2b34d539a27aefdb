"""The tile service: validated tile keys, ETags, the cache, and rendering on a miss.

A :class:`TileKey` names everything a tile's bytes depend on: the layers and their data
versions, the tile, the caller's scope (role and areas, since row-level security makes tiles
differ by caller), the filters, and a fingerprint of each layer's declaration (so changing the
registry changes keys too). The strong ETag is a hash of the key, so answering
``If-None-Match`` needs neither the bytes nor the database beyond the version read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool

from layers.db import Principal
from layers.registry import Layer, Registry
from tiles.batch import DrawBatcher
from tiles.cache import CacheStats, TileCache
from tiles.errors import UnknownCollectionError
from tiles.render import Filters, check_zoom, normalise_filters, served_layer, tile_statements
from tiles.settings import TileSettings
from tiles.shapes import stored_zooms
from tiles.tms import get_tms
from tiles.versions import VersionClock

# Bump when the tile SQL changes what a tile holds: it is part of every ETag.
RENDERER_VERSION = "2"


@dataclass(frozen=True)
class TileKey:
    """What a tile's bytes depend on; hashable (the cache key) and the source of its ETag."""

    layers: tuple[str, ...]
    versions: tuple[int, ...]
    fingerprints: tuple[str, ...]
    z: int
    x: int
    y: int
    role: str
    areas: tuple[str, ...]
    filters: Filters
    multi: bool  # a dataset tile (several layers, no filters) rather than one collection's
    # per layer: drawn from prepared shapes (tiles.shapes); the same features either way
    shapes: tuple[bool, ...] = ()
    user: str | None = None  # set when a layer's rows depend on the user (Layer.per_user)

    @property
    def etag(self) -> str:
        digest = hashlib.blake2b(repr((RENDERER_VERSION, self)).encode(), digest_size=16).hexdigest()
        return f'"{digest}"'


def _fingerprint(layer: Layer) -> str:
    """The same in every process: ``repr`` of a frozenset (a layer's roles) follows string
    hashing, which differs per process (PYTHONHASHSEED), and so did the ETags of two workers."""
    return hashlib.blake2b(repr(_canonical(layer)).encode(), digest_size=8).hexdigest()


def _canonical(value: object) -> object:
    """``value`` with sets sorted, for a ``repr`` that does not depend on the process."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__,
                tuple((f.name, _canonical(getattr(value, f.name))) for f in dataclasses.fields(value)))
    if isinstance(value, set | frozenset):
        return ("set", tuple(sorted(repr(_canonical(v)) for v in value)))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((repr(_canonical(k)), _canonical(v)) for k, v in value.items())))
    if isinstance(value, tuple | list):
        return tuple(_canonical(v) for v in value)
    return value


class TileService:
    """Tiles for the API: keys, cache lookups, and renders in the caller's transaction.

    Parameters
    ----------
    registry
        The layers; only served ones have tiles.
    settings
        Cache size (or off) and how long a version read is trusted.
    """

    def __init__(self, registry: Registry, settings: TileSettings) -> None:
        self.registry = registry
        self.settings = settings
        self.cache = TileCache(settings.cache_bytes if settings.cache_enabled else 0)
        self.clock = VersionClock(settings.version_ttl_s)
        self._fingerprints = {layer.id: _fingerprint(layer) for layer in registry.values()}
        self._inflight: dict[TileKey, asyncio.Task[bytes]] = {}
        self.batcher = DrawBatcher(settings.batch_inflight, settings.batch_statements)

    @property
    def stats(self) -> CacheStats:
        return self.cache.stats

    async def collection_key(
        self, pool: AsyncConnectionPool, principal: Principal, layer_id: str, tms_id: str,
        z: int, x: int, y: int, filters: Mapping[str, str | Sequence[str]] | None = None,
    ) -> TileKey:
        """Validate a collection tile request and return its key (reads versions, cached)."""
        layer = served_layer(self.registry, layer_id, principal.role)
        get_tms(tms_id).validate(z, x, y)
        check_zoom(layer, z)
        return await self._key(pool, principal, (layer,), z, x, y,
                               normalise_filters(layer, filters), multi=False)

    async def dataset_key(
        self, pool: AsyncConnectionPool, principal: Principal, layer_ids: Iterable[str] | None,
        tms_id: str, z: int, x: int, y: int,
    ) -> TileKey:
        """Validate a multi-layer tile request (``None``: every served layer) and return its key.

        Layers without tiles at ``z`` are left out of the key, as they are out of the tile.
        """
        tms = get_tms(tms_id)
        ids = list(dict.fromkeys(layer_ids)) if layer_ids is not None else [
            layer.id for layer in self.registry.served() if layer.readable_by(principal.role)
            and not layer.per_user]  # per-user layers only when asked for (they key tiles on the user)
        if not ids:
            raise UnknownCollectionError("no collections requested")
        layers = [served_layer(self.registry, layer_id, principal.role) for layer_id in ids]
        tms.validate(z, x, y)
        at_zoom = tuple(layer for layer in layers if layer.tiles.minzoom <= z <= layer.tiles.maxzoom)
        return await self._key(pool, principal, at_zoom, z, x, y, (), multi=True)

    async def _key(self, pool: AsyncConnectionPool, principal: Principal, layers: tuple[Layer, ...],
                   z: int, x: int, y: int, filters: Filters, *, multi: bool) -> TileKey:
        versions = await self.clock.current(pool)
        return TileKey(
            layers=tuple(layer.id for layer in layers),
            versions=tuple(versions.get(v, 0) for layer in layers for v in layer.version_ids),
            fingerprints=tuple(self._fingerprints[layer.id] for layer in layers),
            z=z, x=x, y=y, role=principal.role, areas=principal.areas, filters=filters, multi=multi,
            shapes=tuple(not filters and z in stored_zooms(layer) and self.clock.shapes_current(layer.id)
                         for layer in layers),
            user=principal.user if any(layer.per_user for layer in layers) else None,
        )

    async def tile(self, pool: AsyncConnectionPool, principal: Principal, key: TileKey) -> tuple[bytes, bool]:
        """The tile's bytes and whether they came from the cache.

        Concurrent misses of one key share one render, so a bumped version does not send
        every waiting client to the database for the same hot tile.
        """
        cached = self.cache.get(key)
        if cached is not None:
            return cached, True
        if not self.cache.enabled:
            return await self._render(pool, principal, key), False
        task = self._inflight.get(key)
        if task is None:
            # A task of its own, so a client that disconnects does not cancel the render
            # that other clients of the same key are waiting for.
            task = asyncio.create_task(self._render_and_keep(pool, principal, key))
            self._inflight[key] = task
            task.add_done_callback(lambda t: self._done(key, t))
        else:
            self.cache.stats.coalesced += 1
        return await asyncio.shield(task), False

    async def _render_and_keep(self, pool: AsyncConnectionPool, principal: Principal, key: TileKey) -> bytes:
        body = await self._render(pool, principal, key)
        self.cache.put(key, body)
        return body

    def _done(self, key: TileKey, task: asyncio.Task[bytes]) -> None:
        self._inflight.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved here, so an error nobody awaited is not logged as lost

    async def _render(self, pool: AsyncConnectionPool, principal: Principal, key: TileKey) -> bytes:
        layers = [self.registry[layer_id] for layer_id in key.layers]
        if not layers:
            return b""
        shapes = {layer_id for layer_id, use in zip(key.layers, key.shapes, strict=False) if use}
        statements = tile_statements(layers, key.z, key.x, key.y, key.filters, shapes)
        # one round trip: the caller's transaction and the tile statements in one message, with
        # those of the caller's other renders waiting at the same time (tiles.batch)
        return b"".join(await self.batcher.draw(pool, principal, statements))
