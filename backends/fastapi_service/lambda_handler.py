"""AWS Lambda entry point for the FastAPI backend: API Gateway and ALB events through Mangum.

Handler: ``backends.fastapi_service.lambda_handler.handler`` (compose/serverless/template.yaml).

Mangum's own lifespan support runs startup and shutdown around every invocation, which here
would build the engine, the pools and the models again for each request. So Mangum runs
with ``lifespan="off"`` and this module enters the app's lifespan once, on the first event
(the cold start), on an event loop it keeps for the life of the execution environment.

Lambda freezes the environment between invocations, so background work gets no time then:
after each response the cache writes are awaited and the request log is flushed, so a
frozen environment that is later discarded loses no rows. That adds one database
transaction to each invocation that logs (nothing when DATABASE_URL is empty).

Postgres and Redis are optional here: with DATABASE_URL empty there is no request log,
no Postgres cache and no shared calibration history, and the vector store must be Qdrant
(QDRANT_URL; QDRANT_PATH is per execution environment, so only for trials).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from mangum import Mangum

if TYPE_CHECKING:
    from backends.fastapi_service.resources import Resources


logger = logging.getLogger(__name__)


def _default_app() -> FastAPI:
    from backends.fastapi_service.app import create_app

    return create_app()


class LambdaHandler:
    """Callable Lambda handler; builds the app on the first event and keeps it warm."""

    def __init__(self, app_factory: Callable[[], FastAPI] = _default_app) -> None:
        self._app_factory = app_factory
        self._app: FastAPI | None = None
        self._adapter: Mangum | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lifespan: AbstractAsyncContextManager[Any] | None = None

    def start(self) -> None:
        """Build the app and run its startup (models load lazily, on first use)."""
        if self._adapter is not None:
            return
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)  # Mangum runs every invocation on the current loop
        try:
            app = self._app_factory()
            lifespan = app.router.lifespan_context(app)
            loop.run_until_complete(lifespan.__aenter__())
        except BaseException:  # e.g. an unreachable database: the next event tries again
            loop.close()
            raise
        self._app, self._loop, self._lifespan = app, loop, lifespan
        self._adapter = Mangum(app, lifespan="off")

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.start()
        assert self._adapter is not None and self._loop is not None
        asyncio.set_event_loop(self._loop)
        response = self._adapter(event, context)
        self._loop.run_until_complete(self._settle())
        return response

    async def _settle(self) -> None:
        """Finish the work a request left in the background before Lambda freezes us."""
        resources: Resources | None = getattr(self._app_state(), "resources", None)
        if resources is None:
            return
        try:
            if resources.writer is not None:
                await resources.writer.flush()
        except Exception:  # the response is already made; the writer keeps request rows to retry
            logger.exception("request-log flush after the invocation failed; will retry")

    def _app_state(self) -> Any:
        return self._app.state if self._app is not None else None

    def close(self) -> None:
        """Run the app's shutdown (pools closed, request log drained) and close the loop."""
        if self._loop is None or self._lifespan is None:
            return
        try:
            self._loop.run_until_complete(self._lifespan.__aexit__(None, None, None))
        finally:
            self._loop.close()
            self._app = self._adapter = self._loop = self._lifespan = None


handler = LambdaHandler()
