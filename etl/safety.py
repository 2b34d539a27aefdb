"""Checks on uploaded archives before anything is extracted or read from them."""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

MAX_MEMBERS = 1_000
MAX_UNCOMPRESSED = 2 * 1024**3  # bytes, all members together
MAX_RATIO = 200  # uncompressed / compressed, per member: beyond this it is a bomb, not data...
#: ...when it inflates to this much: a small member compresses as well as it likes (a .dbf of
#: mostly empty 254-character fields: 10.8 MB at 321x), and all members together stay under
#: MAX_UNCOMPRESSED
RATIO_FROM = 256 * 1024**2


class UnsafeFileError(ValueError):
    """An archive that must not be opened: path traversal, a compression bomb, too many parts."""


def check_zip(path: Path) -> list[str]:
    """Return the member names of a safe zip; raise :class:`UnsafeFileError` otherwise.

    Reads only the central directory (the declared sizes), so a bomb is refused without being
    inflated. GDAL's /vsizip/ then reads members in place; nothing is written to disk.
    """
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise UnsafeFileError("not a valid zip archive (truncated or corrupt)") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise UnsafeFileError(f"{len(infos)} files in the archive (limit {MAX_MEMBERS})")
        total = 0
        for info in infos:
            name = PurePosixPath(info.filename.replace("\\", "/"))
            if name.is_absolute() or ".." in name.parts or ":" in info.filename:
                raise UnsafeFileError(f"member {info.filename!r} points outside the archive")
            if info.flag_bits & 0x1:
                raise UnsafeFileError(f"member {info.filename!r} is encrypted")
            total += info.file_size
            ratio = info.file_size / info.compress_size if info.compress_size else 0
            if info.file_size > RATIO_FROM and (ratio > MAX_RATIO or not info.compress_size):
                raise UnsafeFileError(
                    f"member {info.filename!r} inflates to {info.file_size / 1024**2:.0f} MB at "
                    f"{ratio:.0f}x (limit {MAX_RATIO}x): a compression bomb"
                )
        if total > MAX_UNCOMPRESSED:
            raise UnsafeFileError(f"{total / 1024**3:.1f} GB uncompressed (limit 2 GB)")
        return [i.filename for i in infos if not i.is_dir()]
