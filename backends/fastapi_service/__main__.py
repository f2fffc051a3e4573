"""`python -m backends.fastapi_service`: one worker, on granian (default) or uvicorn."""

from __future__ import annotations

from typing import TYPE_CHECKING

from backends.fastapi_service.settings import FastAPIServiceSettings

if TYPE_CHECKING:
    from starlette.types import ASGIApp

APP_FACTORY = "backends.fastapi_service.app:create_served_app"


def serve_uvicorn(settings: FastAPIServiceSettings, app: ASGIApp | None = None) -> None:
    """Serve ``app`` (the backend when None) with uvicorn, one worker."""
    import uvicorn

    if app is None:
        from backends.fastapi_service.app import create_app

        app = create_app(settings, tune_gc=True)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        timeout_graceful_shutdown=20,
        backlog=4096,
    )


def serve_granian(settings: FastAPIServiceSettings, factory: str = APP_FACTORY) -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops

    # granian imports the factory in its worker process; the settings come from the same
    # environment there, so both servers run the same typed configuration.
    Granian(
        factory,
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=1,
        loop=Loops.uvloop,
        backlog=4096,
        log_access=False,
        websockets=False,
        # A worker that dies (OOM kill, a crash in native code) is started again; without
        # this granian shut down and took the service with it. The interval is the pause
        # before the respawn (default 3.5 s), not a limit on how often.
        respawn_failed_workers=True,
        respawn_interval=0.5,
    ).serve()


def main() -> None:
    settings = FastAPIServiceSettings()
    if settings.server == "granian":
        serve_granian(settings)
    else:
        serve_uvicorn(settings)


if __name__ == "__main__":
    main()
