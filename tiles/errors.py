"""The exceptions of the tile service; ``api`` maps each to an HTTP status in one table."""

from __future__ import annotations


class TileError(Exception):
    """Base of every error the tile service reports to a caller.

    ``code`` is the OGC exception code the API puts in its JSON body.
    """

    code = "TileError"


class UnknownCollectionError(TileError):
    """No served layer has this id."""

    code = "NotFound"


class ForbiddenLayerError(TileError):
    """The caller's role may not read this layer (the registry names what it sees instead)."""

    code = "Forbidden"


class UnknownTileMatrixSetError(TileError):
    """The tile matrix set is not one we serve (only WebMercatorQuad)."""

    code = "NotFound"


class InvalidTileError(TileError):
    """The tile address is malformed or outside the tile matrix (z, x or y out of range)."""

    code = "InvalidParameterValue"


class ZoomOutOfRangeError(TileError):
    """The zoom is valid for the tile matrix set but outside the layer's minzoom..maxzoom."""

    code = "NotFound"


class InvalidFilterError(TileError):
    """A filter names a property the layer does not expose."""

    code = "InvalidParameterValue"
