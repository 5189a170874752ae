"""Adapters: the domain's ports on Redis, PostgreSQL, HTTP, target files and the broker, and
the composition root that wires them. See docs/design.md for the layers."""
