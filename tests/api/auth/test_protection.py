"""CSRF, open redirects, login rate limits, the login page, secrets kept out of logs and the
database, and what the service's database role may not do."""

from __future__ import annotations

import logging

import psycopg
import pytest
from sqlalchemy import text

from api.auth import AuthSettings, install, store
from api.auth.page import safe_next
from tests.api.auth.conftest import ACTOR
from tests.api.auth.test_credentials import basic, bearer, login


# -- CSRF ------------------------------------------------------------------------------------
def test_cookie_post_needs_the_csrf_token(client, new_user) -> None:
    name, password = new_user()
    csrf = login(client, name, password).json()["csrf_token"]
    assert client.post("/t/change").status_code == 403
    assert client.post("/t/change", headers={"X-CSRF-Token": "forged"}).status_code == 403
    for method in ("put", "patch", "delete"):  # every unsafe method, not only POST
        assert client.request(method.upper(), "/t/change").status_code in (403, 405)
    r = client.post("/t/change", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json() == {"changed_by": name}
    assert client.get("/t/whoami").status_code == 200  # safe methods need none


def test_csrf_token_is_per_session(client, make_client, new_user) -> None:
    name, password = new_user()
    first = login(client, name, password).json()["csrf_token"]
    other = make_client()
    second = login(other, name, password).json()["csrf_token"]
    assert first != second
    assert other.post("/t/change", headers={"X-CSRF-Token": first}).status_code == 403


def test_basic_and_bearer_posts_need_no_csrf_token(client, new_user, owner) -> None:
    name, password = new_user()
    assert client.post("/t/change", headers=basic(name, password)).status_code == 200
    with owner.begin() as conn:
        t = store.create_token(conn, ACTOR, name, "t", 1, 365)
    assert client.post("/t/change", headers=bearer(t.token)).status_code == 200


def test_cross_site_login_refused(client, new_user) -> None:
    name, password = new_user()
    r = client.post("/auth/login", data={"username": name, "password": password},
                    headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert r.status_code == 403 and "set-cookie" not in r.headers
    r = client.post("/auth/login", data={"username": name, "password": password},
                    headers={"Origin": "http://testserver"}, follow_redirects=False)
    assert r.status_code == 303


# -- redirects -------------------------------------------------------------------------------
@pytest.mark.parametrize("where", [
    "//evil.example/x", "https://evil.example/", "http:/evil.example", "/\\evil.example",
    "\\\\evil.example", "javascript:alert(1)", "evil.example", "/\tx", "///evil.example",
])
def test_open_redirect_refused(client, new_user, where) -> None:
    name, password = new_user()
    r = client.post("/auth/login", data={"username": name, "password": password, "next": where},
                    follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/"


def test_local_next_kept(client, new_user) -> None:
    name, password = new_user()
    r = client.post("/auth/login", data={"username": name, "password": password,
                                         "next": "/ogc/collections?f=json#map"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ogc/collections?f=json#map"
    assert safe_next("/a/b") == "/a/b" and safe_next(None) == "/"


# -- rate limits -----------------------------------------------------------------------------
def test_user_lockout_after_five_failures(client, make_client, new_user, owner) -> None:
    name, password = new_user()
    for _ in range(4):
        assert login(client, name, "wrong-password-1").status_code == 401
    assert login(client, name, "wrong-password-1").status_code == 429  # the fifth locks
    r = login(client, name, password)  # the right password, but locked now
    assert r.status_code == 429
    assert 800 < int(r.headers["retry-after"]) <= 901
    r = client.post("/auth/login", data={"username": name, "password": password}, follow_redirects=False)
    assert r.status_code == 429 and "稍后再试" in r.text
    # Basic answers 401 for a locked account, from any address
    elsewhere = make_client(addr="198.51.100.9")
    assert elsewhere.get("/t/whoami", headers=basic(name, password)).status_code == 401
    # lifted by an operator
    with owner.begin() as conn:
        assert store.unlock(conn, ACTOR, name)
    assert login(client, name, password).status_code == 200


def test_basic_failures_count_too(client, new_user) -> None:
    name, password = new_user()
    for _ in range(5):
        assert client.get("/t/whoami", headers=basic(name, "not-the-password")).status_code == 401
    assert client.get("/t/whoami", headers=basic(name, password)).status_code == 401
    assert login(client, name, password).status_code == 429


def test_lockout_backs_off(client, new_user, owner) -> None:
    name, _ = new_user()

    def lock_seconds() -> float:
        with owner.connect() as conn:
            until = conn.execute(text("SELECT locked_until - now() FROM pingan.login_throttle "
                                      "WHERE scope = 'user' AND key = :n"), {"n": name}).scalar_one()
        return until.total_seconds()

    for _ in range(5):
        login(client, name, "wrong-password-1")
    assert 890 < lock_seconds() <= 900
    with owner.begin() as conn:  # the first lock has passed
        conn.execute(text("UPDATE pingan.login_throttle SET locked_until = now() - interval '1 second' "
                          "WHERE scope = 'user' AND key = :n"), {"n": name})
    for _ in range(4):
        assert login(client, name, "wrong-password-1").status_code == 401
    r = login(client, name, "wrong-password-1")
    assert r.status_code == 429  # the fifth failure locks again, for twice as long
    assert 1790 < lock_seconds() <= 1800


def test_address_lockout(make_client, new_user) -> None:
    attacker = make_client(addr="192.0.2.66")
    for i in range(19):  # many names, so no single user reaches its limit
        assert login(attacker, f"guess{i:02d}", "wrong-password-1").status_code == 401
    assert login(attacker, "guess19", "wrong-password-1").status_code == 429  # the twentieth locks
    name, password = new_user()
    assert login(attacker, name, password).status_code == 429
    assert attacker.get("/t/whoami", headers=basic(name, password)).status_code == 401
    assert login(make_client(addr="192.0.2.67"), name, password).status_code == 200


def test_unknown_user_answers_like_a_wrong_password(client, new_user) -> None:
    name, _ = new_user()
    a = login(client, name, "wrong-password-1")
    b = login(client, "nobody-" + name, "wrong-password-1")
    assert (a.status_code, a.json()) == (b.status_code, b.json())


# -- the login page --------------------------------------------------------------------------
def test_login_page_zh_and_en(client) -> None:
    r = client.get("/login?next=/ogc")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in r.text and "登录" in r.text and 'value="/ogc"' in r.text
    assert "default-src 'none'" in r.headers["content-security-policy"]
    en = client.get("/login?lang=en").text
    assert '<html lang="en">' in en and "Log in" in en
    for page in (r.text, en):  # no external assets, no scripts
        assert "http://" not in page and "https://" not in page and "<script" not in page
    evil = client.get('/login?next="><script>alert(1)</script>').text
    assert "<script>" not in evil


def test_form_login_failure_shows_the_form_again(client, new_user) -> None:
    name, _ = new_user()
    r = client.post("/auth/login", data={"username": name, "password": "wrong-password-1",
                                         "lang": "en"}, follow_redirects=False)
    assert r.status_code == 401 and "Wrong user name or password" in r.text and name in r.text
    assert "www-authenticate" not in r.headers  # no browser Basic dialog over the form


def test_bad_login_bodies(client) -> None:
    assert client.post("/auth/login", content=b"{", headers={"content-type": "application/json"}
                       ).status_code == 400
    assert client.post("/auth/login", content=b"x", headers={"content-type": "text/plain"}).status_code == 415
    assert client.post("/auth/login", json={"username": "a"}).status_code == 400
    assert client.post("/auth/login", content=b"a=" + b"x" * 20000,
                       headers={"content-type": "application/x-www-form-urlencoded"}).status_code == 413


# -- secrets stay secret ---------------------------------------------------------------------
def test_password_never_in_logs_or_database(client, new_user, owner, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    name, password = new_user()
    wrong = "wrong-but-secret-" + password
    login(client, name, wrong)
    csrf = login(client, name, password).json()["csrf_token"]
    client.get("/t/whoami", headers=basic(name, password))
    client.get("/t/whoami", headers=basic(name, wrong))
    with owner.begin() as conn:
        t = store.create_token(conn, ACTOR, name, "t", 1, 365)
    client.get("/t/whoami", headers=bearer(t.token))
    session_id = client.cookies.get("pingan_session")
    secrets_ = [password, wrong, t.token, session_id, csrf]
    logged = caplog.text
    with owner.connect() as conn:
        tables = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'pingan'")).scalars()
        dump = "\n".join(
            conn.execute(text(f"SELECT coalesce(string_agg(t::text, '|'), '') FROM pingan.{tn} t")
                         ).scalar_one()
            for tn in tables
        )
    assert name in dump  # the dump does see the user's rows
    for s in secrets_:
        assert s not in logged
        assert s not in dump


# -- the service's database role -------------------------------------------------------------
def test_service_role_cannot_change_identities(idb, new_user) -> None:
    name, _ = new_user()
    forbidden = [
        "UPDATE pingan.users SET password_hash = '$argon2id$x' WHERE name = %(n)s",
        "UPDATE pingan.users SET role = 'admin' WHERE name = %(n)s",
        "UPDATE pingan.users SET disabled = false WHERE name = %(n)s",
        "INSERT INTO pingan.users (name, role, password_hash) VALUES ('evil', 'admin', '$argon2id$x')",
        "DELETE FROM pingan.users WHERE name = %(n)s",
        "UPDATE pingan.api_tokens SET revoked_at = NULL",
        "UPDATE pingan.api_tokens SET expires_at = now() + interval '10 years'",
        "INSERT INTO pingan.api_tokens (user_id, name, token_hash, expires_at) "
        "SELECT id, 'x', sha256('x'), now() + interval '1 day' FROM pingan.users WHERE name = %(n)s",
        "UPDATE pingan.sessions SET expires_at = now() + interval '1 year'",
        "UPDATE pingan.sessions SET user_id = 1",
        "DELETE FROM pingan.audit_log",
        "UPDATE pingan.audit_log SET actor = 'x'",
    ]
    with psycopg.connect(idb.service_url) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("pingan_service",)
        for sql in forbidden:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql, {"n": name})
            conn.rollback()
        # what it needs does work
        conn.execute("UPDATE pingan.users SET last_login_at = now() WHERE name = %(n)s", {"n": name})
        assert conn.execute("SELECT count(*) FROM pingan.users WHERE name = %s", (name,)).fetchone() == (1,)
        conn.rollback()


# -- wired into the real app -----------------------------------------------------------------
def test_installed_on_the_real_app(idb, new_user) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import ApiSettings
    from layers.settings import DatabaseSettings

    app = create_app(ApiSettings(environment="test"), DatabaseSettings(database_url=idb.service_url))
    if not hasattr(app.state, "auth"):  # create_app installs it once wired (issue 4)
        install(app, AuthSettings(cookie_secure=False))
    name, password = new_user("town", (idb.town,))
    with TestClient(app) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/auth/me").status_code == 401
        me = c.get("/auth/me", headers=basic(name, password)).json()
        assert me == {"user": name, "role": "town", "areas": [idb.town], "method": "basic"}
        assert "/auth/me" in c.get("/openapi.json").json()["paths"]


def test_settings_from_environment(monkeypatch) -> None:
    monkeypatch.setenv("PINGAN_AUTH_ANONYMOUS_COLLECTIONS", "index-public, towns")
    monkeypatch.setenv("PINGAN_AUTH_COOKIE_SECURE", "false")
    s = AuthSettings()
    assert s.anonymous_collections == ["index-public", "towns"] and s.cookie_secure is False
    monkeypatch.setenv("PINGAN_AUTH_ANONYMOUS_COLLECTIONS", '["a"]')
    assert AuthSettings().anonymous_collections == ["a"]
    assert AuthSettings(_env_file=None).token_default_days == 90
    with pytest.raises(ValueError, match="token_default_days"):
        AuthSettings(token_default_days=400, token_max_days=365)

