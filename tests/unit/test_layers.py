"""The import contracts cover the whole domain: a new module of publishing/ outside adapters/
must be listed in the purity contract, or it could import a driver unnoticed."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _contract(name: str) -> dict[str, object]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    [contract] = [c for c in config["tool"]["importlinter"]["contracts"] if c["name"] == name]
    return contract


def test_every_domain_module_is_held_to_the_purity_contract() -> None:
    contract = _contract("The domain imports no framework, driver or adapter")
    listed = set(contract["source_modules"])  # type: ignore[arg-type]
    domain = {
        f"publishing.{p.stem if p.is_file() else p.name}"
        for p in (ROOT / "publishing").iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())
    } - {"publishing.adapters"}
    assert domain - listed == set(), "domain modules missing from the purity contract"
    assert listed - domain == set(), "the purity contract names modules that do not exist"


def test_the_domain_may_import_no_driver() -> None:
    forbidden = set(_contract("The domain imports no framework, driver or adapter")["forbidden_modules"])  # type: ignore[arg-type]
    assert {
        "sqlalchemy",
        "redis",
        "requests",
        "yaml",
        "celery",
        "kombu",
        "flask",
        "prometheus_client",
    } <= forbidden
    assert {"publishing.adapters", "workers", "api"} <= forbidden
