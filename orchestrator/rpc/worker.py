"""The rpc worker program: serves JSON-RPC 2.0 on a ZeroMQ ROUTER socket.

Run by supervisord as `python -m orchestrator.rpc.worker`. It owns the
database. SIGTERM ends the loop between two messages, closes the socket
(which removes the ipc file) and exits 0.
"""

from __future__ import annotations

import logging
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import zmq

from orchestrator.host import locations as host_locations
from orchestrator.rpc.protocol import Processor
from orchestrator.rpc.registry import Registry, namespace_classes

if TYPE_CHECKING:
    from sqlalchemy import Engine

log = logging.getLogger("nua.rpc")
POLL_MS = 200
MAX_MESSAGE_BYTES = 1 << 20


@dataclass
class WorkerContext:
    """What methods may use: the database and facts about this worker."""

    engine: Engine
    database: str
    endpoint: str
    schema_revision: str | None


class Worker:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.sock = zmq.Context.instance().socket(zmq.ROUTER)
        self.stopping = False

    def stop(self, signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        self.stopping = True

    def bind(self) -> bool:
        """Bind the socket; False (after logging why) when the endpoint is unusable."""
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        try:
            self.sock.bind(self.endpoint)
        except zmq.ZMQError as exc:
            log.error("cannot bind %s: %s", self.endpoint, exc)
            self.sock.close()
            return False
        return True

    def serve(self, processor: Processor) -> int:
        log.info("serving JSON-RPC on %s", self.endpoint)
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        try:
            while not self.stopping:
                if not dict(poller.poll(POLL_MS)):
                    continue
                frames = self.sock.recv_multipart()
                self._answer(processor, frames)
        finally:
            self.sock.close()
            zmq.Context.instance().term()
            # libzmq does not always remove the ipc file on close; a stale one
            # would look like a crashed run.
            self._remove_ipc_file()
        log.info("stopped")
        return 0

    def _remove_ipc_file(self) -> None:
        path = Path(self.endpoint.removeprefix("ipc://"))
        if self.endpoint.startswith("ipc://") and path.is_socket():
            path.unlink(missing_ok=True)

    def _answer(self, processor: Processor, frames: list[bytes]) -> None:
        # REQ clients send [identity, b"", payload]; DEALER clients [identity, payload].
        if len(frames) < 2:
            return
        envelope, payload = frames[:-1], frames[-1]
        try:
            reply = processor.process(payload)
        except Exception:  # the processor answers errors itself; this is a last guard
            log.exception("unexpected failure while processing a message")
            return
        if reply is not None:
            self.sock.send_multipart([*envelope, reply])


def main() -> int:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    where = host_locations.resolve()
    worker = Worker(where.rpc_endpoint)
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    # Bind before the slow imports, so that an unusable endpoint fails within
    # supervisord's startsecs and the program goes FATAL instead of looping.
    if not worker.bind():
        return 1
    from orchestrator.db.engine import make_engine
    from orchestrator.db.schema import current_revision
    from orchestrator.db.url import database_url, display_url

    url = database_url(where)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            revision = current_revision(conn)
        context = WorkerContext(
            engine=engine,
            database=display_url(url),
            endpoint=where.rpc_endpoint,
            schema_revision=revision,
        )
        registry = Registry()
        for cls in namespace_classes():
            registry.add_namespace(cls(context))
        return worker.serve(Processor(registry))
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
