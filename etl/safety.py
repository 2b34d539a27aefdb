"""Checks on uploaded archives before anything is extracted or read from them.

A zip's headers only *declare* its members' sizes: a hostile one declares a few kilobytes for a
deflate stream that inflates to gigabytes, and the declared sizes pass :func:`check_zip`. GDAL's
/vsizip/ reads such a member past its declared size (a ``.dbf`` declared 4 KB gave GDAL 3.12 a
million records, 201 MB), and Python's ``zipfile`` inflates a whole member in one call when it
is read at once (openpyxl reads ``styles.xml`` so: a 1 GB stream declared 2.5 KB took 2 GB of
memory) before it cuts it to the declared size. So no reader is given a zip's members until
they were inflated as a stream, a megabyte at a time, and found to hold what they declare:
:func:`extract` writes the members a reader needs as plain files (a zipped Shapefile's parts,
for GDAL), :func:`verify_sizes` inflates them all and keeps nothing (an XLSX, for openpyxl).
"""

from __future__ import annotations

import copy
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath

MAX_MEMBERS = 1_000
MAX_UNCOMPRESSED = 2 * 1024**3  # bytes, all members together
MAX_RATIO = 200  # uncompressed / compressed, per member: beyond this it is a bomb, not data...
#: ...when it inflates to this much: a small member compresses as well as it likes (a .dbf of
#: mostly empty 254-character fields: 10.8 MB at 321x), and all members together stay under
#: MAX_UNCOMPRESSED
RATIO_FROM = 256 * 1024**2
#: what Shapefile and spreadsheet tools write; zipfile inflates bzip2 and LZMA without a limit
#: per call, and GDAL reads neither
METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}
CHUNK = 1024**2  # inflated bytes per read when a member is streamed


class UnsafeFileError(ValueError):
    """An archive that must not be opened: path traversal, a compression bomb, too many parts."""


def check_zip(path: Path) -> list[str]:
    """Return the member names of a safe zip; raise :class:`UnsafeFileError` otherwise.

    Reads only the central directory (the declared sizes), so a bomb that declares its size is
    refused without being inflated; so are compressed sizes the archive cannot hold (a member
    past its end, members that share their data), which would make the ratio a lie. A member
    that declares less than it holds is caught when it is inflated (:func:`extract`,
    :func:`verify_sizes`), a megabyte past the declared size.
    """
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise UnsafeFileError("not a valid zip archive (truncated or corrupt)") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise UnsafeFileError(f"{len(infos)} files in the archive (limit {MAX_MEMBERS})")
        total = packed = 0
        for info in infos:
            name = PurePosixPath(info.filename.replace("\\", "/"))
            if name.is_absolute() or ".." in name.parts or ":" in info.filename:
                raise UnsafeFileError(f"member {info.filename!r} points outside the archive")
            if info.flag_bits & 0x1:
                raise UnsafeFileError(f"member {info.filename!r} is encrypted")
            if info.compress_type not in METHODS:
                raise UnsafeFileError(f"member {info.filename!r} is compressed with method "
                                      f"{info.compress_type} (only stored and deflated are read)")
            if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
                raise UnsafeFileError(f"member {info.filename!r} is stored as {info.compress_size:,} bytes "
                                      f"but declares {info.file_size:,}: a falsified size")
            if info.header_offset + info.compress_size > zf.start_dir:
                raise UnsafeFileError(f"member {info.filename!r} declares {info.compress_size:,} compressed "
                                      "bytes, more than the archive holds: a falsified size")
            total += info.file_size
            packed += info.compress_size
            ratio = info.file_size / info.compress_size if info.compress_size else 0
            if info.file_size > RATIO_FROM and (ratio > MAX_RATIO or not info.compress_size):
                raise UnsafeFileError(
                    f"member {info.filename!r} inflates to {info.file_size / 1024**2:.0f} MB at "
                    f"{ratio:.0f}x (limit {MAX_RATIO}x): a compression bomb"
                )
        if packed > zf.start_dir:  # the members' data lie before the central directory, once each
            raise UnsafeFileError(f"the members declare {packed:,} compressed bytes in {zf.start_dir:,}: "
                                  "they overlap (a compression bomb)")
        if total > MAX_UNCOMPRESSED:
            raise UnsafeFileError(f"{total / 1024**3:.1f} GB uncompressed (limit 2 GB)")
        return [i.filename for i in infos if not i.is_dir()]


def extract(path: Path, members: dict[str, Path]) -> None:
    """Write each member of the zip at ``path`` (checked by :func:`check_zip`) to its file in
    ``members``, inflated as a stream: a member that inflates past the size it declares is
    refused when it does, before more than a megabyte past it was written."""
    with _open(path) as zf:
        for name, out in members.items():
            with out.open("wb") as fh:
                _inflate(zf, zf.getinfo(name), fh.write)


def verify_sizes(path: Path) -> None:
    """Inflate every member of the zip at ``path`` (checked by :func:`check_zip`) as a stream and
    keep nothing: raise :class:`UnsafeFileError` for a member that holds more (or less) than
    it declares, so that a reader that inflates members itself (openpyxl) inflates only the
    declared sizes that :func:`check_zip` allowed."""
    with _open(path) as zf:
        for info in zf.infolist():
            if not info.is_dir():
                _inflate(zf, info, lambda _chunk: None)


def _open(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise UnsafeFileError("not a valid zip archive (truncated or corrupt)") from None


def _inflate(zf: zipfile.ZipFile, info: zipfile.ZipInfo, write: Callable[[bytes], object]) -> None:
    """Hand ``write`` the member's bytes, at most :data:`CHUNK` at a time, and stop with
    :class:`UnsafeFileError` as soon as they pass the declared size."""
    declared = info.file_size
    # zipfile cuts a member at its declared size (after inflating all it reads at once) and then
    # checks its CRC: told a larger size and no CRC, it goes on and this loop sees what comes
    probe = copy.copy(info)
    probe.file_size, probe.CRC = declared + CHUNK + 1, None
    got, crc = 0, 0
    try:
        with zf.open(probe) as fh:
            while chunk := fh.read(CHUNK):
                got += len(chunk)
                if got > declared:
                    raise UnsafeFileError(
                        f"member {info.filename!r} declares {declared:,} bytes but inflates to more: "
                        "a falsified size (a compression bomb)")
                crc = zlib.crc32(chunk, crc)
                write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise UnsafeFileError(f"member {info.filename!r} is corrupt: {exc}") from None
    if got != declared:
        raise UnsafeFileError(f"member {info.filename!r} declares {declared:,} bytes but holds {got:,}: "
                              "truncated or corrupt")
    if crc != info.CRC:
        raise UnsafeFileError(f"member {info.filename!r} is corrupt: its CRC-32 is not the one declared")
