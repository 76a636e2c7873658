"""Issue 4, fault test 6: the storage fills up during writes (a small tmpfs, or RLIMIT_FSIZE)."""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.rpc.client import RpcClient, UnavailableError
from tests.support.faults import integrity, usernames
from tests.support.orchestrator import Orchestrator
from tests.support.polling import wait_for

pytestmark = pytest.mark.e2e
TMPFS_SIZE = "4m"
# Room left above the database's and the WAL's size when the file size limit is set:
# a few writes still fit, then the WAL reaches the limit.
FSIZE_ROOM = 64 * 1024


class FullDisk:
    """A way to run out of storage under the worker, and to free it again."""

    # What SQLite says in the worker's log when the write does not fit.
    logged = ""

    def fill(self, orch: Orchestrator) -> None:
        raise NotImplementedError

    def free(self, orch: Orchestrator) -> None:
        raise NotImplementedError


class SmallTmpfs(FullDisk):
    """The data location is a small tmpfs of its own, filled up by a file (needs root)."""

    logged = "failed: database or disk is full"

    def __init__(self) -> None:
        self.filler: Path | None = None

    def fill(self, orch: Orchestrator) -> None:
        self.filler = _fill(orch.locations.data)

    def free(self, orch: Orchestrator) -> None:
        assert self.filler is not None
        self.filler.unlink()


class FileSizeLimit(FullDisk):
    """RLIMIT_FSIZE on the worker, through prlimit(2): no privilege needed, runs everywhere.

    The limit is set just above the database's and the WAL's size, so the
    WAL reaches it after a few writes; raising it again is freeing the space.
    """

    logged = "failed: disk I/O error"

    def __init__(self) -> None:
        self.pid = 0
        self.hard = resource.RLIM_INFINITY

    def fill(self, orch: Orchestrator) -> None:
        self.pid = orch.program("nua:rpc").pid
        db = orch.locations.database
        sizes = [p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists()]
        _soft, self.hard = resource.prlimit(self.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(self.pid, resource.RLIMIT_FSIZE, (max(sizes) + FSIZE_ROOM, self.hard))

    def free(self, orch: Orchestrator) -> None:
        assert orch.program("nua:rpc").pid == self.pid, "the worker restarted"
        resource.prlimit(self.pid, resource.RLIMIT_FSIZE, (self.hard, self.hard))


@pytest.fixture(params=["tmpfs", "rlimit"])
def full_disk(
    request: pytest.FixtureRequest, short_home: Path
) -> Iterator[tuple[Orchestrator, FullDisk]]:
    """An orchestrator, and a way to fill its storage: a small tmpfs, or a file size limit.

    The tmpfs needs root and a kernel that lets this process mount; the file
    size limit needs nothing, so the fault test runs everywhere.
    """
    data = short_home / "data"
    mounted = False
    if request.param == "tmpfs":
        if os.geteuid() != 0:
            pytest.skip("mounting a small tmpfs needs root; the rlimit variant runs instead")
        data.mkdir(mode=0o700)
        mount = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs", str(data)],
            capture_output=True,
            text=True,
            check=False,
        )
        if mount.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({mount.stderr.strip()}); rlimit runs instead")
        mounted = True
    orch = Orchestrator(short_home)
    try:
        yield orch, SmallTmpfs() if request.param == "tmpfs" else FileSizeLimit()
    finally:
        leaked = orch.kill_everything()
        unmounted = (
            subprocess.run(["umount", str(data)], capture_output=True, text=True, check=False)
            if mounted
            else None
        )
    assert not leaked, f"processes leaked from {short_home}: {leaked}"
    if unmounted is not None:
        assert unmounted.returncode == 0, f"umount {data} failed: {unmounted.stderr.strip()}"


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
    full_disk: tuple[Orchestrator, FullDisk],
) -> None:
    orch, disk = full_disk
    orch.start()
    db = orch.locations.database
    worker = orch.program("nua:rpc").pid
    client = RpcClient(orch.locations.rpc_endpoint, timeout=10, retries=0)
    acked = [f"before{i}" for i in range(50)]
    for name in acked:
        _add(client, name)

    disk.fill(orch)
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

    disk.free(orch)
    _add(client, "after-space-freed")
    _add(client, refused_name := f"full{len(acked) - 50}")
    acked += ["after-space-freed", refused_name]
    assert client.call("user.count") == len(acked)
    assert orch.program("nua:rpc").pid == worker, "the worker must survive a full disk"
    # supervisord copies the worker's output to rpc.log on its own time.
    wait_for(lambda: disk.logged in orch.log("rpc"), what=f"{disk.logged!r} in rpc.log")
    log = orch.log("rpc")
    assert "Traceback" not in log
    client.close()
    orch.stop()
    assert integrity(db) == ["ok"]
    assert sorted(usernames(db)) == sorted(acked)
