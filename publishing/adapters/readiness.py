"""Readiness: Redis answers PING and the dead-letter database answers ``SELECT 1``."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, eq=False)
class DependencyReadiness:
    client: redis.Redis
    engine: Engine

    def check(self) -> dict[str, str]:
        return {"redis": self._redis(), "database": self._database()}

    def _redis(self) -> str:
        try:
            self.client.ping()
        except redis.RedisError as exc:
            log.warning("readiness: Redis is down (%s)", type(exc).__name__)
            return f"down: {type(exc).__name__}"
        return "ok"

    def _database(self) -> str:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            log.warning("readiness: the database is down (%s)", type(exc).__name__)
            return f"down: {type(exc).__name__}"
        return "ok"
