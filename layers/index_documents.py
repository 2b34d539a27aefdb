"""The ladder's documents: 预警通知单 / 抄告单 / 督办单 / 挂牌督办通知书 as DOCX, from stored data.

One document per ladder item at its current step: to whom (the step's owner), which place, why
(the step's history and the latest month's largest deductions), the last six months' scores and
colours, the deadline, and room for the rectification feedback. ``template`` may name a .docx
whose styles (fonts, page, letterhead) the document takes. Written by the owner (CLI); the path
is recorded in ``index_warnings.document``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from docx import Document
from docx.shared import Pt
from sqlalchemy import Connection, text

from gis.index import COLOURS

TITLES = {1: "预警通知单", 2: "抄告单", 3: "督办单", 4: "挂牌督办通知书"}


class DocumentError(ValueError):
    """No such ladder item, or a template that cannot be used."""


@dataclass(frozen=True)
class LadderDocument:
    path: Path
    title: str
    warning_id: int


def ladder_document(
    conn: Connection, warning_id: int, out_dir: Path, template: Path | None = None
) -> LadderDocument:
    """Write the document of a ladder item's current step to ``out_dir``; return its path."""
    item = conn.execute(text(
        "SELECT w.id, w.level, w.code, coalesce(v.name, t.name) AS name, w.town_code, tw.name AS town_name, "
        "w.step, w.opened, w.step_since, w.status, w.owner, w.deadline FROM pingan.index_warnings w "
        "LEFT JOIN pingan.villages v ON w.level = 'village' AND v.code = w.code "
        "LEFT JOIN pingan.towns t ON w.level = 'town' AND t.code = w.code "
        "JOIN pingan.towns tw ON tw.code = w.town_code WHERE w.id = :i"), {"i": warning_id}).first()
    if item is None:
        raise DocumentError(f"no ladder item {warning_id}")
    history = conn.execute(text(
        "SELECT period, from_step, to_step, reason FROM pingan.index_warning_events WHERE warning_id = :i "
        "ORDER BY period, id"), {"i": warning_id}).all()
    months = conn.execute(text(
        "SELECT period, score, class, rank, veto_reasons, contributions FROM pingan.index_scores "
        "WHERE level = :l AND code = :c AND period <= :p ORDER BY period DESC LIMIT 6"),
        {"l": item.level, "c": item.code, "p": item.step_since}).all()
    try:
        doc = Document(str(template)) if template else Document()
    except Exception as exc:  # python-docx raises several kinds for a bad file
        raise DocumentError(f"template {template}: {exc}") from None
    title = TITLES[item.step]
    where = item.town_name if item.level == "village" else ""
    h = doc.add_heading(f"{where}{item.name}平安建设{title}", level=1)
    for run in h.runs:
        run.font.size = Pt(18)
    state = "办理中" if item.status == "open" else "已销号"
    doc.add_paragraph(f"编号：平安〔{item.step_since:%Y}〕{item.id}号    （{state}）")
    doc.add_paragraph(f"致：{item.owner}")
    doc.add_paragraph(
        f"{item.name}（{item.code}）自 {item.opened:%Y年%m月} 起列入平安指数预警，"
        f"{item.step_since:%Y年%m月} 起处于「{title[:2]}」阶段。请于 {item.deadline:%Y年%m月%d日} 前"
        "组织整改并反馈整改情况（附佐证材料）。")
    doc.add_heading("近六个月平安指数", level=2)
    table = doc.add_table(rows=1, cols=4)
    table.style = "Table Grid" if "Table Grid" in [s.name for s in doc.styles] else None
    for cell, head in zip(table.rows[0].cells, ("月份", "得分", "颜色", "排名"), strict=True):
        cell.text = head
    for m in reversed(months):
        row = table.add_row().cells
        row[0].text, row[1].text = f"{m.period:%Y-%m}", f"{float(m.score):.2f}"
        row[2].text, row[3].text = COLOURS[m[2]][0] + ("（否决）" if m.veto_reasons else ""), str(m.rank)
    if months:
        latest = months[0]
        doc.add_heading(f"{latest.period:%Y年%m月} 主要扣分项", level=2)
        lost = sorted(((k, v["deduction"]) for k, v in latest.contributions.items() if v.get("deduction")),
                      key=lambda kv: -kv[1])[:3]
        for key, pts in lost:
            doc.add_paragraph(f"{key}：扣 {pts:.2f} 分", style="List Bullet")
        for reason in latest.veto_reasons:
            doc.add_paragraph(f"一票否决：{reason}", style="List Bullet")
    doc.add_heading("升降级记录", level=2)
    for e in history:
        doc.add_paragraph(f"{e.period:%Y-%m}：{_step(e.from_step)} → {_step(e.to_step)}（{e.reason}）",
                          style="List Bullet")
    doc.add_heading("整改反馈", level=2)
    for label in ("整改措施：", "完成情况：", "佐证材料：", "责任人（签字）：            日期："):
        doc.add_paragraph(label)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{title}-{item.code}-{item.step_since:%Y%m}-{item.id}.docx"
    doc.save(str(path))
    conn.execute(text("UPDATE pingan.index_warnings SET document = :d WHERE id = :i"),
                 {"d": str(path), "i": item.id})
    return LadderDocument(path, title, item.id)


def _step(step: int) -> str:
    return "无" if step == 0 else TITLES[step][:2]
