"""Fault 10: a symlink planted where a location's file should be; start follows nothing.

Each case plants one link in a home that a real run left (database, logs,
rendered config, lock, a backup), then runs `nua-orchestrator start`. It must
refuse in one line naming the link, leave nothing running, and follow
nothing: the link's target is not created, written, chmod-ed or touched, and
no byte or timestamp in the home changes. The list of cases is checked
against an inventory of a running home, so that a file a later release adds
to the locations needs a case here.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.badinput import assert_refused, db_fingerprint, scratch_dir, sha256
from tests.support.orchestrator import Orchestrator

pytestmark = pytest.mark.e2e

BACKUP = re.compile(r"^data/backups/nua-\d{8}T\d{6}Z(-\d+)?\.db$")
# Where a backup case plants its link: any name of the backups' pattern.
A_BACKUP = "data/backups/nua-20240101T000000Z.db"
LOCATION_FOLDERS = ("data", "run", "log", "config")
TARGET_BYTES = b"the target of a planted link: not the orchestrator's\n"
TARGET_MODE = 0o644
TARGET_MTIME_NS = 1_000_000_000 * 1_600_000_000  # 2020-09-13: anything but now


@dataclass(frozen=True)
class Plant:
    """One link to plant: where (relative to the home) and what it points to."""

    relative: str
    # "file": an existing file; "dangling": nothing; "folder": an existing empty folder.
    target: str

    @property
    def id(self) -> str:
        return f"{self.relative}->{self.target}"


# A link where a file exists in a stopped home points to an existing file (it
# must not be written, chmod-ed or touched); where the file appears only while
# running, or is a temporary name, the link dangles (its target must not be
# created). The files opened with O_CREAT are tried both ways.
PLANTS = [
    Plant("data/nua.db", "file"),
    Plant("data/nua.db", "dangling"),
    Plant("data/nua.db-wal", "dangling"),
    Plant("data/nua.db-shm", "dangling"),
    Plant("data/backups", "folder"),
    Plant(A_BACKUP, "file"),
    Plant("data/replaced", "folder"),
    Plant("run/orchestrator.lock", "file"),
    Plant("run/orchestrator.lock", "dangling"),
    Plant("run/supervisord.conf", "file"),
    Plant("run/supervisord.conf", "dangling"),
    Plant("run/supervisord.conf.new", "dangling"),
    Plant("run/supervisord.pid", "dangling"),
    Plant("run/run.json", "dangling"),
    Plant("run/run.json.new", "dangling"),
    Plant("run/rpc.sock", "dangling"),
    Plant("run/supervisor.sock", "dangling"),
    Plant("log/rpc.log", "file"),
    Plant("log/sentinel.log", "file"),
    Plant("log/supervisord.log", "file"),
    Plant("log/rpc.log.1", "dangling"),
    Plant("config/nua.toml", "dangling"),
    Plant("config/apps", "folder"),
]


@dataclass(frozen=True)
class SeededHome:
    """A home after a real start, backup and stop, and what the running home held."""

    path: Path
    running_inventory: frozenset[str]


@pytest.fixture(scope="module")
def seeded() -> Iterator[SeededHome]:
    """Start, back up and stop once; every test copies the home this leaves."""
    home = Path(tempfile.mkdtemp(prefix="nua"))
    orch = Orchestrator(home)
    try:
        orch.start()
        made = orch.run("backup")
        assert made.returncode == 0, made.stdout + made.stderr
        inventory = frozenset(_relative_paths(home))
        orch.stop()
        yield SeededHome(home, inventory)
    finally:
        leaked = orch.kill_everything()
        shutil.rmtree(home, ignore_errors=True)
        assert not leaked, f"processes leaked from {home}: {leaked}"


@pytest.fixture
def home(short_home: Path, seeded: SeededHome) -> Iterator[Orchestrator]:
    """A private copy of the seeded home (modes kept), under a fresh short path.

    A refusal starts nothing, so teardown runs `stop` (half a second of CLI)
    only when some process does carry the home, then fails the test for it.
    """
    orch = Orchestrator(short_home)
    for folder in LOCATION_FOLDERS:
        shutil.copytree(seeded.path / folder, orch.home / folder, symlinks=True)
    assert orch.locations.database.exists()
    yield orch
    leaked = [p.pid for p in orch.processes()]
    if leaked or orch.locations.supervisor_pidfile.exists():
        leaked += orch.kill_everything()
    assert not leaked, f"processes leaked from {short_home}: {sorted(set(leaked))}"


def _relative_paths(home: Path) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(home):
        for name in dirnames + filenames:
            yield str((Path(dirpath) / name).relative_to(home))


def _snapshot(root: Path, lock: Path | None = None) -> dict[str, tuple[object, ...]]:
    """Every entry under `root` (itself included): type, mode, content hash, mtime.

    The instance lock is the one file start writes before it refuses (its pid,
    truncated again on release): its content is compared, not its mtime.
    """
    out: dict[str, tuple[object, ...]] = {}
    paths = [root, *(root / rel for rel in _relative_paths(root))]
    for path in paths:
        st = path.lstat()
        key = str(path.relative_to(root))
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            out[key] = ("link", str(path.readlink()))
        elif stat.S_ISDIR(st.st_mode):
            out[key] = ("dir", mode, st.st_mtime_ns)
        elif stat.S_ISREG(st.st_mode):
            mtime = None if path == lock else st.st_mtime_ns
            out[key] = ("file", mode, sha256(path), mtime)
        else:
            out[key] = ("other", mode, st.st_mtime_ns)
    return out


def _make_target(scratch: Path, kind: str, copy_of: Path | None = None) -> Path:
    """The link's target in `scratch`, created as `kind` says, with a known mode and mtime."""
    target = scratch / "target"
    if kind == "file":
        target.write_bytes(copy_of.read_bytes() if copy_of else TARGET_BYTES)
    elif kind == "folder":
        target.mkdir()
    if kind != "dangling":
        target.chmod(TARGET_MODE if kind == "file" else 0o755)
        os.utime(target, ns=(TARGET_MTIME_NS, TARGET_MTIME_NS))
    return target


def _plant(orch: Orchestrator, plant: Plant, target: Path) -> Path:
    link = orch.home / plant.relative
    if link.is_dir() and not link.is_symlink():
        shutil.rmtree(link)
    else:
        link.unlink(missing_ok=True)
    link.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    link.symlink_to(target, target_is_directory=plant.target == "folder")
    return link


def _expected_refusal(orch: Orchestrator, link: Path, target: Path, action: str) -> list[str]:
    if link == orch.locations.lock_file:
        # Taken before the scan, and opened with O_NOFOLLOW: refused by the lock itself.
        return [f"lock file {link} is a symlink"]
    return [
        f"refusing to {action}: {link} is a symbolic link (to {target})",
        "nua-orchestrator follows no links in its locations: remove it",
    ]


@pytest.mark.parametrize("plant", PLANTS, ids=[p.id for p in PLANTS])
def test_start_refuses_a_planted_link_and_follows_nothing(home: Orchestrator, plant: Plant) -> None:
    orch = home
    with scratch_dir() as scratch:
        link = orch.home / plant.relative
        # A link in place of the database points to a real database, which a start that
        # followed it would upgrade and fill with settings.
        is_db = link == orch.locations.database
        target = _make_target(scratch, plant.target, orch.locations.database if is_db else None)
        _plant(orch, plant, target)
        scratch_before = _snapshot(scratch)
        home_before = _snapshot(orch.home, lock=orch.locations.lock_file)
        database = target if is_db else orch.locations.database
        db_before = db_fingerprint(database)

        result = orch.run("start")

        assert_refused(orch, result, *_expected_refusal(orch, link, target, "start"))
        assert _snapshot(scratch) == scratch_before, "the link's target was followed"
        if plant.target == "dangling":
            assert not os.path.lexists(target), "start created the link's target"
        assert link.is_symlink() and link.readlink() == target
        assert _snapshot(orch.home, lock=orch.locations.lock_file) == home_before
        assert db_fingerprint(database) == db_before


def test_every_file_of_a_running_home_has_a_case(seeded: SeededHome) -> None:
    """What a running home holds, each location's content, is planted by some case above."""
    planted = {p.relative for p in PLANTS}
    uncovered = set()
    for relative in seeded.running_inventory:
        if relative in LOCATION_FOLDERS:
            continue  # the locations themselves: test_bad_input.py, symlinked locations
        if BACKUP.match(relative):
            relative = A_BACKUP
        if relative not in planted:
            uncovered.add(relative)
    assert not uncovered, f"files of a running home that no case plants a link at: {uncovered}"
    for needed in ("data/nua.db-wal", "data/nua.db-shm", "run/rpc.sock", "run/supervisord.pid"):
        assert needed in seeded.running_inventory, f"{needed} not in a running home"


def test_restore_refuses_a_planted_link_before_anything(home: Orchestrator) -> None:
    orch = home
    backups = sorted((orch.locations.data / "backups").iterdir())
    assert len(backups) == 1
    with scratch_dir() as scratch:
        target = scratch / "target"
        link = orch.locations.run_manifest
        link.symlink_to(target)
        home_before = _snapshot(orch.home, lock=orch.locations.lock_file)

        result = orch.run("restore", str(backups[0]))

        assert_refused(orch, result, *_expected_refusal(orch, link, target, "restore"))
        assert not os.path.lexists(target)
        assert list(scratch.iterdir()) == []
        assert _snapshot(orch.home, lock=orch.locations.lock_file) == home_before
        assert not (orch.locations.data / "replaced").exists()
