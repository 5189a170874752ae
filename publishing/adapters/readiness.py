"""Readiness: Redis answers PING and the dead-letter database answers ``SELECT 1``."""

from __future__ import annotations

import logging

import redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)


class DependencyReadiness:
    def __init__(self, client: redis.Redis, engine: Engine) -> None:
        self._client = client
        self._engine = engine

    def check(self) -> dict[str, str]:
        return {"redis": self._redis(), "database": self._database()}

    def _redis(self) -> str:
        try:
            self._client.ping()
        except redis.RedisError as exc:
            log.warning("readiness: Redis is down (%s)", type(exc).__name__)
            return f"down: {type(exc).__name__}"
        return "ok"

    def _database(self) -> str:
        try:
            with self._engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            log.warning("readiness: the database is down (%s)", type(exc).__name__)
            return f"down: {type(exc).__name__}"
        return "ok"
