"""The extract phase on small tarballs built here (good and malicious) and on a real distfile."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from buildtool import extract as extract_mod
from buildtool.errors import ExtractError
from buildtool.extract import extract
from buildtool.layout import Layout

# --- building tarballs ------------------------------------------------------------------------------------


def _file(name: str, data: bytes = b"data\n", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


def _dir(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info, None


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _device(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor, info.mode = tarfile.CHRTYPE, 1, 3, 0o666
    return info, None


def make_tar(path: Path, members: list, compression: str = "gz") -> Path:
    with tarfile.open(path, f"w:{compression}") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def snapshot(root: Path) -> set[Path]:
    return {Path(dirpath) / name for dirpath, dirs, files in os.walk(root) for name in dirs + files}


GOOD = [
    _dir("pkg-1.0"),
    _file("pkg-1.0/configure", b"#!/bin/sh\necho configured\n", 0o755),
    _file("pkg-1.0/README", b"read me\n", 0o644),
    _dir("pkg-1.0/src"),
    _file("pkg-1.0/src/main.c", b"int main(void) { return 0; }\n", 0o664),
    _link("pkg-1.0/src/README", "../README"),
    _link("pkg-1.0/COPY", "pkg-1.0/README", tarfile.LNKTYPE),
]


# our own checks run on every interpreter; tarfile's data filter is tested as well where it exists (3.11.4+)
FILTER_MODES = ["own-checks"] + (["data-filter"] if hasattr(tarfile, "data_filter") else [])


@pytest.fixture(params=FILTER_MODES)
def filter_mode(request, monkeypatch):
    """Run a test with our own checks only (Debian 12's python3) and, where it exists, with the filter."""
    monkeypatch.setattr(extract_mod, "HAS_DATA_FILTER", request.param == "data-filter")
    return request.param


# --- good archives ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix,compression", [(".tar.gz", "gz"), (".tgz", "gz"), (".tar.xz", "xz"),
                                                (".tar.bz2", "bz2")])
def test_good_archive_extracts_with_modes_and_links(tmp_path, filter_mode, suffix, compression):
    archive = make_tar(tmp_path / f"pkg-1.0{suffix}", GOOD, compression)
    dest = tmp_path / "work" / "src"
    extract(archive, dest)
    top = dest / "pkg-1.0"
    assert (top / "configure").read_bytes() == b"#!/bin/sh\necho configured\n"
    assert (top / "configure").stat().st_mode & 0o777 == 0o755
    assert os.access(top / "configure", os.X_OK)
    assert (top / "README").stat().st_mode & 0o777 == 0o644
    assert (top / "src" / "main.c").stat().st_mode & 0o111 == 0
    assert os.readlink(top / "src" / "README") == "../README"
    assert (top / "src" / "README").read_text() == "read me\n"
    assert (top / "COPY").stat().st_ino == (top / "README").stat().st_ino
    # the scratch directory is gone and nothing else appeared beside dest
    assert sorted(p.name for p in dest.parent.iterdir()) == ["src"]


def test_setuid_and_group_write_bits_are_dropped(tmp_path, filter_mode):
    archive = make_tar(tmp_path / "p.tar.gz", [_dir("p"), _file("p/tool", b"x", 0o6775)])
    extract(archive, tmp_path / "src")
    assert (tmp_path / "src" / "p" / "tool").stat().st_mode & 0o7777 == 0o755


def test_second_archive_joins_the_first(tmp_path):
    dest = tmp_path / "src"
    extract(make_tar(tmp_path / "a.tar.gz", [_dir("a"), _file("a/x")]), dest)
    extract(make_tar(tmp_path / "b.tar.xz", [_dir("b"), _file("b/y")], "xz"), dest)
    assert sorted(p.name for p in dest.iterdir()) == ["a", "b"]


# --- malicious archives -----------------------------------------------------------------------------------

MALICIOUS = {
    "absolute path": ([_file("{outside}/abs-evil")], "absolute path"),
    "dot-dot member": ([_file("../escaped")], "'..'"),
    "nested dot-dot": ([_dir("pkg"), _file("pkg/../../escaped")], "'..'"),
    "symlink outside": ([_dir("pkg"), _link("pkg/link", "../../outside")], "outside the tree"),
    "absolute symlink": ([_dir("pkg"), _link("pkg/link", "{outside}")], "absolute path"),
    "file through symlink": ([_dir("pkg"), _link("pkg/link", "../../outside"), _file("pkg/link/evil")],
                             "symlink"),
    "file through inner symlink": ([_dir("pkg/sub"), _link("pkg/l", "sub"), _file("pkg/l/x")],
                                   "under the symlink 'pkg/l'"),
    "hardlink outside": ([_dir("pkg"), _link("pkg/h", "../outside/secret", tarfile.LNKTYPE)],
                         "outside the tree"),
    "absolute hardlink": ([_dir("pkg"), _link("pkg/h", "{outside}/secret", tarfile.LNKTYPE)],
                          "absolute path"),
    "hardlink through symlink": ([_dir("pkg"), _link("pkg/l", "."),
                                  _link("pkg/h", "pkg/l/x", tarfile.LNKTYPE)], "through the symlink"),
    "device node": ([_dir("pkg"), _device("pkg/null")], "special file"),
}


def _materialize(members: list, outside: Path) -> list:
    out = []
    for info, data in members:
        info.name = info.name.format(outside=outside)
        info.linkname = info.linkname.format(outside=outside)
        out.append((info, data))
    return out


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_member_is_refused_and_nothing_escapes(tmp_path, filter_mode, case):
    members, why = MALICIOUS[case]
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("keep me\n")
    archive = make_tar(tmp_path / "evil.tar.gz", [_file("pkg/ok")] + _materialize(members, outside))
    before = snapshot(tmp_path)
    dest = tmp_path / "work" / "src"
    with pytest.raises(ExtractError) as err:
        extract(archive, dest)
    message = str(err.value)
    assert str(archive) in message
    assert why in message
    assert not dest.exists(), "a refused archive must not leave a tree behind"
    assert snapshot(tmp_path) - before == {tmp_path / "work"}
    assert (outside / "secret").read_text() == "keep me\n"


def test_link_escaping_through_an_earlier_link_is_refused(tmp_path, filter_mode):
    # each link looks inside by name alone; resolved on disk, pkg/d/l is pkg/d, so a leads two levels above
    # the tree. Only a check that resolves links can see it (the data filter, or our last pass).
    members = [_dir("pkg/d"), _link("pkg/d/l", "."), _link("pkg/d/a", "l/../../.."), _file("pkg/z")]
    archive = make_tar(tmp_path / "sneaky.tar.gz", members)
    dest = tmp_path / "work" / "src"
    with pytest.raises(ExtractError, match="pkg/d/a") as err:
        extract(archive, dest)
    assert str(archive) in str(err.value)
    assert not dest.exists()
    assert list((tmp_path / "work").iterdir()) == []


# --- bad input of other kinds -----------------------------------------------------------------------------


def test_unknown_suffix_is_refused(tmp_path):
    archive = tmp_path / "pkg-1.0.zip"
    archive.write_bytes(b"PK\x03\x04")
    with pytest.raises(ExtractError, match=r"pkg-1\.0\.zip: unknown archive type.*\.tar\.xz"):
        extract(archive, tmp_path / "src")


def test_missing_archive(tmp_path):
    with pytest.raises(ExtractError, match="not found.*buildtool fetch"):
        extract(tmp_path / "gone.tar.gz", tmp_path / "src")


@pytest.mark.parametrize("name,content", [
    ("garbage.tar.gz", b"this is not gzip data at all\n" * 10),
    ("lying.tar.xz", None),  # a gzip tarball under an .xz name
    ("truncated.tar.bz2", "truncated"),
])
def test_corrupt_or_misnamed_archive(tmp_path, name, content):
    archive = tmp_path / name
    if content is None:
        make_tar(tmp_path / "real.tar.gz", [_file("a/b")])
        archive.write_bytes((tmp_path / "real.tar.gz").read_bytes())
    elif content == "truncated":
        big = [_file(f"a/f{i}", hashlib.sha512(str(i).encode()).digest() * 200) for i in range(20)]
        make_tar(tmp_path / "whole.tar.bz2", big, "bz2")
        data = (tmp_path / "whole.tar.bz2").read_bytes()
        archive.write_bytes(data[: len(data) // 2])
    else:
        archive.write_bytes(content)
    dest = tmp_path / "work" / "src"
    with pytest.raises(ExtractError, match="cannot be read") as err:
        extract(archive, dest)
    assert name in str(err.value)
    assert not dest.exists()


def test_existing_entry_in_dest_is_not_overwritten(tmp_path):
    dest = tmp_path / "src"
    archive = make_tar(tmp_path / "a.tar.gz", [_dir("a"), _file("a/x", b"new\n")])
    (dest / "a").mkdir(parents=True)
    (dest / "a" / "x").write_text("old\n")
    with pytest.raises(ExtractError, match="already holds a"):
        extract(archive, dest)
    assert (dest / "a" / "x").read_text() == "old\n"


def test_scratch_left_by_a_killed_extract_is_removed(tmp_path):
    work = tmp_path / "work"
    stale = work / ".src.extract-killed"
    (stale / "pkg-1.0").mkdir(parents=True)
    extract(make_tar(tmp_path / "a.tar.gz", [_file("a/x")]), work / "src")
    assert sorted(p.name for p in work.iterdir()) == ["src"]


# --- a real distfile --------------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("distfile", ["pptp-1.10.0.tar.gz", "ppp-2.4.9.tar.gz"])
def test_real_distfile(tmp_path, distfile):
    archive = Layout.default().distdir / distfile
    if not archive.exists():
        pytest.skip(f"{archive} is absent (run `buildtool fetch` to download it)")
    dest = tmp_path / "src"
    extract(archive, dest)
    with tarfile.open(archive) as tar:
        files = [m for m in tar.getmembers() if m.isreg()]
        assert files
        for m in files:
            path = dest / m.name
            assert path.read_bytes() == tar.extractfile(m).read(), m.name
            assert path.stat().st_mode & 0o111 == m.mode & 0o111, m.name
    if distfile.startswith("ppp-"):
        assert os.access(dest / "ppp-2.4.9" / "configure", os.X_OK)
