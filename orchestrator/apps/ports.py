"""Named ports for apps, allocated from the range in settings (apps.port_min..port_max)."""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping

from orchestrator.rpc.errors import Unavailable


def is_free(port: int) -> bool:
    """Whether nothing listens on `port` right now (a bind on all addresses succeeds)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("0.0.0.0", port))  # noqa: S104 (a probe, closed at once)
    except OSError:
        return False
    return True


def allocate(
    names: Iterable[str],
    keep: Mapping[str, int],
    taken: Iterable[int],
    low: int,
    high: int,
) -> dict[str, int]:
    """A port for each name: the one it had (`keep`), else the lowest free one in range.

    `taken` are ports other apps hold (even stopped ones). A port another
    process listens on is skipped.
    """
    used = set(taken)
    ports: dict[str, int] = {}
    for name in names:
        if name in keep:
            ports[name] = keep[name]
            used.add(keep[name])
    skipped: list[int] = []
    for name in names:
        if name in ports:
            continue
        for port in range(low, high + 1):
            if port in used:
                continue
            if not is_free(port):
                skipped.append(port)
                continue
            ports[name] = port
            used.add(port)
            break
        else:
            busy = (
                f" ({', '.join(map(str, skipped[:5]))} taken by other processes)" if skipped else ""
            )
            raise Unavailable(
                f"no free port for port.{name} in {low}-{high}{busy}: free one, or widen "
                "the range (nua settings set apps.port_max ...)",
                field=f"port.{name}",
            )
    return ports
