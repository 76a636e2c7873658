"""Online backup of a database of 100,000 users, while the worker serves.

Reports the backup's size and time (`nua-orchestrator backup`, whole process,
and the backup itself as the command reports it), against the floor of
SQLite's own backup API copying the same file in this process (no integrity
check, no fsync, no retention). Also the time `start` spends checking the
database (quick_check) at that size, against a start on an empty database.
Run: .venv/bin/python bench/bench_backup.py
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_list import populate
from bench.harness import Home, orchestrator, report, timed

RUNS = 5
USERS = 100_000


def raw_backup(db: Path) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "copy.db"
        began = time.perf_counter()
        with (
            closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as src,
            closing(sqlite3.connect(target)) as dst,
        ):
            src.backup(dst)
        return time.perf_counter() - began


def start_time(home: Home, runs: int = 3) -> float:
    """Median whole-process time of `start` on a stopped orchestrator."""
    samples = []
    for _ in range(runs):
        samples.append(timed(lambda: home.cli("start")))
        home.cli("stop")
    return statistics.median(samples)


def main() -> None:
    with orchestrator() as empty:
        empty.cli("stop")
        start_empty = start_time(empty)
        empty.cli("start")
    with orchestrator() as home:
        home.cli("stop")
        db = home.path / "data" / "nua.db"
        populate(db, USERS)
        start_large = start_time(home)
        home.cli("start")
        whole, inner, sizes = [], [], []
        for _ in range(RUNS):
            began = time.perf_counter()
            made = home.cli("backup", "--json")
            whole.append(time.perf_counter() - began)
            if made.returncode != 0:
                raise RuntimeError(made.stderr)
            result = json.loads(made.stdout)
            inner.append(result["seconds"])
            sizes.append(result["size"])
        floor = statistics.median(raw_backup(db) for _ in range(RUNS))
    rows = [
        (
            f"backup of {USERS:,} users, whole command (median of {RUNS})",
            f"{statistics.median(whole) * 1e3:.0f} ms",
            f"{floor * 1e3:.0f} ms",
            f"{statistics.median(whole) / floor:.2f}x",
        ),
        (
            "backup itself, with integrity check and fsync",
            f"{statistics.median(inner) * 1e3:.0f} ms",
            f"{floor * 1e3:.0f} ms",
            f"{statistics.median(inner) / floor:.2f}x",
        ),
        ("backup size", f"{statistics.median(sizes) / 1e6:.1f} MB", "", ""),
        (
            f"start with {USERS:,} users vs an empty database (median of 3)",
            f"{start_large * 1e3:.0f} ms",
            f"{start_empty * 1e3:.0f} ms",
            f"{start_large / start_empty:.2f}x",
        ),
    ]
    report("online backup (ours) vs SQLite's backup API alone (floor)", rows)


if __name__ == "__main__":
    main()
