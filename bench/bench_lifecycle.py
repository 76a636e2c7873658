"""Whole-process `nua-orchestrator start` and `stop`, against a bare supervisord.

The floor runs the same rendered supervisord.conf (the same rpc worker and
sentinel) with supervisord itself: launched directly and waited for until
the worker answers `system.ping`; stopped with `supervisorctl shutdown` and
waited for until supervisord and every program are gone. Our start does more
(the lock, leftovers, the schema check, settings, rendering, every program
RUNNING): the ratio says what that costs.

Targets: start <= 1.0 s and stop <= 0.5 s median. Run: .venv/bin/python bench/bench_lifecycle.py
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import BIN, Home, report
from orchestrator.rpc.client import ClientError, RpcClient

RUNS = 9
DEADLINE = 30.0


def wall(home: Home, *args: str) -> float:
    began = time.perf_counter()
    done = home.cli(*args)
    took = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"nua-orchestrator {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return took


def wait_ping(endpoint: str, began: float) -> float:
    """Seconds from `began` until the worker at `endpoint` answers system.ping."""
    client = RpcClient(endpoint, timeout=0.2, retries=0)
    try:
        while time.perf_counter() - began < DEADLINE:
            with contextlib.suppress(ClientError):
                if client.call("system.ping") == "pong":
                    return time.perf_counter() - began
            time.sleep(0.01)
    finally:
        client.close()
    raise RuntimeError(f"the worker at {endpoint} did not answer within {DEADLINE:g}s")


def family(pid: int) -> list[psutil.Process]:
    parent = psutil.Process(pid)
    return [parent, *parent.children(recursive=True)]


def bare_start(home: Home, conf: Path) -> tuple[float, int]:
    """Seconds from launching supervisord on `conf` until the worker answers; its pid."""
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)],
        env=home.env,
        check=True,
        stdin=subprocess.DEVNULL,
    )
    took = wait_ping(home.endpoint, began)
    return took, int((home.path / "run" / "supervisord.pid").read_text())


def bare_stop(home: Home, conf: Path, pid: int) -> float:
    """Seconds from `supervisorctl shutdown` until supervisord and its programs are gone."""
    procs = family(pid)
    began = time.perf_counter()
    subprocess.run(
        [str(BIN / "supervisorctl"), "-c", str(conf), "shutdown"],
        env=home.env,
        check=True,
        capture_output=True,
    )
    _, alive = psutil.wait_procs(procs, timeout=DEADLINE)
    if alive:
        raise RuntimeError(f"still alive after shutdown: {alive}")
    return time.perf_counter() - began


def main() -> None:
    path = Path(tempfile.mkdtemp(prefix="nuab"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUA_")}
    env["NUA_HOME"] = str(path)
    home = Home(path, env)
    conf = path / "bare-supervisord.conf"
    starts: list[float] = []
    stops: list[float] = []
    bare_starts: list[float] = []
    bare_stops: list[float] = []
    try:
        # First launch creates the database and settings; it is not measured.
        wall(home, "start")
        shutil.copyfile(path / "run" / "supervisord.conf", conf)
        wall(home, "stop")
        for _ in range(RUNS):
            starts.append(wall(home, "start"))
            stops.append(wall(home, "stop"))
            took, pid = bare_start(home, conf)
            bare_starts.append(took)
            bare_stops.append(bare_stop(home, conf, pid))
    finally:
        home.cli("stop")
        shutil.rmtree(path, ignore_errors=True)
    start, bare_up = statistics.median(starts), statistics.median(bare_starts)
    stop, bare_down = statistics.median(stops), statistics.median(bare_stops)
    report(
        f"Whole-process start and stop (median of {RUNS}) against a bare supervisord",
        [
            (
                "start until the worker answers",
                f"{start * 1e3:.0f} ms",
                f"{bare_up * 1e3:.0f} ms",
                f"{start / bare_up:.2f}x (target: start <= 1000 ms)",
            ),
            (
                "stop until everything is gone",
                f"{stop * 1e3:.0f} ms",
                f"{bare_down * 1e3:.0f} ms",
                f"{stop / bare_down:.2f}x (target: stop <= 500 ms)",
            ),
        ],
    )


if __name__ == "__main__":
    main()
