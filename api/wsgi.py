"""Entry point for ``gunicorn 'api.wsgi:app'`` and ``flask --app api.wsgi run``: the app from
the environment (a bad setting, or no API tokens without ``PUBLISHING_INSECURE_NO_AUTH=1``,
stops it here with one line naming the variables), logging JSON lines with every target secret
redacted."""

import sys

from publishing.adapters.multiprocess import use_multiprocess_dir

# gunicorn's workers share their counters through files; set before prometheus_client loads.
use_multiprocess_dir("publishing-api-metrics-")

import os  # noqa: E402

from api import create_app  # noqa: E402
from api.services import services_of  # noqa: E402
from publishing.adapters.heap import freeze_startup_heap  # noqa: E402
from publishing.adapters.logs import configure_logging  # noqa: E402
from publishing.adapters.target_files import check_targets  # noqa: E402
from publishing.errors import ConfigError  # noqa: E402
from publishing.settings import Settings, warn_unknown_variables  # noqa: E402

# Logging first, so that what create_app warns about is a log line like any other.
configure_logging()
try:
    _settings = Settings.from_env(os.environ)
    warn_unknown_variables(os.environ)
    # A bad targets file stops the API here, not at the first request that reads it.
    check_targets(_settings.targets_path)
    app = create_app(_settings)
except ConfigError as exc:
    print(f"publishing API: {exc}", file=sys.stderr, flush=True)
    # 4 is gunicorn's "app failed to load": the arbiter halts instead of booting the worker again.
    sys.exit(4)
configure_logging(lambda: services_of(app).registry.secrets())
# Requests do not stop for a full collection's walk over what the app built to start.
freeze_startup_heap()
