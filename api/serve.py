"""``python -m api``: the API under gunicorn on a chosen address. Like every entry point it
refuses to start without API tokens unless ``PUBLISHING_INSECURE_NO_AUTH=1`` (docs/design.md
(API and access))."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from api.limits import GUNICORN_LIMITS, answer_gunicorn_errors_in_json
from publishing.adapters.logs import gunicorn_logconfig
from publishing.adapters.multiprocess import use_multiprocess_dir
from publishing.adapters.target_files import check_targets
from publishing.errors import ConfigError
from publishing.settings import Settings, warn_unknown_variables

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m api", description=__doc__)
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    from publishing.adapters.logs import configure_logging

    configure_logging()
    args = parse_args(argv)
    try:
        settings = Settings.from_env(os.environ)
        settings.check_api_access()
        check_targets(settings.targets_path)
    except ConfigError as exc:
        print(f"publishing API: {exc}", file=sys.stderr)
        return 2
    warn_unknown_variables(os.environ)

    # gunicorn's workers share their metrics through files (before prometheus_client loads).
    use_multiprocess_dir("publishing-api-metrics-")
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self) -> None:
            host = f"[{args.host}]" if ":" in args.host else args.host
            self.cfg.set("bind", f"{host}:{args.port}")
            self.cfg.set("workers", args.workers)
            for name, value in GUNICORN_LIMITS.items():
                self.cfg.set(name, value)
            answer_gunicorn_errors_in_json()
            # gunicorn's own lines as JSON, like the app's.
            self.cfg.set("logconfig_dict", gunicorn_logconfig())

        def load(self) -> Any:
            # Built in each worker after the fork: its Redis, database and broker connections
            # belong to that process.
            from api import create_app
            from api.services import services_of

            app = create_app(settings)
            configure_logging(lambda: services_of(app).registry.secrets())
            return app

    log.info("publishing API on http://%s:%d/ (OpenAPI at /api/v2/openapi.json)", args.host, args.port)
    Server().run()
    return 0
