"""The console's blueprint and what every page shares: sign-in before any page, the CSRF
check before any POST, the role a page or an action needs, and the template helpers.

The roles of the actions are read from the JSON API's own views, so the console can never
allow what the API refuses (nor the reverse)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Blueprint, abort, g, redirect, request, url_for
from flask.typing import ResponseReturnValue

from api import dlq
from api.auth import Role, auth_is_off
from api.ui import session
from api.ui.format import FILTERS

F = TypeVar("F", bound=Callable[..., Any])

bp = Blueprint(
    "console", __name__, template_folder="templates", static_folder="static", static_url_path="/static"
)
for _name, _filter in FILTERS.items():
    bp.add_app_template_filter(_filter, _name)

# The JSON API's roles for the same actions (``require`` keeps them on the view).
REPLAY_ROLE: Role = dlq.replay_one.required_role  # type: ignore[attr-defined]
BULK_REPLAY_ROLE: Role = dlq.replay_many.required_role  # type: ignore[attr-defined]
PURGE_ROLE: Role = dlq.purge.required_role  # type: ignore[attr-defined]
_OPEN = {"console.login", "console.login_submit", "console.static"}


@bp.before_request
def guard() -> ResponseReturnValue | None:
    session.check_csrf()
    if request.endpoint in _OPEN:
        return None
    role = session.current_role()
    if role is None:
        if request.method == "GET":
            here = request.script_root + request.full_path.rstrip("?")
            return redirect(url_for("console.login", next=here))
        abort(401, "sign in first: your session has ended, or its token is no longer configured")
    g.role = role
    return None


def needs(role: Role) -> Callable[[F], F]:
    """The view needs at least ``role``: a reader's POST to a replay is a 403, as in the API."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if g.role < role:
                abort(
                    403,
                    f"this needs the {role.name.lower()} role; you are signed in as {g.role.name.lower()}",
                )
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorate


@bp.app_context_processor
def helpers() -> dict[str, Any]:
    role: Role | None = g.get("role")
    return {
        "role": role.name.lower() if role else None,
        "auth_off": auth_is_off(),
        "csrf_token": session.csrf_token,
        "csrf_field": session.CSRF_FIELD,
        "can_replay": role is not None and role >= REPLAY_ROLE,
        "can_bulk_replay": role is not None and role >= BULK_REPLAY_ROLE,
        "can_purge": role is not None and role >= PURGE_ROLE,
    }


@bp.after_app_request
def headers(response: Any) -> Any:
    # Pages show dead letters and job details: no cache keeps them, no frame shows them.
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    )
    response.headers["Referrer-Policy"] = "same-origin"
    return response
