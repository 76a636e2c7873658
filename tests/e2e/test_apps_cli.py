"""`nua install` and `nua apps|app ...` through the real binaries, with the sample apps."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.apps.archive import pack
from orchestrator.rpc.client import RpcClient
from tests.support.apps import SAMPLES, answers, fetch, sample
from tests.support.orchestrator import Orchestrator, kill_processes_in

pytestmark = pytest.mark.e2e


@pytest.fixture
def apps_home(orch: Orchestrator) -> Iterator[Orchestrator]:
    # As root, apps run as another user, who must be able to pass through the home.
    orch.home.chmod(0o711)
    orch.start()
    yield orch
    print("---- rpc.log ----\n" + orch.log("rpc")[-6000:])  # shown when the test failed
    kill_processes_in(orch.home)


def nua(orch: Orchestrator, *args: str, timeout: float = 180):
    return orch.run(*args, cli="nua", timeout=timeout)


def upgraded_copy(tmp: Path, version: str) -> Path:
    folder = tmp / f"hello-{version}"
    shutil.copytree(SAMPLES / "hello", folder)
    config = folder / "nua-config.toml"
    config.write_text(config.read_text().replace('version = "1.0.0"', f'version = "{version}"'))
    return folder


@pytest.mark.timeout(300)
def test_the_hello_sample_through_nua(apps_home: Orchestrator, tmp_path: Path) -> None:
    orch = apps_home
    done = nua(orch, "install", str(SAMPLES / "hello"), "--label", "hello", "--env", "GREETING=hey")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "installed hello" in done.stdout
    listed = nua(orch, "apps", "--json")
    assert listed.returncode == 0, listed.stderr
    (app,) = listed.json()
    port = app["ports"]["web"]
    assert app["state"] == "running" and app["health"] == "healthy"
    assert fetch(port) == "<p>hello 1.0.0 hey visits=1</p>\n"
    table = nua(orch, "apps")
    assert "hello" in table.stdout and f"web={port}" in table.stdout

    up = nua(orch, "install", str(upgraded_copy(tmp_path, "1.1.0")), "--label", "hello")
    assert up.returncode == 0, up.stdout + up.stderr
    assert fetch(port) == "<p>hello 1.1.0 hey visits=2</p>\n", "data kept across the upgrade"

    back = nua(orch, "app", "rollback", "hello")
    assert back.returncode == 0, back.stdout + back.stderr
    assert fetch(port) == "<p>hello 1.0.0 hey visits=3</p>\n"

    assert nua(orch, "app", "env", "hello", "GREETING=yo").returncode == 0
    assert nua(orch, "app", "restart", "hello").returncode == 0
    assert fetch(port) == "<p>hello 1.0.0 yo visits=4</p>\n"

    assert nua(orch, "app", "stop", "hello").returncode == 0
    assert not answers(port)
    assert nua(orch, "app", "start", "hello").returncode == 0
    assert answers(port)

    logs = nua(orch, "app", "logs", "hello", "--lines", "3")
    assert logs.returncode == 0, logs.stderr
    assert "hello 1.0.0 on 127.0.0.1:" in logs.stdout, logs.stdout
    removed = nua(orch, "app", "remove", "hello", "--purge", "--json")
    assert removed.returncode == 0, removed.stderr
    assert json.loads(removed.stdout)["data_kept"] is None
    assert not answers(port)
    # Purged: no folder (data included), section or log is left.
    assert not (orch.home / "apps" / "hello").exists()
    assert list((orch.locations.config / "apps").iterdir()) == []
    assert list((orch.locations.logs / "apps").iterdir()) == []
    again = nua(orch, "app", "remove", "hello")
    assert again.returncode == 4, again.stdout + again.stderr


@pytest.mark.parametrize(
    ("sample", "step", "says"),
    [
        ("build-fails", "build", "error: missing dependency libexample"),
        ("crashes-at-start", "start", "cannot open database"),
        ("never-healthy", "health", "answered 500"),
    ],
)
@pytest.mark.timeout(120)
def test_failing_samples_name_their_step_and_leave_nothing(
    apps_home: Orchestrator, sample: str, step: str, says: str
) -> None:
    done = nua(apps_home, "install", str(SAMPLES / sample))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"failed at step {step}" in done.stderr
    assert says in done.stderr + done.stdout
    assert nua(apps_home, "apps", "--json").json() == []
    assert not (apps_home.home / "apps" / sample).exists()
    assert list((apps_home.locations.config / "apps").iterdir()) == []
    logs = apps_home.locations.logs / "apps"
    assert not logs.exists() or list(logs.iterdir()) == [], "no log of the failed install"


@pytest.mark.timeout(180)
def test_an_app_without_a_health_check_installs_upgrades_and_rolls_back(
    apps_home: Orchestrator, tmp_path: Path
) -> None:
    """Its release stores health None; ready once its process has run for a second."""
    orch = apps_home
    done = nua(orch, "install", str(SAMPLES / "no-healthcheck"), "--label", "worker")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "installed worker (no-healthcheck 1.0.0)" in done.stdout
    newer = sample("no-healthcheck", tmp_path, **{'version = "1.0.0"': 'version = "1.1.0"'})
    up = nua(orch, "install", str(newer), "--label", "worker")
    assert up.returncode == 0, up.stdout + up.stderr
    back = nua(orch, "app", "rollback", "worker")
    assert back.returncode == 0, back.stdout + back.stderr
    (app,) = nua(orch, "apps", "--json").json()
    assert (app["version"], app["state"], app["ports"]) == ("1.0.0", "running", {})
    assert (app["release"], app["previous_release"]) == (1, 2)
    logs = nua(orch, "app", "logs", "worker").stdout
    assert "no-healthcheck 1.1.0 working" in logs and logs.rstrip().endswith("1.0.0 working")


@pytest.mark.timeout(180)
def test_an_app_of_several_chunks_uploads_whatever_apps_chunk_bytes_says(
    orch: Orchestrator, tmp_path: Path
) -> None:
    """1 MiB chunks (the old default) in base64 exceed rpc.max_message_bytes (1 MiB): the
    worker announces a chunk size that fits, and a 3 MiB incompressible app installs."""
    orch.env["NUA_APPS_CHUNK_BYTES"] = str(1 << 20)
    orch.home.chmod(0o711)
    orch.start()
    folder = sample("no-healthcheck", tmp_path)
    blob = os.urandom(3 << 20)
    (folder / "blob.bin").write_bytes(blob)
    packed = pack(folder)
    chunk = RpcClient(orch.locations.rpc_endpoint, timeout=10).call(
        "app.upload_begin", {"size": len(packed), "sha256": hashlib.sha256(packed).hexdigest()}
    )["chunk_bytes"]
    assert len(packed) // chunk >= 3, "the app spans several chunks"
    done = nua(orch, "install", str(folder), "--label", "big")
    assert done.returncode == 0, done.stdout + done.stderr
    release = orch.home / "apps" / "big" / "releases" / "1"
    assert hashlib.sha256((release / "blob.bin").read_bytes()).digest() == (
        hashlib.sha256(blob).digest()
    )
    (app,) = nua(orch, "apps", "--json").json()
    assert app["state"] == "running"
    assert nua(orch, "app", "remove", "big").returncode == 0
