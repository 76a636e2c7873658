"""Shared pieces of the benchmarks: a throwaway orchestrator, timing, and reporting.

Benchmarks print medians and ratios against a floor measured in the same run
(these machines are noisy); they never pass or fail on a time.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Home:
    path: Path
    env: dict[str, str]

    @property
    def endpoint(self) -> str:
        return f"ipc://{self.path}/run/rpc.sock"

    def cli(self, *args: str, cli: str = "nua-orchestrator") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / cli), *args], env=self.env, capture_output=True, text=True, check=False
        )


@contextmanager
def orchestrator(**settings: str) -> Iterator[Home]:
    """A running orchestrator in a temporary home, with NUA_* settings for this run."""
    path = Path(tempfile.mkdtemp(prefix="nuab"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUA_")}
    env.update({"NUA_HOME": str(path), **settings})
    home = Home(path, env)
    started = home.cli("start")
    if started.returncode != 0:
        raise RuntimeError(f"start failed: {started.stdout}{started.stderr}")
    try:
        yield home
    finally:
        home.cli("stop")
        shutil.rmtree(path, ignore_errors=True)


def median_of(runs: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(runs))


def timed(func: Callable[[], object]) -> float:
    began = time.perf_counter()
    func()
    return time.perf_counter() - began


def report(title: str, rows: list[tuple[str, str, str, str]]) -> None:
    """Print a table: what, ours, floor, ratio and target."""
    print(f"\n## {title}")
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'ours':>14}  {'floor':>14}  ratio / target")
    for what, ours, floor, ratio in rows:
        print(f"{what:<{width}}  {ours:>14}  {floor:>14}  {ratio}")
    sys.stdout.flush()


def run_clients(target: Callable[..., None], args: tuple[object, ...], clients: int) -> int:
    """Run `target(*args, out)` in `clients` processes; the sum of what each put in `out`."""
    import multiprocessing as mp

    out: mp.Queue[int] = mp.Queue()
    procs = [mp.Process(target=target, args=(*args, out)) for _ in range(clients)]
    for proc in procs:
        proc.start()
    total = sum(out.get() for _ in procs)
    for proc in procs:
        proc.join()
    return total
