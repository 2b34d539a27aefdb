"""An in-process LRU cache of rendered tiles, bounded by bytes.

Keys carry everything a tile depends on (layers and their data versions, tile, caller scope,
filters), so an entry is never invalidated in place: a bumped version makes new keys, and the
stale entries age out of the LRU. That is what lets every process and replica drop stale tiles
without being told.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field


@dataclass
class CacheStats:
    """Counters since start (``hits + misses`` is every lookup)."""

    hits: int = 0
    misses: int = 0
    puts: int = 0
    evictions: int = 0
    coalesced: int = 0  # requests that waited for a render already in flight
    entries: int = 0
    bytes: int = 0
    max_bytes: int = 0
    enabled: bool = True

    def as_dict(self) -> dict[str, int | bool]:
        return dict(self.__dict__)


@dataclass
class TileCache:
    """LRU of ``bytes`` values whose total size stays within ``max_bytes``.

    Not thread-safe: it lives on the event loop of one process, and no method awaits.
    ``max_bytes == 0`` disables it (every ``get`` misses, ``put`` keeps nothing).
    """

    max_bytes: int
    stats: CacheStats = field(default_factory=CacheStats)
    _items: OrderedDict[Hashable, bytes] = field(default_factory=OrderedDict, repr=False)

    def __post_init__(self) -> None:
        self.stats.max_bytes = self.max_bytes
        self.stats.enabled = self.max_bytes > 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def get(self, key: Hashable) -> bytes | None:
        value = self._items.get(key)
        if value is None:
            self.stats.misses += 1
            return None
        self._items.move_to_end(key)
        self.stats.hits += 1
        return value

    def put(self, key: Hashable, value: bytes) -> None:
        size = len(value)
        # An entry larger than the whole cache would evict everything and then itself.
        if not self.enabled or size > self.max_bytes:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self.stats.bytes -= len(old)
        self._items[key] = value
        self.stats.bytes += size
        self.stats.puts += 1
        while self.stats.bytes > self.max_bytes:
            _, evicted = self._items.popitem(last=False)
            self.stats.bytes -= len(evicted)
            self.stats.evictions += 1
        self.stats.entries = len(self._items)

    def clear(self) -> None:
        self._items.clear()
        self.stats.bytes = 0
        self.stats.entries = 0
