"""The harness's own negative controls: it must see a panic, a hang and a failed command for what they are.

A crash test gets a guest of its own (the session guest keeps serving the scenarios). The pattern tests
need no VM: they check the crash regexes against real kernel lines and against harmless output.
"""

from __future__ import annotations

import re

import pytest

from buildtool import errors
from buildtool.vm.console import CommandTimeout, GuestCrash
from buildtool.vm.guest import LinuxGuest

CRASH = re.compile("|".join(f"(?:{p})" for p in LinuxGuest.crash_patterns))


@pytest.mark.parametrize("line", [
    "[   12.345678] BUG: kernel NULL pointer dereference, address: 0000000000000000",
    "[   12.345678] Oops: 0002 [#1] PREEMPT SMP NOPTI",
    "[   12.345678] general protection fault, probably for non-canonical address 0xdead: 0000 [#1]",
    "[   12.345678] Kernel panic - not syncing: sysrq triggered crash",
    "[   22.000001] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [pppd:123]",
    "[  130.000000] INFO: task pppd:99 blocked for more than 120 seconds.",
    "[    3.141592] WARNING: CPU: 0 PID: 1 at net/core/dev.c:1 foo+0x1/0x2",
    "[    3.141592] kernel BUG at lib/string_helpers.c:1027!",
    "[    3.141592] detected buffer overflow in memcpy",
])
def test_crash_patterns_match_kernel_lines(line):
    if "buffer overflow" in line:  # fortify's message is followed by a kernel BUG line, which is what matches
        assert not CRASH.search(line)
        return
    assert CRASH.search(line), line


@pytest.mark.parametrize("text", [
    "grep 'BUG:' found nothing",
    "WARNING: this is pppd, not the kernel",
    "MPPE 128-bit stateless compression enabled",
    "64 bytes from 192.168.100.1: icmp_seq=1 ttl=64 time=3.1 ms",
])
def test_crash_patterns_ignore_plain_output(text):
    assert not CRASH.search(text), text


@pytest.mark.integration
@pytest.mark.vm
def test_harness_exit_status_and_output(vm):
    r = vm.run("echo one; echo two >&2; exit 3", check=False)
    assert r.status == 3
    assert r.output.splitlines()[:2] == ["one", "two"]
    with pytest.raises(errors.TestFailure) as e:
        vm.run("exit 4")
    assert "exit status 4" in str(e.value) and str(vm.console_log) in str(e.value)
    long_cmd = "echo " + "x" * 5000 + " | wc -c"  # longer than the tty's line buffer
    assert vm.run(long_cmd).output.strip() == "5001"


@pytest.mark.integration
@pytest.mark.vm
def test_harness_catches_a_panic(vm_factory):
    """A kernel panic ends QEMU (panic=-1, -no-reboot) and fails the scenario with the console log."""
    g = vm_factory.make("crash-control")
    g.boot()
    with pytest.raises(GuestCrash) as e:
        g.run(f"{g.os.panic_command()}; sleep 30", timeout=60)
    assert "console log:" in str(e.value)
    assert "Kernel panic" in g.console_log.read_text(errors="replace")
    assert g.dirty
    g.shutdown()


@pytest.mark.integration
@pytest.mark.vm
def test_harness_times_out_a_hang_and_reboots(vm_factory):
    """A command past its timeout fails the scenario and dirties the guest; the dirty guest refuses the
    next command (it never reboots behind a scenario's back) until it is rebooted, explicitly."""
    g = vm_factory.make("hang-control")
    g.boot()
    with pytest.raises(CommandTimeout):
        g.run("sleep 60", timeout=2)
    assert g.dirty
    with pytest.raises(errors.HarnessError, match="dirty .*timed out after 2s"):
        g.run("echo back")
    assert g.generation == 1
    g.reboot()
    assert g.run("echo back").output.strip() == "back"
    assert g.generation == 2
    g.shutdown()


@pytest.mark.integration
@pytest.mark.vm
def test_harness_reports_a_dead_vmm_as_harness_error(vm_factory):
    """QEMU dying without a kernel crash is the harness breaking, not the product failing."""
    g = vm_factory.make("vmm-control")
    g.boot()
    g._console.process.kill()  # SIGKILL
    with pytest.raises(errors.HarnessError):
        g.run("true", timeout=10)
    g.shutdown()
