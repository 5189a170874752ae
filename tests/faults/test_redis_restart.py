"""Redis restarted in the middle of a load (bench/README.md): a private redis-server with an
append-only file (``appendfsync always``) serves the API and the workers; it is stopped
(SIGTERM, or SIGKILL) and started again on the same port and directory. Submissions refused
meanwhile (503) are sent again by the client, as Alertmanager does; every job a 202 accepted
is delivered or in the DLQ afterwards.

Whether a restart lands inside a submission is chance; the last test puts the outage exactly
there: the API loses Redis (a proxy cuts the line) at the moment it enqueues a job."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from publishing.settings import Settings
from tests.faults.rig import FAST_RECONCILER, POOLS, Rig, Supervisor, am_alert, am_payload, payloads
from tests.support.alert_api import ApiThread, Background
from tests.support.fault_target import FaultTarget
from tests.support.fleet import wait_until
from tests.support.http_target import Reply
from tests.support.private_services import PrivateRedis
from tests.support.services import REDIS_HOST, REDIS_PORT
from tests.support.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

OUTAGE_S = 3.0


# A SIGKILL can land between the BRPOP that takes a message off its queue (already written
# to the AOF) and kombu's next command recording it as unacknowledged: the message is then in
# neither place and no worker holds it. The reconciler (docs/design.md (Reconciler)) sends
# such a job again from the message tracking keeps; here it looks every 2 s, after 3 s. The
# kill can also cut a pass short, whose lock the AOF keeps: the first pass after the restart
# takes it over (the lock names the server's run id), or nothing would look for a minute.
RECONCILE_FAST = {
    **FAST_RECONCILER,
    "PUBLISHING_INSECURE_NO_AUTH": "1",  # the rig's API thread runs without tokens
}


def lock_lives(rig: Rig) -> str:
    """What is left of the reconciler's lock and kombu's restore mutex: a pass or a sweep that
    Redis's death interrupted leaves its lock until it expires."""
    keys = (f"{rig.settings.key_prefix}:reconciler:lock", "unacked_mutex")
    for _ in range(50):
        try:
            return "lock time to live (ms) " + str({k: rig.redis.pttl(k) for k in keys})
        except redis.RedisError:
            time.sleep(0.1)
    return "locks unreadable"


@pytest.mark.parametrize("pool", list(POOLS))
@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
def test_a_redis_restart_mid_load_loses_no_accepted_job(
    kill: bool, pool: str, aof_redis: PrivateRedis, dlq_database_url: str, tmp_path: Path, record_books
) -> None:
    target = FaultTarget("hook", Reply(200, delay_s=0.05))
    rig = Rig(tmp_path, aof_redis.url, dlq_database_url, [target], **RECONCILE_FAST)
    try:
        rig.fleet.start("w1", **POOLS[pool])
        sender = rig.start_api()
        load = Background(
            sender,
            payloads("RedisGone", 300, severities=("critical", "warning", "info")),
            threads=3,
            pace_s=0.15,
        )
        wait_until(lambda: rig.delivered_count() >= 60, 60)
        aof_redis.stop(kill=kill)
        stopped = time.monotonic()
        time.sleep(OUTAGE_S)
        aof_redis.start()
        outage_s = time.monotonic() - stopped
        restarted_at = time.time()
        print(f"after the restart: {lock_lives(rig)}")
        # A fleet is supervised (systemd Restart=always, a Deployment): a worker that kombu's
        # transport takes down while Redis is gone is started again, as it would be.
        supervisor = Supervisor(rig, **POOLS[pool])
        load.join(120)

        books = rig.books(timeout_s=90)
        supervisor.stop()
        print(f"workers restarted by the supervisor: {supervisor.restarts}")
        record_books(f"2 Redis restart ({'SIGKILL' if kill else 'SIGTERM'}, {pool})", books)
        print(f"outage {outage_s:.1f} s; sender statuses {sender.statuses}, resends {sender.resends}")
        assert sender.resends > 0, "no submission met the outage: the test proved nothing"
        for job_id, entry in rig.tracked(rig.resent_ids()).items():
            submitted = float(entry.get("submitted_at") or "nan") - restarted_at
            print(
                f"sent again by the reconciler: {job_id}, submitted {submitted:+.1f} s from the restart, "
                f"now {entry.get('state')}, 202s: {entry['202s']}"
            )
        if books.lost:
            for job_id, lines in rig.whereabouts(books.lost_ids).items():
                print(f"lost job {job_id}:", *lines, sep="\n  ")
        assert books.lost == 0, f"lost jobs: {rig.tracked(books.lost_ids)}"
        assert books.duplicates_same_id
        assert books.submitted == 300
    finally:
        rig.close()
        target.stop()


BLIP_S = 10.0


def test_redis_lost_by_the_api_while_it_enqueues_a_job_loses_no_accepted_job(
    fresh_redis: str, dlq_database_url: str, tmp_path: Path, record_books
) -> None:
    target = FaultTarget("hook")
    rig = Rig(tmp_path, fresh_redis, dlq_database_url, [target])
    proxy = TcpProxy(REDIS_PORT, REDIS_HOST)
    database = fresh_redis.rsplit("/", 1)[1]
    # The API reaches Redis through the proxy; the workers directly.
    api = ApiThread(Settings.from_env({**rig.env, "REDIS_URL": f"redis://127.0.0.1:{proxy.port}/{database}"}))
    try:
        rig.fleet.start("w1", concurrency=2)
        sender = rig.sender_for(api.url)
        rig.started = time.monotonic()
        for payload in payloads("BeforeBlip", 10):
            sender.send(payload)
        # The next enqueue (kombu's LPUSH) is cut, and Redis stays unreachable for the API for
        # longer than its own retries; the client sends the payload again until it is accepted.
        proxy.cut_on(b"LPUSH", down_s=BLIP_S)
        blipped = sender.send(am_payload([am_alert(f"DuringBlip{i}", instance=f"b{i}") for i in range(5)]))
        for payload in payloads("AfterBlip", 10):
            sender.send(payload)

        books = rig.books(timeout_s=60)
        record_books("2 Redis lost by the API mid-enqueue", books)
        print(f"cuts {proxy.cuts}; sender statuses {sender.statuses}; the blipped payload's 202: {blipped}")
        assert proxy.cuts == 1 and sender.resends > 0
        assert books.submitted == 25
        assert books.lost == 0, f"lost jobs: {rig.tracked(books.lost_ids)}"
    finally:
        api.close()
        proxy.close()
        rig.close()
        target.stop()
