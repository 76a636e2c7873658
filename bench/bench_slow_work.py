"""Slow work never blocks the loop: ping latency while 16 clients hash passwords.

Target: median ping <= 50 ms. Run: .venv/bin/python bench/bench_slow_work.py
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import orchestrator, report
from orchestrator.rpc.client import RpcClient

HASHERS = 16
PINGS = 200


def _hasher(endpoint: str, index: int, stop: mp.Event, out: mp.Queue) -> None:  # type: ignore[valid-type,type-arg]
    client = RpcClient(endpoint, timeout=120)
    name = f"hasher{index}"
    client.call("user.add", {"username": name, "email": f"{name}@example.com"})
    n = 0
    while not stop.is_set():
        client.call("user.set_password", {"username": name, "password": f"pw-{index}-{n}-long"})
        n += 1
    out.put(n)


def ping_latencies(endpoint: str) -> list[float]:
    client = RpcClient(endpoint, timeout=30)
    samples = []
    for _ in range(PINGS):
        began = time.perf_counter()
        client.call("system.ping")
        samples.append(time.perf_counter() - began)
    return samples


def main() -> None:
    with orchestrator() as home:
        idle = statistics.median(ping_latencies(home.endpoint))
        stop = mp.Event()
        out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        procs = [
            mp.Process(target=_hasher, args=(home.endpoint, i, stop, out)) for i in range(HASHERS)
        ]
        for p in procs:
            p.start()
        # Wait until hashing is under way: one full round of set_password.
        RpcClient(home.endpoint, timeout=120).call(
            "user.add", {"username": "probe", "email": "probe@example.com"}
        )
        RpcClient(home.endpoint, timeout=120).call(
            "user.set_password", {"username": "probe", "password": "probe-password"}
        )
        began = time.perf_counter()
        busy = ping_latencies(home.endpoint)
        elapsed = time.perf_counter() - began
        stop.set()
        hashes = sum(out.get() for _ in procs)
        for p in procs:
            p.join()
    report(
        "Ping latency while 16 clients run user.set_password (Argon2id)",
        [
            (
                "ping latency under hashing (median)",
                f"{statistics.median(busy) * 1e3:.2f} ms",
                f"{idle * 1e3:.2f} ms idle",
                "target median <= 50 ms",
            ),
            (
                "ping latency under hashing (p95)",
                f"{sorted(busy)[int(len(busy) * 0.95)] * 1e3:.2f} ms",
                "",
                "",
            ),
            (
                "passwords hashed in all",
                f"{hashes}",
                "",
                f"pings took {elapsed:.1f}s of that, hashing all along",
            ),
        ],
    )


if __name__ == "__main__":
    main()
