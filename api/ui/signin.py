"""Signing in with an API token and out again (``api.ui.session`` keeps the role, not the token)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from api.auth import auth_is_off
from api.ui import session
from api.ui.blueprint import bp


def _local(target: str | None) -> str:
    """Where to go after signing in: a console path only, never another site."""
    home = url_for("console.overview")
    if target and target.startswith(home) and "\\" not in target:
        return target
    return home


@bp.get("/login")
def login() -> ResponseReturnValue:
    if auth_is_off() or session.current_role() is not None:
        return redirect(_local(request.args.get("next")))
    return render_template("login.html", next=request.args.get("next", ""))


@bp.post("/login")
def login_submit() -> ResponseReturnValue:
    if session.sign_in(request.form.get("token", "")) is None:
        # The same answer for an unknown and an empty token, and no hint about either.
        return render_template(
            "login.html", next=request.form.get("next", ""), error="That token is not valid."
        ), 401
    return redirect(_local(request.form.get("next")))


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    session.sign_out()
    flash("Signed out.")
    return redirect(url_for("console.login"))
