"""The publishing domain: alerts, priority, targets, formatting, retries, the breaker and the DLQ.

Nothing here imports Celery, Flask or prometheus-client, reads the environment or the wall
clock on its own; every piece of I/O (an HTTP session, a Redis client, an engine, a clock)
is handed in.
"""
