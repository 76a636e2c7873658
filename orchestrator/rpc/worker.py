"""The rpc worker program, run by supervisord as `python -m orchestrator.rpc.worker`.

It owns the database. SIGTERM stops taking messages, lets the calls in
flight finish and be answered, commits what the writer holds, closes the
database (checkpointing the WAL) and exits 0. The kernel sends it SIGTERM
too when supervisord dies (host/parent_death.py).
"""

from __future__ import annotations

import logging
import signal
import sys

from orchestrator.host import locations as host_locations
from orchestrator.host.parent_death import exit_with_supervisord
from orchestrator.rpc.server import Server

log = logging.getLogger("nua.rpc")
# The share of rpc.stop_timeout spent answering calls in flight at stop.
STOP_BUDGET_SHARE = 0.8


def main() -> int:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # The writer and the loop do many short GIL-releasing calls (SQLite, ZeroMQ);
    # a shorter switch interval keeps them from queueing behind busy threads.
    sys.setswitchinterval(0.0005)
    where = host_locations.resolve()
    server = Server(where.rpc_endpoint)
    signal.signal(signal.SIGTERM, server.stop)
    signal.signal(signal.SIGINT, server.stop)
    if not exit_with_supervisord():
        log.error("supervisord is gone; not starting")
        return 1
    # Bind before the slow imports, so that an unusable endpoint fails within
    # supervisord's startsecs and the program goes FATAL instead of looping.
    if not server.bind():
        return 1
    from orchestrator.rpc.startup import open_worker

    worker = open_worker(where)
    server.max_message_bytes = int(worker.settings["rpc.max_message_bytes"])
    # supervisord kills the worker rpc.stop_timeout seconds after SIGTERM: answer
    # what is in flight within most of it, and keep the rest to close the database.
    server.stop_budget = STOP_BUDGET_SHARE * float(worker.settings["rpc.stop_timeout"])
    try:
        threads = int(worker.settings["rpc.threads"])
        return server.serve(worker.processor, worker.pool, threads)
    finally:
        worker.close()


if __name__ == "__main__":
    sys.exit(main())
