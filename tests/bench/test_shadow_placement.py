"""bench.shadow finds the Postgres server processes of the candidate's connections (it moves
them to the candidate's core): those of the given process trees, not the others'."""

from __future__ import annotations

import subprocess
import sys

import psycopg

from bench.shadow import _candidate_db_backends

HOLD = (
    "import psycopg, sys, time\n"
    "conn = psycopg.connect(sys.argv[1])\n"
    "print(conn.info.backend_pid, flush=True)\n"
    "sys.stdin.read()\n"
)


def test_the_backends_of_a_process_trees_connections_are_found(pg_url: str) -> None:
    with psycopg.connect(pg_url) as mine:  # another process's connection: not found
        child = subprocess.Popen(
            [sys.executable, "-c", HOLD, pg_url],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert child.stdout is not None
            theirs = int(child.stdout.readline())
            found = [p.pid for p in _candidate_db_backends(pg_url, [child.pid])]
            assert found == [theirs]
            assert mine.info.backend_pid not in found
        finally:
            child.communicate("")
