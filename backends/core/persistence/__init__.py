"""Framework-free pieces of request logging, usage analytics and the response cache.

Both backends use these so a row written by one is indistinguishable from a row written
by the other; only the database driver differs (asyncpg vs the Django ORM/cursor).
"""
