"""The login page: a minimal form, zh-CN by default (English with ``?lang=en``), no external
assets (the map screen may run on a network without the Internet)."""

from __future__ import annotations

from html import escape
from urllib.parse import urlsplit

TEXTS = {
    "zh": {
        "lang": "zh-CN", "title": "登录 · 平安一张图", "heading": "平安一张图", "user": "用户名",
        "password": "密码", "submit": "登录", "other": "English", "other_lang": "en",
        "failed": "用户名或密码错误。", "locked": "登录失败次数过多，请稍后再试。",
        "bad": "请输入用户名和密码。",
    },
    "en": {
        "lang": "en", "title": "Log in · Pingan Map", "heading": "Pingan Map", "user": "User name",
        "password": "Password", "submit": "Log in", "other": "中文", "other_lang": "zh",
        "failed": "Wrong user name or password.", "locked": "Too many failed logins: try again later.",
        "bad": "Enter a user name and a password.",
    },
}

# Styles are inline; the page's Content-Security-Policy allows exactly that and nothing else.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")

_PAGE = """<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>
body{{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;
font-family:system-ui,"PingFang SC","Microsoft YaHei",sans-serif;background:#0b2545;color:#1b1b1b}}
form{{background:#fff;padding:2rem 2.2rem;border-radius:8px;width:18rem;box-shadow:0 4px 24px #0006}}
h1{{font-size:1.3rem;margin:0 0 1.2rem;color:#0b2545}}
label{{display:block;margin:.8rem 0 .3rem;font-size:.9rem}}
input{{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem;border:1px solid #999;border-radius:4px}}
button{{margin-top:1.3rem;width:100%;padding:.6rem;font-size:1rem;border:0;border-radius:4px;
background:#13315c;color:#fff;cursor:pointer}}
.error{{color:#b00020;font-size:.9rem;margin:.2rem 0 0}}
.lang{{display:block;margin-top:1rem;font-size:.85rem;text-align:right;color:#13315c}}
</style>
</head>
<body>
<form method="post" action="/auth/login" autocomplete="on">
<h1>{heading}</h1>
{error}<label for="username">{user}</label>
<input id="username" name="username" autocomplete="username" required autofocus value="{username}">
<label for="password">{password}</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<input type="hidden" name="next" value="{next}">
<input type="hidden" name="lang" value="{lang_code}">
<button type="submit">{submit}</button>
<a class="lang" href="/login?lang={other_lang}&amp;next={next_q}">{other}</a>
</form>
</body>
</html>
"""


def language(value: str | None) -> str:
    return "en" if (value or "").lower().startswith("en") else "zh"


def safe_next(value: str | None) -> str:
    """``value`` if it is a path on this site, else ``/``: never an open redirect.

    Refused: absolute URLs, scheme-relative ``//host``, back-slashes (browsers read ``/\\host``
    as ``//host``), control characters and anything with a scheme or a host.
    """
    if not value or len(value) > 2048 or not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def render(lang: str, next_path: str, error: str | None = None, username: str = "") -> str:
    from urllib.parse import quote

    t = TEXTS[lang]
    message = f'<p class="error" role="alert">{escape(t[error])}</p>\n' if error else ""
    return _PAGE.format(
        lang=t["lang"], title=escape(t["title"]), heading=escape(t["heading"]), error=message,
        user=escape(t["user"]), password=escape(t["password"]), submit=escape(t["submit"]),
        username=escape(username[:64]), next=escape(next_path), next_q=escape(quote(next_path, safe="")),
        lang_code=lang, other=escape(t["other"]), other_lang=t["other_lang"],
    )
