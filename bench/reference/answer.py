"""The answer the bare references send for a cached embeddings request.

``bench.framework`` writes the backend's own cached answer to a file and names it in
``BENCH_REFERENCE_ANSWER``, so the reference sends as many bytes as the backend does; a
reference started without it sends a placeholder of the usual size (384 floats).
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

ANSWER_FILE_ENV = "BENCH_REFERENCE_ANSWER"
EMBED_PATH = "/api/v1/embeddings/generate"


@cache  # read on the first request, not at import
def cached_answer() -> bytes:
    """The bytes to answer ``POST EMBED_PATH`` with."""
    path = os.environ.get(ANSWER_FILE_ENV)
    if path:
        return Path(path).read_bytes()
    return json.dumps({"embedding": [0.0123456789] * 384, "dimensions": 384}).encode()
