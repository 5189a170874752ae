"""Readiness of a worker node: it answers a control ping over the broker.

``python deploy/worker_probe.py [NODE]`` pings ``celery@<hostname>`` (a worker's default
node name) and exits 0 when it replies within 10 s. The Celery app is built from the same
settings as the worker's, so a Sentinel ``REDIS_URL`` works too, without importing
``workers.main``: a probe run every few seconds must leave no metrics files behind.
"""

import os
import socket
import sys

from celery import Celery

from publishing.adapters.broker import broker_config
from publishing.settings import Settings

TIMEOUT_S = 10.0


def main(argv: list[str]) -> int:
    node = argv[1] if len(argv) > 1 else f"celery@{socket.gethostname()}"
    app = Celery("publishing-probe", set_as_current=False)
    app.conf.update(broker_config(Settings.from_env(os.environ)))
    try:
        replies = app.control.ping(destination=[node], timeout=TIMEOUT_S)
    except Exception as exc:
        print(f"{node}: the broker did not answer ({type(exc).__name__})", file=sys.stderr)
        return 1
    finally:
        app.close()
    if not replies:
        print(f"{node}: no reply within {TIMEOUT_S:g} s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
