"""Errors of the OGC API and the one table that maps them to HTTP statuses.

An OGC exception body is ``{"code", "type", "description"}`` (what pygeoapi answers too, so a
client sees one shape whichever path served it).
"""

from __future__ import annotations

from http import HTTPStatus


class OgcError(Exception):
    """An error a client caused or must be told about, with its OGC exception code."""

    status = HTTPStatus.INTERNAL_SERVER_ERROR
    code = "NoApplicableCode"

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description

    def body(self) -> dict[str, str]:
        return {"code": self.code, "type": self.code, "description": self.description}


class InvalidParameterError(OgcError):
    status = HTTPStatus.BAD_REQUEST
    code = "InvalidParameterValue"


class ForbiddenError(OgcError):
    status = HTTPStatus.FORBIDDEN
    code = "Forbidden"


class NotFoundError(OgcError):
    status = HTTPStatus.NOT_FOUND
    code = "NotFound"


class UnavailableError(OgcError):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "ServiceUnavailable"
