"""Entry point for ``gunicorn 'api.wsgi:app'`` and ``flask --app api.wsgi run``: the app from
the environment (a bad setting fails here, naming the variable), logging JSON lines with
every target secret redacted."""

import os
import sys
import tempfile

# gunicorn's workers share their counters through files here; set before prometheus_client
# is first imported (see workers.main).
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="publishing-api-metrics-"))
if "prometheus_client.values" in sys.modules:
    values = sys.modules["prometheus_client.values"]
    values.ValueClass = values.get_value_class()  # type: ignore[attr-defined]

from api import create_app
from api.services import services_of
from publishing.adapters.logs import configure_logging

app = create_app()
configure_logging(lambda: services_of(app).registry.secrets())
