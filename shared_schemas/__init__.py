"""The ML API contract: pydantic v2 models for every request, response and the error shape.

``contract/generate.py`` turns these models and the ``operations.OPERATIONS`` registry into
``contract/openapi.json``; backends validate and serialise with the same models.
"""

API_VERSION = "1.0.0"
"""Version of the HTTP contract (``info.version`` in the OpenAPI document)."""

API_TITLE = "ML API"
