"""wrk's output parsed: the @@bench JSON line from profile.lua and the plain summary."""

from __future__ import annotations

import pytest

from bench.wrk import WrkError, WrkOptions, command, parse_output

# Captured from `wrk -t2 -c64 -d3s --latency -s bench/lua/profile.lua` on this machine.
WITH_LUA = """\
Running 3s test @ http://127.0.0.1:51511
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   634.94ms  679.99ms   1.99s    78.64%
    Req/Sec    28.33     27.65   131.00     86.96%
  Latency Distribution
     50%  294.76ms
     75%    1.11s
     90%    1.84s
     99%    1.97s
  142 requests in 3.11s, 577.58KB read
  Socket errors: connect 0, read 0, write 0, timeout 39
  Non-2xx or 3xx responses: 5
Requests/sec:     45.69
Transfer/sec:    185.85KB
@@bench {"requests":142,"duration_us":3107777,"bytes":591440,"connect":0,"read":0,"write":0,\
"status":5,"timeout":39,"min_us":28080,"max_us":1986703,"mean_us":634943.6,"stdev_us":679993.9,\
"p50_us":294758,"p75_us":1111087,"p90_us":1835447,"p95_us":1928906,"p99_us":1972543,\
"p99.9_us":1986703}
"""

PLAIN = """\
Running 5s test @ http://127.0.0.1:18001/health
  2 threads and 1000 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    88.81ms  212.40ms   2.93s    95.10%
    Req/Sec     5.73k     1.01k    8.12k    70.00%
  Latency Distribution
     50%   44.82ms
     75%   60.01ms
     90%  101.31ms
     99%    2.93s
  57023 requests in 5.02s, 11.20MB read
  Socket errors: connect 0, read 12, write 0, timeout 3
Requests/sec:  11365.95
Transfer/sec:      2.23MB
"""


def test_lua_line_gives_exact_percentiles_and_all_errors() -> None:
    result = parse_output(WITH_LUA)
    assert result.requests == 142
    assert result.rps == pytest.approx(45.69)  # wrk's own figure wins over requests/duration
    assert result.p50_ms == pytest.approx(294.758)
    assert result.p95_ms == pytest.approx(1928.906)
    assert result.p99_ms == pytest.approx(1972.543)
    assert result.max_ms == pytest.approx(1986.703)
    assert (result.non_2xx, result.socket_errors, result.errors) == (5, 39, 44)


def test_plain_summary_is_a_fallback_without_p95() -> None:
    result = parse_output(PLAIN)
    assert result.requests == 57023
    assert result.duration_s == pytest.approx(5.02)
    assert result.rps == pytest.approx(11365.95)
    assert result.p50_ms == pytest.approx(44.82)
    assert result.p99_ms == pytest.approx(2930.0)
    assert result.max_ms == pytest.approx(2930.0)
    assert result.p95_ms is None
    assert (result.non_2xx, result.socket_errors) == (0, 15)


def test_units_in_microseconds_and_missing_lines() -> None:
    text = PLAIN.replace("44.82ms", "812.00us").replace(
        "  Socket errors: connect 0, read 12, write 0, timeout 3\n", ""
    )
    result = parse_output(text)
    assert result.p50_ms == pytest.approx(0.812)
    assert result.socket_errors == 0


def test_unreadable_output_is_an_error() -> None:
    with pytest.raises(WrkError):
        parse_output("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_command_uses_threads_connections_script_and_headers() -> None:
    options = WrkOptions(connections=1000, duration_s=8, threads=2, headers=("X-API-Key: k",))
    cmd = command("http://127.0.0.1:1", options, ["tag", "1", "GET", "/health", ""])
    assert cmd[1:5] == ["-t2", "-c1000", "-d8s", "--timeout=10s"]
    assert cmd[cmd.index("-H") + 1] == "X-API-Key: k"
    assert cmd[-6:] == ["--", "tag", "1", "GET", "/health", ""]
