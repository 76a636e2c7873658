"""Sending and receiving ZeroMQ frames on the hot path, without pyzmq's per-call overhead.

pyzmq's friendly `zmq.Socket` methods turn every flag and option into an
enum on each call: `send_multipart` of a three-frame reply costs about 5 us
where the Cython socket underneath takes under 1 us. A ping is a few tens of
microseconds in all, so the worker's loop and the client go straight to the
Cython methods with plain integer flags. Everything else keeps pyzmq's API.
"""

from __future__ import annotations

import zmq
from zmq.backend import Socket as _CythonSocket

NOBLOCK = int(zmq.NOBLOCK)
_MORE = int(zmq.SNDMORE | zmq.NOBLOCK)
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)
_send = _CythonSocket.send
_recv = _CythonSocket.recv
_get = _CythonSocket.get


def readable(sock: zmq.Socket[bytes]) -> bool:
    """Whether a message waits on `sock` (asking ZMQ_EVENTS costs less than a failed recv)."""
    return bool(_get(sock, _EVENTS) & _POLLIN)


def recv_frames(sock: zmq.Socket[bytes], wait: bool = False) -> list[bytes]:
    """The frames of the next message on `sock`; zmq.Again when none comes.

    Without `wait`, only a message already waiting (see `readable`); with it,
    up to the socket's RCVTIMEO. A zmq.Frame says whether more frames follow
    without a ZMQ_RCVMORE query, which pyzmq turns into an enum lookup per frame.
    """
    frame = _recv(sock, 0 if wait else NOBLOCK, False)
    received = [frame.bytes]
    while frame.more:
        frame = _recv(sock, NOBLOCK, False)
        received.append(frame.bytes)
    return received


def send_frames(sock: zmq.Socket[bytes], envelope: list[bytes], payload: bytes) -> None:
    """Send `envelope` then `payload` as one message, without blocking."""
    for frame in envelope:
        _send(sock, frame, _MORE)
    _send(sock, payload, NOBLOCK)


def send(sock: zmq.Socket[bytes], payload: bytes) -> None:
    """Send one frame (a REQ socket adds its own envelope)."""
    _send(sock, payload, 0)


def recv(sock: zmq.Socket[bytes]) -> bytes:
    """Receive one frame, waiting as long as the socket's RCVTIMEO (zmq.Again after it)."""
    return _recv(sock, 0)
