import pytest

from buildtool.errors import HostToolError
from buildtool.hosttools import require


def test_missing_tool_names_debian_package():
    with pytest.raises(HostToolError) as e:
        require("sh", "qemu-system-x86_64-not-here", "bmake-not-here")
    msg = str(e.value)
    assert "qemu-system-x86_64-not-here" in msg and "apt-get install" in msg


def test_known_tool_maps_to_package(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(HostToolError, match="apt-get install .*qemu-system-x86"):
        require("qemu-system-x86_64")


def test_present_tools_pass():
    require("sh")


def test_program_only_in_sbin_is_missing_with_a_hint(tmp_path, monkeypatch):
    """Every command runs its program by name, so a program outside PATH is missing even when it sits in
    /usr/sbin (an ordinary Debian user's PATH lacks it): the error says where it is and what to add."""
    from buildtool import hosttools

    sbin = tmp_path / "sbin"
    sbin.mkdir()
    (sbin / "modinfo").write_text("#!/bin/sh\n")
    (sbin / "modinfo").chmod(0o755)
    monkeypatch.setattr(hosttools, "SBIN_DIRS", (str(sbin),))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    hint = rf"(?s)apt-get install kmod.*{sbin}/modinfo exist\(s\) but not on PATH: add {sbin} to PATH"
    with pytest.raises(HostToolError, match=hint):
        require("modinfo")
    monkeypatch.setenv("PATH", str(sbin))
    require("modinfo")
