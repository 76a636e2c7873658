"""Reading an upload's nua-config.toml before any job: unpack's limits, nothing written."""

from __future__ import annotations

import io
import tarfile
import time
import tracemalloc
from pathlib import Path

import pytest

from orchestrator.apps.archive import pack
from orchestrator.apps.release_config import peek_config
from orchestrator.rpc.errors import InvalidArgument
from tests.apps import malicious

LIMITS = {"max_bytes": 1024**3, "max_members": 50_000}


def _upload(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "upload.tar.gz"
    path.write_bytes(data)
    return path


def _refused(tmp_path: Path, data: bytes, **limits: int) -> InvalidArgument:
    path = _upload(tmp_path, data)
    before = set(tmp_path.iterdir())
    with pytest.raises(InvalidArgument) as refused:
        peek_config(path, **{**LIMITS, **limits})
    assert set(tmp_path.iterdir()) == before, "wrote something"
    return refused.value


def test_the_config_of_a_packed_app_is_read(tmp_path: Path) -> None:
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "a-file-sorting-first").write_text("x")
    (folder / "nua-config.toml").write_bytes(malicious.CONFIG)
    config = peek_config(_upload(tmp_path, pack(folder)), **LIMITS)
    assert (config["id"], config["version"], config["health"]) == ("evil", "1.0.0", None)


@pytest.mark.parametrize(
    ("hostile", "says"),
    [
        (malicious.absolute_path, "archive member '/etc/nua-evil': an absolute path"),
        (malicious.dot_dot, "a '..' component"),
        (malicious.symlink_to_etc, "a symbolic link to an absolute path (/etc/passwd)"),
        (malicious.sparse_10gb, f"archive member 'big': declares {malicious.TEN_GB} bytes"),
    ],
    ids=["absolute", "dot-dot", "symlink-to-etc", "sparse-10gb"],
)
def test_a_hostile_member_before_the_config_is_refused_as_unpack_would(
    tmp_path: Path, hostile: malicious.Member, says: str
) -> None:
    error = _refused(tmp_path, malicious.archive(hostile))
    assert error.message.startswith("the upload was refused at step unpack"), error.message
    assert says in error.message and error.data["field"] == "upload"


def test_a_huge_pax_header_costs_no_memory(tmp_path: Path) -> None:
    """306 KB uploaded, 300 MB of header: a plain tarfile read it whole (327 MB of memory)."""
    data = malicious.archive(malicious.huge_pax_header)
    assert len(data) < 400_000
    path = _upload(tmp_path, data)
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(InvalidArgument) as refused:
            peek_config(path, **LIMITS)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 10
    assert peak < 16 * 1024 * 1024, f"{peak} bytes allocated"
    assert "a header or block larger than 1048576 bytes" in refused.value.message
    assert "step unpack" in refused.value.message


def test_reading_stops_at_the_config(tmp_path: Path) -> None:
    """What follows the config is left to the unpack step (the pass reads no further)."""
    config = peek_config(
        _upload(tmp_path, malicious.archive(malicious.sparse_10gb, config_first=True)), **LIMITS
    )
    assert config["id"] == "evil"


def test_members_and_sizes_before_the_config_count_against_the_limits(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for i in range(5):
            info = tarfile.TarInfo(f"f{i}")
            info.size = 400
            tar.addfile(info, io.BytesIO(b"x" * 400))
        info = tarfile.TarInfo("nua-config.toml")
        info.size = len(malicious.CONFIG)
        tar.addfile(info, io.BytesIO(malicious.CONFIG))
    data = buffer.getvalue()
    assert "more than 3 members" in _refused(tmp_path, data, max_members=3).message
    assert "declares 400 bytes" in _refused(tmp_path, data, max_bytes=1000).message


def _tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def test_a_missing_linked_or_oversized_config_is_refused(tmp_path: Path) -> None:
    other = tarfile.TarInfo("README")
    other.size = 2
    missing = _refused(tmp_path, _tar((other, b"hi")))
    assert missing.message == "the app has no nua-config.toml at its top"
    assert missing.data["field"] == "config"

    link = tarfile.TarInfo("nua-config.toml")
    link.type = tarfile.SYMTYPE
    link.linkname = "README"
    linked = _refused(tmp_path, _tar((other, b"hi"), (link, None)))
    assert "archive member 'nua-config.toml': must be a file" in linked.message

    big = tarfile.TarInfo("nua-config.toml")
    big.size = 70_000
    oversized = _refused(tmp_path, _tar((big, b"#" * 70_000)))
    assert "is larger than 65536 bytes" in oversized.message


def test_not_an_archive_is_refused_naming_the_step(tmp_path: Path) -> None:
    error = _refused(tmp_path, b"hello, world")
    assert "step unpack" in error.message and "not a tar.gz archive" in error.message
