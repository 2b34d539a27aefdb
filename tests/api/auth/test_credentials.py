"""Each kind of credential accepted and refused, through HTTP, against the real database
(the app connects as pingan_service)."""

from __future__ import annotations

import base64
import time

from sqlalchemy import text

from api.auth import AuthSettings, store
from tests.api.auth.conftest import ACTOR


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(client, user: str, password: str):  # noqa: ANN001, ANN201
    return client.post("/auth/login", json={"username": user, "password": password})


def test_no_credentials_answers_401_with_basic_and_bearer_challenges(client) -> None:
    r = client.get("/t/whoami")
    assert r.status_code == 401
    assert r.headers.get_list("www-authenticate") == [
        'Basic realm="Pingan Map", charset="UTF-8"', 'Bearer realm="Pingan Map"']


def test_basic_accepted_and_refused(client, new_user) -> None:
    name, password = new_user("analyst")
    r = client.get("/t/whoami", headers=basic(name, password))
    assert r.status_code == 200
    assert r.json() == {"user": name, "role": "analyst", "areas": [], "method": "basic"}
    for headers in (basic(name, password + "x"), basic("nobody-here", password),
                    {"Authorization": "Basic !!!notbase64"}, {"Authorization": "Basic " + base64.b64encode(
                        b"no-colon").decode()}, {"Authorization": "Digest abc"}):
        r = client.get("/t/whoami", headers=headers)
        assert r.status_code == 401, headers
        assert "Basic realm" in r.headers["www-authenticate"]
        assert password not in r.text


def test_basic_with_utf8_password(client, new_user, owner) -> None:
    name, _ = new_user()
    password = "平安一张图-密码-2026"
    with owner.begin() as conn:
        store.reset_password(conn, ACTOR, name, password)
    assert client.get("/t/whoami", headers=basic(name, password)).status_code == 200


def test_town_and_grid_users_carry_their_areas(client, new_user, idb) -> None:
    name, password = new_user("town", (idb.town,))
    assert client.get("/t/whoami", headers=basic(name, password)).json()["areas"] == [idb.town]
    name, password = new_user("grid", idb.grids)
    assert client.get("/t/whoami", headers=basic(name, password)).json()["areas"] == list(idb.grids)


def test_bearer_token_accepted_then_revoked(client, new_user, owner) -> None:
    name, _ = new_user("command")
    with owner.begin() as conn:
        t = store.create_token(conn, ACTOR, name, "script", 90, 365)
    r = client.get("/t/whoami", headers=bearer(t.token))
    assert r.status_code == 200 and r.json()["method"] == "bearer" and r.json()["user"] == name
    with owner.connect() as conn:
        assert conn.execute(text("SELECT last_used_at IS NOT NULL FROM pingan.api_tokens WHERE id = :i"),
                            {"i": t.id}).scalar_one()
    assert client.get("/t/whoami", headers=bearer(t.token + "x")).status_code == 401
    assert client.get("/t/whoami", headers=bearer("")).status_code == 401
    with owner.begin() as conn:
        assert store.revoke_token(conn, ACTOR, t.id)
    r = client.get("/t/whoami", headers=bearer(t.token))
    assert r.status_code == 401


def test_expired_token_refused(client, new_user, owner) -> None:
    name, _ = new_user()
    with owner.begin() as conn:
        t = store.create_token(conn, ACTOR, name, "old", 1, 365)
    assert client.get("/t/whoami", headers=bearer(t.token)).status_code == 200
    with owner.begin() as conn:
        conn.execute(text("UPDATE pingan.api_tokens SET created_at = now() - interval '2 days', "
                          "expires_at = now() - interval '1 second' WHERE id = :i"), {"i": t.id})
    assert client.get("/t/whoami", headers=bearer(t.token)).status_code == 401


def test_session_login_use_and_logout(client, new_user, owner) -> None:
    name, password = new_user("command")
    r = login(client, name, password)
    assert r.status_code == 200
    body = r.json()
    assert body["user"] == name and body["role"] == "command" and body["csrf_token"]
    assert client.get("/t/whoami").json()["method"] == "session"
    me = client.get("/auth/me").json()
    assert me["user"] == name and me["csrf_token"] == body["csrf_token"]
    # the database holds the digest, not the cookie value
    cookie = client.cookies.get("pingan_session")
    with owner.connect() as conn:
        hashes = conn.execute(text("SELECT encode(s.id_hash, 'hex') FROM pingan.sessions s "
                                   "JOIN pingan.users u ON u.id = s.user_id WHERE u.name = :n"),
                              {"n": name}).scalars().all()
    assert len(hashes) == 1 and cookie not in hashes[0]
    # logout needs the CSRF token, and ends the session in the database
    assert client.post("/auth/logout").status_code == 403
    assert client.get("/t/whoami").status_code == 200
    r = client.post("/auth/logout", headers={"X-CSRF-Token": body["csrf_token"]})
    assert r.status_code == 204
    with owner.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pingan.sessions s JOIN pingan.users u "
                                 "ON u.id = s.user_id WHERE u.name = :n"), {"n": name}).scalar_one() == 0
    client.cookies.set("pingan_session", cookie)  # a copy kept by an attacker is worthless now
    assert client.get("/t/whoami").status_code == 401


def test_session_cookie_flags(make_client, new_user) -> None:
    name, password = new_user()
    client = make_client(AuthSettings())  # the defaults: Secure
    r = login(client, name, password)
    cookie = r.headers["set-cookie"].lower()
    for flag in ("httponly", "samesite=lax", "path=/", "secure", "max-age="):
        assert flag in cookie, flag


def test_expired_and_idle_sessions_refused(client, new_user, owner) -> None:
    name, password = new_user()
    assert login(client, name, password).status_code == 200
    assert client.get("/t/whoami").status_code == 200
    with owner.begin() as conn:  # idle longer than session_idle_seconds (30 min)
        conn.execute(text("UPDATE pingan.sessions s SET last_seen_at = now() - interval '31 minutes', "
                          "created_at = now() - interval '31 minutes' FROM pingan.users u "
                          "WHERE u.id = s.user_id AND u.name = :n"), {"n": name})
    assert client.get("/t/whoami").status_code == 401
    assert login(client, name, password).status_code == 200
    with owner.begin() as conn:  # past its lifetime, although recently used
        conn.execute(text("UPDATE pingan.sessions s SET created_at = now() - interval '13 hours', "
                          "expires_at = now() - interval '1 minute' FROM pingan.users u "
                          "WHERE u.id = s.user_id AND u.name = :n"), {"n": name})
    assert client.get("/t/whoami").status_code == 401


def test_disabled_user_refused_everywhere(make_client, new_user, owner) -> None:
    client = make_client(AuthSettings(cookie_secure=False, basic_cache_seconds=0, credential_cache_seconds=0))
    name, password = new_user()
    with owner.begin() as conn:
        t = store.create_token(conn, ACTOR, name, "t", 30, 365)
    assert login(client, name, password).status_code == 200
    assert client.get("/t/whoami", headers=basic(name, password)).status_code == 200
    assert client.get("/t/whoami", headers=bearer(t.token)).status_code == 200
    with owner.begin() as conn:
        assert store.set_disabled(conn, ACTOR, name, True)
    assert client.get("/t/whoami").status_code == 401  # session ended
    assert client.get("/t/whoami", headers=basic(name, password)).status_code == 401
    assert client.get("/t/whoami", headers=bearer(t.token)).status_code == 401
    client.cookies.clear()
    assert login(client, name, password).status_code == 401
    with owner.begin() as conn:
        assert store.set_disabled(conn, ACTOR, name, False)
    assert client.get("/t/whoami", headers=bearer(t.token)).status_code == 200
    assert login(client, name, password).status_code == 200


def test_basic_cache_lets_a_change_through_within_its_ttl(make_client, new_user, owner) -> None:
    """Documented behaviour: a worker remembers a good Basic login for basic_cache_seconds."""
    client = make_client(AuthSettings(cookie_secure=False, basic_cache_seconds=1))
    name, password = new_user()
    assert client.get("/t/whoami", headers=basic(name, password)).status_code == 200
    with owner.begin() as conn:
        store.reset_password(conn, ACTOR, name, "a-brand-new-password")
    assert client.get("/t/whoami", headers=basic(name, password)).status_code == 200  # cached
    time.sleep(1.1)
    assert client.get("/t/whoami", headers=basic(name, password)).status_code == 401
    assert client.get("/t/whoami", headers=basic(name, "a-brand-new-password")).status_code == 200


def test_basic_cache_skips_argon2(make_client, new_user, monkeypatch) -> None:
    from api.auth import service

    calls = []
    real = service.verify_password
    monkeypatch.setattr(service, "verify_password", lambda h, p: calls.append(1) or real(h, p))
    client = make_client()
    name, password = new_user()
    for _ in range(5):
        assert client.get("/t/whoami", headers=basic(name, password)).status_code == 200
    assert len(calls) == 1


def test_optional_principal(client, new_user) -> None:
    assert client.get("/t/public").json() == {"user": None}
    client.cookies.set("pingan_session", "stale-or-forged")
    assert client.get("/t/public").json() == {"user": None}
    assert client.get("/t/whoami").status_code == 401
    client.cookies.clear()
    name, password = new_user()
    assert client.get("/t/public", headers=basic(name, password)).json() == {"user": name}
    assert client.get("/t/public", headers=basic(name, "wrong-password!")).status_code == 401


def test_audit_records_logins_and_logout(client, new_user, owner) -> None:
    name, password = new_user()
    assert login(client, name, password + "x").status_code == 401
    r = login(client, name, password)
    client.post("/auth/logout", headers={"X-CSRF-Token": r.json()["csrf_token"]})
    client.get("/t/whoami", headers=basic(name, password))
    with owner.connect() as conn:
        rows = conn.execute(text(
            "SELECT action, details->>'method', host(client_addr) FROM pingan.audit_log "
            "WHERE actor = :n AND action LIKE 'auth.%' ORDER BY id"), {"n": name}).all()
    assert [tuple(r) for r in rows] == [
        ("auth.login_failed", "form", "203.0.113.7"), ("auth.login", "form", "203.0.113.7"),
        ("auth.logout", None, "203.0.113.7"), ("auth.login", "basic", "203.0.113.7")]


def test_a_burst_of_basic_requests_shares_one_verification(idb, new_user, monkeypatch) -> None:
    """QGIS opens a layer with many tile requests at once: one argon2 verification for all,
    and a wrong password in such a burst counts as one failure."""
    import asyncio

    from api.auth import service
    from layers.db import make_async_pool
    from layers.settings import DatabaseSettings

    calls = []
    real = service.verify_password
    monkeypatch.setattr(service, "verify_password", lambda h, p: calls.append(1) or real(h, p))
    name, password = new_user()

    async def burst(pw: str) -> list:
        auth = service.Authenticator(AuthSettings())
        pool = make_async_pool(DatabaseSettings(database_url=idb.service_url), min_size=1, service=True)
        await pool.open()
        try:
            return await asyncio.gather(*(auth.basic(pool, name, pw, "203.0.113.8") for _ in range(12)),
                                        return_exceptions=True)
        finally:
            await pool.close()

    results = asyncio.run(burst(password))
    assert all(r.user == name for r in results) and len(calls) == 1
    results = asyncio.run(burst("wrong-password-1"))
    assert all(isinstance(r, service.AuthFailure) for r in results) and len(calls) == 2


def test_browser_scripts_get_no_basic_challenge(client) -> None:
    """fetch() from the map screen must not pop up the browser's Basic dialog."""
    r = client.get("/t/whoami", headers={"Sec-Fetch-Mode": "cors"})
    assert r.status_code == 401 and r.headers.get_list("www-authenticate") == ['Bearer realm="Pingan Map"']
    r = client.get("/t/whoami", headers={"Sec-Fetch-Mode": "navigate"})
    assert r.headers["www-authenticate"].startswith("Basic")


def test_a_new_login_ends_the_previous_session(client, new_user, owner) -> None:
    name, password = new_user()
    login(client, name, password)
    first = client.cookies.get("pingan_session")
    login(client, name, password)
    assert client.cookies.get("pingan_session") != first
    with owner.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM pingan.sessions s JOIN pingan.users u "
                              "ON u.id = s.user_id WHERE u.name = :n"), {"n": name}).scalar_one()
    assert n == 1


def test_ipv6_addresses_are_limited_per_64() -> None:
    from api.auth.service import throttle_key

    assert throttle_key("2001:db8:1:2:3:4:5:6") == throttle_key("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    assert throttle_key("2001:db8:1:3::1") != throttle_key("2001:db8:1:2::1")
    assert throttle_key("::ffff:192.0.2.1") == throttle_key("192.0.2.1") == "192.0.2.1"
    assert throttle_key("testclient") == "testclient" and throttle_key(None) == "unknown"


def test_token_and_session_cache_within_its_ttl(make_client, new_user, owner) -> None:
    """Documented behaviour: a worker remembers a checked token or session for
    credential_cache_seconds (tiles would otherwise each cost a query); logout is immediate."""
    client = make_client(AuthSettings(cookie_secure=False, credential_cache_seconds=1))
    name, password = new_user()
    with owner.begin() as conn:
        t = store.create_token(conn, ACTOR, name, "t", 30, 365)
    assert client.get("/t/whoami", headers=bearer(t.token)).status_code == 200
    with owner.begin() as conn:
        assert store.revoke_token(conn, ACTOR, t.id)
    assert client.get("/t/whoami", headers=bearer(t.token)).status_code == 200  # cached
    time.sleep(1.1)
    assert client.get("/t/whoami", headers=bearer(t.token)).status_code == 401
    me = login(client, name, password)
    assert me.status_code == 200 and client.get("/t/whoami").status_code == 200
    csrf = client.get("/auth/me").json()["csrf_token"]
    cookie = client.cookies.get("pingan_session")
    assert client.post("/auth/logout", headers={"X-CSRF-Token": csrf}).status_code in (204, 303)
    client.cookies.set("pingan_session", cookie)  # a copy of the cookie, replayed at once
    assert client.get("/t/whoami").status_code == 401  # despite the cache
