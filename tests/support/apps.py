"""Installing apps in end-to-end tests: pack, upload and follow the job through the client."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import tarfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from orchestrator.rpc.client import RpcClient

SAMPLES = Path(__file__).resolve().parents[1] / "apps"


def sample(name: str, into: Path, **replace: str) -> Path:
    """A copy of tests/apps/NAME in `into`, with text replaced in its nua-config.toml."""
    folder = into / name
    shutil.copytree(SAMPLES / name, folder)
    config = folder / "nua-config.toml"
    text = config.read_text()
    for old, new in replace.items():
        text = text.replace(old, new)
    config.write_text(text)
    return folder


def upload(client: RpcClient, data: bytes) -> str:
    begun = client.call(
        "app.upload_begin", {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    )
    step = begun["chunk_bytes"]
    for offset in range(0, len(data), step):
        chunk = base64.b64encode(data[offset : offset + step]).decode()
        client.call(
            "app.upload_chunk", {"upload": begun["upload"], "offset": offset, "data": chunk}
        )
    return begun["upload"]


def wait_job(client: RpcClient, job: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while job["state"] == "running":
        assert time.monotonic() < deadline, f"job still running: {json.dumps(job)}"
        time.sleep(0.1)
        job = client.call("job.get", [job["id"]])
    return job


def install_archive(
    client: RpcClient, data: bytes, label: str | None = None, env: dict[str, str] | None = None
) -> dict[str, Any]:
    params: dict[str, Any] = {"upload": upload(client, data)}
    if label is not None:
        params["label"] = label
    if env:
        params["env"] = env
    return wait_job(client, client.call("app.install", params))


def tar_of(members: dict[str, bytes | tarfile.TarInfo]) -> bytes:
    """A tar.gz made by hand (for malicious archives)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, content in members.items():
            if isinstance(content, tarfile.TarInfo):
                tar.addfile(content)
                continue
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def fetch(port: int, path: str = "/", timeout: float = 5) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as answer:
        return answer.read().decode()


def answers(port: int) -> bool:
    try:
        fetch(port, timeout=1)
    except OSError:
        return False
    return True
