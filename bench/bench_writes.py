"""Durable user.add per second, with synchronous=FULL: group commit vs one commit per request.

Target: >= 3x at 16 clients. Run: .venv/bin/python bench/bench_writes.py
On this machine's disk, and on disks whose flushes take 2 and 8 ms (simulated,
bench/slow_flush.py), since what grouping saves is the flushes.

Also printed, for this disk: the worker's CPU time per add at 16 clients in
both modes. On a disk that flushes fast the worker is CPU-bound (one GIL for
the loop and the writer), so the floor's CPU per add over ours is the most
grouping can gain there, however large the batches. (On slow disks the floor
waits for flushes, not for CPU, and the ratio goes well past it.)
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

import psutil

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


def adds(endpoint: str, clients: int, worker: psutil.Process) -> tuple[float, float]:
    """Adds per second, and the worker's CPU seconds per add."""
    before = worker.cpu_times()
    done = run_clients(_adder, (endpoint, SECONDS), clients)
    after = worker.cpu_times()
    cpu = (after.user - before.user) + (after.system - before.system)
    return done / SECONDS, cpu / max(done, 1)


def measure(env: dict[str, str]) -> dict[tuple[str, int], tuple[float, float]]:
    """Adds per second and worker CPU per add (medians of 3), by mode and clients."""
    results: dict[tuple[str, int], tuple[float, float]] = {}
    for mode, batch in (("grouped", "256"), ("one commit each", "1")):
        with orchestrator(NUA_RPC_WRITER_BATCH=batch, **env) as home:
            worker = psutil.Process(RpcClient(home.endpoint).call("system.version")["pid"])
            for clients in (1, 16):
                runs = [adds(home.endpoint, clients, worker) for _ in range(3)]
                results[(mode, clients)] = (
                    statistics.median(rate for rate, _ in runs),
                    statistics.median(cpu for _, cpu in runs),
                )
    return results


def rows_for(
    disk: str, results: dict[tuple[str, int], tuple[float, float]], cpu_row: bool = False
) -> list[tuple[str, str, str, str]]:
    """The rows of one disk; with `cpu_row`, the worker's CPU per add (for a fast disk)."""
    rows = []
    for clients in (1, 16):
        ours, floor = results[("grouped", clients)][0], results[("one commit each", clients)][0]
        target = " (target >= 3x)" if clients == 16 else ""
        rows.append(
            (
                f"{disk}: durable user.add, {clients} clients (median of 3)",
                f"{ours:,.0f}/s",
                f"{floor:,.0f}/s",
                f"{ours / floor:.2f}x{target}",
            )
        )
    if not cpu_row:
        return rows
    ours_cpu, floor_cpu = results[("grouped", 16)][1], results[("one commit each", 16)][1]
    rows.append(
        (
            f"{disk}: worker CPU per add, 16 clients",
            f"{ours_cpu * 1e6:,.0f} us",
            f"{floor_cpu * 1e6:,.0f} us",
            f"{floor_cpu / ours_cpu:.2f}x = ceiling while CPU-bound",
        )
    )
    return rows


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="nuaw"))
    try:
        flush = flush_latency_ms(folder)
        rows = rows_for(f"this disk (fsync {flush:.2f} ms)", measure({}), cpu_row=True)
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
