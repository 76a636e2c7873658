"""A disk whose flushes take longer than this VM's: fsync and fdatasync delayed by LD_PRELOAD.

Group commit pays off in proportion to what a flush costs. This machine's
virtual disk acknowledges a flush in about 0.2 ms, where a SATA SSD without
power-loss protection takes 1-3 ms and a spinning disk 5-10 ms; the
benchmarks run the same work on both, side by side, so the figures say what
the design does on the disks operators have. The shim is compiled with the
machine's C compiler at run time; without one, the slow-disk rows are skipped.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

FLUSH_ENV = "SLOW_FLUSH_US"
SOURCE = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long delay_us = -1;

static void wait_flush(void) {
    if (delay_us < 0) {
        const char *s = getenv("SLOW_FLUSH_US");
        delay_us = s ? atol(s) : 0;
    }
    if (delay_us > 0) {
        struct timespec t = {delay_us / 1000000, (delay_us % 1000000) * 1000};
        nanosleep(&t, NULL);
    }
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    wait_flush();
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    wait_flush();
    return real(fd);
}
"""


def build_shim(folder: Path) -> Path | None:
    """Compile the shim into `folder`; None when there is no C compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    source = folder / "slow_flush.c"
    source.write_text(SOURCE)
    library = folder / "slow_flush.so"
    built = subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-o", str(library), str(source), "-ldl"],
        capture_output=True,
        check=False,
    )
    return library if built.returncode == 0 else None


def slow_disk_env(library: Path, flush_ms: float) -> dict[str, str]:
    """Environment for an orchestrator whose every flush takes `flush_ms` more."""
    return {"LD_PRELOAD": str(library), FLUSH_ENV: str(int(flush_ms * 1000))}


def flush_latency_ms(folder: Path, samples: int = 200) -> float:
    """Median time of an fsync of a small write in `folder` (this machine's disk)."""
    with tempfile.NamedTemporaryFile(dir=folder) as probe:
        took = []
        for _ in range(samples):
            os.write(probe.fileno(), b"x" * 4096)
            began = time.perf_counter()
            os.fsync(probe.fileno())
            took.append(time.perf_counter() - began)
    return statistics.median(took) * 1000
