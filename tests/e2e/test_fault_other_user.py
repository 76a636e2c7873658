"""Fault 9: another local user can neither connect to our sockets nor read our files.

A running orchestrator with a backup is probed as `nobody` (setpriv) by the
system python with nothing but the standard library: connect to each unix
socket, open each file, list each folder. Every attempt must fail with
EACCES. The same probe as root must succeed, or the test could not fail.

The home is a mkdtemp folder, 0700: on its own it would stop nobody before
any of our modes were tried. It is opened to 0711 (traversable, not
listable), so that the only protection left is the orchestrator's own: its
0700 locations and its 0600 files and 0700 sockets. A second round loosens
the locations to 0711 as well, to prove the files and sockets are private
on their own.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from orchestrator.host.locations import resolve
from tests.support.orchestrator import Orchestrator

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: setpriv to another user"),
]

SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"
# Not the venv's python: it may live under /root, where nobody cannot reach it.
SYSTEM_PYTHON = "/usr/bin/python3"
AS_NOBODY = [SETPRIV, "--reuid=nobody", "--regid=nogroup", "--clear-groups"]

# Tries each (kind, path) of argv[1] and prints, for each, "ok" or the errno's name.
PROBE = r"""
import errno, json, os, socket, sys

def attempt(kind, path):
    if kind == "connect":
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(path)
    elif kind == "read":
        with open(path, "rb") as fh:
            fh.read(1)
    elif kind == "list":
        os.listdir(path)
    elif kind == "stat":
        os.stat(path)
    else:
        raise ValueError(kind)

results = []
for kind, path in json.loads(sys.argv[1]):
    try:
        attempt(kind, path)
        outcome = "ok"
    except OSError as exc:
        outcome = errno.errorcode.get(exc.errno, str(exc.errno))
    results.append([kind, path, outcome])
print(json.dumps(results))
"""

Attempt = tuple[str, str]


def probe(attempts: list[Attempt], *, as_nobody: bool) -> dict[Attempt, str]:
    """Run PROBE (as nobody, or as root) and return the outcome of each attempt."""
    prefix = AS_NOBODY if as_nobody else []
    done = subprocess.run(
        [*prefix, SYSTEM_PYTHON, "-I", "-S", "-c", PROBE, json.dumps(attempts)],
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, f"the probe failed: {done.stdout}{done.stderr}"
    return {(kind, path): outcome for kind, path, outcome in json.loads(done.stdout)}


def attempts_for(home: Path) -> list[Attempt]:
    """Every location, file and socket under the home: list it, read it or connect to it."""
    found: list[Attempt] = []
    for dirpath, dirnames, filenames in os.walk(home):
        for name in sorted(dirnames):
            found.append(("list", str(Path(dirpath) / name)))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            mode = path.lstat().st_mode
            if stat.S_ISSOCK(mode):
                found.append(("connect", str(path)))
            elif stat.S_ISREG(mode):
                found.append(("read", str(path)))
            else:
                pytest.fail(f"{path} is neither a folder, a file nor a socket: {mode:o}")
    return found


@contextmanager
def loosened(folders: list[Path], mode: int) -> Iterator[None]:
    """chmod `folders` to `mode` for a while, and back to what each was."""
    before = {folder: stat.S_IMODE(folder.stat().st_mode) for folder in folders}
    try:
        for folder in folders:
            folder.chmod(mode)
        yield
    finally:
        for folder, old in before.items():
            folder.chmod(old)


def _denied(outcomes: dict[Attempt, str]) -> dict[Attempt, str]:
    return {attempt: outcome for attempt, outcome in outcomes.items() if outcome != "EACCES"}


@pytest.mark.timeout(90)
def test_nobody_cannot_connect_to_or_read_anything_of_ours(orch: Orchestrator) -> None:
    assert Path(SETPRIV).exists(), "setpriv (util-linux) is needed to act as another user"
    assert Path(SYSTEM_PYTHON).exists(), f"{SYSTEM_PYTHON} is needed to probe as nobody"
    home = orch.home
    # mkdtemp made it 0700: open it to traversal, so that our own modes are what is tested.
    home.chmod(0o711)
    orch.start()
    made = orch.run("backup", "--json")
    assert made.returncode == 0, made.stdout + made.stderr
    where = resolve(home)
    backup = made.json()["path"]
    rpc_socket = where.rpc_endpoint.removeprefix("ipc://")

    attempts = attempts_for(home)
    required = [
        ("connect", rpc_socket),
        ("connect", str(where.supervisor_socket)),
        ("read", str(where.database)),
        ("read", str(where.database) + "-wal"),
        ("read", backup),
        ("read", str(where.supervisor_conf)),
        ("read", str(where.logs / "rpc.log")),
        ("read", str(where.logs / "sentinel.log")),
        ("read", str(where.logs / "supervisord.log")),
        ("list", str(where.data / "backups")),
    ]
    missing = [attempt for attempt in required if attempt not in attempts]
    assert not missing, f"not in the running home: {missing}"

    # The control: root gets everything, so the probe can see a success.
    as_root = probe(attempts, as_nobody=False)
    assert {a: o for a, o in as_root.items() if o != "ok"} == {}

    # Nobody can reach the home and stat a location, but gets into none of them.
    reach = [("stat", str(where.data)), ("stat", str(where.runtime))]
    assert probe(reach, as_nobody=True) == {attempt: "ok" for attempt in reach}
    as_nobody = probe(attempts, as_nobody=True)
    assert set(as_nobody) == set(attempts)
    assert _denied(as_nobody) == {}, "nobody got past our locations' modes"

    # With the locations loosened to 0711 (a mistake an operator could make), the
    # files (0600) and sockets (0700) still keep nobody out on their own.
    folders = [where.data, where.runtime, where.logs, where.config, where.data / "backups"]
    inside = [(kind, path) for kind, path in attempts if kind != "list"]
    with loosened(folders, 0o711):
        reach = [("stat", str(where.database)), ("stat", rpc_socket)]
        assert probe(reach, as_nobody=True) == {attempt: "ok" for attempt in reach}
        loose = probe(inside, as_nobody=True)
    assert _denied(loose) == {}, "a file or socket of ours is open to others"

    assert orch.ping() == "pong"
    orch.stop()
    assert orch.processes() == []
