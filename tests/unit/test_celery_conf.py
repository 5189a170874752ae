"""Nothing secret goes into Celery's configuration: ``celery inspect conf``/``report`` and
Flower's worker page show it, and Celery hides only keys that look secret."""

from __future__ import annotations

from celery.app.utils import filter_hidden_settings

from publishing.settings import Settings
from workers.celery_app import create_celery_app, settings_of

PASSWORD = "s3cr3t-redis-pw"


def test_the_celery_conf_carries_no_connection_password() -> None:
    settings = Settings.from_env(
        {
            "REDIS_URL": f"redis://:{PASSWORD}@127.0.0.1:6379/0",
            "DATABASE_URL": f"postgresql://app:{PASSWORD}@127.0.0.1/alerts",
        }
    )
    app = create_celery_app(settings)
    # What `celery inspect conf` answers (conf.table, censored) and `report` prints (humanize).
    assert PASSWORD not in repr(app.conf.table(with_defaults=False))
    assert PASSWORD not in app.conf.humanize(with_defaults=False)
    assert PASSWORD not in repr(filter_hidden_settings(dict(app.conf.changes)))
    assert settings_of(app) is settings
