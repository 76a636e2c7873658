"""Programs end with their supervisord: if it dies (even by kill -9), they get SIGTERM.

supervisord cannot stop its programs when it is killed; left running, an
orphaned worker would keep serving and writing with nobody supervising it.
With the kernel's parent-death signal, the worker and the sentinel get
SIGTERM and shut down gracefully (calls in flight are answered and
committed); `nua-orchestrator start` still cleans up any that are left.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from pathlib import Path

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1


def exit_with_supervisord(sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel for `sig` when our parent dies; False if it is already gone.

    Only under supervisord (SUPERVISOR_ENABLED set by it), and only on Linux.
    """
    if not sys.platform.startswith("linux") or not os.environ.get("SUPERVISOR_ENABLED"):
        return True
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        log.warning(
            "cannot ask for a signal at supervisord's death: %s", os.strerror(ctypes.get_errno())
        )
        return True
    # supervisord may have died before the request: then our parent is no longer it.
    return os.getppid() == parent and _is_supervisord(parent)


def _is_supervisord(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"supervisord" in cmdline
