"""Targets files: YAML or JSON, one file or a directory of them (a mounted ConfigMap or Secret),
read into a checked set and watched for changes by the registry."""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from publishing.errors import ConfigError
from publishing.target_config import parse_document
from publishing.targets import Target, TargetRegistry, check_target_set

_FILE_SUFFIXES = (".yaml", ".yml", ".json")
# Standard Webhooks secrets are ``whsec_`` + base64 of 24 to 64 random bytes; fewer is a key an
# attacker can guess.
MIN_SECRET_BYTES = 24

log = logging.getLogger(__name__)


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        # Kubernetes projects a Secret as symlinks and a hidden ..data directory: skip dotfiles.
        return sorted(
            p
            for p in path.iterdir()
            if p.suffix in _FILE_SUFFIXES and not p.name.startswith(".") and p.is_file()
        )
    return [path]


def load_targets(path: Path) -> list[Target]:
    if not path.exists():
        raise ConfigError(f"PUBLISHING_TARGETS: {path} does not exist")
    targets: list[Target] = []
    for file in _files(path):
        try:
            document = yaml.safe_load(file.read_text())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark else ""
            raise ConfigError(f"{file.name}: not valid YAML or JSON{at}") from None
        targets.extend(parse_document(document, file.name))
    checked = check_target_set(targets)
    for target in checked:
        size = secret_bytes(target.signing_secret)
        if size is not None and size < MIN_SECRET_BYTES:
            log.warning(
                "target %r: signing_secret is a %d-byte key; use whsec_ + base64 of %d to 64 random bytes",
                target.name,
                size,
                MIN_SECRET_BYTES,
            )
    return checked


def secret_bytes(secret: str | None) -> int | None:
    """How many bytes of key a signing secret holds (``whsec_`` + base64, or raw text)."""
    if not secret:
        return None
    if not secret.startswith("whsec_"):
        return len(secret.encode())
    body = secret.removeprefix("whsec_")
    try:
        # Padding optional, as the publisher decodes it.
        return len(base64.b64decode(body + "=" * (-len(body) % 4), validate=True))
    except (binascii.Error, ValueError):
        return None  # the publisher refuses it at send time, naming the target


def check_targets(path: Path | None) -> None:
    """Load the targets once at start-up, so a bad file stops the process with ``ConfigError``
    (one line naming the file, the target and the problem) before it serves anything."""
    if path is not None:
        load_targets(path)


def _signature(path: Path) -> tuple[tuple[str, int, int], ...]:
    try:
        files = _files(path)
        return tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    except OSError:
        return ()


class TargetFiles:
    """The ``TargetSource`` of a path: a file, or every targets file in a directory."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def signature(self) -> object:
        return _signature(self.path)

    def load(self) -> list[Target]:
        return load_targets(self.path)


def registry_from_path(
    path: Path | None, monotonic: Callable[[], float] | None = time.monotonic
) -> TargetRegistry:
    """The registry of a targets path, re-read when its files change; empty without a path."""
    return (
        TargetRegistry(source=TargetFiles(path), monotonic=monotonic)
        if path is not None
        else TargetRegistry()
    )
