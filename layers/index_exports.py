"""Publishing a month's index map: a standalone HTML page (folium) and a PNG for printed reports.

Both read the published views ``index_villages`` / ``index_towns`` (what the public role may
see: score, colour, rank, nothing else), so the API serves them to every role.

- HTML: a folium map whose every asset is inline: Leaflet's JS and CSS are read from the npm
  package (``$PINGAN_ASSETS_DIR/leaflet/dist``, by default ./node_modules; the Dockerfile copies
  it) and written into the page, its images as data URIs; folium's default CDN links (Leaflet,
  jQuery, Bootstrap, Font Awesome) are removed; no tile layer: the basemap is our own polygons.
  Nothing is fetched when the page opens, so it works offline and leaks no reader to a CDN.
- PNG: matplotlib/geopandas in a Gauss-Krüger projection of CGCS2000 (the 3-degree zone of the
  district's centre, EPSG:4534-4554, so the scale bar measures metres truly), five colours, a
  legend with counts, north arrow, scale bar, title and date, in a CJK font found on the system
  by matplotlib's font manager (fonts-noto-cjk or fonts-wqy-microhei).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import geopandas as gpd
from sqlalchemy import Connection, text

from gis.index import COLOURS
from gis.index.classify import CLASS_KEYS

LEVELS = {"village": "index_villages", "town": "index_towns"}
LEVEL_ZH = {"village": "村社", "town": "镇街"}
RISK_ZH = {"red": "高风险", "orange": "较高风险", "yellow": "中风险", "blue": "较低风险", "green": "低风险"}
FORMATS = {"html": "text/html; charset=utf-8", "png": "image/png"}
CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Noto Serif CJK SC",
    "AR PL UMing CN",
    "Droid Sans Fallback",
)
MAX_PIXELS = 8000


class ExportError(ValueError):
    """A month without an index, a bad level/format/size, or a missing asset or font."""


class NoIndexError(ExportError):
    """No index stored for the asked month and level."""


def read_map(conn: Connection, period: date, level: str = "village") -> gpd.GeoDataFrame:
    """The published index of one month and level, with geometries (EPSG:4490)."""
    if level not in LEVELS:
        raise ExportError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    frame = gpd.read_postgis(
        text(
            f"SELECT code, name, town_code, score, class, colour_zh, colour_hex, rank, veto, geom "  # noqa: S608
            f"FROM pingan.{LEVELS[level]} WHERE period = :p ORDER BY code"
        ),
        conn,
        geom_col="geom",
        params={"p": period},
    )
    if frame.empty:
        raise NoIndexError(
            f"no {level} index for {period:%Y-%m}: run `pingan index compute --period {period:%Y-%m}`"
        )
    return frame


def counts(frame: gpd.GeoDataFrame) -> dict[str, int]:
    return {k: int((frame["class"] == k).sum()) for k in CLASS_KEYS}


def title(period: date, level: str) -> str:
    return f"{period:%Y年%m月} 基层平安治理指数（{LEVEL_ZH[level]}）"


# -- HTML --------------------------------------------------------------------------------------
def assets_dir() -> Path:
    env = os.environ.get("PINGAN_ASSETS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "node_modules"


def _leaflet(assets: Path) -> tuple[str, str]:
    dist = assets / "leaflet" / "dist"
    try:
        js = (dist / "leaflet.js").read_text(encoding="utf-8")
        css = (dist / "leaflet.css").read_text(encoding="utf-8")
    except OSError:
        raise ExportError(
            f"Leaflet not found in {dist}: run `npm ci` (make setup) or set PINGAN_ASSETS_DIR"
        ) from None

    def inline(m: re.Match) -> str:  # the CSS's images as data URIs: nothing relative to fetch
        path = dist / m.group(1)
        if not path.is_file():
            return "url(data:,)"
        kind = "svg+xml" if path.suffix == ".svg" else path.suffix[1:]
        return f"url(data:image/{kind};base64,{base64.b64encode(path.read_bytes()).decode()})"

    css = re.sub(r"url\((images/[^)]+)\)", inline, css)
    js = js.replace("</script", "<\\/script")  # never close the inline element early
    return js, css


def export_html(frame: gpd.GeoDataFrame, period: date, level: str, assets: Path | None = None) -> str:
    """A standalone page: polygons coloured by class, a tooltip per place, legend and title."""
    import folium
    from branca.element import Element

    js, css = _leaflet(assets or assets_dir())
    # CGCS2000 (EPSG:4490) and WGS84 differ by centimetres: Leaflet's lat/lon take it as it is
    g = frame.to_crs(4326) if frame.crs and frame.crs.to_epsg() not in (4326, 4490) else frame
    minx, miny, maxx, maxy = g.total_bounds
    m = folium.Map(
        location=[(miny + maxy) / 2, (minx + maxx) / 2],
        tiles=None,
        control_scale=True,
        zoom_control=True,
        attribution_control=False,
    )
    m.default_js, m.default_css = [], []  # folium's CDN links: replaced by the inline copies below
    root = m.get_root()
    root.header.add_child(Element(f"<style>{css}</style>"), name="leaflet_css")
    root.header.add_child(Element(f"<script>{js}</script>"), name="leaflet")
    root.header.add_child(Element(f"<title>{html.escape(title(period, level))}</title>"), name="title")
    features = json.loads(
        g[["code", "name", "score", "class", "colour_zh", "colour_hex", "rank", "geom"]]
        .assign(score=g["score"].round(2))
        .to_json(drop_id=True, to_wgs84=False)
    )
    features.pop("crs", None)  # lon/lat, as GeoJSON (RFC 7946) has it
    for f in features["features"]:
        f["id"] = f["properties"]["code"]
    folium.GeoJson(
        features,
        name=title(period, level),
        style_function=lambda f: {
            "fillColor": f["properties"]["colour_hex"],
            "color": "#555555",
            "weight": 0.6,
            "fillOpacity": 0.85,
        },
        highlight_function=lambda f: {"weight": 2, "color": "#000000"},
        tooltip=folium.GeoJsonTooltip(
            ["name", "code", "score", "colour_zh", "rank"], aliases=["名称", "代码", "得分", "颜色", "排名"]
        ),
    ).add_to(m)
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    n = counts(frame)
    rows = "".join(
        f'<div><span style="display:inline-block;width:14px;height:14px;margin-right:6px;'
        f'vertical-align:middle;background:{COLOURS[k][2]}"></span>{COLOURS[k][0]} {RISK_ZH[k]}：{n[k]}</div>'
        for k in CLASS_KEYS
    )
    box = (
        "position:fixed;z-index:1000;background:rgba(255,255,255,.92);padding:8px 12px;"
        "border:1px solid #888;border-radius:4px;font:14px/1.6 sans-serif"
    )
    root.html.add_child(
        Element(
            f'<div id="pingan-title" style="{box};top:10px;left:60px;font-size:18px;font-weight:bold">'
            f"{html.escape(title(period, level))}</div>"
            f'<div id="pingan-legend" style="{box};bottom:24px;right:10px">{rows}'
            f'<div style="color:#666;font-size:12px">制图日期：{date.today():%Y-%m-%d}</div></div>'
        )
    )
    return root.render()


# -- PNG ---------------------------------------------------------------------------------------
def cjk_font() -> str:
    """A CJK font file matplotlib can draw with (ExportError when the system has none)."""
    from matplotlib import font_manager

    for attempt in range(2):
        names = {f.name for f in font_manager.fontManager.ttflist}
        for family in CJK_FAMILIES:
            if family in names:  # the regular face of the family (a collection holds bold too)
                wanted = font_manager.FontProperties(family=family, weight="normal", style="normal")
                return font_manager.findfont(wanted, fallback_to_default=False)
        if attempt == 0:  # a font cache older than the fonts: add the system's CJK files to it
            for path in font_manager.findSystemFonts():
                if re.search(
                    r"cjk|wqy|uming|ukai|droidsansfallback|sourcehan", Path(path).name, re.IGNORECASE
                ):
                    try:
                        font_manager.fontManager.addfont(path)
                    except (OSError, RuntimeError, ValueError):
                        continue
    raise ExportError(
        "no CJK font for the PNG map: install fonts-noto-cjk or fonts-wqy-microhei "
        "(scripts/system-deps.sh), then remove matplotlib's font cache if it predates them"
    )


def gauss_kruger_epsg(lon: float) -> int:
    """CGCS2000 3-degree Gauss-Krüger zone (central meridian 75E..135E, no zone prefix) of ``lon``."""
    cm = min(135, max(75, 3 * round(lon / 3)))
    return 4534 + (cm - 75) // 3


@dataclass(frozen=True)
class PngMap:
    data: bytes
    width: int
    height: int
    epsg: int
    to_pixel: Callable[[float, float], tuple[int, int]]  # lon, lat (EPSG:4490) -> column, row
    legend_box: tuple[int, int, int, int]  # left, top, right, bottom in pixels


def _nice_length(span_m: float) -> float:
    raw = span_m / 5
    power = 10 ** math.floor(math.log10(raw))
    return max(m * power for m in (1, 2, 5) if m * power <= raw)


def export_png(
    frame: gpd.GeoDataFrame, period: date, level: str, width: int = 1600, height: int = 1200, dpi: int = 150
) -> PngMap:
    """The map as a PNG of exactly ``width`` × ``height`` pixels."""
    if not (200 <= width <= MAX_PIXELS and 200 <= height <= MAX_PIXELS):
        raise ExportError(f"width and height must be 200..{MAX_PIXELS} pixels")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch, Rectangle
    from pyproj import Transformer

    font = font_manager.FontProperties(fname=cjk_font())
    lon = float(frame.to_crs(4490).union_all().centroid.x)
    epsg = gauss_kruger_epsg(lon)
    g = frame.to_crs(epsg)
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.86))
    g.plot(ax=ax, color=g["colour_hex"], edgecolor="#555555", linewidth=0.3)
    ax.set_aspect("equal")
    ax.set_axis_off()
    n = counts(frame)
    fig.suptitle(title(period, level), fontproperties=font, fontsize=18, y=0.965)
    fig.text(
        0.98,
        0.905,
        f"制图日期：{date.today():%Y-%m-%d}",
        ha="right",
        fontproperties=font,
        fontsize=9,
        color="#444444",
    )
    handles = [
        Patch(facecolor=COLOURS[k][2], edgecolor="#555555", label=f"{COLOURS[k][0]} {RISK_ZH[k]}（{n[k]}）")
        for k in CLASS_KEYS
    ]
    legend = ax.legend(
        handles=handles,
        loc="lower left",
        prop=font.copy(),
        title="图例",
        title_fontproperties=font,
        frameon=True,
        framealpha=0.95,
    )
    legend.get_title().set_fontproperties(font)
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    # north arrow (grid north of the zone's central meridian: within a degree or so of true north)
    ax.annotate(
        "N",
        xy=(0.95, 0.95),
        xytext=(0.95, 0.84),
        xycoords="axes fraction",
        ha="center",
        va="center",
        fontsize=14,
        fontweight="bold",
        arrowprops={"facecolor": "black", "width": 4, "headwidth": 12},
    )
    # scale bar in metres: alternating black/white quarters of a round length
    bar = _nice_length(x1 - x0)
    bx, by, bh = x1 - (x1 - x0) * 0.05 - bar, y0 + (y1 - y0) * 0.04, (y1 - y0) * 0.012
    for i in range(4):
        ax.add_patch(
            Rectangle(
                (bx + i * bar / 4, by),
                bar / 4,
                bh,
                facecolor="black" if i % 2 == 0 else "white",
                edgecolor="black",
                linewidth=0.6,
            )
        )
    label = f"{bar / 1000:g} km" if bar >= 1000 else f"{bar:g} m"
    for x, s in ((bx, "0"), (bx + bar, label)):
        ax.text(x, by + bh * 1.6, s, ha="center", va="bottom", fontsize=8)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    fig.canvas.draw()
    to_proj = Transformer.from_crs(4490, epsg, always_xy=True)

    def to_pixel(lon_: float, lat_: float) -> tuple[int, int]:
        px, py = ax.transData.transform(to_proj.transform(lon_, lat_))
        return int(round(px)), int(round(height - py))

    box = legend.get_window_extent()
    legend_box = (int(box.x0), int(height - box.y1), int(box.x1), int(height - box.y0))
    return PngMap(buf.getvalue(), width, height, epsg, to_pixel, legend_box)
