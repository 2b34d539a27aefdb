"""The ladder's items over HTTP (api/routes/warnings.py): detail with history and evidence, adding
evidence (jurisdiction, append-only, audit, CSRF), the documents as PDF and DOCX, and the index's
map exports for every role.

One database for the module: the demo district (scale 1, seed 42), monthly stats refreshed, the
default model computed for 2025-11..2026-10 (so the ladder has open and closed items); one user
per role, the town user in the town with the most open items, the grid user holding a grid of
a village with an open item.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Iterator
from datetime import date
from urllib.parse import quote

import pytest
from docx import Document
from fastapi.testclient import TestClient
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from api.app import create_app
from api.auth import store
from api.settings import ApiSettings
from etl.refresh import refresh
from layers import index
from layers.db import Principal, make_engine, transaction
from layers.index_evidence import add_evidence
from layers.settings import DatabaseSettings
from tests.conftest import Login

FIRST, LAST = date(2025, 11, 1), date(2026, 10, 1)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.fixture(scope="module")
def owner(databases) -> Iterator[Engine]:
    e = make_engine(DatabaseSettings(database_url=databases.demo()))
    refresh(e, full=True)
    index.compute(e, FIRST, index.default_model(), LAST)
    e.service_url = databases.service_url(e.url.render_as_string(hide_password=False))  # type: ignore[attr-defined]
    yield e
    e.dispose()


@pytest.fixture(scope="module")
def users(owner) -> dict[str, Login]:
    with owner.begin() as c:
        town = c.execute(
            text(
                "SELECT town_code FROM pingan.index_warnings WHERE status = 'open' "
                "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
            )
        ).scalar_one()
        grid = c.execute(
            text(
                "SELECT g.code FROM pingan.grids g JOIN pingan.index_warnings w "
                "ON w.level = 'village' AND w.code = g.village_code AND w.status = 'open' "
                "WHERE w.town_code = :t ORDER BY g.code LIMIT 1"
            ),
            {"t": town},
        ).scalar_one()
        made = {}
        for role in ("admin", "command", "town", "grid", "analyst", "public"):
            areas = {"town": (town,), "grid": (grid,)}.get(role, ())
            login = Login(f"w-{role}", secrets.token_urlsafe(18), role, areas)
            store.add_user(c, store.Actor("tests"), login.name, role, list(areas), login.password)
            made[role] = login
    return made


@pytest.fixture(scope="module")
def client(owner, users) -> Iterator[TestClient]:
    app = create_app(ApiSettings(environment="test"), DatabaseSettings(database_url=owner.service_url))
    with TestClient(app) as c:
        yield c


def items(owner, where: str, params: dict | None = None) -> list:
    with owner.connect() as c:
        return c.execute(
            text(
                "SELECT w.id, w.level, w.code, w.town_code, w.step, w.status, w.deadline, w.owner, "
                "coalesce(v.name, t.name) AS name FROM pingan.index_warnings w "
                "LEFT JOIN pingan.villages v ON w.level = 'village' AND v.code = w.code "
                "LEFT JOIN pingan.towns t ON w.level = 'town' AND t.code = w.code "
                f"WHERE {where} ORDER BY w.step DESC, w.id"
            ),
            params or {},
        ).all()  # noqa: S608 - test text


def test_detail_with_history_for_staff_only(client, owner, users) -> None:
    item = items(owner, "w.status = 'open'")[0]
    r = client.get(f"/api/warnings/{item.id}", headers=users["command"].headers)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["warning"]["id"] == item.id and body["warning"]["step"] == item.step
    assert body["warning"]["deadline"] == item.deadline.isoformat() and body["warning"]["owner"] == item.owner
    assert body["warning"]["overdue"] == (item.deadline < date.today())
    with owner.connect() as c:
        history = index.warning_history(c, item.id)
    assert [(h["period"], h["from_step"], h["to_step"], h["reason"]) for h in body["history"]] == [
        (h.period.isoformat(), h.from_step, h.to_step, h.reason) for h in history
    ]
    assert history
    with owner.connect() as c:
        n_evidence = c.execute(
            text("SELECT count(*) FROM pingan.index_warning_evidence WHERE warning_id = :i"), {"i": item.id}
        ).scalar_one()
    assert len(body["evidence"]) == n_evidence
    for role in ("analyst", "public"):
        assert client.get(f"/api/warnings/{item.id}", headers=users[role].headers).status_code == 403
    assert client.get(f"/api/warnings/{item.id}").status_code == 401
    assert client.get("/api/warnings/999999999", headers=users["admin"].headers).status_code == 404


def test_jurisdiction(client, owner, users) -> None:
    town = users["town"].areas[0]
    mine = items(owner, "w.town_code = :t", {"t": town})[0]
    other = items(owner, "w.town_code <> :t", {"t": town})[0]
    assert client.get(f"/api/warnings/{mine.id}", headers=users["town"].headers).status_code == 200
    assert client.get(f"/api/warnings/{other.id}", headers=users["town"].headers).status_code == 404
    grid_village = users["grid"].areas[0][:12]
    own = items(owner, "w.level = 'village' AND w.code = :v", {"v": grid_village})[0]
    assert client.get(f"/api/warnings/{own.id}", headers=users["grid"].headers).status_code == 200
    assert client.get(f"/api/warnings/{mine.id}", headers=users["grid"].headers).status_code == (
        200 if mine.code == grid_village else 404
    )
    # adding evidence follows the same jurisdiction (the database's policies decide)
    r = client.post(
        f"/api/warnings/{other.id}/evidence", data={"note": "visited"}, headers=users["town"].headers
    )
    assert r.status_code == 404
    # and the database refuses it by itself (the item is invisible to the stamping trigger under row
    # security, and the INSERT policy checks it again), whatever the application checks
    svc = make_engine(DatabaseSettings(database_url=owner.service_url), service=True)
    try:
        for login, item in (
            (users["town"], other),
            (users["grid"], mine if mine.code != grid_village else other),
        ):
            who = Principal(login.name, login.role, login.areas)
            refused = pytest.raises(DBAPIError, match="no ladder item|row-level security")
            with refused, transaction(svc, who) as c:
                c.execute(
                    text(
                        "INSERT INTO pingan.index_warning_evidence (warning_id, level, code, town_code, "
                        "opened, step, note, created_by, created_role) VALUES (:i, 'village', '', '', "
                        "current_date, 1, 'x', '', '')"
                    ),
                    {"i": item.id},
                )
        with transaction(svc, Principal(users["grid"].name, "grid", users["grid"].areas)) as c:
            row = add_evidence(c, own.id, "网格员走访 3 户")
        assert row.created_by == users["grid"].name and row.created_role == "grid"
    finally:
        svc.dispose()


def test_add_evidence_with_a_file_is_stamped_audited_and_append_only(client, owner, users) -> None:
    town = users["town"]
    item = items(owner, "w.status = 'open' AND w.town_code = :t", {"t": town.areas[0]})[0]
    r = client.post(
        f"/api/warnings/{item.id}/evidence",
        headers=town.headers,
        data={"note": "已约谈村两委，整改方案见附件"},
        files={"file": ("整改方案.pdf", PDF, "application/octet-stream")},
    )
    assert r.status_code == 201, r.text
    ev = r.json()
    assert ev["created_by"] == town.name and ev["created_role"] == "town" and ev["step"] == item.step
    assert ev["file_name"] == "整改方案.pdf" and ev["media_type"] == "application/pdf"
    assert ev["file_size"] == len(PDF)
    r = client.post(
        f"/api/warnings/{item.id}/evidence", headers=users["command"].headers, data={"note": "督办组现场核查"}
    )
    assert r.status_code == 201 and r.json()["file_name"] is None
    body = client.get(f"/api/warnings/{item.id}", headers=users["admin"].headers).json()
    assert [e["note"] for e in body["evidence"]][-2:] == ["已约谈村两委，整改方案见附件", "督办组现场核查"]
    f = client.get(f"/api/warnings/{item.id}/evidence/{ev['id']}/file", headers=town.headers)
    assert f.status_code == 200 and f.content == PDF and f.headers["content-type"] == "application/pdf"
    assert f"filename*=UTF-8''{quote('整改方案.pdf')}" in f.headers["content-disposition"]
    assert (
        client.get(
            f"/api/warnings/{item.id}/evidence/{ev['id']}/file", headers=users["analyst"].headers
        ).status_code
        == 403
    )
    with owner.connect() as c:
        a = c.execute(
            text(
                "SELECT actor, role, object_type, object_id, details FROM pingan.audit_log "
                "WHERE action = 'add_evidence' AND actor = :u"
            ),
            {"u": town.name},
        ).one()
    assert (a.role, a.object_type, a.object_id) == ("town", "index_warning", str(item.id))
    assert a.details["evidence_id"] == ev["id"] and a.details["sha256"] == ev["file_sha256"]
    # append-only: not even the owner changes or deletes evidence
    for sql in (
        "UPDATE pingan.index_warning_evidence SET note = 'x' WHERE id = :i",
        "DELETE FROM pingan.index_warning_evidence WHERE id = :i",
    ):
        with pytest.raises(DBAPIError, match="append-only"), owner.begin() as c:
            c.execute(text(sql), {"i": ev["id"]})
    # a rebuild of the ladder keeps it; an item deleted and made again gets it back
    index.compute(owner, LAST)
    with owner.begin() as c:
        key = c.execute(
            text("SELECT level, code, opened FROM pingan.index_warnings WHERE id = :i"), {"i": item.id}
        ).one()
        c.execute(text("DELETE FROM pingan.index_warnings WHERE id = :i"), {"i": item.id})
        assert (
            c.execute(
                text("SELECT warning_id FROM pingan.index_warning_evidence WHERE id = :e"), {"e": ev["id"]}
            ).scalar_one()
            is None
        )
    index.compute(owner, LAST)
    with owner.connect() as c:
        back = c.execute(
            text(
                "SELECT w.id FROM pingan.index_warnings w JOIN pingan.index_warning_evidence e "
                "ON e.warning_id = w.id WHERE e.id = :e"
            ),
            {"e": ev["id"]},
        ).scalar_one()
        assert c.execute(
            text("SELECT (level, code, opened) = (:l, :c, :o) FROM pingan.index_warnings WHERE id = :i"),
            {"l": key.level, "c": key.code, "o": key.opened, "i": back},
        ).scalar_one()


def test_evidence_files_up_to_their_own_limit_pass_the_body_limit(client, owner, users) -> None:
    """Other requests are held to 1 MiB (api/hardening.py); an evidence upload to its file limit."""
    item = items(owner, "w.status = 'open'")[0]
    big = PDF + b"%" + b"0" * (3 << 20)  # 3 MiB: over the general limit, under MAX_FILE_BYTES
    r = client.post(f"/api/warnings/{item.id}/evidence", headers=users["admin"].headers,
                    data={"note": "整改照片合集"}, files={"file": ("合集.pdf", big, "application/pdf")})
    assert r.status_code == 201, r.text
    too_big = PDF + b"%" + b"0" * (5 << 20)
    r = client.post(f"/api/warnings/{item.id}/evidence", headers=users["admin"].headers,
                    data={"note": "太大"}, files={"file": ("大.pdf", too_big, "application/pdf")})
    assert r.status_code == 413 and "request body over" in r.text
    r = client.post("/api/login", content=b"x" * (2 << 20), headers={"content-type": "text/plain"})
    assert r.status_code == 413  # elsewhere the general limit holds


@pytest.mark.parametrize(
    ("data", "files", "status", "message"),
    [
        ({"note": "  "}, None, 422, "the note is empty"),
        ({"note": "x" * 4001}, None, 422, "4000"),
        ({"note": "photo"}, {"file": ("photo.png", PDF, "image/png")}, 422, "not a PNG file"),
        ({"note": "exe"}, {"file": ("run.exe", b"MZ\x90\x00", "application/octet-stream")}, 422, "only .pdf"),
        ({"note": "empty"}, {"file": ("a.pdf", b"", "application/pdf")}, 422, "empty"),
        ({}, None, 422, "note"),
    ],
)
def test_bad_evidence(client, owner, users, data, files, status, message) -> None:
    item = items(owner, "w.status = 'open'")[0]
    r = client.post(
        f"/api/warnings/{item.id}/evidence", headers=users["admin"].headers, data=data, files=files
    )
    assert r.status_code == status and message in r.text


def test_evidence_roles_closed_items_and_csrf(client, owner, users) -> None:
    item = items(owner, "w.status = 'open'")[0]
    for role in ("analyst", "public"):
        r = client.post(f"/api/warnings/{item.id}/evidence", headers=users[role].headers, data={"note": "x"})
        assert r.status_code == 403
    closed = items(owner, "w.status = 'closed'")
    assert closed, "the demo's year has de-listed items"
    r = client.post(
        f"/api/warnings/{closed[0].id}/evidence", headers=users["admin"].headers, data={"note": "late"}
    )
    assert r.status_code == 409 and "closed" in r.text
    # a cookie session needs the CSRF header for the POST
    login = users["command"]
    # another client on the same running app (no second lifespan), https: the cookie is Secure
    browser = TestClient(client.app, base_url="https://testserver")
    csrf = browser.post("/auth/login", json={"username": login.name, "password": login.password}).json()[
        "csrf_token"
    ]
    assert browser.post(f"/api/warnings/{item.id}/evidence", data={"note": "x"}).status_code == 403
    r = browser.post(
        f"/api/warnings/{item.id}/evidence", data={"note": "via the screen"}, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 201 and r.json()["created_by"] == login.name


def test_documents_pdf_and_docx(client, owner, users) -> None:
    item = items(
        owner, "w.status = 'open' AND w.level = 'village' AND w.town_code = :t", {"t": users["town"].areas[0]}
    )[0]
    title = {1: "预警通知单", 2: "抄告单", 3: "督办单", 4: "挂牌督办通知书"}[item.step]
    r = client.get(
        f"/api/warnings/{item.id}/document", params={"format": "pdf"}, headers=users["town"].headers
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    disposition = r.headers["content-disposition"]
    assert disposition.startswith("attachment;") and quote(f"{title}-{item.code}") in disposition
    reader = PdfReader(io.BytesIO(r.content))
    body = "".join(p.extract_text() for p in reader.pages)
    assert item.name in body and title in body and f"{item.deadline:%Y年%m月%d日}" in body
    assert item.owner in body and "近六个月平安指数" in body
    fonts = {
        str(f.get_object()["/BaseFont"]) for p in reader.pages for f in p["/Resources"]["/Font"].values()
    }
    cjk = [f for f in fonts if "Hei" in f or "Ming" in f or "Kai" in f or "Fallback" in f]
    assert cjk and all("+" in f for f in cjk)  # a subset of the CJK font, embedded
    for f in (f.get_object() for p in reader.pages for f in p["/Resources"]["/Font"].values()):
        if str(f["/BaseFont"]) in cjk:
            desc = (
                f["/FontDescriptor"]
                if "/FontDescriptor" in f
                else f["/DescendantFonts"][0]["/FontDescriptor"]
            )
            assert "/FontFile2" in desc
    r = client.get(
        f"/api/warnings/{item.id}/document", params={"format": "docx"}, headers=users["town"].headers
    )
    assert r.status_code == 200 and r.headers["content-type"] == DOCX_TYPE
    doc = Document(io.BytesIO(r.content))
    text_ = "\n".join(p.text for p in doc.paragraphs)
    assert title in text_ and item.name in text_ and f"{item.deadline:%Y年%m月%d日}" in text_
    assert (
        client.get(
            f"/api/warnings/{item.id}/document", params={"format": "odt"}, headers=users["town"].headers
        ).status_code
        == 422
    )
    assert (
        client.get(f"/api/warnings/{item.id}/document", headers=users["analyst"].headers).status_code == 403
    )
    other = items(owner, "w.town_code <> :t", {"t": users["town"].areas[0]})[0]
    assert client.get(f"/api/warnings/{other.id}/document", headers=users["town"].headers).status_code == 404
    # the town user's document names the main deductions; a grid user's (its village's item) says
    # they are not for it: they hold the village's person figures (migration 0029)
    mine = items(owner, "w.status = 'open' AND w.level = 'village' AND w.code = :v",
                 {"v": users["grid"].areas[0][:12]})[0]
    texts = {}
    for role in ("town", "grid"):
        r = client.get(f"/api/warnings/{mine.id}/document", params={"format": "docx"},
                       headers=users[role].headers)
        assert r.status_code == 200, role
        texts[role] = "\n".join(p.text for p in Document(io.BytesIO(r.content)).paragraphs)
    assert "扣分明细仅对区级与本镇街用户显示" in texts["grid"] and "扣分明细" not in texts["town"]
    assert "：扣 " in texts["town"] and "：扣 " not in texts["grid"]


def test_index_export_for_every_role(client, owner, users) -> None:
    with owner.connect() as c:
        n = c.execute(text("SELECT count(*) FROM pingan.villages")).scalar_one()
    r = client.get(
        "/api/index/export",
        params={"period": "2026-10", "level": "village", "format": "html"},
        headers=users["public"].headers,
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.text.count('"code": "') >= n
    assert quote("平安指数") in r.headers["content-disposition"]
    r = client.get(
        "/api/index/export",
        params={"period": "2026-10", "level": "town", "format": "png", "width": 640, "height": 480},
        headers=users["analyst"].headers,
    )
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(r.content)) as img:
        assert img.size == (640, 480)
    assert (
        client.get(
            "/api/index/export", params={"period": "2019-01"}, headers=users["public"].headers
        ).status_code
        == 404
    )
    assert (
        client.get(
            "/api/index/export", params={"period": "2026-13"}, headers=users["public"].headers
        ).status_code
        == 422
    )
    assert (
        client.get(
            "/api/index/export",
            params={"period": "2026-10", "level": "grid"},
            headers=users["public"].headers,
        ).status_code
        == 422
    )
    assert client.get("/api/index/export", params={"period": "2026-10"}).status_code == 401
