"""Optional API-key auth: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def key_id(key: str) -> str:
    """A short, non-reversible name for a key: what logs and rate-limit counters see."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class ApiKeys:
    """The accepted keys, held only as SHA-256 digests (keys are never logged or stored)."""

    def __init__(self, keys: Iterable[str]) -> None:
        # Comparing digests in a set: the lookup's timing depends on the hash of the
        # presented key, which tells an attacker nothing about the real keys.
        self._ids = {hashlib.sha256(key.encode()).digest(): key_id(key) for key in keys if key}

    @property
    def enabled(self) -> bool:
        return bool(self._ids)

    def identify(self, credential: str | None) -> str | None:
        """The key id of a valid credential, else None."""
        if not credential:
            return None
        return self._ids.get(hashlib.sha256(credential.encode()).digest())
