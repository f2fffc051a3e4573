"""Markdown for the gateway benchmark: each point direct vs through the gateway, with ratios."""

from __future__ import annotations

from typing import Any

THROUGHPUT_TARGET = 0.80  # gateway/direct at 64 and 256 connections
ADDED_P50_TARGET_MS = 0.3  # at concurrency 1


def pairs(
    points: list[dict[str, Any]], proxy: str = "gateway"
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(direct, through ``proxy``) for each (method, path, connections), in run order."""
    direct = {
        (p["method"], p["path"], p["connections"]): p for p in points if p["target"] == "direct"
    }
    return [
        (direct[(p["method"], p["path"], p["connections"])], p)
        for p in points
        if p["target"] == proxy and (p["method"], p["path"], p["connections"]) in direct
    ]


def _reference_lines(points: list[dict[str, Any]]) -> list[str]:
    """nginx on the same points: what the hop itself costs on this machine."""
    gateway = {(g["method"], g["path"], g["connections"]): g for _, g in pairs(points)}
    lines = [
        "",
        "## Reference: nginx (1 worker, keep-alive upstream) on the same points",
        "",
        "| endpoint | conns | nginx req/s | ratio to direct | added p50 ms "
        "| gateway added p50 minus nginx's, ms | nginx CPU us/req |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for d, n in pairs(points, "nginx"):
        if n["path"] == "/health":
            continue  # the gateway answers /health itself: no proxy to compare
        g = gateway.get((n["method"], n["path"], n["connections"]))
        ours = f"{g['p50_ms'] - n['p50_ms']:+.3f}" if g else "-"  # both minus direct
        lines.append(
            f"| {n['method']} {n['path']} | {n['connections']} | {n['rps']:.0f} "
            f"| {n['rps'] / d['rps'] if d['rps'] else 0.0:.0%} "
            f"| {n['p50_ms'] - d['p50_ms']:+.3f} | {ours} "
            f"| {n['gateway_cpu_us_per_request']:.0f} |"
        )
    return lines


def markdown_report(report: dict[str, Any]) -> str:
    meta = report["meta"]
    lines = [
        "# Gateway benchmark",
        "",
        f"- when: {meta['when']}; backend: `{meta['backend']}`; {meta['duration_s']} s per point "
        f"(after a 1 s warm-up); wrk 1 thread",
        f"- machine: {meta['machine']}; load average at end: "
        + ", ".join(f"{x:.2f}" for x in meta["load_average_at_end"]),
        f"- targets: gateway/direct >= {THROUGHPUT_TARGET:.0%} at 64 and 256 connections; "
        f"added p50 <= {ADDED_P50_TARGET_MS} ms at 1 connection",
        "",
        "| endpoint | conns | direct req/s | gateway req/s | ratio | direct p50/p99 ms "
        "| gateway p50/p99 ms | added p50 ms | CPU us/req: backend direct, backend + gateway "
        "via gateway | errors direct/gateway |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for d, g in pairs(report["points"]):
        ratio = g["rps"] / d["rps"] if d["rps"] else 0.0
        added = g["p50_ms"] - d["p50_ms"]
        flag = ""
        if g["connections"] >= 64 and ratio < THROUGHPUT_TARGET:
            flag = " (below target)"
        if g["connections"] == 1 and added > ADDED_P50_TARGET_MS:
            flag = " (above target)"
        errors = f"{d['errors'] + d['non2xx']} / {g['errors'] + g['non2xx']}"
        lines.append(
            f"| {g['method']} {g['path']} | {g['connections']} | {d['rps']:.0f} | {g['rps']:.0f} "
            f"| {ratio:.0%}{flag if g['connections'] >= 64 else ''} "
            f"| {d['p50_ms']:.3f} / {d['p99_ms']:.2f} | {g['p50_ms']:.3f} / {g['p99_ms']:.2f} "
            f"| {added:+.3f}{flag if g['connections'] == 1 else ''} "
            f"| {d['backend_cpu_us_per_request']:.0f}; {g['backend_cpu_us_per_request']:.0f} + "
            f"{g['gateway_cpu_us_per_request']:.0f} | {errors} |"
        )
    if any(p["target"] == "nginx" for p in report["points"]):
        lines += _reference_lines(report["points"])
    lines += ["", "Notes:"]
    lines += [f"- `{path}`: {note}" for path, note in meta["endpoints"].items()]
    lines.append(
        "- CPU us/req: CPU seconds each server process used during the run / requests served. "
        "When the cores are saturated, ratio ~= backend / (backend + gateway) CPU per request."
    )
    lines.append(
        "- server, gateway and wrk share the machine's cores; direct and gateway runs of a "
        "point are back to back so a neighbour's load hits both alike."
    )
    return "\n".join(lines) + "\n"
