"""Targets files: YAML or JSON, one file or a directory of them (a mounted ConfigMap or Secret),
read into a checked set and watched for changes by the registry."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import yaml

from publishing.errors import ConfigError
from publishing.target_config import parse_document
from publishing.targets import Target, TargetRegistry, check_target_set

_FILE_SUFFIXES = (".yaml", ".yml", ".json")


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
    return check_target_set(targets)


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
