"""The accountability ladder's items and the index's published maps (issue 6).

- ``GET /api/warnings/{id}``: one item (step, owner, deadline, overdue), its history and evidence;
- ``POST /api/warnings/{id}/evidence``: a note, optionally one file (multipart ``note``,
  ``file``); append-only, audited; cookie sessions send ``X-CSRF-Token``;
- ``GET /api/warnings/{id}/evidence/{evidence_id}/file``: an attached file;
- ``GET /api/warnings/{id}/document?format=docx|pdf``: the step's 抄告单/督办单/... document;
- ``GET /api/index/export?period=&level=&format=html|png``: a month's map (every role, public
  too: it shows the published index only).

Staff (admin, command, town, grid) see the items of their jurisdiction; the database decides
(row-level security on ``index_warnings`` and ``index_warning_evidence``), so an item of another
town answers 404 as if it did not exist. Analysts and the public see no ladder items (403).
The list of open items, ``GET /api/warnings``, is the map screen's (api/routes/dashboard.py).
There is no manual step change: the ladder moves only with the monthly index (gis/index/ladder.py).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, HTTPException, Path, Query, Request, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from api.deps import EngineDep, PrincipalDep
from layers import audit
from layers.db import transaction
from layers.index import IndexInputError, parse_period, warning, warning_history
from layers.index_documents import FORMATS, DocumentError, ItemMissingError, document_content, render
from layers.index_evidence import (
    MAX_FILE_BYTES,
    EvidenceError,
    EvidenceFile,
    ItemClosedError,
    ItemNotFoundError,
    add_evidence,
    evidence_file,
    list_evidence,
)
from layers.index_exports import FORMATS as EXPORT_FORMATS
from layers.index_exports import ExportError, NoIndexError, export_html, export_png, read_map

router = APIRouter(prefix="/api", tags=["index"])
STAFF = frozenset({"admin", "command", "town", "grid"})
WarningId = Annotated[int, Path(ge=1, le=2**62, description="the ladder item (GET /api/warnings lists them)")]
NO_STORE = {"Cache-Control": "no-store"}


def _staff(role: str) -> None:
    if role not in STAFF:
        raise HTTPException(403, f"role {role!r} does not see the accountability ladder")


def _attachment(name: str) -> str:
    # RFC 6266/5987: an ASCII fallback and the UTF-8 name (Chinese titles)
    return (
        f'attachment; filename="{name.encode("ascii", "replace").decode().replace("?", "_")}"; '
        f"filename*=UTF-8''{quote(name)}"
    )


def _rows(rows: list) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in rows]


@router.get("/warnings/{warning_id}", summary="A ladder item with its history and evidence")
def warning_detail(engine: EngineDep, principal: PrincipalDep, warning_id: WarningId) -> JSONResponse:
    _staff(principal.role)
    with transaction(engine, principal) as conn:
        item = warning(conn, warning_id)
        if item is None:
            raise HTTPException(404, f"no ladder item {warning_id}")
        body = {
            "warning": dict(item._mapping),
            "history": _rows(warning_history(conn, warning_id)),
            "evidence": _rows(list_evidence(conn, warning_id)),
        }
    return JSONResponse(jsonable_encoder(body), headers=NO_STORE)


@router.post("/warnings/{warning_id}/evidence", status_code=201, summary="Add evidence (append-only)")
async def post_evidence(
    engine: EngineDep,
    principal: PrincipalDep,
    warning_id: WarningId,
    note: Annotated[str, Form(max_length=4000, description="what was done")],
    file: Annotated[
        UploadFile | None, File(description=f"PDF, PNG, JPEG or DOCX, ≤ {MAX_FILE_BYTES} B")
    ] = None,
) -> JSONResponse:
    _staff(principal.role)
    attached = None
    if file is not None and file.filename:
        data = await file.read(MAX_FILE_BYTES + 1)
        attached = EvidenceFile(file.filename, data)
    return await run_in_threadpool(_add, engine, principal, warning_id, note, attached)


def _add(engine, principal, warning_id: int, note: str, attached: EvidenceFile | None) -> JSONResponse:  # noqa: ANN001
    try:
        with transaction(engine, principal) as conn:
            row = add_evidence(conn, warning_id, note, attached)
            audit.record(
                conn,
                principal,
                "add_evidence",
                "index_warning",
                [warning_id],
                {
                    "evidence_id": row.id,
                    "file": row.file_name,
                    "bytes": row.file_size,
                    "sha256": row.file_sha256,
                },
            )
    except ItemNotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except ItemClosedError as exc:
        raise HTTPException(409, str(exc)) from None
    except EvidenceError as exc:
        raise HTTPException(422, str(exc)) from None
    return JSONResponse(jsonable_encoder(dict(row._mapping)), status_code=201, headers=NO_STORE)


@router.get("/warnings/{warning_id}/evidence/{evidence_id}/file", summary="An evidence file")
def get_evidence_file(
    engine: EngineDep,
    principal: PrincipalDep,
    warning_id: WarningId,
    evidence_id: Annotated[int, Path(ge=1, le=2**62)],
) -> Response:
    _staff(principal.role)
    with transaction(engine, principal) as conn:
        row = evidence_file(conn, warning_id, evidence_id)
    if row is None:
        raise HTTPException(404, f"no file in evidence {evidence_id} of ladder item {warning_id}")
    return Response(
        bytes(row.content),
        media_type=row.media_type,
        headers={
            "Content-Disposition": _attachment(row.file_name),
            **NO_STORE,
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/warnings/{warning_id}/document", summary="The item's document (抄告单, 督办单, ...)")
def document(
    engine: EngineDep,
    principal: PrincipalDep,
    warning_id: WarningId,
    format: Annotated[str, Query(pattern="^(docx|pdf)$")] = "docx",
) -> Response:  # noqa: A002
    _staff(principal.role)
    try:
        with transaction(engine, principal) as conn:
            content = document_content(conn, warning_id)
        data = render(content, format)
    except ItemMissingError as exc:
        raise HTTPException(404, str(exc)) from None
    except DocumentError as exc:  # no font for the PDF: a deployment problem
        raise HTTPException(503, str(exc)) from None
    return Response(
        data,
        media_type=FORMATS[format],
        headers={"Content-Disposition": _attachment(content.file_name(format)), **NO_STORE},
    )


@router.get("/index/export", summary="A month's index map: standalone HTML or PNG")
def index_export(
    request: Request,
    engine: EngineDep,
    principal: PrincipalDep,
    period: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")],
    level: Annotated[str, Query(pattern="^(village|town)$")] = "village",
    format: Annotated[str, Query(pattern="^(html|png)$")] = "html",  # noqa: A002
    width: Annotated[int, Query(ge=200, le=4000)] = 1600,
    height: Annotated[int, Query(ge=200, le=4000)] = 1200,
) -> Response:
    try:
        p = parse_period(period)
        with transaction(engine, principal) as conn:
            frame = read_map(conn, p, level)
        data = (
            export_html(frame, p, level, request.app.state.settings.assets_dir).encode()
            if format == "html"
            else export_png(frame, p, level, width, height).data
        )
    except IndexInputError as exc:
        raise HTTPException(422, str(exc)) from None
    except NoIndexError as exc:
        raise HTTPException(404, str(exc)) from None
    except ExportError as exc:  # Leaflet or a CJK font missing: a deployment problem
        raise HTTPException(503, str(exc)) from None
    name = f"平安指数-{level}-{p:%Y-%m}.{format}"
    return Response(
        data,
        media_type=EXPORT_FORMATS[format],
        headers={"Content-Disposition": _attachment(name), "Cache-Control": "private, max-age=60"},
    )
