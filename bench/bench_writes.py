"""Durable user.add per second, with synchronous=FULL: group commit vs one commit per request.

Target: >= 3x at 16 clients. Run: .venv/bin/python bench/bench_writes.py
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import orchestrator, report, run_clients
from orchestrator.rpc.client import RpcClient

SECONDS = 3.0


def _adder(endpoint: str, seconds: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    client = RpcClient(endpoint, timeout=30)
    prefix = "u" + uuid.uuid4().hex[:8]
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        client.call("user.add", {"username": f"{prefix}{n}", "email": f"{prefix}{n}@example.com"})
        n += 1
    out.put(n)


def adds_per_second(endpoint: str, clients: int) -> float:
    return run_clients(_adder, (endpoint, SECONDS), clients) / SECONDS


def main() -> None:
    results: dict[tuple[str, int], float] = {}
    for mode, batch in (("grouped", "256"), ("one commit each", "1")):
        with orchestrator(NUA_RPC_WRITER_BATCH=batch) as home:
            for clients in (1, 16):
                results[(mode, clients)] = statistics.median(
                    adds_per_second(home.endpoint, clients) for _ in range(3)
                )
    rows = []
    for clients in (1, 16):
        ours, floor = results[("grouped", clients)], results[("one commit each", clients)]
        target = " (target >= 3x)" if clients == 16 else ""
        rows.append(
            (
                f"durable user.add, {clients} clients (median of 3)",
                f"{ours:,.0f}/s",
                f"{floor:,.0f}/s",
                f"{ours / floor:.2f}x{target}",
            )
        )
    report("Durable writes (synchronous=FULL): group commit vs one commit per request", rows)


if __name__ == "__main__":
    main()
