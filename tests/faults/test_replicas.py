"""Two API replicas behind one Redis, receiving the same Alertmanager payloads at the same
moment, as an HA Alertmanager pair sends them (docs/design.md (Job states)): both answer with the same job ids,
and each alert reaches each target exactly once within the de-duplication window."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.faults.rig import Rig, payloads
from tests.support.alert_api import GunicornApi
from tests.support.fault_target import FaultTarget

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


def test_two_replicas_given_the_same_payloads_deliver_each_alert_once_per_target(
    fresh_redis: str, dlq_database_url: str, tmp_path: Path, record_books
) -> None:
    targets = [FaultTarget("team-a"), FaultTarget("team-b")]
    rig = Rig(tmp_path, fresh_redis, dlq_database_url, targets)
    replicas = [GunicornApi(rig.env, tmp_path / f"gunicorn-{i}.log") for i in (1, 2)]
    try:
        rig.fleet.start("w1", concurrency=4)
        for replica in replicas:
            replica.wait_ready()
        senders = [rig.sender_for(replica.url) for replica in replicas]
        sent = payloads("HaPair", 120, per_payload=3, severities=("critical", "warning", "info"))
        together = threading.Barrier(2)
        answers: list[list[list[dict]]] = [[], []]

        def alertmanager(index: int) -> None:
            for payload in sent:
                together.wait(10)
                answers[index].append(senders[index].send(payload))

        pair = [threading.Thread(target=alertmanager, args=(i,)) for i in (0, 1)]
        rig.started = time.monotonic()
        for thread in pair:
            thread.start()
        for thread in pair:
            thread.join(120)

        books = rig.books(timeout_s=60)
        record_books("6 two API replicas, same payloads", books)
        assert len(answers[0]) == len(answers[1]) == len(sent)
        assert books.lost == 0, f"lost jobs: {rig.tracked(books.lost_ids)}"
        assert books.duplicates_other_id == 0, (
            f"{books.duplicates_other_id} alert/target pairs were delivered under two job ids: the "
            f"replicas answered with different ids and both enqueued ({books.submitted} jobs for 240)"
        )
        for first, second in zip(answers[0], answers[1], strict=True):
            assert [(j["id"], j["target"]) for j in first] == [(j["id"], j["target"]) for j in second]
            assert sorted(j["duplicate"] for j in first + second) == [False] * len(first) + [True] * len(
                first
            )
        assert books.submitted == 240
        assert books.duplicates == 0
        assert books.delivered == 240
        per_alert = Counter((h.target, h.fingerprint()) for t in targets for h in t.delivered())
        assert set(per_alert.values()) == {1}
    finally:
        for replica in replicas:
            replica.close()
        rig.close()
        for target in targets:
            target.stop()
