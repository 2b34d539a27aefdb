"""Privacy transforms: masking of identifiers for display (pure functions).

Masks keep what a reader needs to tell records apart and to check them against a document in
hand, and nothing more: the first and last four characters of an ID number (region and check
digits: ``3303**********1234``), the surname of a name (``张**``), the carrier prefix and last four
digits of a phone (``138****5678``).
"""

from __future__ import annotations


def mask_id(value: str) -> str:
    v = str(value)
    return v[:4] + "*" * (len(v) - 8) + v[-4:] if len(v) > 8 else "*" * len(v)


def mask_name(value: str) -> str:
    v = str(value)
    return v[:1] + "*" * (len(v) - 1) if len(v) > 1 else "*"


def mask_phone(value: str) -> str:
    v = str(value)
    return v[:3] + "*" * (len(v) - 7) + v[-4:] if len(v) > 8 else "*" * len(v)


MASKS = {"name": mask_name, "id_number": mask_id, "phone": mask_phone}
