"""The FastAPI backend: async, asyncpg for the shared tables, the engine in a thread pool."""
