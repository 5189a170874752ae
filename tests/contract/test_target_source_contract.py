"""The ``TargetSource`` contract, held by targets files (one YAML file, a directory of them) and by
the in-memory source the unit tests use, and what the registry makes of it: a change is picked
up, a bad change leaves the last good set in force, and a bad set names what is wrong."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Protocol

import pytest
import yaml

from publishing.adapters.target_files import TargetFiles
from publishing.errors import ConfigError, UnknownTargetError
from publishing.targets import TargetRegistry, TargetSource
from publishing.testing import FrozenClock, InMemoryTargetSource

CHECK_INTERVAL_S = 1.0


def webhook(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "webhook", "url": f"https://{name}.example/alerts", **extra}


class Subject(Protocol):
    source: TargetSource

    def put(self, targets: list[dict[str, Any]]) -> None:
        """Replace the whole set, as an operator's edit would."""
        ...


class OneFile:
    def __init__(self, tmp_path: Path) -> None:
        self._file = tmp_path / "targets.yaml"
        self._mtime_ns = time.time_ns()
        self.source = TargetFiles(self._file)

    def put(self, targets: list[dict[str, Any]]) -> None:
        self._file.write_text(yaml.safe_dump({"targets": targets}))
        # A later mtime each time, so that a change shows even on coarse timestamps.
        self._mtime_ns += 2_000_000_000
        os.utime(self._file, ns=(self._mtime_ns, self._mtime_ns))


class Directory:
    """One file a target, as a mounted ConfigMap holds them."""

    def __init__(self, tmp_path: Path) -> None:
        self._dir = tmp_path / "targets.d"
        self._dir.mkdir()
        self._mtime_ns = time.time_ns()
        self.source = TargetFiles(self._dir)

    def put(self, targets: list[dict[str, Any]]) -> None:
        for old in self._dir.iterdir():
            old.unlink()
        self._mtime_ns += 2_000_000_000
        for i, target in enumerate(targets):
            file = self._dir / f"{i:02d}.yaml"
            file.write_text(yaml.safe_dump(target))
            os.utime(file, ns=(self._mtime_ns, self._mtime_ns))


class InMemory:
    def __init__(self) -> None:
        self.source = InMemoryTargetSource()

    def put(self, targets: list[dict[str, Any]]) -> None:
        self.source.edit(targets)


@pytest.fixture(params=["file", "directory", "memory"])
def subject(request: pytest.FixtureRequest, tmp_path: Path) -> Subject:
    if request.param == "file":
        return OneFile(tmp_path)
    if request.param == "directory":
        return Directory(tmp_path)
    return InMemory()


def registry_of(subject: Subject) -> tuple[TargetRegistry, FrozenClock]:
    clock = FrozenClock(start=100.0)
    registry = TargetRegistry(source=subject.source, monotonic=clock, check_interval_s=CHECK_INTERVAL_S)
    return registry, clock


def names(registry: TargetRegistry) -> list[str]:
    return sorted(t.name for t in registry.all())


def test_load_returns_the_whole_checked_set(subject: Subject) -> None:
    subject.put([webhook("ops"), webhook("backup", enabled=False)])

    targets = subject.source.load()

    assert sorted(t.name for t in targets) == ["backup", "ops"]
    assert {t.name: t.enabled for t in targets} == {"ops": True, "backup": False}


def test_the_signature_moves_with_the_targets_and_only_then(subject: Subject) -> None:
    subject.put([webhook("ops")])
    before = subject.source.signature()

    assert subject.source.signature() == before
    subject.source.load()
    assert subject.source.signature() == before

    subject.put([webhook("ops"), webhook("backup")])
    assert subject.source.signature() != before


def test_the_registry_picks_up_a_change_after_its_interval(subject: Subject) -> None:
    subject.put([webhook("ops")])
    registry, clock = registry_of(subject)
    subject.put([webhook("ops"), webhook("backup")])

    clock.advance(CHECK_INTERVAL_S / 2)
    assert registry.reload_if_changed() is False
    with pytest.raises(UnknownTargetError):
        registry.get("backup")

    clock.advance(CHECK_INTERVAL_S)
    assert names(registry) == ["backup", "ops"]
    assert registry.last_error is None
    assert registry.reload_if_changed(force=False) is False


def test_the_registry_keeps_the_last_good_set_on_a_bad_change(subject: Subject) -> None:
    subject.put([webhook("ops")])
    registry, clock = registry_of(subject)

    subject.put([webhook("ops"), webhook("Not_A_Name")])
    clock.advance(CHECK_INTERVAL_S * 2)

    assert registry.reload_if_changed() is False
    assert names(registry) == ["ops"]
    assert registry.last_error is not None and "Not_A_Name" in registry.last_error

    subject.put([webhook("ops"), webhook("fixed")])
    clock.advance(CHECK_INTERVAL_S * 2)
    assert registry.reload_if_changed() is True
    assert names(registry) == ["fixed", "ops"]
    assert registry.last_error is None


@pytest.mark.parametrize(
    ("targets", "named"),
    [
        ([webhook("ops"), webhook("ops", url="https://other.example/")], ["'ops'", "defined twice"]),
        ([webhook("ops", fallback=["backup", "nowhere"]), webhook("backup")], ["'ops'", "'nowhere'"]),
    ],
    ids=["duplicate-name", "unknown-fallback"],
)
def test_a_bad_set_is_refused_naming_the_culprit(
    subject: Subject, targets: list[dict[str, Any]], named: list[str]
) -> None:
    subject.put(targets)

    with pytest.raises(ConfigError) as raised:
        subject.source.load()

    assert all(part in str(raised.value) for part in named), str(raised.value)


def test_a_bad_set_never_replaces_a_good_one(subject: Subject) -> None:
    subject.put([webhook("ops"), webhook("backup")])
    registry, clock = registry_of(subject)

    subject.put([webhook("ops"), webhook("ops")])
    clock.advance(CHECK_INTERVAL_S * 2)

    assert registry.reload_if_changed() is False
    assert names(registry) == ["backup", "ops"]
    assert registry.last_error is not None and "'ops' is defined twice" in registry.last_error


def test_a_registry_cannot_start_from_a_bad_set(subject: Subject) -> None:
    subject.put([webhook("ops", fallback=["nowhere"])])

    with pytest.raises(ConfigError, match="nowhere"):
        registry_of(subject)
