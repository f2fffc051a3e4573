"""nginx as a reference reverse proxy, measured beside the gateway in the same run.

What a proxy costs here depends on the machine (process wake-ups on 2 virtual cores are
not cheap): a C proxy on the same points tells how much of the gateway's added latency
is the hop itself and how much is ours. Optional: without nginx installed
(``apt-get install nginx-light``) the benchmark says so and skips it.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from devinfra.ports import free_port
from devinfra.processes import RunningService, stop_process, wait_until_ready

# One worker, keep-alive to the backend, no logging, bodies passed on unbuffered: the
# closest nginx gets to what the gateway does.
CONFIG = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  upstream backend {{ server {upstream}; keepalive 256; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    client_max_body_size 0;
    location / {{
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
    }}
  }}
}}
"""


@contextlib.contextmanager
def nginx_proxy(upstream_url: str, tmp: Path) -> Iterator[RunningService | None]:
    """Yield an nginx proxying to ``upstream_url`` (a process of its own), or None."""
    # Debian puts it in /usr/sbin, which a non-root PATH may lack
    binary = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if binary is None:
        yield None
        return
    port = free_port()
    folder = tmp / "nginx"
    folder.mkdir(exist_ok=True)
    upstream = upstream_url.removeprefix("http://").rstrip("/")
    config = folder / "nginx.conf"
    config.write_text(CONFIG.format(tmp=folder, upstream=upstream, port=port))
    process = subprocess.Popen(
        [binary, "-p", str(folder), "-c", str(config), "-e", str(folder / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    service = RunningService(f"http://127.0.0.1:{port}", port, process, folder / "error.log")
    try:
        wait_until_ready(service.base_url, process, 20, path="/live")
        yield service
    finally:
        stop_process(process)
