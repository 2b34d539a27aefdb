"""The ladder's documents: 预警通知单 / 抄告单 / 督办单 / 挂牌督办通知书 as DOCX or PDF, from stored data.

One document per ladder item at its current step: to whom (the step's owner), which place, why
(the step's history and the latest month's largest deductions), the last six months' scores and
colours, the deadline, the evidence recorded so far, and room for the rectification feedback.

- :func:`document_content` reads an item into a :class:`Content` (works under the service's row
  security: a caller sees only the items of its jurisdiction);
- :func:`render` turns it into bytes (``docx`` or ``pdf``) for the API;
- :func:`ladder_document` (owner, CLI) writes the file and records its path in
  ``index_warnings.document``.

DOCX may take a ``template`` .docx (its styles, page and letterhead). PDF embeds a TrueType CJK
font (reportlab cannot embed the CFF outlines of Noto CJK): ``PINGAN_CJK_FONT`` names one, else
the first of :data:`TRUETYPE_CJK_FONTS` found (Debian's fonts-wqy-microhei, which
scripts/system-deps.sh and the Dockerfile install).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import Connection, text

from gis.index import COLOURS

TITLES = {1: "预警通知单", 2: "抄告单", 3: "督办单", 4: "挂牌督办通知书"}
FORMATS = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pdf": "application/pdf",
}
# TrueType-outlined CJK fonts (path, index in a collection), in order of preference.
TRUETYPE_CJK_FONTS = (
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/truetype/arphic/uming.ttc", 0),
    ("/usr/share/fonts/truetype/arphic/ukai.ttc", 0),
    ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", 0),
)
FEEDBACK = ("整改措施：", "完成情况：", "佐证材料：", "责任人（签字）：            日期：")


class DocumentError(ValueError):
    """No such ladder item, an unknown format, or a template or font that cannot be used."""


class ItemMissingError(DocumentError):
    """No such ladder item (for the connection's caller)."""


@dataclass(frozen=True)
class LadderDocument:
    path: Path
    title: str
    warning_id: int


@dataclass
class Content:
    """What a ladder document says, independent of its format."""

    warning_id: int
    code: str
    step: int
    step_since: date
    title: str
    heading: str
    lines: list[str]  # number, addressee, the request
    months: list[tuple[str, str, str, str]]  # 月份, 得分, 颜色, 排名 (oldest first)
    months_heading: str
    deductions: list[str] = field(default_factory=list)
    deductions_heading: str = ""
    history: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)

    def file_name(self, fmt: str) -> str:
        return f"{self.title}-{self.code}-{self.step_since:%Y%m}-{self.warning_id}.{fmt}"


def document_content(conn: Connection, warning_id: int) -> Content:
    """Everything the document of item ``warning_id`` says (DocumentError when there is none
    the connection's caller may see)."""
    item = conn.execute(
        text(
            "SELECT w.id, w.level, w.code, coalesce(v.name, t.name) AS name, w.town_code, "
            "tw.name AS town_name, "
            "w.step, w.opened, w.step_since, w.status, w.owner, w.deadline FROM pingan.index_warnings w "
            "LEFT JOIN pingan.villages v ON w.level = 'village' AND v.code = w.code "
            "LEFT JOIN pingan.towns t ON w.level = 'town' AND t.code = w.code "
            "JOIN pingan.towns tw ON tw.code = w.town_code WHERE w.id = :i"
        ),
        {"i": warning_id},
    ).first()
    if item is None:
        raise ItemMissingError(f"no ladder item {warning_id}")
    history = conn.execute(
        text(
            "SELECT period, from_step, to_step, reason FROM pingan.index_warning_events "
            "WHERE warning_id = :i ORDER BY period, id"
        ),
        {"i": warning_id},
    ).all()
    months = conn.execute(
        text(
            "SELECT period, score, class, rank, veto_reasons, "
            "pingan.index_contributions(period, level, code) AS contributions FROM pingan.index_scores "
            "WHERE level = :l AND code = :c AND period <= :p ORDER BY period DESC LIMIT 6"
        ),
        {"l": item.level, "c": item.code, "p": item.step_since},
    ).all()
    evidence = conn.execute(
        text(
            "SELECT created_at, created_by, note, file_name FROM pingan.index_warning_evidence "
            "WHERE warning_id = :i ORDER BY id"
        ),
        {"i": warning_id},
    ).all()
    title = TITLES[item.step]
    where = item.town_name if item.level == "village" else ""
    state = "办理中" if item.status == "open" else "已销号"
    c = Content(
        warning_id=item.id,
        code=item.code,
        step=item.step,
        step_since=item.step_since,
        title=title,
        heading=f"{where}{item.name}平安建设{title}",
        lines=[
            f"编号：平安〔{item.step_since:%Y}〕{item.id}号    （{state}）",
            f"致：{item.owner}",
            f"{item.name}（{item.code}）自 {item.opened:%Y年%m月} 起列入平安指数预警，"
            f"{item.step_since:%Y年%m月} 起处于「{title[:2]}」阶段。请于 {item.deadline:%Y年%m月%d日} 前"
            "组织整改并反馈整改情况（附佐证材料）。",
        ],
        months=[
            (
                f"{m.period:%Y-%m}",
                f"{float(m.score):.2f}",
                COLOURS[m[2]][0] + ("（否决）" if m.veto_reasons else ""),
                str(m.rank),
            )
            for m in reversed(months)
        ],
        months_heading="近六个月平安指数",
        history=[
            f"{e.period:%Y-%m}：{_step(e.from_step)} → {_step(e.to_step)}（{e.reason}）" for e in history
        ],
        evidence=[
            f"{e.created_at:%Y-%m-%d} {e.created_by}：{e.note}"
            + (f"（附件：{e.file_name}）" if e.file_name else "")
            for e in evidence
        ],
    )
    if months:
        latest = months[0]
        c.deductions_heading = f"{latest.period:%Y年%m月} 主要扣分项"
        # NULL for a caller who may not see the persons behind the figures (a grid user, 0029)
        lost = sorted(
            ((k, v["deduction"]) for k, v in (latest.contributions or {}).items() if v.get("deduction")),
            key=lambda kv: -kv[1],
        )[:3]
        c.deductions = [f"{key}：扣 {pts:.2f} 分" for key, pts in lost]
        if latest.contributions is None:
            c.deductions.append("（扣分明细仅对区级与本镇街用户显示）")
        c.deductions += [f"一票否决：{reason}" for reason in latest.veto_reasons]
    return c


def render(content: Content, fmt: str, template: Path | None = None) -> bytes:
    """The document as ``fmt`` (docx | pdf) bytes."""
    if fmt == "docx":
        return _docx(content, template)
    if fmt == "pdf":
        if template is not None:
            raise DocumentError("a template applies to DOCX only")
        return _pdf(content)
    raise DocumentError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")


def ladder_document(
    conn: Connection, warning_id: int, out_dir: Path, template: Path | None = None, fmt: str = "docx"
) -> LadderDocument:
    """Write the document of a ladder item's current step to ``out_dir``; record and return its path."""
    content = document_content(conn, warning_id)
    data = render(content, fmt, template)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / content.file_name(fmt)
    path.write_bytes(data)
    conn.execute(
        text("UPDATE pingan.index_warnings SET document = :d WHERE id = :i"),
        {"d": str(path), "i": warning_id},
    )
    return LadderDocument(path, content.title, warning_id)


def _step(step: int) -> str:
    return "无" if step == 0 else TITLES[step][:2]


# -- DOCX ------------------------------------------------------------------------------------------
def _docx(c: Content, template: Path | None) -> bytes:
    from docx import Document
    from docx.shared import Pt

    try:
        doc = Document(str(template)) if template else Document()
    except Exception as exc:  # python-docx raises several kinds for a bad file
        raise DocumentError(f"template {template}: {exc}") from None
    h = doc.add_heading(c.heading, level=1)
    for run in h.runs:
        run.font.size = Pt(18)
    for line in c.lines:
        doc.add_paragraph(line)
    doc.add_heading(c.months_heading, level=2)
    table = doc.add_table(rows=1, cols=4)
    table.style = "Table Grid" if "Table Grid" in [s.name for s in doc.styles] else None
    for cell, head in zip(table.rows[0].cells, ("月份", "得分", "颜色", "排名"), strict=True):
        cell.text = head
    for month in c.months:
        for cell, value in zip(table.add_row().cells, month, strict=True):
            cell.text = value
    if c.deductions_heading:
        doc.add_heading(c.deductions_heading, level=2)
        for line in c.deductions:
            doc.add_paragraph(line, style="List Bullet")
    doc.add_heading("升降级记录", level=2)
    for line in c.history:
        doc.add_paragraph(line, style="List Bullet")
    if c.evidence:
        doc.add_heading("已报佐证", level=2)
        for line in c.evidence:
            doc.add_paragraph(line, style="List Bullet")
    doc.add_heading("整改反馈", level=2)
    for label in FEEDBACK:
        doc.add_paragraph(label)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


# -- PDF -------------------------------------------------------------------------------------------
def cjk_truetype_font() -> tuple[str, int]:
    """(path, index) of a TrueType CJK font the PDF can embed; DocumentError when none is installed."""
    env = os.environ.get("PINGAN_CJK_FONT")
    if env:
        if not Path(env).is_file():
            raise DocumentError(f"PINGAN_CJK_FONT={env}: no such file")
        return env, 0
    for path, index in TRUETYPE_CJK_FONTS:
        if Path(path).is_file():
            return path, index
    raise DocumentError(
        "no TrueType CJK font for PDF documents: install fonts-wqy-microhei (scripts/system-deps.sh) "
        "or set PINGAN_CJK_FONT to a .ttf/.ttc with TrueType outlines"
    )


def _register_font() -> str:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFError, TTFont

    path, index = cjk_truetype_font()
    name = f"PinganCJK-{Path(path).stem}-{index}"
    if name not in pdfmetrics.getRegisteredFontNames():
        try:
            pdfmetrics.registerFont(TTFont(name, path, subfontIndex=index))
        except TTFError as exc:  # CFF outlines (Noto CJK .otf/.ttc) and broken files
            raise DocumentError(f"{path}: cannot be embedded in a PDF ({exc})") from None
    return name


def _pdf(c: Content) -> bytes:
    from xml.sax.saxutils import escape

    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font = _register_font()
    body = ParagraphStyle("body", fontName=font, fontSize=11, leading=17, wordWrap="CJK")
    h1 = ParagraphStyle("h1", parent=body, fontSize=18, leading=26, alignment=1, spaceAfter=4 * mm)
    h2 = ParagraphStyle("h2", parent=body, fontSize=13, leading=20, spaceBefore=4 * mm, spaceAfter=2 * mm)
    item = ParagraphStyle("item", parent=body, leftIndent=5 * mm, bulletIndent=0)

    def para(s: str, style: ParagraphStyle = body, bullet: bool = False) -> Paragraph:
        # runs of spaces are layout (the signature line): keep them
        return Paragraph(escape(s).replace("  ", "&nbsp; "), style, bulletText="•" if bullet else None)

    story: list = [para(c.heading, h1)] + [para(line) for line in c.lines]
    story += [para(c.months_heading, h2)]
    table = Table([("月份", "得分", "颜色", "排名"), *c.months], colWidths=[35 * mm] * 4, hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), font),
                ("FONTSIZE", (0, 0), (-1, -1), 10.5),
                ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
                ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
            ]
        )
    )
    story.append(table)
    if c.deductions_heading:
        story += [para(c.deductions_heading, h2)] + [para(s, item, True) for s in c.deductions]
    story += [para("升降级记录", h2)] + [para(s, item, True) for s in c.history]
    if c.evidence:
        story += [para("已报佐证", h2)] + [para(s, item, True) for s in c.evidence]
    feedback: list = [para("整改反馈", h2)]
    for label in FEEDBACK:
        feedback += [para(label), Spacer(1, 7 * mm)]
    story.append(KeepTogether(feedback))  # the form to fill in stays on one page
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        title=c.heading,
        author="Pingan Map",
        leftMargin=25 * mm,
        rightMargin=25 * mm,
        topMargin=25 * mm,
        bottomMargin=20 * mm,
    )
    doc.build(story)
    return buf.getvalue()
