"""The maps a newcomer reads name modules that exist.

ARCHITECTURE.md, README.md and gateway/README.md name files in backticks, often relative to
the layer being described (``api/validation.py`` inside ``backends/core``). Each such name must
be the tail of a file tracked in the repository, so a rename that forgets the docs fails here.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ["ARCHITECTURE.md", "gateway/README.md", "README.md"]
# `name.py`, `dir/name.py`, `dir/name.md`, optionally followed by `.Symbol` or ` (...)`
_PATH = re.compile(r"`([A-Za-z0-9_./-]+\.(?:py|md|json|toml|yaml|yml))`")


def _tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    return out.splitlines()


def _named_paths(doc: str) -> list[str]:
    names = _PATH.findall((ROOT / doc).read_text(encoding="utf-8"))
    return sorted({name for name in names if not name.startswith("/")})  # "/x.json": a URL


def test_the_pattern_sees_paths() -> None:
    assert "backends/core/api/flow.py" in _named_paths("ARCHITECTURE.md")


@pytest.mark.parametrize("doc", DOCS)
def test_every_named_file_exists(doc: str) -> None:
    tracked = _tracked_files()
    missing = [
        name
        for name in _named_paths(doc)
        if not any(f == name or f.endswith("/" + name) for f in tracked)
    ]
    assert not missing, f"{doc} names files that are not in the repository: {missing}"
