"""``python -m api``: the API under gunicorn on a chosen address, refusing to listen beyond
loopback when no API tokens are configured (docs/design.md (API and access))."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from publishing.adapters.multiprocess import use_multiprocess_dir
from publishing.errors import ConfigError
from publishing.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def is_loopback_host(host: str) -> bool:
    """Only an address that cannot be reached from another machine: ``localhost`` or a
    loopback IP. An empty host, ``0.0.0.0`` and ``::`` listen everywhere."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, settings: Settings) -> None:
    """Raise ``ConfigError`` when the API would serve other machines without any token."""
    if settings.api_tokens or is_loopback_host(host):
        return
    raise ConfigError(
        f"refusing to listen on {host!r}: PUBLISHING_API_TOKENS is empty, and without tokens the "
        "API serves only loopback; set PUBLISHING_API_TOKENS (ROLE:TOKEN,...) or listen on 127.0.0.1"
    )


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
        check_bind(args.host, settings)
    except ConfigError as exc:
        print(f"publishing API: {exc}", file=sys.stderr)
        return 2

    # gunicorn's workers share their metrics through files (before prometheus_client loads).
    use_multiprocess_dir("publishing-api-metrics-")
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self) -> None:
            host = f"[{args.host}]" if ":" in args.host else args.host
            self.cfg.set("bind", f"{host}:{args.port}")
            self.cfg.set("workers", args.workers)

        def load(self) -> Any:
            # Built in each worker after the fork: its Redis, database and broker connections
            # belong to that process.
            from api import create_app
            from api.services import services_of

            app = create_app(settings)
            configure_logging(lambda: services_of(app).registry.secrets())
            return app

    print(f"publishing API on http://{args.host}:{args.port}/ (OpenAPI at /api/v2/openapi.json)")
    Server().run()
    return 0
