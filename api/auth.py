"""Bearer tokens to roles (docs/design.md (API and access)): reader < operator < admin. No peer
address is trusted: behind a proxy or a port-forward every client looks local. Without tokens
the API starts only with the development switch ``PUBLISHING_INSECURE_NO_AUTH=1``, and then
every caller is admin.

Tokens are compared in constant time against every configured token (no early exit), over
their SHA-256 digests so that not even a token's length shows in the timing.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
from collections.abc import Callable, Mapping
from enum import IntEnum
from typing import TYPE_CHECKING, Any, TypeVar, cast

from flask import Flask, current_app, request

from api.errors import ApiError
from api.params import check_query

if TYPE_CHECKING:
    from api.schemas_query import Query

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
EXTENSION = "publishing.auth"


class Role(IntEnum):
    READER = 1
    OPERATOR = 2
    ADMIN = 3


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenTable:
    def __init__(self, tokens: Mapping[str, str]) -> None:
        self._entries = [(_digest(token), Role[role.upper()]) for token, role in tokens.items()]

    def __bool__(self) -> bool:
        return bool(self._entries)

    def role_of(self, candidate: str) -> Role | None:
        given = _digest(candidate)
        found: Role | None = None
        for digest, role in self._entries:
            if hmac.compare_digest(given, digest):
                found = role
        return found

    def role_of_mark(self, key: bytes, mark: str) -> Role | None:
        """The role of the token whose ``session_mark`` under ``key`` is ``mark``; None once
        that token is no longer configured. Every entry is compared, as in ``role_of``."""
        given = mark.encode()
        found: Role | None = None
        for digest, role in self._entries:
            if hmac.compare_digest(given, _mark(key, digest).encode()):
                found = role
        return found


def _mark(key: bytes, digest: bytes) -> str:
    return hmac.new(key, digest, hashlib.sha256).hexdigest()


def session_mark(key: bytes, token: str) -> str:
    """What a console session keeps instead of its token (``api.ui``): an HMAC of the token's
    digest under the session key, which names the token without revealing it, so that a
    session ends when its token is removed from ``PUBLISHING_API_TOKENS``."""
    return _mark(key, _digest(token))


def _table() -> TokenTable:
    return cast(TokenTable, current_app.extensions[EXTENSION])


def role_of_token(token: str) -> Role | None:
    return _table().role_of(token)


def role_of_session(key: bytes, mark: str) -> Role | None:
    return _table().role_of_mark(key, mark)


def auth_is_off() -> bool:
    """No tokens: the app was started with ``PUBLISHING_INSECURE_NO_AUTH=1``."""
    return not _table()


def authorize(needed: Role) -> Role:
    table = _table()
    if not table:
        return Role.ADMIN
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="publishing"'}
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "a bearer token is required", headers=challenge)
    role = table.role_of(token.strip())
    if role is None:
        raise ApiError(401, "unauthorized", "the bearer token is not valid", headers=challenge)
    if role < needed:
        raise ApiError(
            403,
            "forbidden",
            f"this needs the {needed.name.lower()} role; the token has {role.name.lower()}",
            {"required_role": needed.name.lower(), "role": role.name.lower()},
        )
    return role


def require(role: Role, *, query: type[Query] | None = None) -> Callable[[F], F]:
    """The view needs at least ``role`` (checked before the body is read) and takes the
    parameters of the ``query`` model (see ``api.schemas_query``) and no others. Both are
    kept on the view for the OpenAPI document."""
    names = query.names() if query is not None else ()

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            authorize(role)
            check_query(names)
            return view(*args, **kwargs)

        wrapper.required_role = role  # type: ignore[attr-defined]
        wrapper.query_model = query  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return decorate


def init_app(app: Flask, tokens: Mapping[str, str]) -> None:
    table = TokenTable(tokens)
    app.extensions[EXTENSION] = table
    if not table:
        log.warning(
            "PUBLISHING_INSECURE_NO_AUTH=1 and PUBLISHING_API_TOKENS is empty: the API asks no token "
            "and every caller, from any address, is admin; for development only"
        )
