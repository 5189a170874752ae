"""Entry point for ``gunicorn 'api.wsgi:app'`` and ``flask --app api.wsgi run``: the app from
the environment (a bad setting fails here, naming the variable), logging JSON lines with
every target secret redacted."""

from publishing.adapters.multiprocess import use_multiprocess_dir

# gunicorn's workers share their counters through files; set before prometheus_client loads.
use_multiprocess_dir("publishing-api-metrics-")

from api import create_app  # noqa: E402
from api.services import services_of  # noqa: E402
from publishing.adapters.logs import configure_logging  # noqa: E402

app = create_app()
configure_logging(lambda: services_of(app).registry.secrets())
