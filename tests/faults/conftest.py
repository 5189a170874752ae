"""Fixtures of the fault tier: the private Redis database and DLQ database of the integration
tier, and the ledger that prints every scenario's books at the end of the run (and writes them
to ``fault-books.json`` under pytest's base temporary directory)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import dlq_database_url, fresh_redis, migrated_postgres_url
from tests.support.books import Books

__all__ = ["dlq_database_url", "fresh_redis", "migrated_postgres_url"]

_LEDGER: list[dict[str, Any]] = []
_LEDGER_FILE: list[Path] = []


@pytest.fixture(scope="session")
def ledger_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.getbasetemp() / "fault-books.json"
    _LEDGER_FILE[:] = [path]
    return path


@pytest.fixture
def record_books(
    request: pytest.FixtureRequest, ledger_file: Path, tmp_path: Path
) -> Iterator[Callable[[str, Books], None]]:
    """``record_books(scenario, books)``: print the books, keep them for the summary, and write
    them as JSON (per test under its tmp path, and for the session in ``fault-books.json``)."""

    def record(scenario: str, books: Books) -> None:
        entry = {"scenario": scenario, "test": request.node.nodeid, **books.as_dict()}
        print(f"\nBOOKS {scenario}: {books.line()}")
        _LEDGER.append(entry)
        (tmp_path / "books.json").write_text(json.dumps(entry, indent=2))
        ledger_file.write_text(json.dumps(_LEDGER, indent=2))

    yield record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _LEDGER:
        return
    write = terminalreporter.write_line
    terminalreporter.section("fault tier: the books")
    write(f"{'scenario':<34} {'submitted':>9} {'delivered':>9} {'in_dlq':>6} {'lost':>4} {'dups':>4} "
          f"{'same id':>7} {'seconds':>7}")  # fmt: skip
    for e in _LEDGER:
        write(
            f"{e['scenario']:<34} {e['submitted']:>9} {e['delivered']:>9} {e['in_dlq']:>6} {e['lost']:>4} "
            f"{e['duplicates']:>4} {'yes' if e['duplicates_same_id'] else 'NO':>7} {e['seconds']:>7}"
        )
    if _LEDGER_FILE:
        write(f"(also in {_LEDGER_FILE[0]})")
