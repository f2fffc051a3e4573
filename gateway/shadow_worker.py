"""The shadow comparisons, in a worker process: off the gateway's event loop and its GIL.

Comparing two answers parses both JSON bodies and walks them with the operation's
comparator: ~0.3 ms of CPU for one embedding answer, more for batches and transcripts.
Done on the event loop, that time is taken from the primary's requests. The gateway
instead writes the two captured answers to this process (``python -m
gateway.shadow_worker``, started by the gateway, run at a lower CPU priority) over a
pipe and reads the differences back; at most ``GATEWAY_SHADOW_COMPARE_QUEUE``
comparisons wait there, beyond that the gateway drops the comparison and counts it.

A process rather than a thread: a thread would hold the gateway's GIL for the whole
comparison (the loop waits up to the 5 ms switch interval), and its CPU could not be
given a lower priority. Measured on one embedding answer (8 kB): inline 0.28 ms of the
gateway's CPU per comparison, a thread 0.31 ms, a process 0.13 ms (pickling and the
executor's threads; this pipe protocol needs less).

Frames both ways: 4-byte big-endian length, then a pickle (a trusted child of ours).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pickle
import struct
import sys
from collections import deque
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from shared_schemas.comparators import COMPARATORS, Comparator, FieldDiff

# Two pseudo-fields for differences that are not in a JSON body.
STATUS_FIELD = "$status"
BODY_FIELD = "$body"
_LENGTH = struct.Struct(">I")
# Nice value of the worker: under CPU contention it yields to the gateway's event loop.
WORKER_NICE = 10


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    media_type: str
    content: bytes


def compare_answers(
    comparator: Comparator, primary: Answer, candidate: Answer, request_body: bytes
) -> list[FieldDiff]:
    """Differences between two answers: the status, then the JSON body field by field."""
    if primary.status != candidate.status:
        return [
            FieldDiff(STATUS_FIELD, STATUS_FIELD, "exact", "different status",
                      primary.status, candidate.status)
        ]  # fmt: skip
    if primary.media_type != candidate.media_type:
        return [
            FieldDiff("$content-type", "$content-type", "exact", "different media type",
                      primary.media_type, candidate.media_type)
        ]  # fmt: skip
    if primary.status >= 400:
        return []  # both refused: the error shape is the contract suite's to check
    if primary.media_type == "application/json":
        try:
            a, b = json.loads(primary.content), json.loads(candidate.content)
        except ValueError as exc:
            return [FieldDiff(BODY_FIELD, BODY_FIELD, "exact", f"not JSON: {exc}")]
        try:
            request = json.loads(request_body) if request_body else None
        except ValueError:
            request = None
        return comparator.diff(a, b, request)
    if "$" in comparator.rules or primary.content == candidate.content:
        return []  # non-JSON answers: equal bytes, unless declared shape-only
    return [
        FieldDiff(BODY_FIELD, BODY_FIELD, "exact", f"{len(primary.content)} vs "
                  f"{len(candidate.content)} bytes differ")
    ]  # fmt: skip


class WorkerFull(Exception):
    """``GATEWAY_SHADOW_COMPARE_QUEUE`` comparisons are already waiting."""


@dataclass(slots=True)
class _Session:
    """One worker process and the comparisons it owes, in the order they were written."""

    process: asyncio.subprocess.Process
    waiting: deque[asyncio.Future[list[FieldDiff]]] = field(default_factory=deque)
    closed: bool = False  # its output ended: it answers nothing more

    @property
    def usable(self) -> bool:
        return not self.closed and self.process.returncode is None


class CompareWorker:
    """The gateway's side: one worker process, started on first use and after it died."""

    def __init__(self, queue_limit: int) -> None:
        self._limit = queue_limit
        self._session: _Session | None = None
        self._starting: asyncio.Lock | None = None
        self._pending: set[asyncio.Future[list[FieldDiff]]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def queued(self) -> int:
        """Comparisons handed over and not answered yet."""
        return len(self._pending)

    def compare(
        self, operation_id: str, primary: Answer, candidate: Answer, request_body: bytes
    ) -> asyncio.Future[list[FieldDiff]]:
        """A future of the differences; WorkerFull when the queue is full (never waits)."""
        if len(self._pending) >= self._limit:
            raise WorkerFull
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[FieldDiff]] = loop.create_future()
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        frame = pickle.dumps((operation_id, primary, candidate, request_body), protocol=5)
        task = loop.create_task(self._write(_LENGTH.pack(len(frame)) + frame, future))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return future

    async def _write(self, frame: bytes, future: asyncio.Future[list[FieldDiff]]) -> None:
        try:
            session = await self._running()
            if future.done():
                return
            if not session.usable:
                raise RuntimeError("comparison worker exited")
            stdin = session.process.stdin
            assert stdin is not None
            session.waiting.append(future)  # with the write: answers come back in this order
            stdin.write(frame)
            await stdin.drain()
        except Exception as exc:  # the worker could not start or went away: counted
            if not future.done():
                future.set_exception(exc)

    async def _running(self) -> _Session:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:  # FIFO: frames are written in the order handed over
            session = self._session
            if session is None or not session.usable:
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "gateway.shadow_worker",
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                )  # fmt: skip
                session = self._session = _Session(process)
                reader = asyncio.create_task(self._read(session), name="shadow-compare")
                self._tasks.add(reader)
                reader.add_done_callback(self._tasks.discard)
            return session

    async def _read(self, session: _Session) -> None:
        stdout = session.process.stdout
        assert stdout is not None
        try:
            while True:
                header = await stdout.readexactly(_LENGTH.size)
                payload = await stdout.readexactly(_LENGTH.unpack(header)[0])
                ok, value = pickle.loads(payload)
                future = session.waiting.popleft()
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(RuntimeError(value))
        except Exception as exc:  # end of output (the worker died) or a garbled frame
            session.closed = True
            error = RuntimeError(f"comparison worker exited: {exc!r}")
            while session.waiting:  # their answers died with the worker
                future = session.waiting.popleft()
                if not future.done():
                    future.set_exception(error)

    async def aclose(self) -> None:
        """Let the comparisons handed over finish (10 s at most), then stop the worker."""
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=10)
        session, self._session = self._session, None
        if session is not None:
            process = session.process
            if process.stdin is not None:
                process.stdin.close()  # the worker ends at the end of its input
            try:
                await asyncio.wait_for(process.wait(), timeout=5)
            except TimeoutError:
                process.kill()
                await process.wait()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for future in list(self._pending):
            if not future.done():
                future.set_exception(RuntimeError("comparison worker stopped"))


def serve(source: BinaryIO, sink: BinaryIO) -> None:
    """The worker's loop: read a frame, compare, write the answer; end at end of input."""
    while header := source.read(_LENGTH.size):
        if len(header) < _LENGTH.size:
            return
        operation_id, primary, candidate, body = pickle.loads(
            source.read(_LENGTH.unpack(header)[0])
        )
        try:
            result: tuple[bool, Any] = (
                True,
                compare_answers(COMPARATORS[operation_id], primary, candidate, body),
            )
        except Exception as exc:  # a bug in a comparator: that comparison's error
            result = (False, f"{type(exc).__name__}: {exc}"[:255])
        frame = pickle.dumps(result, protocol=5)
        sink.write(_LENGTH.pack(len(frame)) + frame)
        sink.flush()


def main() -> int:
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICE)
    with contextlib.suppress(BrokenPipeError, KeyboardInterrupt):
        serve(sys.stdin.buffer, sys.stdout.buffer)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
