"""Issue 4, fault test 6: the data location's disk fills up during writes."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.rpc.client import RpcClient, UnavailableError
from tests.support.faults import integrity, usernames
from tests.support.orchestrator import Orchestrator

pytestmark = pytest.mark.e2e
TMPFS_SIZE = "4m"


@pytest.fixture
def small_disk(short_home: Path) -> Iterator[Orchestrator]:
    """An orchestrator whose data location is a small tmpfs of its own."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    data = short_home / "data"
    data.mkdir(mode=0o700)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs", str(data)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    orch = Orchestrator(short_home)
    try:
        yield orch
    finally:
        leaked = orch.kill_everything()
        subprocess.run(["umount", str(data)], check=False)
    assert not leaked, f"processes leaked from {short_home}: {leaked}"


def _fill(folder: Path) -> Path:
    """Write a file until the file system has no byte left; return it."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for chunk in (1 << 16, 1 << 9, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * chunk)
    finally:
        os.close(fd)
    with pytest.raises(OSError) as full:
        (folder / "probe").write_bytes(b"x" * 4096)
    assert full.value.errno == errno.ENOSPC
    (folder / "probe").unlink(missing_ok=True)
    return filler


def _add(client: RpcClient, name: str) -> None:
    client.call("user.add", {"username": name, "email": f"{name}@example.com"})


@pytest.mark.timeout(120)
def test_disk_full_is_a_clear_error_reads_go_on_and_writes_resume(
    small_disk: Orchestrator,
) -> None:
    orch = small_disk
    orch.start()
    db = orch.locations.database
    worker = orch.program("nua:rpc").pid
    client = RpcClient(orch.locations.rpc_endpoint, timeout=10, retries=0)
    acked = [f"before{i}" for i in range(50)]
    for name in acked:
        _add(client, name)

    filler = _fill(orch.locations.data)
    refused: UnavailableError | None = None
    for i in range(500):
        name = f"full{i}"
        try:
            _add(client, name)
        except UnavailableError as exc:
            refused = exc
            break
        acked.append(name)  # a write that still fitted in space SQLite had already
    assert refused is not None, "the disk never filled up"
    assert refused.name == "unavailable"
    assert refused.data["reason"] == "storage_full"
    assert "storage full" in refused.message
    assert "disk" not in refused.message and "SQLITE" not in refused.message

    # Reads keep working and every acknowledged write is there.
    assert client.call("user.count") == len(acked)
    assert client.call("user.get", ["before0"])["username"] == "before0"
    with pytest.raises(UnavailableError):
        _add(client, "still-full")

    filler.unlink()
    _add(client, "after-space-freed")
    _add(client, refused_name := f"full{len(acked) - 50}")
    acked += ["after-space-freed", refused_name]
    assert client.call("user.count") == len(acked)
    assert orch.program("nua:rpc").pid == worker, "the worker must survive a full disk"
    log = orch.log("rpc")
    assert "failed: database or disk is full" in log, log[-2000:]
    assert "Traceback" not in log
    client.close()
    orch.stop()
    assert integrity(db) == ["ok"]
    assert sorted(usernames(db)) == sorted(acked)
