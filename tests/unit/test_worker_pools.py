"""The delivery pools ship on gevent (docs/operations.md (Worker pools)): every way the
product is run starts its workers with ``-P gevent`` and a concurrency for I/O, and the
image installs gevent."""

from __future__ import annotations

import ast
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _k8s_command(name: str) -> list[str]:
    for doc in yaml.safe_load_all((DEPLOY / "kubernetes" / name).read_text()):
        if doc and doc.get("kind") == "Deployment":
            (container,) = doc["spec"]["template"]["spec"]["containers"]
            return shlex.split(container["command"][-1].partition(" && exec ")[2])
    raise AssertionError(f"no Deployment in {name}")


def _compose_command(service: str) -> list[str]:
    return list(yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"][service]["command"])


def _systemd_command(unit: str) -> list[str]:
    text = (DEPLOY / "systemd" / unit).read_text()
    (line,) = re.findall(r"^ExecStart=(.+)$", text, re.MULTILINE)
    return shlex.split(line)


def _run_py_command(name: str) -> list[str]:
    """The worker commands ``make run`` starts (deploy/local/run.py's process table)."""
    tree = ast.parse((DEPLOY / "local" / "run.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict) and any(
            isinstance(k, ast.Constant) and k.value == name for k in node.keys
        ):
            value = node.values[[getattr(k, "value", None) for k in node.keys].index(name)]
            assert isinstance(value, ast.List)
            return [word for e in value.elts for word in _words(tree, e)]
    raise AssertionError(f"run.py starts no {name!r}")


def _words(tree: ast.Module, element: ast.expr) -> list[str]:
    """A list element's constant words; ``*name`` expands the list assigned to ``name``."""
    if isinstance(element, ast.Constant):
        return [str(element.value)]
    if isinstance(element, ast.Starred) and isinstance(element.value, ast.Name):
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == element.value.id for t in node.targets
            ):
                assert isinstance(node.value, ast.List)
                return [word for e in node.value.elts for word in _words(tree, e)]
    return []


COMMANDS: dict[str, Any] = {
    "kubernetes worker": lambda: _k8s_command("worker.yaml"),
    "kubernetes worker-high": lambda: _k8s_command("worker-high.yaml"),
    "compose worker": lambda: _compose_command("worker"),
    "compose worker-high": lambda: _compose_command("worker-high"),
    "systemd worker": lambda: _systemd_command("publishing-worker.service"),
    "systemd worker-high": lambda: _systemd_command("publishing-worker-high.service"),
    "make run worker": lambda: _run_py_command("worker"),
    "make run worker-high": lambda: _run_py_command("worker-high"),
}


@pytest.mark.parametrize("where", sorted(COMMANDS))
def test_every_delivery_pool_runs_on_gevent_with_many_slots(where: str) -> None:
    command = COMMANDS[where]()
    assert "worker" in command and "workers.main" in command, command
    assert command[command.index("-P") + 1] == "gevent", command
    assert int(command[command.index("-c") + 1]) >= 20, command


def test_gevent_is_a_runtime_dependency_pinned_in_the_image_lock() -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(re.match(r"gevent\b", d) for d in dependencies)
    lock = (DEPLOY / "requirements.lock").read_text()
    for package in ("gevent", "greenlet", "zope-event", "zope-interface"):
        block = re.search(rf"^{package}==\S+.*?(?=^\S|\Z)", lock, re.MULTILINE | re.DOTALL)
        assert block is not None, f"{package} is not pinned in deploy/requirements.lock"
        assert "--hash=sha256:" in block.group(0)
