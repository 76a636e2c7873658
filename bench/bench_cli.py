"""Whole-process `nua ping` against whole-process `supervisorctl status`.

Target: <= 0.7x. A plain `nua ping` skips cleo (console/quick_ping.py); the
second row shows a command that goes through cleo, for comparison.
Run: .venv/bin/python bench/bench_cli.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import BIN, orchestrator, report

RUNS = 20


def wall(cmd: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, check=False)
    took = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {done.stderr.decode()}")
    return took


def main() -> None:
    with orchestrator() as home:
        conf = str(home.path / "run" / "supervisord.conf")
        nua = [str(BIN / "nua"), "ping"]
        get = [str(BIN / "nua"), "settings", "get", "sentinel.interval"]
        ctl = [str(BIN / "supervisorctl"), "-c", conf, "status"]
        wall(nua, home.env), wall(get, home.env), wall(ctl, home.env)  # warm the page cache
        times: dict[str, list[float]] = {"nua": [], "get": [], "ctl": []}
        for _ in range(RUNS):  # interleaved: a noisy moment hits all three alike
            times["nua"].append(wall(nua, home.env))
            times["get"].append(wall(get, home.env))
            times["ctl"].append(wall(ctl, home.env))
    ours, through_cleo, floor = (statistics.median(times[k]) for k in ("nua", "get", "ctl"))
    report(
        "Whole-process CLI time on a running orchestrator",
        [
            (
                f"`nua ping` vs `supervisorctl status` (median of {RUNS})",
                f"{ours * 1e3:.0f} ms",
                f"{floor * 1e3:.0f} ms",
                f"{ours / floor:.2f}x (target <= 0.7x)",
            ),
            (
                f"`nua settings get KEY` (through cleo) vs the same (median of {RUNS})",
                f"{through_cleo * 1e3:.0f} ms",
                f"{floor * 1e3:.0f} ms",
                f"{through_cleo / floor:.2f}x",
            ),
        ],
    )


if __name__ == "__main__":
    main()
