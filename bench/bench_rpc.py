"""Ping latency and throughput: the real client and worker against raw pyzmq REQ/ROUTER.

Targets: latency <= 1.2x raw (1 client); throughput >= 0.7x raw at 16 clients.
Run: .venv/bin/python bench/bench_rpc.py
"""

from __future__ import annotations

import multiprocessing as mp
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import orchestrator, report, run_clients
from orchestrator.rpc.client import RpcClient

PING = b'{"jsonrpc": "2.0", "method": "system.ping", "id": "1-1"}'
PONG = b'{"jsonrpc":"2.0","result":"pong","id":"1-1"}'
LATENCY_CALLS = 2000
THROUGHPUT_SECONDS = 2.0
ROUNDS = 5


def raw_server(endpoint: str, ready: mp.Event) -> None:  # type: ignore[valid-type]
    """The floor: a ROUTER that answers every message with a fixed reply."""
    sock = zmq.Context.instance().socket(zmq.ROUTER)
    sock.bind(endpoint)
    ready.set()
    while True:
        frames = sock.recv_multipart()
        sock.send_multipart([*frames[:-1], PONG])


def raw_latency(endpoint: str) -> float:
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.connect(endpoint)
    samples = []
    for _ in range(LATENCY_CALLS):
        began = time.perf_counter()
        sock.send(PING)
        sock.recv()
        samples.append(time.perf_counter() - began)
    sock.close()
    return statistics.median(samples)


def client_latency(endpoint: str) -> float:
    client = RpcClient(endpoint, timeout=5)
    samples = []
    for _ in range(LATENCY_CALLS):
        began = time.perf_counter()
        client.call("system.ping")
        samples.append(time.perf_counter() - began)
    client.close()
    return statistics.median(samples)


def _raw_loop(endpoint: str, seconds: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.connect(endpoint)
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        sock.send(PING)
        sock.recv()
        n += 1
    out.put(n)


def _client_loop(endpoint: str, seconds: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    client = RpcClient(endpoint, timeout=10)
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        client.call("system.ping")
        n += 1
    out.put(n)


def throughput(loop: Callable[..., None], endpoint: str, clients: int) -> float:
    return run_clients(loop, (endpoint, THROUGHPUT_SECONDS), clients) / THROUGHPUT_SECONDS


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="nuar"))
    raw_endpoint = f"ipc://{folder}/raw.sock"
    ready = mp.Event()
    server = mp.Process(target=raw_server, args=(raw_endpoint, ready))
    server.start()
    try:
        ready.wait(10)
        rows = _measure(raw_endpoint)
    finally:
        server.terminate()
        server.join()
        shutil.rmtree(folder, ignore_errors=True)
    report("JSON-RPC ping: real client and worker vs raw pyzmq REQ/ROUTER", rows)


def _measure(raw_endpoint: str) -> list[tuple[str, str, str, str]]:
    rows = []
    with orchestrator() as home:
        # Rounds alternate, so that a noisy moment of this shared machine hits both alike.
        ours_rounds, raw_rounds = [], []
        for _ in range(ROUNDS):
            ours_rounds.append(client_latency(home.endpoint))
            raw_rounds.append(raw_latency(raw_endpoint))
        ours_lat, raw_lat = statistics.median(ours_rounds), statistics.median(raw_rounds)
        rows.append(
            (
                "ping latency, 1 client (median)",
                f"{ours_lat * 1e6:.0f} us",
                f"{raw_lat * 1e6:.0f} us",
                f"{ours_lat / raw_lat:.2f}x (target <= 1.2x)",
            )
        )
        for clients in (1, 4, 16):
            pairs = [
                (
                    throughput(_client_loop, home.endpoint, clients),
                    throughput(_raw_loop, raw_endpoint, clients),
                )
                for _ in range(3)
            ]
            ours = statistics.median(p[0] for p in pairs)
            raw = statistics.median(p[1] for p in pairs)
            target = " (target >= 0.7x)" if clients == 16 else ""
            rows.append(
                (
                    f"ping throughput, {clients} clients (median of 3)",
                    f"{ours:,.0f}/s",
                    f"{raw:,.0f}/s",
                    f"{ours / raw:.2f}x{target}",
                )
            )
    return rows


if __name__ == "__main__":
    main()
