"""Readers and archive checks on odd files (no database)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import Point

from etl.readers import ReaderError, decode, read_file
from etl.safety import UnsafeFileError, check_zip


def test_decode_detects_encodings() -> None:
    text = "事件编号,地址\n1,瓯海区梧田街道\n"
    assert decode(text.encode("utf-8"))[1] == "utf-8"
    assert decode(b"\xef\xbb\xbf" + text.encode("utf-8"))[1] == "utf-8-sig"
    assert decode(text.encode("gbk")) == (text, "gb18030", ())
    mixed = "编号,地址\n".encode() + "1,梧田\n".encode("gbk") + "2,娄桥\n".encode()
    decoded, used, warnings = decode(mixed)
    assert used == "mixed" and decoded.splitlines()[1:] == ["1,梧田", "2,娄桥"]
    assert "mixed encodings" in warnings[0]
    with pytest.raises(ReaderError, match="cannot decode as utf-8"):
        decode(text.encode("gbk"), "utf-8")


def test_header_only_and_empty(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text("事件编号,地址\n", encoding="utf-8")
    assert len(read_file(tmp_path / "h.csv").frame) == 0
    (tmp_path / "e.csv").write_bytes(b"")
    with pytest.raises(ReaderError, match="empty"):
        read_file(tmp_path / "e.csv")
    (tmp_path / "x.doc").write_text("x")
    with pytest.raises(ReaderError, match="unsupported file type"):
        read_file(tmp_path / "x.doc")


def _zip_shapefile(tmp_path: Path, *, cpg: bool, crs: int = 4326) -> Path:
    gdf = gpd.GeoDataFrame({"编号": ["a1", "a2"], "名称": ["梧田第一小学", "茶山农贸市场"]},
                           geometry=[Point(120.66, 27.95), Point(120.70, 27.93)], crs=4326).to_crs(crs)
    shp = tmp_path / "shp" / "sites.shp"
    shp.parent.mkdir()
    gdf.to_file(shp, encoding="GBK")
    out = tmp_path / "sites.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in shp.parent.iterdir():
            if f.suffix == ".cpg" and not cpg:
                continue
            zf.write(f, f.name)
    return out


@pytest.mark.parametrize("cpg", [True, False])
def test_zipped_shapefile_gbk_with_and_without_cpg(tmp_path: Path, cpg: bool) -> None:
    table = read_file(_zip_shapefile(tmp_path, cpg=cpg))
    assert list(table.frame["名称"]) == ["梧田第一小学", "茶山农贸市场"]
    assert table.crs == "EPSG:4326"


def test_zipped_shapefile_projected_prj(tmp_path: Path) -> None:
    table = read_file(_zip_shapefile(tmp_path, cpg=True, crs=4549))  # CGCS2000 / 3-degree GK CM 120E
    assert table.crs == "EPSG:4549"
    assert 500_000 < table.geometry.x.iloc[0] < 600_000


def test_zip_without_shp_and_traversal_and_bomb(tmp_path: Path) -> None:
    z = tmp_path / "noshp.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("readme.txt", "x")
    with pytest.raises(ReaderError, match="no .shp"):
        read_file(z)
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../etc/passwd.shp", "x")
    with pytest.raises(UnsafeFileError, match="outside the archive"):
        check_zip(evil)
    with pytest.raises(ReaderError, match="refused"):
        read_file(evil)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.shp", b"\0" * 50_000_000)
    with pytest.raises(UnsafeFileError, match="compression bomb"):
        check_zip(bomb)
    trunc = tmp_path / "trunc.zip"
    trunc.write_bytes(bomb.read_bytes()[:100])
    with pytest.raises(ReaderError, match="not a valid zip"):
        read_file(trunc)
