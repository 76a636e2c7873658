"""Create or refresh the project's virtual environment, then hand over to it.

Used by the launchers in bin/: they work from a fresh checkout with only
python3 >= 3.11 and git. The environment lives in .venv (or $NUA_VENV) and is
reinstalled whenever pyproject.toml changes.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("NUA_VENV") or ROOT / ".venv")
STAMP = VENV / ".nua-installed"
MIN_PYTHON = (3, 11)
PIP_JSON = "https://pypi.org/pypi/pip/json"


def say(message: str) -> None:
    print(f"[bin] {message}", file=sys.stderr, flush=True)


def fail(message: str) -> None:
    say(f"error: {message}")
    sys.exit(1)


def venv_bin(name: str) -> Path:
    return VENV / "bin" / name


def ensure(extras: tuple[str, ...] = ()) -> None:
    """Make sure .venv exists with the project (and `extras`) installed, as pyproject says."""
    if sys.version_info < MIN_PYTHON:
        need = ".".join(map(str, MIN_PYTHON))
        fail(f"python {need} or newer is needed, this is {sys.version.split()[0]}")
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if _installed(digest, extras):
        return
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(VENV.parent / f"{VENV.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two launchers at once install once
        if _installed(digest, extras):
            return
        wanted = sorted(set(extras) | set(_stamp().get("extras", [])))
        if not venv_bin("python").exists():
            _create()
        spec = f"{ROOT}[{','.join(wanted)}]" if wanted else str(ROOT)
        say(f"installing nua-orchestrator into {VENV} (first run or pyproject.toml changed)")
        pip = [str(venv_bin("python")), "-m", "pip", "--disable-pip-version-check", "-q"]
        if subprocess.run([*pip, "install", "-e", spec], check=False).returncode != 0:
            fail(f"pip could not install {spec}; see the messages above")
        STAMP.write_text(json.dumps({"pyproject": digest, "extras": wanted}))


def _stamp() -> dict[str, object]:
    try:
        return json.loads(STAMP.read_text())
    except (OSError, ValueError):
        return {}


def _installed(digest: str, extras: tuple[str, ...]) -> bool:
    stamp = _stamp()
    have = set(stamp.get("extras", []))  # type: ignore[arg-type]
    return stamp.get("pyproject") == digest and set(extras) <= have


def _create() -> None:
    say(f"creating a virtual environment in {VENV}")
    made = subprocess.run(
        [sys.executable, "-m", "venv", str(VENV)], capture_output=True, check=False
    )
    if made.returncode == 0:
        return
    # Debian's python3 lacks ensurepip unless python3-venv is installed: make the
    # environment without pip, then bring pip in from its wheel on PyPI.
    bare = subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(VENV)], capture_output=True, check=False
    )
    if bare.returncode != 0:
        fail(f"python3 -m venv failed: {made.stderr.decode(errors='replace').strip()}")
    say("this python has no ensurepip; fetching pip from PyPI")
    try:
        with urllib.request.urlopen(PIP_JSON, timeout=60) as resp:
            urls = json.load(resp)["urls"]
        wheel_url = next(u["url"] for u in urls if u["filename"].endswith(".whl"))
        with tempfile.TemporaryDirectory() as tmp:
            wheel = Path(tmp) / wheel_url.rsplit("/", 1)[1]
            with urllib.request.urlopen(wheel_url, timeout=120) as resp:  # noqa: S310
                wheel.write_bytes(resp.read())
            subprocess.run(
                [str(venv_bin("python")), f"{wheel}/pip", "install", "-q", str(wheel)], check=True
            )
    except Exception as exc:
        fail(f"could not install pip into {VENV} ({exc}); install python3-venv and retry")


def exec_in_venv(program: str, args: list[str]) -> None:
    """Replace this process with `program` from the virtual environment."""
    path = venv_bin(program)
    os.execv(path, [str(path), *args])  # noqa: S606 - hand over, no shell
