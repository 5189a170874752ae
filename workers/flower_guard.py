"""Flower as we let it run: behind a real password, and read-only unless worker control is asked
for with ``PUBLISHING_FLOWER_WORKER_CONTROL=1`` (otherwise anyone who can log in may shut
workers down, restart or resize their pools and revoke jobs)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import click
from celery import Celery, signals

WORKER_CONTROL = "PUBLISHING_FLOWER_WORKER_CONTROL"
MIN_PASSWORD_CHARS = 12
# Markers of a value copied from an example and never replaced.
PLACEHOLDERS = ("replace-me", "replaceme", "changeme", "change-me")
# A password that is one of these once digits and punctuation are dropped is the first one guessed.
GUESSABLE = frozenset({"password", "passwd", "secret", "admin", "flower", "letmein", "qwerty"})


def basic_auth_problem(entries: Sequence[str]) -> str | None:
    """Why these ``user:password`` entries (Flower's ``basic_auth``) must not guard Flower, or
    None. The message never shows a password."""
    if not entries:
        return "FLOWER_BASIC_AUTH is not set: Flower needs user:password to start"
    for position, entry in enumerate(entries, start=1):
        user, sep, password = entry.partition(":")
        where = f"FLOWER_BASIC_AUTH entry {position}"
        if not sep or not user or not password:
            return f"{where} is not user:password"
        lowered = password.lower()
        if any(marker in lowered for marker in PLACEHOLDERS):
            return f"{where} ({user}) has a placeholder password: set a real one"
        if re.sub(r"[^a-z]", "", lowered) in GUESSABLE:
            return f"{where} ({user}) has a guessable password"
        if len(password) < MIN_PASSWORD_CHARS:
            return f"{where} ({user}) has a password shorter than {MIN_PASSWORD_CHARS} characters"
    return None


def worker_control_enabled(environ: Mapping[str, str]) -> bool:
    return environ.get(WORKER_CONTROL, "").strip().lower() in {"1", "true", "yes", "on"}


def guard(options: Any, environ: Mapping[str, str]) -> None:
    """Check Flower's final options; stop the process (one line on stderr) if they are unsafe."""
    problem = basic_auth_problem(options.basic_auth or [])
    if problem:
        raise SystemExit(f"flower: {problem}")
    if worker_control_enabled(environ):
        return
    if not hasattr(options, "read_only"):
        raise SystemExit(
            f"flower: this Flower has no read-only mode (flower>=2.2 has): upgrade it, or set "
            f"{WORKER_CONTROL}=1 to run it with worker control"
        )
    options.read_only = True


def install(app: Celery, environ: Mapping[str, str]) -> None:
    """Guard Flower when the ``celery`` command being run is ``flower``. Flower builds its
    application once every option is final (environment, command line, ``--conf`` file) and
    then imports the app's modules: that signal is the last moment before it serves."""
    context = click.get_current_context(silent=True)
    if context is None or context.invoked_subcommand != "flower":
        return
    from tornado.options import options

    def check(sender: Celery, **_: object) -> None:
        guard(options, environ)

    signals.import_modules.connect(check, sender=app, weak=False)
