"""Person files: reading one with its identity opened for the caller, and re-sealing all of them
under a new data key.

The database never sees a data key. It holds ciphertexts (``*_enc``) and the blind index of the
ID number; the service opens them for callers whose role needs the clear value and masks them
for the others (``IDENTITY_ACCESS``), inside the transaction that also writes the audit record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, text

from gis.privacy import MASKS
from layers import audit
from layers.crypto import KeyRing
from layers.db import Principal

SEALED = ("name", "id_number", "phone")
# Which identity fields a role reads in clear; all others are masked. Grid workers visit the
# person; the town needs to call; the command centre and admins see masks.
IDENTITY_ACCESS: dict[str, frozenset[str]] = {
    "grid": frozenset(SEALED),
    "town": frozenset({"name", "phone"}),
    "command": frozenset(),
    "admin": frozenset(),
}

_FILE = text(
    "SELECT id, name_enc, id_number_enc, phone_enc, gender, birth_year, categories, grade, grade_since,"
    " status, registered_at, grid_code, village_code, town_code, address, exact_location,"
    " ST_X(geom), ST_Y(geom), updated_at FROM pingan.persons_served WHERE id = :id"
)
_GRADES = text(
    "SELECT grade, previous_grade, changed_at, reason FROM pingan.person_grades"
    " WHERE person_id = :id ORDER BY changed_at"
)
_VISITS = text(
    "SELECT visited_at, method, finding, next_due FROM pingan.person_visits"
    " WHERE person_id = :id ORDER BY visited_at DESC LIMIT 50"
)


def open_identity(keys: KeyRing, role: str, sealed: dict[str, bytes | None]) -> dict[str, str | None]:
    """The identity fields as ``role`` may read them: clear, masked, or None when absent."""
    clear = IDENTITY_ACCESS.get(role, frozenset())
    out: dict[str, str | None] = {}
    for name in SEALED:
        blob = sealed.get(name)
        if blob is None:
            out[name] = None
            continue
        value = keys.decrypt(bytes(blob), context=name.encode())
        out[name] = value if name in clear else MASKS[name](value)
    return out


def read_file(conn: Connection, keys: KeyRing, principal: Principal, person_id: int) -> dict[str, Any] | None:
    """One person's file for ``principal`` (None when it does not exist *for this caller*: row-level
    security decides), with the audit record written in the same transaction."""
    row = conn.execute(_FILE, {"id": person_id}).one_or_none()
    if row is None:
        return None
    (pid, name_enc, id_enc, phone_enc, gender, birth_year, categories, grade, grade_since, status,
     registered_at, grid, village, town, address, exact, lon, lat, updated_at) = row
    sealed = {"name": name_enc, "id_number": id_enc, "phone": phone_enc}
    identity = open_identity(keys, principal.role, sealed)
    grades = [dict(r._mapping) for r in conn.execute(_GRADES, {"id": pid})]
    visits = [dict(r._mapping) for r in conn.execute(_VISITS, {"id": pid})]
    clear = sorted(IDENTITY_ACCESS.get(principal.role, frozenset()))
    audit.record(conn, principal, "read", "persons", [pid], {"via": "person file", "clear": clear})
    return {
        "id": pid, **identity, "gender": gender, "birth_year": birth_year, "categories": list(categories),
        "grade": grade, "grade_since": grade_since, "status": status, "registered_at": registered_at,
        "grid_code": grid, "village_code": village, "town_code": town, "address": address,
        "location": {"lon": lon, "lat": lat, "exact": exact}, "updated_at": updated_at,
        "grade_history": grades, "visits": visits,
    }


@dataclass(frozen=True)
class Rotation:
    persons: int  # rows looked at
    resealed: int  # rows whose ciphertexts moved to the primary key
    reindexed: int  # rows whose blind index changed


def key_usage(engine: Engine) -> dict[str, int]:
    """How many person rows each key id seals (by the ID number's ciphertext)."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT convert_from(substring(id_number_enc FROM 3 FOR get_byte(id_number_enc, 1)), 'UTF8'),"
            " count(*) FROM pingan.persons GROUP BY 1 ORDER BY 1"
        )).all()
    return {kid: n for kid, n in rows}


def rotate(engine: Engine, keys: KeyRing, batch: int = 2000) -> Rotation:
    """Re-seal every person row under ``keys.primary`` and recompute the blind indexes with it.

    One transaction holding a lock that keeps loaders out (they take ROW EXCLUSIVE): a crash
    leaves the old state whole, and a re-run finishes what is left. Old keys must still be in
    the ring; drop them from the configuration only after this has run.
    """
    seen = resealed = reindexed = 0
    with engine.begin() as conn:
        conn.execute(text("LOCK TABLE pingan.persons IN SHARE ROW EXCLUSIVE MODE"))
        last = 0
        while True:
            rows = conn.execute(text(
                "SELECT id, name_enc, id_number_enc, phone_enc, id_number_hash FROM pingan.persons"
                " WHERE id > :last ORDER BY id LIMIT :n"), {"last": last, "n": batch}).all()
            if not rows:
                break
            last = rows[-1][0]
            updates = []
            for pid, *blobs, old_hash in rows:
                seen += 1
                new = []
                moved = False
                for name, blob in zip(SEALED, blobs, strict=True):
                    if blob is None or keys.key_id(bytes(blob)) == keys.primary:
                        new.append(None if blob is None else bytes(blob))
                        continue
                    new.append(keys.encrypt(keys.decrypt(bytes(blob), context=name.encode()),
                                            context=name.encode()))
                    moved = True
                id_number = keys.decrypt(new[1], context=b"id_number")
                new_hash = keys.blind_index(id_number)
                if moved or new_hash != bytes(old_hash):
                    resealed += moved
                    reindexed += new_hash != bytes(old_hash)
                    updates.append({"id": pid, "n": new[0], "i": new[1], "p": new[2], "h": new_hash})
            if updates:
                conn.execute(text(
                    "UPDATE pingan.persons SET name_enc = :n, id_number_enc = :i, phone_enc = :p,"
                    " id_number_hash = :h WHERE id = :id"), updates)
        audit.record(conn, Principal("pingan keys rotate", "system"), "rotate-keys", "persons", (),
                     {"primary": keys.primary, "persons": seen, "resealed": resealed, "reindexed": reindexed})
    return Rotation(seen, resealed, reindexed)
