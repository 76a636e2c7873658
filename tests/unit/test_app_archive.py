"""orchestrator/apps/archive.py: packing an app folder, and unpacking hostile archives safely."""

from __future__ import annotations

import io
import os
import shutil
import socket
import stat
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from orchestrator.apps.archive import ArchiveError, Unpacked, pack, unpack
from orchestrator.errors import NuaError

TEN_GB = 10 * 1024**3


def _file(name: str, data: bytes = b"x", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    return info, data


def _dir(name: str, mode: int = 0o755) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    return info, None


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def _tar(*members: tuple[tarfile.TarInfo, bytes | None], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """A tar.gz written member by member; a member without data gets its header only."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """The folder the release is unpacked into; it must stay empty after a refusal."""
    folder = tmp_path / "releases"
    folder.mkdir()
    return folder


def _refused(data: bytes, out: Path, **limits: int) -> ArchiveError:
    with pytest.raises(ArchiveError) as info:
        unpack(data, out / "1", **limits)
    assert list(out.iterdir()) == [], "a refused archive left something behind"
    assert "x" not in {p.name for p in out.parent.iterdir()}, "wrote outside"
    assert not (out.parent / "evil").exists(), "wrote outside"
    return info.value


# -- round trip ---------------------------------------------------------------------------------


def _sample_folder(root: Path) -> Path:
    app = root / "app"
    (app / "bin").mkdir(parents=True)
    (app / "static" / "css").mkdir(parents=True)
    (app / "empty").mkdir()
    (app / "nua-config.toml").write_text("[metadata]\n")
    (app / "bin" / "run").write_text("#!/bin/sh\necho run\n")
    (app / "bin" / "run").chmod(0o755)
    (app / "secret.txt").write_text("s")
    (app / "secret.txt").chmod(0o600)
    (app / "setuid").write_text("u")
    (app / "setuid").chmod(0o4775)
    (app / "shared").write_text("w")
    (app / "shared").chmod(0o666)
    (app / "static" / "css" / "site.css").write_bytes(b"body{}" * 1000)
    (app / "static" / "été.txt").write_text("unicode name")
    (app / "empty").chmod(0o750)
    (app / "current").symlink_to("static/css")
    (app / "static" / "up").symlink_to("../nua-config.toml")
    (app / "dangling").symlink_to("not-there")
    return app


def test_pack_then_unpack_keeps_files_masked_modes_and_inner_links(
    tmp_path: Path, out: Path
) -> None:
    app = _sample_folder(tmp_path)
    result = unpack(pack(app), out / "1", max_bytes=10**6, max_members=100)
    release = out / "1"
    files = [p for p in app.rglob("*") if p.is_file() and not p.is_symlink()]
    assert result == Unpacked(members=14, bytes=sum(p.stat().st_size for p in files))
    for path in app.rglob("*"):
        rel = path.relative_to(app)
        copy = release / rel
        if path.is_symlink():
            assert copy.is_symlink() and copy.readlink() == path.readlink(), rel
        elif path.is_dir():
            assert copy.is_dir() and not copy.is_symlink(), rel
        else:
            assert copy.read_bytes() == path.read_bytes(), rel
    mode = {p: stat.S_IMODE((release / p).lstat().st_mode) for p in ("bin/run", "secret.txt")}
    assert mode == {"bin/run": 0o755, "secret.txt": 0o600}
    assert stat.S_IMODE((release / "setuid").stat().st_mode) == 0o755  # no setuid, no g+w
    assert stat.S_IMODE((release / "shared").stat().st_mode) == 0o644
    assert stat.S_IMODE((release / "empty").stat().st_mode) == 0o750
    assert stat.S_IMODE(release.stat().st_mode) == 0o755
    assert (release / "current" / "site.css").read_bytes() == b"body{}" * 1000
    assert sorted(p.name for p in out.iterdir()) == ["1"]


def test_pack_is_deterministic_config_first_then_in_name_order(tmp_path: Path) -> None:
    app = _sample_folder(tmp_path)
    first = pack(app)
    assert pack(app) == first
    with tarfile.open(fileobj=io.BytesIO(first), mode="r:gz") as tar:
        names = tar.getnames()
        owners = {(m.uid, m.gid, m.uname, m.gname) for m in tar.getmembers()}
    assert names == [
        "nua-config.toml",
        "bin",
        "bin/run",
        "current",
        "dangling",
        "empty",
        "secret.txt",
        "setuid",
        "shared",
        "static",
        "static/css",
        "static/css/site.css",
        "static/up",
        "static/été.txt",
    ]
    assert owners == {(0, 0, "", "")}


def test_unpack_reads_a_file_and_accepts_dot_slash_names(tmp_path: Path, out: Path) -> None:
    path = tmp_path / "app.tar.gz"
    path.write_bytes(_tar(_dir("."), _dir("./sub"), _file("./sub/a.txt", b"hello")))
    unpack(path, out / "1", max_bytes=100, max_members=10)
    assert (out / "1" / "sub" / "a.txt").read_bytes() == b"hello"


def test_a_hard_link_to_an_earlier_file_is_kept(out: Path) -> None:
    unpack(_tar(_file("a", b"data"), _link("b", "a", tarfile.LNKTYPE)), out / "1", 100, 10)
    assert (out / "1" / "b").read_bytes() == b"data"
    assert (out / "1" / "a").stat().st_ino == (out / "1" / "b").stat().st_ino


@pytest.mark.parametrize(
    ("mode", "expected"),
    [(0o4777, 0o755), (0o2755, 0o755), (0o1644, 0o644), (0o000, 0o600), (0o070, 0o640)],
)
def test_file_modes_are_masked(out: Path, mode: int, expected: int) -> None:
    unpack(_tar(_file("f", b"x", mode)), out / "1", 100, 10)
    assert stat.S_IMODE((out / "1" / "f").stat().st_mode) == expected


@pytest.mark.parametrize(("mode", "expected"), [(0o1777, 0o755), (0o000, 0o700), (0o750, 0o750)])
def test_folder_modes_are_masked(out: Path, mode: int, expected: int) -> None:
    unpack(_tar(_dir("d", mode), _file("d/f")), out / "1", 100, 10)
    assert stat.S_IMODE((out / "1" / "d").stat().st_mode) == expected


# -- pack refusals ------------------------------------------------------------------------------


def test_pack_refuses_a_symlink_to_etc(tmp_path: Path) -> None:
    app = _sample_folder(tmp_path)
    (app / "static" / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(ArchiveError, match=r"static/passwd: a symbolic link to /etc/passwd") as e:
        pack(app)
    assert e.value.member == "static/passwd"


def test_pack_refuses_a_relative_symlink_leaving_the_folder(tmp_path: Path) -> None:
    app = _sample_folder(tmp_path)
    (app / "static" / "out").symlink_to("../../outside")
    with pytest.raises(ArchiveError, match="leaves"):
        pack(app)


def test_pack_refuses_a_symlink_chain_leaving_the_folder(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "d").symlink_to(".")
    (app / "l").symlink_to("d/../x")  # inside by its text, outside in fact
    with pytest.raises(ArchiveError, match=r"l: a symbolic link to d/\.\./x leaves"):
        pack(app)


def test_pack_refuses_special_files(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    os.mkfifo(app / "pipe")
    with pytest.raises(ArchiveError, match="pipe: a fifo"):
        pack(app)
    (app / "pipe").unlink()
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(app / "sock"))
        with pytest.raises(ArchiveError, match="sock: a socket"):
            pack(app)


def test_pack_refuses_a_10gb_sparse_file_without_reading_it(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    with open(app / "big", "wb") as fh:
        os.truncate(fh.fileno(), TEN_GB)
    started = time.monotonic()
    with pytest.raises(ArchiveError, match=f"holds {TEN_GB} bytes of files, more than"):
        pack(app)
    assert time.monotonic() - started < 5


def test_pack_refuses_too_many_entries(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    for i in range(5):
        (app / f"f{i}").write_text("x")
    assert pack(app, max_members=5)
    with pytest.raises(ArchiveError, match="more than 4 entries"):
        pack(app, max_members=4)


def test_pack_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="is not a folder"):
        pack(tmp_path / "nope")


# -- unpack refusals: nothing is left behind ----------------------------------------------------


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ([_file("../evil")], "'..' component"),
        ([_file("a/../../evil")], "'..' component"),
        ([_file("ok"), _file("sub/../../../evil")], "'..' component"),
        ([_file("/etc/evil")], "absolute path"),
        ([_file("bad\nname")], "control character"),
        ([_link("etc", "/etc")], "symbolic link to an absolute path (/etc)"),
        ([_link("passwd", "/etc/passwd")], "absolute path"),
        ([_link("up", "../../x")], "symbolic link leaving the release"),
        ([_dir("a"), _link("a/up", "../..")], "symbolic link leaving the release"),
        # A link inside the release, then a file written through it.
        ([_link("sub", "."), _file("sub/x")], "inside sub, a symbolic link"),
        ([_link("sub", "."), _dir("sub/d")], "inside sub, a symbolic link"),
        ([_link("h", "/etc/passwd", tarfile.LNKTYPE)], "hard link leaving the release"),
        ([_link("h", "../x", tarfile.LNKTYPE)], "hard link leaving the release"),
        ([_link("h", "missing", tarfile.LNKTYPE)], "not an earlier file of the archive"),
        ([_dir("d"), _link("h", "d", tarfile.LNKTYPE)], "not an earlier file"),
        ([_file("a"), _file("a")], "a duplicate"),
        ([_file("a"), _file("./a")], "a duplicate"),
        ([_dir("d"), _dir("d/")], "a duplicate"),
        ([_file("a"), _file("a/b")], "inside a, a file"),
        ([_file("d/x"), _file("d")], "a file where an earlier member is a folder"),
        ([_file("d/x"), _link("d", "x")], "a symbolic link where an earlier member"),
        ([_link("", "x")], "top of the archive must be a folder"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_a_malicious_member_is_refused_and_nothing_is_left(
    out: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], reason: str
) -> None:
    error = _refused(_tar(*members), out, max_bytes=10**6, max_members=100)
    assert reason in str(error)
    assert error.member is not None and str(error).startswith("archive member ")


def test_a_symlink_chain_leaving_the_release_is_refused(out: Path) -> None:
    # `l` is inside by its text (d/../x is x), but d is the release itself: l is ../x.
    error = _refused(_tar(_link("d", "."), _link("l", "d/../x")), out)
    assert "'l': a symbolic link to d/../x that leaves the release" in str(error)
    assert error.member == "l"


def test_a_deeper_symlink_chain_leaving_the_release_is_refused(out: Path) -> None:
    members = [_dir("a"), _dir("a/b"), _link("a/b/top", "../.."), _link("a/esc", "b/top/../x")]
    _refused(_tar(*members), out)


def test_a_10gb_sparse_member_is_refused_from_its_header(out: Path) -> None:
    # The header says 10 GB; the data is not even there: it must never be read.
    big, _ = _file("big")
    big.size = TEN_GB
    started = time.monotonic()
    error = _refused(_tar(_file("a"), (big, None)), out, max_bytes=1024**3)
    assert time.monotonic() - started < 5
    assert f"archive member 'big': declares {TEN_GB} bytes" in str(error)


def _pax_sparse(real_size: int) -> bytes:
    """A member as `tar --sparse --format=pax` writes a sparse file: a tiny map, a huge size."""
    info = tarfile.TarInfo("GNUSparseFile.0/big")
    info.pax_headers = {
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": "big",
        "GNU.sparse.realsize": str(real_size),
    }
    sparse_map = f"1\n{real_size}\n0\n".encode().ljust(512, b"\0")
    info.size = len(sparse_map)
    return _tar((info, sparse_map))


def test_a_real_sparse_10gb_member_is_refused_by_its_real_size(out: Path) -> None:
    data = _pax_sparse(TEN_GB)
    assert len(data) < 1024
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        (member,) = tar.getmembers()
        assert (member.name, member.size, member.issparse()) == ("big", TEN_GB, True)
    started = time.monotonic()
    error = _refused(data, out, max_bytes=1024**3)
    assert time.monotonic() - started < 5
    assert f"archive member 'big': declares {TEN_GB} bytes" in str(error)


def test_a_small_sparse_member_is_unpacked_with_its_holes_as_zeros(out: Path) -> None:
    unpack(_pax_sparse(4096), out / "1", max_bytes=4096)
    assert (out / "1" / "big").read_bytes() == bytes(4096)


@pytest.mark.skipif(shutil.which("tar") is None, reason="no tar command")
def test_gnu_tar_of_a_real_10gb_sparse_file_is_refused(tmp_path: Path, out: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "big", "wb") as fh:
        os.truncate(fh.fileno(), TEN_GB)
    archive = tmp_path / "sparse.tar.gz"
    done = subprocess.run(
        ["tar", "--sparse", "--format=pax", "-czf", str(archive), "-C", str(src), "big"],
        capture_output=True,
        timeout=60,
    )
    if done.returncode != 0:
        pytest.skip(f"tar cannot write sparse archives: {done.stderr!r}")
    assert archive.stat().st_size < 10_000
    started = time.monotonic()
    error = _refused(archive.read_bytes(), out, max_bytes=1024**3)
    assert time.monotonic() - started < 5
    assert "declares" in str(error)


def test_the_declared_sizes_add_up(out: Path) -> None:
    members = [_file(f"f{i}", b"x" * 400) for i in range(3)]
    assert "'f2': declares 400 bytes" in str(_refused(_tar(*members), out, max_bytes=1000))
    unpack(_tar(*members), out / "ok", max_bytes=1200)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        (tarfile.CHRTYPE, "a device node"),
        (tarfile.BLKTYPE, "a device node"),
        (tarfile.FIFOTYPE, "a fifo"),
        (b"Z", "an unsupported member type"),
    ],
)
def test_devices_and_fifos_are_refused(out: Path, kind: bytes, reason: str) -> None:
    info = tarfile.TarInfo("dev/null")
    info.type = kind
    info.devmajor, info.devminor = 1, 3
    error = _refused(_tar(_file("ok"), (info, None)), out)
    assert f"archive member 'dev/null': {reason}" in str(error)


def test_too_many_members_are_refused(out: Path, tmp_path: Path) -> None:
    members = [_file(f"f{i}") for i in range(11)]
    (tmp_path / "other").mkdir()
    unpack(_tar(*members[:10]), tmp_path / "other" / "ok", max_members=10)
    (tmp_path / "other" / "ok").rename(tmp_path / "ok")
    shutil.rmtree(tmp_path / "other")
    error = _refused(_tar(*members), out, max_members=10)
    assert "'f10': more than 10 members" in str(error)


def test_a_huge_header_is_refused_before_tarfile_reads_it(out: Path) -> None:
    # A pax header claiming 100 MiB: tarfile would read it whole into memory.
    header = tarfile.TarInfo("././@PaxHeader")
    header.type = tarfile.XHDTYPE
    header.size = 100 * 1024 * 1024
    error = _refused(_tar((header, None), fmt=tarfile.USTAR_FORMAT), out)
    assert "larger than" in str(error)


def test_a_truncated_archive_is_refused(out: Path) -> None:
    data = _tar(_file("a", os.urandom(200_000)), _file("b", os.urandom(200_000)))
    error = _refused(data[: len(data) // 2], out)
    assert "damaged" in str(error) or "truncated" in str(error)


def test_not_an_archive_is_refused(out: Path) -> None:
    assert "not a tar.gz" in str(_refused(b"hello, world", out))


def test_an_existing_destination_is_left_alone(out: Path) -> None:
    (out / "1").mkdir()
    (out / "1" / "keep").write_text("mine")
    with pytest.raises(ArchiveError, match="already exists"):
        unpack(_tar(_file("keep", b"theirs")), out / "1")
    assert (out / "1" / "keep").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == ["1"]


def test_archive_error_is_a_nua_error() -> None:
    assert issubclass(ArchiveError, NuaError)
