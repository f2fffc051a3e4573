"""`python -m gateway`: serve with uvicorn (uvloop + httptools), one worker.

`python -m gateway keys|budget|usage ...` manages API keys and budgets (gateway.cli).
`python -m gateway switch-check --to <backend>`: the switch verdict (gateway/switch_check.py).
"""

from __future__ import annotations

import logging
import sys

import uvicorn
from pydantic import ValidationError

from gateway.app import GatewayApp, create_app
from gateway.cli import COMMANDS
from gateway.cli import main as cli_main
from gateway.http_server import ErrorShapeHttpToolsProtocol
from gateway.settings import GatewayConfigError, GatewaySettings
from shared_schemas.collector import tune_collector

LISTEN_BACKLOG = 4096


def server_config(app: GatewayApp, settings: GatewaySettings) -> uvicorn.Config:
    """uvicorn for the gateway: one worker, httptools, and uvloop with greedy accepts."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="gateway.http_server:new_event_loop",  # uvloop, accepting every waiting client
        http=ErrorShapeHttpToolsProtocol,  # httptools, with 400s in the error shape
        access_log=False,
        # The gateway is the edge: X-Forwarded-For from clients must not replace the peer
        # address (rate limits per IP would be trivially evaded).
        proxy_headers=False,
        timeout_graceful_shutdown=20,
        # Connections the kernel holds before they are accepted (capped by
        # net.core.somaxconn): a burst of clients connecting at once, e.g. 1,000.
        backlog=LISTEN_BACKLOG,
    )


def main() -> int:
    if sys.argv[1:2] and sys.argv[1] in COMMANDS:
        return cli_main(sys.argv[1:])
    if sys.argv[1:2] == ["switch-check"]:
        from gateway.switch_check import main as switch_check

        return switch_check(sys.argv[2:])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = GatewaySettings()
        app = create_app(settings)
    except (GatewayConfigError, ValidationError) as exc:
        print(f"gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    tune_collector()  # the objects made at start-up are frozen out of every collection
    config = server_config(app, settings)
    server = uvicorn.Server(config)
    # Bound here and handed over so that the gateway's own loop serves it: an
    # AcceptingServer, which takes every waiting connection at once (http_server.py).
    server.run(sockets=[config.bind_socket()])
    if not server.started:
        return 3  # uvicorn's start-up failure code (the lifespan failed; it logged why)
    return 0


if __name__ == "__main__":
    sys.exit(main())
