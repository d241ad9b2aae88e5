"""Unit tests of the rump lane's pure parts: line framing, the glue Makefile's SRCS, the cache key."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from buildtool.errors import ExtractError, KernelError, PhaseError
from buildtool.rump import kernel, wire
from buildtool.rump.component import kmod_sources_of


def test_fcs_of_rfc1662_check_value():
    # RFC 1662 C.2: the FCS of a frame followed by its own FCS is the constant 0xf0b8
    data = b"\xff\x03\xc0\x21\x01\x01\x00\x04"
    fcs = wire.fcs16(data) ^ 0xFFFF
    assert wire.fcs16(data + bytes([fcs & 0xFF, fcs >> 8])) == wire.GOOD_FCS


def test_frame_escapes_and_round_trips():
    packet = wire.ppp(wire.PPP_COMP, bytes(range(256)))
    framed = wire.frame(packet)
    assert framed[0] == framed[-1] == wire.FLAG
    assert all(b >= 0x20 for b in framed[1:-1] if b != wire.ESCAPE) and wire.FLAG not in framed[1:-1]
    assert wire.unframe(framed + framed) == ([packet, packet], 0)


def test_unframe_counts_bad_fcs():
    framed = bytearray(wire.frame(wire.ppp(wire.PPP_IP, b"abcdef")))
    framed[5] ^= 1
    assert wire.unframe(bytes(framed)) == ([], 1)


def test_udp_fragments_reassemble_in_any_order():
    payload = wire.pattern(3, 50000)
    frags = wire.udp_fragments(b"\x0a\0\0\x02", b"\x0a\0\0\x01", 1, 2, payload, 1496, 9)
    assert all(len(f) <= 1496 for f in frags) and len(frags) > 30
    assert wire.reassemble_udp(list(reversed(frags))) == payload
    assert wire.ip_checksum(frags[0][:20]) == 0


def test_kmod_sources_of_reads_srcs_with_continuations(tmp_path: Path):
    mk = tmp_path / "Makefile"
    mk.write_text("KMOD=\tppp_mppe\nSRCS=\tppp_mppe.c \\\n\tmppe.c  # glue and core\nSRCS+=\trc4.c sha1.c\n"
                  ".include <bsd.kmodule.mk>\n")
    assert kmod_sources_of(mk) == ("ppp_mppe.c", "mppe.c", "rc4.c", "sha1.c")


def test_kmod_sources_of_names_the_missing_makefile(tmp_path: Path):
    with pytest.raises(KernelError, match="Makefile: not found"):
        kmod_sources_of(tmp_path / "Makefile")


def test_missing_tarballs_are_named(tmp_path: Path):
    (tmp_path / kernel.BUILDRUMP_TARBALL).write_bytes(b"x")
    with pytest.raises(KernelError, match=kernel.RUMP_SRC_TARBALL):
        kernel.ensure_rump_kernel(tmp_path, tmp_path / "cache", out=io.StringIO())
    assert not (tmp_path / "cache").exists()


def test_cache_key_follows_the_tarballs(tmp_path: Path):
    for name in kernel.TARBALLS:
        (tmp_path / name).write_bytes(name.encode())
    first = kernel.cache_key(tmp_path)
    assert kernel.cache_key(tmp_path) == first
    (tmp_path / kernel.RUMP_SRC_TARBALL).write_bytes(b"other")
    assert kernel.cache_key(tmp_path) != first


def test_a_finished_build_is_reused_without_building(tmp_path: Path):
    for name in kernel.TARBALLS:
        (tmp_path / name).write_bytes(name.encode())
    root = tmp_path / "cache" / "rump" / kernel.cache_key(tmp_path)
    root.mkdir(parents=True)
    (root / "COMPLETE").write_text("{}")
    out = io.StringIO()
    assert kernel.ensure_rump_kernel(tmp_path, tmp_path / "cache", out=out).root == root
    assert out.getvalue() == ""


def test_build_progress_lines_and_failure(tmp_path: Path):
    script = tmp_path / "build.sh"
    script.write_text("#!/bin/sh\necho '>> building tools'\n"
                      "for i in 1 2 3; do echo '#   compile  x.o'; done\n"
                      "echo 'cc -O2 -c a.c -o a.o'\necho boom >&2\nexit 3\n")
    script.chmod(0o755)
    out = io.StringIO()
    with pytest.raises(PhaseError, match="failed with exit status 3") as e:
        kernel._run_with_progress([str(script)], tmp_path / "log", {}, tmp_path, out)
    assert "rump: building tools" in out.getvalue()
    assert "boom" in str(e.value) and "full log:" in str(e.value)


def test_build_watchdog_ends_a_silent_build_and_its_children(tmp_path: Path):
    pidfile = tmp_path / "child.pid"
    script = tmp_path / "build.sh"
    script.write_text(f"#!/bin/sh\nsleep 300 &\necho $! > {pidfile}\nwait\n")
    script.chmod(0o755)
    with pytest.raises(PhaseError, match="rump kernel build did not finish within 1s and was stopped"):
        kernel._run_with_progress([str(script)], tmp_path / "log", {}, tmp_path, io.StringIO(), timeout=1)
    child = int(pidfile.read_text())
    time.sleep(0.2)
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]


def test_an_unfinished_build_is_removed_before_building_again(tmp_path: Path):
    for name in kernel.TARBALLS:
        (tmp_path / name).write_bytes(b"not an xz archive")
    root = tmp_path / "cache" / "rump" / kernel.cache_key(tmp_path)
    (root / "src-netbsd").mkdir(parents=True)
    (root / "src-netbsd" / "stale").write_text("left by a killed run")
    out = io.StringIO()
    with pytest.raises(ExtractError, match=kernel.RUMP_SRC_TARBALL):
        kernel.ensure_rump_kernel(tmp_path, tmp_path / "cache", out=out)
    assert "removing the unfinished build" in out.getvalue()
    assert not (root / "src-netbsd" / "stale").exists() and not (root / "COMPLETE").exists()
