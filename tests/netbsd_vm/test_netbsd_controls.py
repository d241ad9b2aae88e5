"""Negative controls of the NetBSD lane: each broken variant of our NetBSD glue (patches/netbsd-vm/broken)
must make the scenarios its `Expect-Fail:` line names fail inside the booted kernel. Each control runs those
scenarios in a pytest subprocess with BUILDTOOL_NETBSD_CONTROL set; its console log and JUnit XML stay in
results/netbsd-controls/<patch>/."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from buildtool.vm.netbsd import control_patches, expected_failures, expects_crash

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.vm]
CONTROL_TIMEOUT = 1800
SCENARIO_FILES = ("test_netbsd_guest.py", "test_netbsd_fixtures.py")


@pytest.mark.parametrize("patch", control_patches(REPO), ids=lambda p: p.name)
def test_control_is_caught(patch: Path, nb_figures, netbsd_kernel):
    """(netbsd_kernel: built or taken from the cache first, and the skip when the tarballs are absent)"""
    expect = expected_failures(patch)
    out = Path(os.environ.get("BUILDTOOL_VM_RESULTS", "results")).resolve() / "netbsd-controls" / patch.name
    out.mkdir(parents=True, exist_ok=True)
    junit = out / "junit.xml"
    env = {**os.environ, "BUILDTOOL_NETBSD_CONTROL": str(patch), "BUILDTOOL_VM_RESULTS": str(out)}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
           *(str(REPO / "tests" / "netbsd_vm" / f) for f in SCENARIO_FILES), "-k", " or ".join(expect)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=CONTROL_TIMEOUT)
    (out / "pytest.log").write_text(proc.stdout + proc.stderr)
    failures = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        if bad is not None:
            failures[case.get("name", "").split("[")[0]] = (bad.get("message") or "") + (bad.text or "")
    failed = set(failures)
    caught = [name for name in expect if name in failed]
    nb_figures.record(f"netbsd_control[{patch.name}]", "CAUGHT" if caught == expect else "NOT CAUGHT")
    assert caught == expect, (f"{patch.name} not caught: expected {expect} to fail, failed: "
                              f"{sorted(failed)}; log {out / 'pytest.log'}, consoles {out / 'console'}")
    if expects_crash(patch):  # the crash watch, not a later symptom, must have reported it
        for name in expect:
            assert "guest kernel crash" in failures[name], (name, failures[name][:2000])
