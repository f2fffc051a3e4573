"""`python -m backends.fastapi_service`: serve with uvicorn (uvloop + httptools), one worker."""

from __future__ import annotations

import uvicorn

from backends.fastapi_service.app import create_app
from backends.fastapi_service.settings import FastAPIServiceSettings


def main() -> None:
    settings = FastAPIServiceSettings()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        timeout_graceful_shutdown=20,
    )


if __name__ == "__main__":
    main()
