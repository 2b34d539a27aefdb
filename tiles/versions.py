"""The tile service's view of layer data versions (``pingan.layer_versions``, bumped by ETL).

Polled, not pushed. A read of the versions is trusted for ``ttl`` seconds (1 s by default), and
concurrent requests share one read. Why not LISTEN/NOTIFY: ``layers.versions.bump`` runs inside
the ETL's transaction and sends no notification, so pushing would need a trigger plus a
dedicated connection per server process kept outside the pool, with reconnect handling, and a
notification missed during a reconnect would leave stale tiles until restart unless we polled
anyway. One primary-key scan of a table of a dozen rows per second per process costs nothing,
bounds staleness at ``ttl`` (well under the tiles' ``max-age``), and needs no ETL change.

Reads are monotonic where it matters: the tile is rendered after the versions it is keyed on
were read, so a cached tile is never older than its key says.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from types import MappingProxyType

from psycopg_pool import AsyncConnectionPool

_READ = "SELECT layer_id, version FROM pingan.layer_versions"
# The versions the prepared polygon shapes were built from (tiles.shapes); the table may not exist.
_HAS_SHAPES = "SELECT to_regclass('pingan.tile_shape_versions') IS NOT NULL"
_READ_SHAPES = "SELECT layer_id, version FROM pingan.tile_shape_versions"


class VersionClock:
    """Layer versions, re-read from the database at most once per ``ttl`` seconds."""

    def __init__(self, ttl: float = 1.0) -> None:
        self.ttl = ttl
        self.reads = 0
        self._versions: Mapping[str, int] = MappingProxyType({})
        self._shapes: Mapping[str, int] = MappingProxyType({})
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        return time.monotonic() - self._read_at < self.ttl

    async def current(self, pool: AsyncConnectionPool) -> Mapping[str, int]:
        """The versions of every layer that has one (a layer never bumped is absent)."""
        if self._fresh():
            return self._versions
        async with self._lock:
            if self._fresh():  # another request read them while this one waited
                return self._versions
            started = time.monotonic()
            async with pool.connection() as conn:
                cur = await conn.execute(_READ)
                rows = await cur.fetchall()
                shapes: list = []
                if (await (await conn.execute(_HAS_SHAPES)).fetchone())[0]:  # type: ignore[index]
                    shapes = await (await conn.execute(_READ_SHAPES)).fetchall()
            self._versions = MappingProxyType({layer_id: version for layer_id, version in rows})
            self._shapes = MappingProxyType({layer_id: version for layer_id, version in shapes})
            # Stamped with the start of the read: the rows are at least that fresh.
            self._read_at = started
            self.reads += 1
            return self._versions

    def shapes_current(self, layer_id: str) -> bool:
        """Whether ``layer_id``'s prepared shapes were built from its current version (as of the
        last read; call after :meth:`current`)."""
        built = self._shapes.get(layer_id)
        return built is not None and built == self._versions.get(layer_id, 0)

    def expire(self) -> None:
        """Forget the last read (the next request reads the versions again)."""
        self._read_at = float("-inf")
