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
