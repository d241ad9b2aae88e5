"""distinfo: pkgsrc's format and hashing rules, and failing closed."""

import hashlib
from pathlib import Path

import pytest

from buildtool.distinfo import (
    distfile_sum,
    format_distinfo,
    patch_sha1,
    read_distinfo,
    verify_distfile,
    verify_patch,
    write_distinfo,
)
from buildtool.errors import ChecksumError, RecipeError

ROOT = Path(__file__).resolve().parent.parent


def test_format_matches_pkgsrc_layout(tmp_path):
    f = tmp_path / "foo-1.0.tar.gz"
    f.write_bytes(b"hello\n")
    text = format_distinfo([distfile_sum(f)], {"patch-ab": "2" * 40, "patch-aa": "1" * 40})
    lines = text.splitlines()
    data = b"hello\n"
    assert lines[0] == "$NetBSD$" and lines[1] == ""
    assert lines[2] == f"BLAKE2s (foo-1.0.tar.gz) = {hashlib.blake2s(data).hexdigest()}"
    assert lines[3] == f"SHA512 (foo-1.0.tar.gz) = {hashlib.sha512(data).hexdigest()}"
    assert lines[4] == "Size (foo-1.0.tar.gz) = 6 bytes"
    assert lines[5:] == ["SHA1 (patch-aa) = " + "1" * 40, "SHA1 (patch-ab) = " + "2" * 40]


def test_patch_sha1_ignores_netbsd_lines(tmp_path):
    a = tmp_path / "patch-aa"
    a.write_text("$NetBSD$\n\nwhy\n--- x.orig\n+++ x\n")
    b = tmp_path / "patch-ab"
    b.write_text("$NetBSD: patch-aa,v 1.2 2020/01/01 user Exp $\n\nwhy\n--- x.orig\n+++ x\n")
    assert patch_sha1(a) == patch_sha1(b) == hashlib.sha1(b"\nwhy\n--- x.orig\n+++ x\n").hexdigest()


def test_roundtrip_and_write_only_on_change(tmp_path):
    f = tmp_path / "d.tar.xz"
    f.write_bytes(b"x" * 100)
    path = tmp_path / "distinfo"
    assert write_distinfo(path, [distfile_sum(f)], {"patch-aa": "a" * 40})
    mtime = path.stat().st_mtime_ns
    assert not write_distinfo(path, [distfile_sum(f)], {"patch-aa": "a" * 40})
    assert path.stat().st_mtime_ns == mtime
    info = read_distinfo(path)
    assert info.distfile("d.tar.xz").size == 100
    assert info.patch_sum("patch-aa") == "a" * 40


def test_verify_names_file_expected_and_actual(tmp_path):
    f = tmp_path / "d.tar.gz"
    f.write_bytes(b"good")
    expected = distfile_sum(f)
    f.write_bytes(b"evil")
    with pytest.raises(ChecksumError) as e:
        verify_distfile(f, expected)
    msg = str(e.value)
    assert "d.tar.gz" in msg and expected.hashes["BLAKE2s"] in msg
    assert hashlib.blake2s(b"evil").hexdigest() in msg
    f.write_bytes(b"longer")
    with pytest.raises(ChecksumError, match="expected 4 bytes, got 6"):
        verify_distfile(f, expected)


def test_missing_entries_fail_closed(tmp_path):
    path = tmp_path / "distinfo"
    write_distinfo(path, [], {})
    info = read_distinfo(path)
    with pytest.raises(ChecksumError, match="no checksum entry for distfile foo.tar.gz"):
        info.distfile("foo.tar.gz")
    p = tmp_path / "patch-zz"
    p.write_text("$NetBSD$\n")
    with pytest.raises(ChecksumError, match="no SHA1 entry for patch patch-zz"):
        verify_patch(p, info)


def test_patch_checksum_mismatch(tmp_path):
    p = tmp_path / "patch-aa"
    p.write_text("$NetBSD$\n\nreason\n")
    path = tmp_path / "distinfo"
    write_distinfo(path, [], {"patch-aa": patch_sha1(p)})
    p.write_text("$NetBSD$\n\nreason, edited\n")
    with pytest.raises(ChecksumError, match="SHA1 mismatch for patch patch-aa"):
        verify_patch(p, read_distinfo(path))


def test_malformed_distinfo_names_line(tmp_path):
    path = tmp_path / "distinfo"
    path.write_text("$NetBSD$\n\nSHA512 foo = bar\n")
    with pytest.raises(RecipeError, match=r"distinfo:3: not a distinfo line"):
        read_distinfo(path)


def test_repository_distinfo_files_parse():
    for d in ("ppp-mppe", "poptop", "deps/openssl", "deps/pptp"):
        info = read_distinfo(ROOT / d / "distinfo")
        assert info.distfiles, d
        for s in info.distfiles.values():
            assert set(s.hashes) == {"BLAKE2s", "SHA512"} and s.size > 0
