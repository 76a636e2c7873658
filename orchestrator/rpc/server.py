"""The worker's serve loop: one thread owns the ZeroMQ socket, threads do the work.

Quick methods (marked `inline`, like system.ping) are answered by the loop
itself; the others run on a thread pool, so that a slow call (an Argon2
hash, a group commit) never delays anyone else's answer. Finished calls come
back through a queue and a socketpair that wakes the loop; replies are sent
by the loop, since ZeroMQ sockets are not thread-safe.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import select
import signal
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

import zmq

from orchestrator.rpc import frames
from orchestrator.rpc.protocol import Call, Parsed, Processor, oversized, unrenderable

log = logging.getLogger("nua.rpc")
POLL_MS = 200
# How long the loop waits in recv when nothing runs on threads: the longest a
# SIGTERM waits to be seen (pyzmq resumes a recv that a signal interrupted).
IDLE_MS = 50
DRAIN = 64  # messages taken per wake-up before looking at finished calls again
# At stop, how long (from SIGTERM) calls waiting for their group commit may take to
# be answered; the worker sets it from rpc.stop_timeout (see `stop_budget`).
DRAIN_SECONDS = 30.0


@dataclass
class _Pending:
    envelope: list[bytes]
    parsed: Parsed
    replies: list[str | None]
    remaining: int


class Server:
    """Binds a ROUTER socket and answers JSON-RPC messages until stopped."""

    def __init__(self, endpoint: str, max_message_bytes: int = 1 << 20) -> None:
        self.endpoint = endpoint
        self.max_message_bytes = max_message_bytes
        self.sock = zmq.Context.instance().socket(zmq.ROUTER)
        self.stopping = False
        # Seconds from SIGTERM within which the loop answers what is in flight.
        self.stop_budget = DRAIN_SECONDS
        self._stop_began = 0.0
        self._done: queue.SimpleQueue[tuple[_Pending, int, str | None]] = queue.SimpleQueue()
        self._on_threads = 0  # calls handed to the pool and not answered yet
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)
        self._wake_r.setblocking(False)
        self._wake_lock = threading.Lock()
        self._wake_pending = False  # a wake-up byte was sent and not yet taken

    def stop(self, signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        if not self.stopping:
            self._stop_began = time.monotonic()
        self.stopping = True
        # Wake the loop now, not at the end of its poll (pyzmq polls on after a signal).
        with contextlib.suppress(BlockingIOError, OSError):
            self._wake_w.send(b"\0")

    def bind(self) -> bool:
        """Bind the socket; False (after logging why) when the endpoint is unusable."""
        self.sock.setsockopt(zmq.LINGER, 1000)
        # A hard cap well above the setting: messages between the two get a
        # clear error; larger ones make libzmq drop the connection.
        self.sock.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes * 4)
        try:
            self.sock.bind(self.endpoint)
        except zmq.ZMQError as exc:
            log.error("cannot bind %s: %s", self.endpoint, exc)
            self.sock.close()
            return False
        return True

    def serve(self, processor: Processor, pool: ThreadPoolExecutor, threads: int) -> int:
        """Answer messages until SIGTERM; then finish what is in flight and return 0.

        Calls that are not `inline` run on `pool` (the worker's `threads` threads).
        """
        self.processor = processor
        self.pool = pool
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(self._wake_r.fileno(), zmq.POLLIN)
        log.info("serving JSON-RPC on %s (%d threads)", self.endpoint, threads)
        self.sock.setsockopt(zmq.RCVTIMEO, IDLE_MS)
        try:
            while not self.stopping:
                if self._on_threads:
                    # Answers of calls on threads come through the socketpair too.
                    events = dict(poller.poll(POLL_MS))
                    if self.sock in events:
                        self._receive(ready=True)
                    if self._wake_r.fileno() in events:
                        self._collect()
                else:
                    # Nothing on threads: wait in recv itself, as a bare ZeroMQ server
                    # does (a poll costs three more syscalls per message).
                    self._receive(ready=False)
        finally:
            # Calls already running finish and are answered before the socket closes.
            self.pool.shutdown(wait=True)
            self._drain()
            self.sock.close()
            zmq.Context.instance().term()
            self._wake_r.close()
            self._wake_w.close()
            self._remove_ipc_file()
        log.info("stopped")
        return 0

    def _receive(self, ready: bool) -> None:
        """Take the messages waiting (up to DRAIN), or wait up to IDLE_MS for one.

        Waiting (nothing on threads), one message is taken: the next recv
        returns at once if another waits, without a ZMQ_EVENTS query (a syscall).
        """
        sock = self.sock
        for drained in range(DRAIN if ready else 1):
            if drained and not frames.readable(sock):
                return
            try:
                received = frames.recv_frames(sock, wait=not ready)
            except zmq.Again:
                return
            # REQ clients send [identity, b"", payload]; DEALER clients [identity, payload].
            if len(received) < 2:
                continue
            try:
                self._handle(received[:-1], received[-1])
            except Exception:  # a last guard: the loop must never die
                log.exception("unexpected failure while handling a message")

    def _handle(self, envelope: list[bytes], payload: bytes) -> None:
        processor = self.processor
        if len(payload) > self.max_message_bytes:
            self._reply(envelope, oversized(self.max_message_bytes))
            return
        parsed = processor.parse(payload)
        if len(parsed.calls) == 1 and not parsed.batch:
            # The common case (one call) without the bookkeeping of batches.
            reply = self._start(parsed.calls[0])
            if isinstance(reply, Future):
                self._answer_later(_Pending(envelope, parsed, [None], 0), 0, reply)
            else:
                self._send(envelope, parsed, [reply])
            return
        pending = _Pending(envelope, parsed, [None] * len(parsed.calls), 0)
        for index, call in enumerate(parsed.calls):
            reply = self._start(call)
            if isinstance(reply, Future):
                self._answer_later(pending, index, reply)
            else:
                pending.replies[index] = reply
        if pending.remaining == 0:
            self._send(pending.envelope, pending.parsed, pending.replies)

    def _start(self, call: Call) -> str | Future[Any] | None:
        """Run a quick call on the loop, a slow one on a thread; its answer or a Future of it."""
        if call.reply is not None or (call.method is not None and call.method.inline):
            return self.processor.execute(call)
        return self.pool.submit(self.processor.execute, call)

    def _answer_later(self, pending: _Pending, index: int, future: Future[Any]) -> None:
        pending.remaining += 1
        self._on_threads += 1
        future.add_done_callback(partial(self._finished, pending, index))

    def _finished(self, pending: _Pending, index: int, future: Future[Any]) -> None:
        """Hand an answer to the loop and wake it (runs on whichever thread finished it)."""
        try:
            reply = future.result()
        except BaseException:
            log.exception("a call failed outside the processor")
            reply = None
        if isinstance(reply, Future):
            # A method on a thread returned a queued write: its answer comes later.
            reply.add_done_callback(partial(self._finished, pending, index))
            return
        self._done.put((pending, index, reply))
        # One wake-up for the answers of a group commit, not one per answer: the
        # loop takes every answer queued so far when it wakes (see _collect).
        with self._wake_lock:
            if self._wake_pending:
                return
            self._wake_pending = True
        with contextlib.suppress(BlockingIOError, OSError):
            self._wake_w.send(b"\0")

    def _drain(self) -> None:
        """Answer the calls still waiting for their writes (the writer is still running).

        Until `stop_budget` seconds after SIGTERM: a change still queued then
        goes unanswered (it commits as the writer closes, or not at all; a
        retry with the same idempotency key gets its answer or applies it once).
        """
        deadline = (self._stop_began or time.monotonic()) + self.stop_budget
        self._collect()
        while self._on_threads and (left := deadline - time.monotonic()) > 0:
            select.select([self._wake_r], [], [], min(left, POLL_MS / 1000))
            self._collect()
        if self._on_threads:
            log.warning(
                "stopping with %d call(s) unanswered %gs after the stop signal",
                self._on_threads,
                self.stop_budget,
            )

    def _collect(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while self._wake_r.recv(4096):
                pass
        # In this order: a thread that queues an answer from now on sends a byte
        # this call has not taken, so the loop wakes again; answers queued
        # before are taken below. (Resetting before taking the bytes could take
        # the byte of an answer queued after the queue was emptied.)
        with self._wake_lock:
            self._wake_pending = False
        while True:
            try:
                pending, index, reply = self._done.get_nowait()
            except queue.Empty:
                return
            pending.replies[index] = reply
            pending.remaining -= 1
            self._on_threads -= 1
            if pending.remaining == 0:
                self._send(pending.envelope, pending.parsed, pending.replies)

    def _send(self, envelope: list[bytes], parsed: Parsed, replies: list[str | None]) -> None:
        try:
            message = self.processor.render(parsed, replies)
        except Exception:  # a last guard: a request that carried an id is always answered
            message = unrenderable()
        if message is not None:
            self._reply(envelope, message)

    def _reply(self, envelope: list[bytes], message: bytes) -> None:
        try:
            frames.send_frames(self.sock, envelope, message)
        except zmq.ZMQError as exc:  # the client went away
            log.warning("could not send a reply: %s", exc)

    def _remove_ipc_file(self) -> None:
        # libzmq does not always remove the ipc file on close; a stale one
        # would look like a crashed run.
        if self.endpoint.startswith("ipc://"):
            path = Path(self.endpoint.removeprefix("ipc://"))
            if path.is_socket():
                path.unlink(missing_ok=True)
