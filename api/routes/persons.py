"""The person file: one five-loss person with identity opened for the caller's role.

``GET /api/persons/{id}``: 404 when the person does not exist *for this caller* (row-level
security decides: a town user asking for another town's person learns nothing), 403 for roles
that never see individuals. Identity fields are clear or masked by role (``layers.persons``);
the read and its reason (header ``X-Pingan-Reason``) go to the audit log in the same transaction.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from api.deps import EngineDep, PrincipalDep
from layers.db import transaction
from layers.persons import IDENTITY_ACCESS, read_file

router = APIRouter(prefix="/api", tags=["persons"])


@router.get("/persons/{person_id}", summary="A person's file (audited)")
def person_file(request: Request, engine: EngineDep, principal: PrincipalDep,
                person_id: Annotated[int, Path(ge=1, le=2**62)]) -> JSONResponse:
    if principal.role not in IDENTITY_ACCESS:
        raise HTTPException(403, f"role {principal.role!r} does not see individual persons")
    keys = getattr(request.app.state, "keys", None)
    if keys is None:
        raise HTTPException(503, "the person-data key is not configured (PINGAN_DATA_KEY_FILE)")
    with transaction(engine, principal) as conn:
        file: dict[str, Any] | None = read_file(conn, keys, principal, person_id)
    if file is None:
        raise HTTPException(404, f"no person {person_id}")
    return JSONResponse(jsonable_encoder(file), headers={"Cache-Control": "no-store"})
