"""Durable user.add per second, with synchronous=FULL: group commit vs one commit per request.

Target: >= 3x at 16 clients. Run: .venv/bin/python bench/bench_writes.py
On this machine's disk, and on disks whose flushes take 2 and 8 ms (simulated,
bench/slow_flush.py), since what grouping saves is the flushes.
"""

from __future__ import annotations

import multiprocessing as mp
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import orchestrator, report, run_clients
from bench.slow_flush import build_shim, flush_latency_ms, slow_disk_env
from orchestrator.rpc.client import RpcClient

SECONDS = 3.0
# Flush latencies of common disks (bench/slow_flush.py): SATA SSD without PLP, spinning disk.
SLOW_FLUSH_MS = (2.0, 8.0)


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


def measure(env: dict[str, str]) -> dict[tuple[str, int], float]:
    """Adds per second, grouped and one commit each, at 1 and 16 clients."""
    results: dict[tuple[str, int], float] = {}
    for mode, batch in (("grouped", "256"), ("one commit each", "1")):
        with orchestrator(NUA_RPC_WRITER_BATCH=batch, **env) as home:
            for clients in (1, 16):
                results[(mode, clients)] = statistics.median(
                    adds_per_second(home.endpoint, clients) for _ in range(3)
                )
    return results


def rows_for(disk: str, results: dict[tuple[str, int], float]) -> list[tuple[str, str, str, str]]:
    rows = []
    for clients in (1, 16):
        ours, floor = results[("grouped", clients)], results[("one commit each", clients)]
        target = " (target >= 3x)" if clients == 16 else ""
        rows.append(
            (
                f"{disk}: durable user.add, {clients} clients (median of 3)",
                f"{ours:,.0f}/s",
                f"{floor:,.0f}/s",
                f"{ours / floor:.2f}x{target}",
            )
        )
    return rows


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="nuaw"))
    try:
        flush = flush_latency_ms(folder)
        rows = rows_for(f"this disk (fsync {flush:.2f} ms)", measure({}))
        library = build_shim(folder)
        if library is not None:
            for flush_ms in SLOW_FLUSH_MS:
                env = slow_disk_env(library, flush_ms)
                rows += rows_for(f"flush +{flush_ms:g} ms (simulated)", measure(env))
        else:
            print("no C compiler: the simulated slow-disk rows are skipped")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report("Durable writes (synchronous=FULL): group commit vs one commit per request", rows)


if __name__ == "__main__":
    main()
