"""Load the OpenAPI document from a file or URL, with the facts the report records about it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

DEFAULT_SPEC = Path(__file__).with_name("openapi.json")


@dataclass(frozen=True, slots=True)
class SpecSource:
    """A loaded OpenAPI document and where it came from."""

    location: str
    raw: dict[str, Any]
    sha256: str

    @property
    def openapi_version(self) -> str:
        return str(self.raw.get("openapi") or self.raw.get("swagger") or "unknown")

    @property
    def api_version(self) -> str:
        info = self.raw.get("info")
        return str(info.get("version", "unknown")) if isinstance(info, dict) else "unknown"

    @property
    def title(self) -> str:
        info = self.raw.get("info")
        return str(info.get("title", "")) if isinstance(info, dict) else ""


class SpecError(Exception):
    """The spec could not be read or is not an OpenAPI document."""


def load_spec(location: str | None, *, timeout: float = 30.0) -> SpecSource:
    """Read `location` (path or http(s) URL; default: the committed contract)."""
    target = location or str(DEFAULT_SPEC)
    if target.startswith(("http://", "https://")):
        try:
            response = httpx.get(target, timeout=timeout, follow_redirects=True)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise SpecError(f"cannot fetch spec from {target}: {exc}") from exc
        content = response.content
    else:
        path = Path(target)
        if not path.is_file():
            raise SpecError(f"spec file not found: {path}")
        content = path.read_bytes()
    try:
        raw = json.loads(content)
    except ValueError as exc:
        raw = _load_yaml(content, target, exc)
    if not isinstance(raw, dict) or not ("openapi" in raw or "swagger" in raw):
        raise SpecError(f"{target} is not an OpenAPI document")
    return SpecSource(location=target, raw=raw, sha256=hashlib.sha256(content).hexdigest())


def _load_yaml(content: bytes, target: str, original: ValueError) -> Any:
    """Fall back to YAML (schemathesis depends on PyYAML) for specs that are not JSON."""
    import yaml

    try:
        return yaml.safe_load(content)
    except yaml.YAMLError:
        raise SpecError(f"{target} is neither JSON nor YAML: {original}") from original
