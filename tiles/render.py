"""Rendering tiles: one layer or several into one MVT, on a connection the caller owns.

These functions take an async psycopg connection (in the caller's transaction, which carries
the caller's role and areas for row-level security) and return the MVT bytes; they know
nothing of HTTP or of the cache (see ``tiles.service``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any
from weakref import WeakKeyDictionary

import psycopg
from psycopg import AsyncConnection, AsyncCursor, pq, sql
from psycopg.adapt import PyFormat

from layers.db import Principal, execute_principal_sql, prepare_principal_sql, principal_args
from layers.registry import Layer, Registry
from tiles.errors import ForbiddenLayerError, InvalidFilterError, UnknownCollectionError, ZoomOutOfRangeError
from tiles.shapes import stored_zooms
from tiles.sql import Kind, TileQuery, query_for
from tiles.tms import WEB_MERCATOR_QUAD, TileMatrixSet

# Property filters, normalised: ((name, (value, ...)), ...) sorted, hashable for cache keys.
Filters = tuple[tuple[str, tuple[str, ...]], ...]


def normalise_filters(layer: Layer, filters: Mapping[str, str | Sequence[str]] | None) -> Filters:
    """Check ``filters`` against the layer's properties and return them in canonical form.

    A value may be one string or several (any of them matches).
    """
    if not filters:
        return ()
    known = {p.name for p in layer.properties}
    unknown = sorted(set(filters) - known)
    if unknown:
        raise InvalidFilterError(f"layer {layer.id!r} has no properties {', '.join(unknown)}; "
                            f"it has {', '.join(sorted(known))}")
    out = []
    for name, value in filters.items():
        values = (value,) if isinstance(value, str) else tuple(value)
        if any("\x00" in v for v in values):  # PostgreSQL text cannot hold NUL
            raise InvalidFilterError(f"the value of {name!r} holds a NUL character")
        out.append((name, tuple(sorted(set(values)))))
    return tuple(sorted(out))


def served_layer(registry: Registry, layer_id: str, role: str | None = None) -> Layer:
    """The served layer ``layer_id``; :class:`UnknownCollectionError` if absent or not served,
    :class:`ForbiddenLayerError` if a caller of ``role`` (when given) may not read it."""
    layer = registry.get(layer_id)
    if layer is None or not layer.served:
        raise UnknownCollectionError(f"collection {layer_id!r} does not exist")
    if role is not None and not layer.readable_by(role):
        hint = f"; use {layer.instead!r}" if layer.instead else ""
        raise ForbiddenLayerError(f"collection {layer.id!r} is not available to role {role!r}{hint}")
    return layer


def tile_kind(layer: Layer, z: int) -> Kind:
    """Points below ``detail_zoom`` are aggregated; everything else is detailed (with the cap;
    lines without one)."""
    if layer.geometry_type == "Point" and z < layer.tiles.detail_zoom:
        return "aggregate"
    return "detail"


def check_zoom(layer: Layer, z: int) -> None:
    """Raise :class:`ZoomOutOfRangeError` outside the layer's minzoom..maxzoom."""
    if not layer.tiles.minzoom <= z <= layer.tiles.maxzoom:
        raise ZoomOutOfRangeError(f"collection {layer.id!r} has tiles at tileMatrix "
                             f"{layer.tiles.minzoom}..{layer.tiles.maxzoom}, not {z}")


# Statements prepared on each connection (weakly keyed: a closed connection drops out). The pool
# never lets psycopg prepare (layers.db: item pages need custom plans), yet planning the tile
# statement costs ~1 ms, as much as drawing a typical polygon tile; so tiles prepare their own,
# by name. A prepared statement outlives a rolled-back transaction, and PostgreSQL re-plans it
# when the role it runs as changes (row-level security), so it is safe across callers.
_PREPARED: WeakKeyDictionary[AsyncConnection, set[str]] = WeakKeyDictionary()


async def _execute(conn: AsyncConnection, query: TileQuery, params: dict[str, Any]) -> AsyncCursor:
    """Run ``query`` as a prepared statement of ``conn`` (prepared on first use), binary results."""
    names = _PREPARED.setdefault(conn, set())
    if query.name not in names:
        await conn.execute(query.prepare)  # type: ignore[arg-type]  # registry-built text
        names.add(query.name)
    args = sql.SQL(", ").join(sql.Literal(params[name]) for name in query.param_names)
    # EXECUTE takes no bind parameters: the values are literals (ints, and text arrays quoted by psycopg)
    return await conn.execute(sql.SQL("EXECUTE {}({})").format(sql.Identifier(query.name), args),
                              binary=True)


# Tile statements run with generic plans: a custom plan of a tile statement costs ~0.6-0.9 ms
# to make (CTEs, init-plans), as much as drawing a typical grid tile, and PostgreSQL's default
# keeps making one per execution for these statements. The generic plan is the same scan (the
# tile envelope is computed inside the statement either way); measured on workloads (a)-(c),
# the same bytes, 0.5-0.9 ms less per tile (docs/performance.md, "Tiles, fourth run").
_GENERIC_PLANS = "set_config('plan_cache_mode', 'force_generic_plan', true)"
# The caller's statement (layers.db) is prepared on each connection too, generic plans set in
# the same statement: sent as text, PostgreSQL parsed and planned it for every tile (its join
# with pg_roles), ~0.15 ms of the server's CPU per tile (docs/performance.md, "Tiles, fifth run").
_CALLER = "pingan_tile_caller"
_PREPARE_CALLER = prepare_principal_sql(_CALLER, _GENERIC_PLANS)


@lru_cache(maxsize=4096)
def _stating(principal: Principal) -> str:
    """The statement stating ``principal`` (its text depends on user, role and areas only)."""
    return execute_principal_sql(_CALLER, principal)


async def _prepare(conn: AsyncConnection, names: set[str], name: str, statement: str) -> None:
    """Run ``statement``, which prepares ``name`` on ``conn``. If that fails or is cancelled, the
    connection is closed (the pool replaces it) rather than kept with a statement that may or
    may not exist."""
    try:
        await _simple(conn, statement)
    except BaseException:
        await conn.close()  # so the pool does not hand this connection out again
        raise
    names.add(name)


async def _simple(conn: AsyncConnection, text: str) -> list[pq.PGresult]:
    """Send ``text`` as one simple-protocol message on ``conn`` (idle, outside any transaction)
    and return the result of each statement (:func:`_exchange`)."""
    return await _exchange(conn, lambda pgconn: pgconn.send_query(text.encode()), pipeline=False)


async def _exchange(conn: AsyncConnection, send: Callable[[pq.abc.PGconn], object], *,
                    pipeline: bool) -> list[pq.PGresult]:
    """``send`` on ``conn``'s libpq connection, then every result: until libpq has no more, or
    (``pipeline``: ``send`` entered pipeline mode and ended with a Sync) until the Sync.

    libpq's calls, without psycopg's cursor and transaction machinery (a tenth of the service's
    CPU per tile, measured in process; docs/performance.md, "Tiles, eleventh run"), and without
    psycopg starting a transaction: PostgreSQL runs a simple-protocol message, or a pipeline up
    to its Sync, as one implicit transaction. A statement that fails raises its psycopg error
    (the transaction is rolled back and the connection is idle again; the statements after it
    in a pipeline are aborted). Cancelled, or failing mid-way (the connection lost), the
    connection is closed, so the pool never hands out one with a query still running.
    """
    pgconn = conn.pgconn
    results: list[pq.PGresult] = []
    try:
        send(pgconn)
        loop = asyncio.get_running_loop()
        fd = pgconn.socket
        while pgconn.flush():
            await _ready(loop, fd, write=True)
        while True:
            pgconn.consume_input()
            if pgconn.is_busy():
                await _ready(loop, fd, write=False)
                continue
            result = pgconn.get_result()
            if result is None:  # all results in, or (in a pipeline) the end of one statement's
                if pipeline:
                    continue
                break
            if result.status == pq.ExecStatus.PIPELINE_SYNC:
                pgconn.exit_pipeline_mode()
                break
            results.append(result)
    except BaseException:
        await conn.close()
        raise
    for result in results:
        if result.status == pq.ExecStatus.FATAL_ERROR:
            raise psycopg.errors.error_from_result(result, conn.info.encoding)
    return results


async def _ready(loop: asyncio.AbstractEventLoop, fd: int, *, write: bool) -> None:
    """Return when ``fd`` is readable (or writable)."""
    future = loop.create_future()
    add, remove = (loop.add_writer, loop.remove_writer) if write else (loop.add_reader, loop.remove_reader)
    add(fd, _wake, future)
    try:
        await future
    finally:
        remove(fd)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def draw(conn: AsyncConnection, principal: Principal,
               statements: Sequence[tuple[TileQuery, dict[str, Any]]]) -> list[bytes]:
    """Run tile ``statements`` for ``principal`` in one round trip; their MVTs, in order.

    ``conn`` is a pooled connection outside any transaction. The caller's statement (the one
    ``layers.db`` runs at the start of a transaction, prepared, with generic plans set) and the
    tile statements, all prepared, are sent in one pipeline of the extended protocol with one
    Sync at its end, which PostgreSQL runs as one implicit transaction: the caller's
    transaction-local settings and role hold for the tile statements and vanish at its end,
    exactly as with ``layers.db.atransaction``, minus three round trips (BEGIN, the caller,
    COMMIT). The tiles come back binary: no ``EXECUTE`` text for the server to parse, no bytea
    in hex (7% of the server's CPU per grid tile, 30% of ours for the round trip; docs/
    performance.md, "Tiles, eleventh run").

    Statements are prepared on first use, each in a simple-protocol message of its own (tile
    statements after the caller is stated).
    """
    if not statements:
        return []
    names = _PREPARED.setdefault(conn, set())
    if _CALLER not in names:
        await _prepare(conn, names, _CALLER, _PREPARE_CALLER)
    stating = None
    for query in {q.name: q for q, _ in statements if q.name not in names}.values():
        stating = stating or _stating(principal)
        await _prepare(conn, names, query.name, f"{stating}; {query.prepare}")

    def send(pgconn: pq.abc.PGconn) -> None:
        pgconn.enter_pipeline_mode()
        pgconn.send_query_prepared(_CALLER_NAME, _caller_args(principal))
        for query, params in statements:
            args = [_arg(conn, params[name]) for name in query.param_names]
            pgconn.send_query_prepared(query.name.encode(), args, result_format=1)
        pgconn.pipeline_sync()

    results = await _exchange(conn, send, pipeline=True)
    return [(result.get_value(0, 0) or b"") if result.ntuples else b"" for result in results[1:]]


_CALLER_NAME = _CALLER.encode()


@lru_cache(maxsize=4096)
def _caller_args(principal: Principal) -> list[bytes]:
    return [value.encode() for value in principal_args(principal)]


def _arg(conn: AsyncConnection, value: Any) -> bytes:
    """A parameter in PostgreSQL's text form: the tile's numbers, or a filter's text array."""
    if type(value) is int:
        return str(value).encode()
    return conn.adapters.get_dumper(type(value), PyFormat.TEXT)(type(value), conn).dump(value)


def tile_statements(layers: Iterable[Layer], z: int, x: int, y: int, filters: Filters = (),
                    shapes: Collection[str] = ()) -> list[tuple[TileQuery, dict[str, Any]]]:
    """The statement of each layer with tiles at ``z`` (others are left out, as from a dataset
    tile), for :func:`draw`. ``filters`` are normalised (:func:`normalise_filters`)."""
    return [_statement(layer, z, x, y, filters, layer.id in shapes) for layer in layers
            if layer.tiles.minzoom <= z <= layer.tiles.maxzoom]


def _statement(layer: Layer, z: int, x: int, y: int, filters: Filters,
               shapes: bool = False) -> tuple[TileQuery, dict[str, Any]]:
    kind = tile_kind(layer, z)
    use_shapes = shapes and kind == "detail" and not filters and z in stored_zooms(layer)
    query = query_for(layer, kind, (name for name, _ in filters), shapes=use_shapes)
    params: dict[str, Any] = {"z": z, "x": x, "y": y}
    params.update({f"f_{name}": list(values) for name, values in filters})
    return query, params


async def get_tile(
    conn: AsyncConnection,
    layer: Layer,
    z: int,
    x: int,
    y: int,
    *,
    filters: Mapping[str, str | Sequence[str]] | None = None,
    tms: TileMatrixSet = WEB_MERCATOR_QUAD,
    shapes: bool = False,
) -> bytes:
    """The MVT of one layer at tile (z, x, y): every feature, or explicitly aggregated cells.

    Parameters
    ----------
    conn
        An async psycopg connection, normally in the caller's transaction
        (``layers.db.atransaction``), so row-level security sees the caller.
    layer
        A layer of the registry; its id is the MVT layer name.
    z, x, y
        The tile: zoom, column from the west, row from the north.
    filters
        Property name to value (or values): only matching features are drawn or counted.
    shapes
        Draw a polygon layer from its prepared shapes (``tiles.shapes``); the caller has checked
        that they were built from the layer's current version. Ignored where shapes do not
        apply (points, filters, zooms without shapes). The features are the same either way.

    Returns
    -------
    bytes
        The MVT; empty bytes when the tile holds nothing.

    Examples
    --------
    >>> async with atransaction(pool, principal) as conn:  # doctest: +SKIP
    ...     mvt = await get_tile(conn, registry["hazards"], 14, 13683, 6866)
    """
    tms.validate(z, x, y)
    check_zoom(layer, z)
    query, params = _statement(layer, z, x, y, normalise_filters(layer, filters), shapes)
    # Binary results: the bytea arrives as bytes, not as hex text to decode (~0.3 ms of CPU on
    # a 40 KB tile, a fifth of the service's own work per tile).
    cur = await _execute(conn, query, params)
    row = await cur.fetchone()
    return bytes(row[0]) if row and row[0] is not None else b""


async def get_tiles(
    conn: AsyncConnection,
    layers: Iterable[Layer],
    z: int,
    x: int,
    y: int,
    *,
    tms: TileMatrixSet = WEB_MERCATOR_QUAD,
    shapes: Collection[str] = (),
) -> bytes:
    """One MVT holding several layers (concatenated MVT layers are a valid MVT).

    Layers whose zoom range excludes ``z`` are left out of the tile rather than refused: a
    map screen asks one URL for every zoom.
    """
    tms.validate(z, x, y)
    statements = [_statement(layer, z, x, y, (), layer.id in shapes) for layer in layers
                  if layer.tiles.minzoom <= z <= layer.tiles.maxzoom]
    if not statements:
        return b""
    # One round trip for all layers: the statements are queued in pipeline mode and their
    # results read afterwards.
    async with conn.pipeline():
        cursors = [await _execute(conn, q, p) for q, p in statements]
    parts = []
    for cur in cursors:
        row = await cur.fetchone()
        if row and row[0]:
            parts.append(bytes(row[0]))
    return b"".join(parts)
