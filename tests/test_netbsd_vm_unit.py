"""Unit tests of the NetBSD lane's pieces that need no VM: the crash patterns, the config template, the
negative controls' metadata, the agent's channel parsing."""

from __future__ import annotations

import re
from pathlib import Path

from buildtool.kernels.netbsd_kernel import KernelConfig, render_config
from buildtool.vm.netbsd import NetBSDGuest, control_patches, expected_failures

REPO = Path(__file__).resolve().parents[1]


def _crash(text: str) -> bool:
    return re.search("|".join(f"(?:{p})" for p in NetBSDGuest.crash_patterns), text) is not None


def test_crash_patterns_match_netbsd_messages():
    for line in ("[  12.3456789] panic: kernel diagnostic assertion \"m != NULL\" failed: file \"x.c\"",
                 "[   3.1000000] uvm_fault(0xffffffff81234567, 0x0, 1) -> e",
                 "[   3.1000000] fatal page fault in supervisor mode",
                 "Stopped in pid 0.0 (system) at netbsd:breakpoint+0x5:  leave\ndb{0}> ",
                 "[   4.0000000] Mutex error: mutex_vector_enter,542: locking against myself"):
        assert _crash(line), line


def test_crash_patterns_ignore_agent_output():
    for line in (". ok=20 lost=0 garbled=0 resets=0 marks=....................", ". loaded refcnt=0 source=2",
                 "bt0123456789abcdef-7=0", "[   1.1353344] kern.module.path=/stand/amd64/10.99.12/modules"):
        assert not _crash(line), line


def test_config_template_has_what_the_scenarios_need():
    conf = render_config(KernelConfig())
    for needed in ("options \tMODULAR\n", "options \tDIAGNOSTIC\n", "options \tDDB_ONPANIC=0\n",
                   "MEMORY_DISK_ROOT_SIZE=8192", "pseudo-device\tppp", "pseudo-device\tpty",
                   "com0\t\tat isa? port 0x3f8"):
        assert needed in conf, needed


def test_every_control_names_the_scenarios_it_breaks():
    patches = control_patches(REPO)
    assert [p.name for p in patches] == ["patch-xa", "patch-xb", "patch-xc", "patch-xd", "patch-xe"]
    scenarios = "".join((REPO / "tests" / "netbsd_vm" / f).read_text()
                        for f in ("test_netbsd_guest.py", "test_netbsd_fixtures.py"))
    for p in patches:
        for name in expected_failures(p):
            assert f"def {name}(" in scenarios, (p.name, name)
