"""Celery adapters: the app, the publish task, and the Redis-backed breaker and tracking."""
