"""Who is signed in to the console, and the CSRF token of their session.

The session is Flask's signed cookie (HttpOnly, SameSite=Strict, Secure over https). It keeps
the role and a mark of the token (``api.auth.session_mark``), never the token: the role is
read again from the configured tokens on every request, so removing a token ends its
sessions. The signing key is ``PUBLISHING_UI_SECRET`` when set, else derived from the tokens
(changing them signs everyone out)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from pathlib import Path

from flask import Flask, abort, current_app, request, session
from flask.sessions import SecureCookieSessionInterface

from api.auth import Role, auth_is_off, role_of_session, role_of_token, session_mark
from publishing.errors import ConfigError
from publishing.settings import Settings

SECRET_VARIABLE = "PUBLISHING_UI_SECRET"
MIN_SECRET_CHARS = 32
CSRF_FIELD = "csrf_token"
KEY = "publishing.ui.key"


def console_secret(settings: Settings, environ: Mapping[str, str]) -> bytes:
    """The session signing key: ``PUBLISHING_UI_SECRET`` (or the file ``..._FILE`` names), else
    an HMAC of the configured tokens, so every API process derives the same key."""
    value = environ.get(SECRET_VARIABLE, "").strip()
    path = environ.get(f"{SECRET_VARIABLE}_FILE", "").strip()
    if value and path:
        raise ConfigError(f"set {SECRET_VARIABLE} or {SECRET_VARIABLE}_FILE, not both")
    if path:
        try:
            value = Path(path).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{SECRET_VARIABLE}_FILE: cannot read {path}: {exc.strerror}") from None
    if value:
        if len(value) < MIN_SECRET_CHARS:
            raise ConfigError(f"{SECRET_VARIABLE} must be at least {MIN_SECRET_CHARS} characters")
        return hashlib.sha256(value.encode()).digest()
    # Without tokens (development) nobody signs in and the key only guards the CSRF token;
    # it is still derived from what every process of the deployment shares.
    material = sorted(f"{role}:{token}" for token, role in settings.api_tokens.items()) or [
        settings.redis_url,
        settings.database_url,
        settings.key_prefix,
    ]
    return hmac.new(b"publishing-console-session", "\0".join(material).encode(), hashlib.sha256).digest()


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, ``Secure`` whenever the request came over https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure


def configure(app: Flask, key: bytes) -> None:
    app.secret_key = key
    app.extensions[KEY] = key
    app.session_interface = ConsoleSessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME="publishing_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=12 * 3600,
    )


def _key() -> bytes:
    return bytes(current_app.extensions[KEY])


def current_role() -> Role | None:
    """The signed-in role (admin for everyone when the API runs without tokens)."""
    if auth_is_off():
        return Role.ADMIN
    mark = session.get("mark")
    return role_of_session(_key(), mark) if isinstance(mark, str) else None


def sign_in(token: str) -> Role | None:
    role = role_of_token(token.strip()) if token.strip() else None
    if role is None:
        return None
    # A new session: nothing set before the sign-in (its CSRF token included) carries over.
    session.clear()
    session.permanent = True
    session["role"] = role.name.lower()
    session["mark"] = session_mark(_key(), token.strip())
    session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return role


def sign_out() -> None:
    session.clear()


def csrf_token() -> str:
    """The session's CSRF token, made on first use; every state-changing form carries it."""
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    """A POST without the session's token in its form is refused with 400."""
    if request.method != "POST":
        return
    sent = request.form.get(CSRF_FIELD, "")
    expected = session.get(CSRF_FIELD)
    if not isinstance(expected, str) or not sent or not hmac.compare_digest(sent, expected):
        abort(400, "the form's CSRF token is missing or does not match this session; reload the page")
