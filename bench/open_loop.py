"""An open-loop load generator: requests at a fixed offered rate, however slow the answers.

wrk is closed-loop: each connection sends its next request when the last one is answered,
so a slower server is simply sent less, and its queueing hides in a lower throughput. Here
request ``i`` is due at ``i / rate`` seconds whatever happened before; its latency is
counted from that moment (a request that waits for a free connection is late, and the
wait counts). Raw HTTP/1.1 on asyncio streams with keep-alive, so the generator's own CPU
per request stays small (it shares the server's cores in the benches).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

Request = tuple[int, str, str, str]  # weight, method, path, JSON body


@dataclass(frozen=True)
class OpenLoopResult:
    offered_rps: float
    duration_s: float
    sent: int
    answered: int
    errors: int  # non-2xx answers and failed requests
    late: int  # requests that found no free connection and waited for one
    p50_ms: float
    p90_ms: float
    p99_ms: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "offered_rps": round(self.offered_rps, 1),
            "achieved_rps": round(self.answered / self.duration_s, 1),
            "sent": self.sent,
            "errors": self.errors,
            "late": self.late,
            "p50_ms": round(self.p50_ms, 3),
            "p90_ms": round(self.p90_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
        }


def _encoded(host: str, mix: list[Request]) -> list[bytes]:
    """The mix as raw requests, each repeated by its weight (picked round-robin)."""
    out = []
    for weight, method, path, body in mix:
        data = body.encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        out += [head.encode() + data] * weight
    return out


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    """Send one request and read its answer whole; the status code."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines[1:] if line)
    }
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def _run(
    base_url: str, mix: list[Request], rate: float, duration_s: float, connections: int
) -> OpenLoopResult:
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    requests = _encoded(f"{host}:{port}", mix)
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await asyncio.open_connection(host, port))
    latencies: list[float] = []
    errors = late = 0

    async def one(due: float, request: bytes) -> None:
        nonlocal errors, late
        if idle.empty():
            late += 1
        reader, writer = await idle.get()
        try:
            status = await asyncio.wait_for(_exchange(reader, writer, request), 30)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            errors += 1
            writer.close()
            idle.put_nowait(await asyncio.open_connection(host, port))
            return
        latencies.append(time.perf_counter() - due)
        if not 200 <= status < 300:
            errors += 1
        idle.put_nowait((reader, writer))

    tasks: set[asyncio.Task[None]] = set()
    total = int(rate * duration_s)
    start = time.perf_counter()
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(due, requests[i % len(requests)]))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    while not idle.empty():
        idle.get_nowait()[1].close()
    ordered = sorted(latencies) or [0.0]

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return OpenLoopResult(
        rate, elapsed, total, len(latencies), errors, late, pct(0.5), pct(0.9), pct(0.99)
    )


def run(
    base_url: str, mix: list[Request], rate: float, duration_s: float, connections: int = 64
) -> OpenLoopResult:
    """Offer ``rate`` requests per second for ``duration_s`` (at most ``connections`` open)."""
    return asyncio.run(_run(base_url, mix, rate, duration_s, connections))
