"""Bare framework servers the backends are measured against, on the same server settings.

``python -m bench.reference.fastapi_app`` and ``python -m bench.reference.drf_app`` serve
/health, /live and /ready the way a plain FastAPI route and a plain DRF APIView would,
with nothing of ours in the path, on the same granian or gunicorn options our backends use.
"""
