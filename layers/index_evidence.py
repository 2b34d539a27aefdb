"""Evidence of the accountability ladder: notes, each with at most one attached file (migration 0014).

Append-only: evidence is added, never changed or deleted (the database refuses both). Who may
add it is the database's decision too: staff with jurisdiction over the item's place, on open
items (row-level security on ``index_warning_evidence`` follows ``index_warnings``); the author,
role, step and time are stamped by the database from the transaction's caller
(:func:`layers.db.transaction`). The API and tests call these functions with such a connection.

Files are checked here before they reach the database: at most :data:`MAX_FILE_BYTES`, and a
type recognised from the content itself (PDF, PNG, JPEG, DOCX) that agrees with the file name's
extension; the client's declared type is not trusted.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from dataclasses import dataclass

from sqlalchemy import Connection, text

MAX_NOTE_CHARS = 4000
MAX_FILE_BYTES = 4 * 1024 * 1024
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MEDIA_TYPES = {
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".docx": DOCX,
}


_COLUMNS = (
    "id, warning_id, step, note, file_name, media_type, file_size, file_sha256, created_by, "
    "created_role, created_at"
)
# the placeholders of the stamped columns are overwritten by the trigger (migration 0014)
_INSERT = (
    "INSERT INTO pingan.index_warning_evidence (warning_id, level, code, town_code, opened, step, "
    "note, file_name, media_type, file_size, file_sha256, content, created_by, created_role) "
    "VALUES (:i, 'village', '', '', current_date, 1, :note, :fn, :mt, :fs, :sha, :data, '', '') "
    "RETURNING " + _COLUMNS
)


class EvidenceError(ValueError):
    """Evidence that cannot be recorded as given (the message says why): a bad note or file."""


class ItemNotFoundError(EvidenceError):
    """No such ladder item for this caller."""


class ItemClosedError(EvidenceError):
    """The item is closed (de-listed): its record is final."""


@dataclass(frozen=True)
class EvidenceFile:
    name: str
    data: bytes


@dataclass(frozen=True)
class CheckedFile:
    name: str
    media_type: str
    size: int
    sha256: str
    data: bytes


def sniff(data: bytes) -> str | None:
    """The media type the content itself shows (None: not one we accept)."""
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                if "word/document.xml" in z.namelist():
                    return DOCX
        except zipfile.BadZipFile:
            return None
    return None


def check_file(f: EvidenceFile) -> CheckedFile:
    """The file as it will be stored, or EvidenceError with the reason."""
    name = re.sub(r"[\x00-\x1f/\\]", "_", f.name or "").strip()[-200:]
    if not name:
        raise EvidenceError("the attached file has no name")
    if not f.data:
        raise EvidenceError(f"{name}: the file is empty")
    if len(f.data) > MAX_FILE_BYTES:
        raise EvidenceError(f"{name}: {len(f.data):,} bytes, over the limit of {MAX_FILE_BYTES:,}")
    ext = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    expected = MEDIA_TYPES.get(ext)
    if expected is None:
        raise EvidenceError(f"{name}: only {', '.join(MEDIA_TYPES)} files are accepted")
    found = sniff(f.data)
    if found != expected:
        raise EvidenceError(f"{name}: the content is not a {ext[1:].upper()} file")
    return CheckedFile(name, found, len(f.data), hashlib.sha256(f.data).hexdigest(), f.data)


def add_evidence(conn: Connection, warning_id: int, note: str, file: EvidenceFile | None = None):  # noqa: ANN201
    """Record a note (and file) on item ``warning_id`` as the connection's caller; return the
    stored row (without the content)."""
    note = (note or "").strip()
    if not note:
        raise EvidenceError("the note is empty: say what was done")
    if len(note) > MAX_NOTE_CHARS:
        raise EvidenceError(f"the note has {len(note)} characters, over the limit of {MAX_NOTE_CHARS}")
    checked = check_file(file) if file is not None else None
    sql = "SELECT status FROM pingan.index_warnings WHERE id = :i"
    item = conn.execute(text(sql), {"i": warning_id}).first()
    if item is None:
        raise ItemNotFoundError(f"no ladder item {warning_id}")
    if item.status != "open":
        raise ItemClosedError(f"ladder item {warning_id} is closed: evidence is added to open items only")
    return conn.execute(
        text(_INSERT),
        {
            "i": warning_id,
            "note": note,
            "fn": checked and checked.name,
            "mt": checked and checked.media_type,
            "fs": checked and checked.size,
            "sha": checked and checked.sha256,
            "data": checked and checked.data,
        },
    ).one()


def list_evidence(conn: Connection, warning_id: int) -> list:
    """The item's evidence, oldest first, without file contents."""
    return conn.execute(
        text(f"SELECT {_COLUMNS} FROM pingan.index_warning_evidence WHERE warning_id = :i ORDER BY id"),  # noqa: S608
        {"i": warning_id},
    ).all()


def evidence_file(conn: Connection, warning_id: int, evidence_id: int):  # noqa: ANN201 - Row or None
    """(file_name, media_type, content) of one attached file, or None."""
    return conn.execute(
        text(
            "SELECT file_name, media_type, content FROM pingan.index_warning_evidence "
            "WHERE id = :e AND warning_id = :i AND content IS NOT NULL"
        ),
        {"e": evidence_id, "i": warning_id},
    ).first()
