"""Zips whose headers lie about their members' sizes: refused while they are inflated, a chunk
past the declared size, before a reader (GDAL, openpyxl) is given them."""

from __future__ import annotations

import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import geopandas as gpd
import openpyxl
import pytest
from shapely.geometry import Point
from sqlalchemy import text

from etl import safety
from etl.pipeline import load_file
from etl.readers import ReaderError, read_file
from etl.safety import UnsafeFileError, check_zip, verify_sizes

ZEROS = 1024**2  # written a megabyte at a time: the test itself never holds the inflated bytes


def _zip(path: Path, members: dict[str, bytes], *, zeros_after: dict[str, int] | None = None,
         method: int = zipfile.ZIP_DEFLATED) -> None:
    """A zip of ``members``; ``zeros_after``: so many MB of zeros appended to a member's stream,
    which both its headers leave out (the declared size and CRC are those of its real bytes)."""
    zeros_after = zeros_after or {}
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            with zf.open(name, "w", force_zip64=False) as fh:
                fh.write(data)
                for _ in range(zeros_after.get(name, 0)):
                    fh.write(bytes(ZEROS))
    lies = {name: (len(data), zlib.crc32(data)) for name, data in members.items() if name in zeros_after}
    _declare(path, lies)


def _declare(path: Path, sizes: dict[str, tuple[int, int]]) -> None:
    """Write (uncompressed size, CRC-32) of members into their local and central headers."""
    blob = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        offsets = {i.filename: i.header_offset for i in zf.infolist()}
        at = zf.start_dir
    for name, (size, crc) in sizes.items():
        assert blob[offsets[name]:offsets[name] + 4] == b"PK\x03\x04"
        struct.pack_into("<I", blob, offsets[name] + 14, crc)
        struct.pack_into("<I", blob, offsets[name] + 22, size)
    while blob[at:at + 4] == b"PK\x01\x02":
        n, extra, comment = struct.unpack_from("<HHH", blob, at + 28)
        name = blob[at + 46:at + 46 + n].decode()
        if name in sizes:
            struct.pack_into("<I", blob, at + 16, sizes[name][1])
            struct.pack_into("<I", blob, at + 24, sizes[name][0])
        at += 46 + n + extra + comment
    path.write_bytes(bytes(blob))


def _shapefile(folder: Path) -> dict[str, bytes]:
    gdf = gpd.GeoDataFrame({"场所编号": ["S1", "S2"], "场所名称": ["梧田第一小学", "茶山农贸市场"]},
                           geometry=[Point(120.66, 27.95), Point(120.70, 27.93)], crs=4490)
    gdf.to_file(folder / "sites.shp", encoding="GBK")
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _peak(read) -> int:  # noqa: ANN001
    """The bytes Python allocated at most (zlib's output and buffers included) while ``read`` ran."""
    tracemalloc.start()
    try:
        read()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("member", ["sites.dbf", "sites.shp", "sites.shx"])
def test_a_zipped_shapefile_part_inflating_past_its_declared_size_is_refused(
        tmp_path: Path, member: str) -> None:
    """GDAL's /vsizip/ reads a part past the size the zip declares (a .dbf declared 4 KB gave
    it a million records): the part is refused while it is inflated, a megabyte past that
    size, not after 64 MB; the declared sizes pass check_zip."""
    (tmp_path / "shp").mkdir()
    parts = _shapefile(tmp_path / "shp")
    bomb = tmp_path / "sites.zip"
    _zip(bomb, parts, zeros_after={member: 64})
    assert bomb.stat().st_size < 1024**2  # 64 MB of zeros in ~64 KB
    assert sorted(check_zip(bomb)) == sorted(parts)  # what the headers say is harmless
    with zipfile.ZipFile(bomb) as zf:
        assert zf.getinfo(member).file_size == len(parts[member])
        assert zf.read(member) == parts[member]  # zipfile cuts it at the declared size, CRC and all

    def read() -> None:
        with pytest.raises(ReaderError, match=f"refused: member '{member}' declares .* bytes but "
                                              "inflates to more: a falsified size"):
            read_file(bomb)

    assert _peak(read) < 8 * 1024**2
    honest = tmp_path / "honest.zip"
    _zip(honest, parts)
    assert list(read_file(honest).frame["场所名称"]) == ["梧田第一小学", "茶山农贸市场"]


def test_an_xlsx_member_inflating_past_its_declared_size_is_refused(tmp_path: Path) -> None:
    """openpyxl reads styles.xml whole, and zipfile inflates it in one call before cutting it
    to the declared size (1 GB of whitespace declared 2.5 KB: 2 GB of memory); the member is
    refused while it is streamed instead."""
    wb = openpyxl.Workbook()
    wb.active.append(["场所编号", "场所名称"])
    wb.active.append(["S1", "梧田第一小学"])
    wb.save(tmp_path / "good.xlsx")
    with zipfile.ZipFile(tmp_path / "good.xlsx") as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    bomb = tmp_path / "bomb.xlsx"
    _zip(bomb, members, zeros_after={"xl/styles.xml": 64})
    check_zip(bomb)

    def read() -> None:
        with pytest.raises(ReaderError, match="refused: member 'xl/styles.xml' declares .* a falsified size"):
            read_file(bomb)

    assert _peak(read) < 8 * 1024**2
    _zip(tmp_path / "honest.xlsx", members)
    records = read_file(tmp_path / "honest.xlsx").frame.to_dict("records")
    assert records == [{"场所编号": "S1", "场所名称": "梧田第一小学"}]


def test_a_falsified_zip_is_a_failed_batch_with_no_rows(engine, tmp_path: Path) -> None:
    (tmp_path / "shp").mkdir()
    bomb = tmp_path / "sites.zip"
    _zip(bomb, _shapefile(tmp_path / "shp"), zeros_after={"sites.dbf": 16})
    result = load_file(engine, bomb, "key_sites", source="test-falsified")
    try:
        assert result.status == "failed" and "falsified size" in result.error, result
        with engine.connect() as conn:
            batch = conn.execute(text("SELECT status, n_loaded FROM pingan.etl_batches WHERE id = :b"),
                                 {"b": result.batch_id}).one()
            assert tuple(batch) == ("failed", 0)
            assert conn.execute(text("SELECT count(*) FROM pingan.key_sites WHERE source = 'test-falsified'"
                                     )).scalar_one() == 0
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM pingan.etl_batches WHERE id = :b"), {"b": result.batch_id})


def test_lies_the_headers_tell_themselves(tmp_path: Path) -> None:
    """A stored member whose sizes disagree, a member shorter than declared or with another
    CRC-32, compressed sizes the archive cannot hold (past its end, or two members' data in
    the same bytes), and compression methods no Shapefile or spreadsheet tool writes (zipfile
    inflates bzip2 and LZMA without a limit per call)."""
    stored = tmp_path / "stored.zip"
    _zip(stored, {"a.shp": b"x" * 1000}, method=zipfile.ZIP_STORED)
    _declare(stored, {"a.shp": (10, zlib.crc32(b"x" * 10))})
    with pytest.raises(UnsafeFileError, match="stored as 1,000 bytes but declares 10"):
        check_zip(stored)
    short = tmp_path / "short.zip"
    _zip(short, {"a.shp": b"x" * 1000})
    _declare(short, {"a.shp": (5000, zlib.crc32(b"x" * 1000))})
    check_zip(short)
    with pytest.raises(UnsafeFileError, match="declares 5,000 bytes but holds 1,000"):
        verify_sizes(short)
    _declare(short, {"a.shp": (1000, zlib.crc32(b"y" * 1000))})  # the size right, the CRC not
    with pytest.raises(UnsafeFileError, match="its CRC-32 is not the one declared"):
        verify_sizes(short)
    past = tmp_path / "past.zip"
    _zip(past, {"a.shp": b"x" * 1000})
    blob = bytearray(past.read_bytes())
    struct.pack_into("<I", blob, blob.index(b"PK\x01\x02") + 20, 10**9)  # its compressed size
    past.write_bytes(bytes(blob))
    with pytest.raises(UnsafeFileError, match="declares 1,000,000,000 compressed bytes, more than"):
        check_zip(past)
    shared = tmp_path / "shared.zip"  # two names for one member's data, as overlapping bombs do
    _zip(shared, {"a.shp": bytes(range(256)) * 40}, method=zipfile.ZIP_STORED)
    blob = bytearray(shared.read_bytes())
    at, end = blob.index(b"PK\x01\x02"), blob.index(b"PK\x05\x06")
    entry = blob[at:end]
    twin = entry.replace(b"a.shp", b"b.shp")
    eocd = blob[end:]
    struct.pack_into("<HHI", eocd, 8, 2, 2, 2 * len(entry))  # entries on this disk, in all; size
    shared.write_bytes(bytes(blob[:end] + twin + eocd))
    with pytest.raises(UnsafeFileError, match="they overlap"):
        check_zip(shared)
    for method in (zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        other = tmp_path / f"m{method}.zip"
        _zip(other, {"a.shp": b"x" * 1000}, method=method)
        with pytest.raises(UnsafeFileError, match=f"compressed with method {method}"):
            check_zip(other)


def test_a_member_is_streamed_a_chunk_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An honest member of many chunks inflates whole, and one byte past its declared size is
    already refused."""
    monkeypatch.setattr(safety, "CHUNK", 4096)
    data = bytes(range(256)) * 1000  # 256,000 bytes: 63 chunks
    z = tmp_path / "a.zip"
    _zip(z, {"a.dbf": data})
    out = tmp_path / "a.dbf"
    safety.extract(z, {"a.dbf": out})
    assert out.read_bytes() == data
    _declare(z, {"a.dbf": (len(data) - 1, zlib.crc32(data[:-1]))})
    with pytest.raises(UnsafeFileError, match="declares 255,999 bytes but inflates to more"):
        safety.extract(z, {"a.dbf": out})


def test_a_path_pyogrio_would_take_for_an_archive_is_read_as_the_file(tmp_path: Path) -> None:
    """pyogrio reads ``x.zip!a.geojson`` as the member a.geojson of x.zip (unchecked, and not the
    file given); such a file is handed to GDAL under a plain name."""
    gdf = gpd.GeoDataFrame({"名称": ["梧田"]}, geometry=[Point(120.66, 27.95)], crs=4326)
    gdf.to_file(tmp_path / "given.geojson", driver="GeoJSON")
    (tmp_path / "given.geojson").rename(tmp_path / "x.zip!a.geojson")  # pyogrio would write into x.zip
    other = gpd.GeoDataFrame({"名称": ["别的"]}, geometry=[Point(120.7, 27.9)], crs=4326)
    other.to_file(tmp_path / "a.geojson", driver="GeoJSON")
    with zipfile.ZipFile(tmp_path / "x.zip", "w") as zf:
        zf.write(tmp_path / "a.geojson", "a.geojson")
    assert list(read_file(tmp_path / "x.zip!a.geojson").frame["名称"]) == ["梧田"]
    (tmp_path / "plain").mkdir()
    _shapefile(tmp_path / "plain")
    (tmp_path / "plain").rename(tmp_path / "shp!")
    names = read_file(tmp_path / "shp!" / "sites.shp").frame["场所名称"]
    assert list(names) == ["梧田第一小学", "茶山农贸市场"]
