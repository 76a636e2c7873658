"""Apps at scale: install-to-healthy time, and the CLIs with 50 apps against 1.

- install-to-healthy of the sample app (upload, unpack, build, start,
  health), median of several installs;
- whole-process `nua apps` and `nua-orchestrator status` with 50 apps
  installed, against the same with 1 app (target: <= 2x);
- installing the 51st app against installing the 1st (target: <= 1.5x).
Run: .venv/bin/python bench/bench_apps.py [--apps 50]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import BIN, Home, orchestrator, report
from orchestrator.rpc.client import RpcClient
from tests.e2e.test_apps import app_archive
from tests.support.apps import install_archive

RUNS = 10


def install_time(client: RpcClient, label: str) -> float:
    began = time.perf_counter()
    job = install_archive(client, app_archive(), label=label)
    took = time.perf_counter() - began
    if job["state"] != "succeeded":
        raise RuntimeError(f"install of {label} failed: {job['error']}")
    return took


def cli_time(home: Home, *args: str, cli: str) -> float:
    samples = []
    for _ in range(RUNS):
        began = time.perf_counter()
        done = subprocess.run(
            [str(BIN / cli), *args], env=home.env, capture_output=True, check=False
        )
        samples.append(time.perf_counter() - began)
        if done.returncode != 0:
            raise RuntimeError(f"{cli} {' '.join(args)}: {done.stderr.decode()}")
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--apps", type=int, default=50)
    count = parser.parse_args().apps
    with orchestrator() as home:
        home.path.chmod(0o711)  # as root, apps run as another user who must pass through
        client = RpcClient(home.endpoint, timeout=60)
        # The 1st install, three times (installed and removed), then kept once.
        firsts = []
        for _ in range(3):
            firsts.append(install_time(client, "app000"))
            client.call("app.remove", {"label": "app000", "purge": True})
        times = [install_time(client, "app000")]
        first = statistics.median(firsts)
        apps_1 = cli_time(home, "apps", cli="nua")
        status_1 = cli_time(home, "status", cli="nua-orchestrator")
        for i in range(1, count):
            times.append(install_time(client, f"app{i:03d}"))
        # The next one, three times, likewise.
        lasts = []
        for _ in range(3):
            lasts.append(install_time(client, f"app{count:03d}"))
            client.call("app.remove", {"label": f"app{count:03d}", "purge": True})
        last = statistics.median(lasts)
        apps_n = cli_time(home, "apps", cli="nua")
        status_n = cli_time(home, "status", cli="nua-orchestrator")
    rows = [
        (
            f"install to healthy, sample app (median of {count})",
            f"{statistics.median(times) * 1e3:.0f} ms",
            "",
            "",
        ),
        (
            f"`nua apps` with {count} apps vs 1 (median of {RUNS})",
            f"{apps_n * 1e3:.0f} ms",
            f"{apps_1 * 1e3:.0f} ms",
            f"{apps_n / apps_1:.2f}x (target <= 2x)",
        ),
        (
            f"`nua-orchestrator status` with {count} apps vs 1",
            f"{status_n * 1e3:.0f} ms",
            f"{status_1 * 1e3:.0f} ms",
            f"{status_n / status_1:.2f}x (target <= 2x)",
        ),
        (
            f"install of app {count + 1} vs app 1 (medians of 3)",
            f"{last * 1e3:.0f} ms",
            f"{first * 1e3:.0f} ms",
            f"{last / first:.2f}x (target <= 1.5x)",
        ),
    ]
    report(f"apps: {count} installed (ours) vs 1 (floor)", rows)


if __name__ == "__main__":
    main()
