"""Five-loss persons (五失人员) in ETL: ID numbers checked, personal data sealed, rejects masked.

Name, ID number and phone never reach the database, a reject or a log in clear:

- the ID number is checked first (18 characters, a real birth date, the GB 11643 / ISO 7064
  MOD 11-2 check character; a 15-digit number of the first generation is upgraded to 18) and
  gives the person's sex and year of birth;
- :func:`seal` encrypts the three values with the data key ring (AES-256-GCM, the column name
  bound as associated data) and computes the blind index ``id_number_hash`` (keyed HMAC) on
  which the upsert is keyed, so a re-load of the same person updates one file. A value that did
  not change keeps its stored ciphertext (GCM's random nonce would otherwise make every re-load
  look like a change);
- :func:`mask_rejects` masks these fields in the raw rows and reasons of rejects
  (``3303**********1234``, ``张**``, ``138****5678``).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from gis.privacy import MASKS, mask_id, mask_name, mask_phone  # noqa: F401 - the loader's masks
from layers.crypto import DataKeyError, KeyRing

SENSITIVE = ("name", "id_number", "phone")
_WEIGHTS = np.array([2 ** (17 - i) % 11 for i in range(17)])
_CHECK = "10X98765432"
_ID18 = re.compile(r"^[0-9]{17}[0-9X]$")
_ID15 = re.compile(r"^[0-9]{15}$")


def check_character(first17: str) -> str:
    """The GB 11643 check character of a 17-digit string."""
    return _CHECK[int(np.dot([int(c) for c in first17], _WEIGHTS)) % 11]





def check_id_numbers(values: pd.Series, today: pd.Timestamp | None = None) -> tuple[pd.Series, pd.Series]:
    """Normalise ID numbers (upper case, no blanks, 15 digits upgraded to 18).

    Returns (normalised, reason): reason is None for a good number, else why it is not one,
    with the number masked."""
    today = today or pd.Timestamp.now(tz="Asia/Shanghai").tz_localize(None)
    out, reasons = [], []
    for raw in values.to_numpy(dtype=object):
        v = "".join(str(raw).split()).upper()
        if _ID15.match(v):  # first generation (before 1999): 2-digit year, no check character
            v = v[:6] + "19" + v[6:] + check_character(v[:6] + "19" + v[6:])
        why = None
        if not _ID18.match(v):
            why = "is not an 18-character resident ID number"
        else:
            try:
                born = pd.Timestamp(f"{v[6:10]}-{v[10:12]}-{v[12:14]}")
            except ValueError:
                born = None
            if born is None or born.year < 1900 or born > today:
                why = "has no valid birth date (characters 7-14)"
            elif check_character(v[:17]) != v[17]:
                why = "has a wrong check character (GB 11643)"
        out.append(v)
        reasons.append(None if why is None else f"身份证号 {why}: {mask_id(v)}")
    index = values.index
    return pd.Series(out, index=index, dtype=object), pd.Series(reasons, index=index, dtype=object)


def identity_fields(ids: pd.Series) -> pd.DataFrame:
    """Sex and year of birth, as the (valid, normalised) ID numbers state them."""
    return pd.DataFrame(
        {
            "gender": np.where(ids.str.slice(16, 17).astype(int) % 2 == 1, "M", "F"),
            "birth_year": ids.str.slice(6, 10).astype(int),
        },
        index=ids.index,
    )


def blind_indexes(ids: pd.Series, keys: KeyRing) -> pd.Series:
    """The blind indexes as hex text (bytes become ``id_number_hash`` in :func:`seal`)."""
    return pd.Series([keys.blind_index(v).hex() for v in ids], index=ids.index, dtype=object)


def seal(conn: Connection, frame: pd.DataFrame, keys: KeyRing) -> pd.DataFrame:
    """Replace name/id_number/phone by their ciphertexts (``*_enc``); ``id_number_hash`` (hex, from
    :func:`blind_indexes`) becomes bytes. A value equal to what the database holds for that
    person keeps its stored ciphertext."""
    stored: dict[bytes, tuple] = {}
    hashes = [bytes.fromhex(h) for h in frame["id_number_hash"]]
    for start in range(0, len(hashes), 10_000):
        rows = conn.execute(
            text(
                "SELECT id_number_hash, name_enc, id_number_enc, phone_enc FROM pingan.persons "
                "WHERE id_number_hash = ANY(:h)"
            ),
            {"h": hashes[start : start + 10_000]},
        )
        stored.update({bytes(r[0]): tuple(None if b is None else bytes(b) for b in r[1:]) for r in rows})

    def one(field: str, position: int) -> list[bytes | None]:
        context = field.encode()
        out = []
        for h, value in zip(hashes, frame[field].to_numpy(dtype=object), strict=True):
            if value is None or (isinstance(value, float) and np.isnan(value)):
                out.append(None)
                continue
            old = stored.get(bytes(h), (None,) * 3)[position]
            if old is not None:
                try:
                    if keys.decrypt(old, context=context) == value:
                        out.append(old)
                        continue
                except (DataKeyError, ValueError):  # sealed with a retired key, or damaged
                    pass
            out.append(keys.encrypt(str(value), context=context))
        return out

    sealed = {f"{f}_enc": one(f, i) for i, f in enumerate(SENSITIVE)}
    return frame.drop(columns=list(SENSITIVE)).assign(**sealed, id_number_hash=hashes)


def mask_rejects(rejects: pd.DataFrame, headers: dict[str, str]) -> pd.DataFrame:
    """Rejects with the personal fields of their raw rows (under field or file header names) and
    any copy of those values in their reasons masked."""
    if rejects.empty:
        return rejects
    by_key = {f: MASKS[f] for f in SENSITIVE} | {headers[f]: MASKS[f] for f in SENSITIVE if f in headers}
    raws, reasons = [], []
    for raw, reason in zip(rejects["raw"], rejects["reason"].astype(str), strict=True):
        raw = dict(raw) if isinstance(raw, dict) else {}
        for key, mask in by_key.items():
            value = raw.get(key)
            if value is None or value == "None" or (isinstance(value, float) and np.isnan(value)):
                continue
            masked = mask(str(value))
            raw[key] = masked
            reason = reason.replace(str(value), masked) if str(value) else reason
        raws.append(raw)
        reasons.append(reason)
    return rejects.assign(raw=raws, reason=reasons)

