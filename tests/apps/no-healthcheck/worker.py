"""A background worker with no port and no health check: it says it started, then waits.

Standard library only; SIGTERM (supervisord's stop) ends it.
"""

from __future__ import annotations

import os
import signal

if __name__ == "__main__":
    print(f"no-healthcheck {os.environ.get('NUA_APP_VERSION', '?')} working", flush=True)
    while True:
        signal.pause()
