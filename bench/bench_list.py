"""user.list: a page of 100 at 100 users against the same page at 100,000 users.

Target: <= 2x. Run: .venv/bin/python bench/bench_list.py
"""

from __future__ import annotations

import sqlite3
import statistics
import sys
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import orchestrator, report
from orchestrator.rpc.client import RpcClient

CALLS = 200


def populate(db: Path, count: int) -> None:
    """Insert users straight into the database while the orchestrator is stopped."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    rows = (
        (f"user{i:06d}", f"user{i:06d}@example.com", "admin" if i % 10 == 0 else "user", now, now)
        for i in range(count)
    )
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.executemany(
            "INSERT INTO users (username, email, role, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?)",
            rows,
        )


def page_latency(endpoint: str, **params: object) -> float:
    client = RpcClient(endpoint, timeout=30)
    samples = []
    for _ in range(CALLS):
        began = time.perf_counter()
        client.call("user.list", {"limit": 100, **params})
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def measure(count: int) -> dict[str, float]:
    with orchestrator() as home:
        home.cli("stop")
        populate(home.path / "data" / "nua.db", count)
        home.cli("start")
        return {
            "by username": page_latency(home.endpoint),
            "by created_at, descending": page_latency(
                home.endpoint, order_by="created_at", descending=True
            ),
            # Most users have role "user": both sets return a full (or nearly full) page.
            "role user, by email": page_latency(home.endpoint, role="user", order_by="email"),
        }


def main() -> None:
    small, large = measure(100), measure(100_000)
    rows = [
        (
            f"user.list page of 100, {name} (median of {CALLS})",
            f"{large[name] * 1e3:.2f} ms",
            f"{small[name] * 1e3:.2f} ms",
            f"{large[name] / small[name]:.2f}x (target <= 2x)",
        )
        for name in small
    ]
    report("user.list at 100,000 users (ours) vs at 100 users (floor)", rows)


if __name__ == "__main__":
    main()
