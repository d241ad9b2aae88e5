"""Scenarios inside a booted NetBSD kernel: our ppp_mppe.kmod loaded by NetBSD's module loader, driven by
NetBSD's own if_ppp on a pty, our agent (tools/netbsd/agent.c) playing pppd and the PPP peer.

Agent verbs used here: load/unload/stat (modctl), open/close (pty + PPPDISC), comp (PPPIOCSCOMPRESS),
keys + ccpup (both ends' MPPE state, CCP up the way if_ppp sees it), a2k/k2a (frames the kernel decrypts /
encrypts, byte-exact, with faults), fuzz, mtu. Statuses are NetBSD errno values.
"""

from __future__ import annotations

import re
import time

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.vm]

ENOEXEC, EEXIST, EBUSY, EINVAL, ENOENT, ENOBUFS = 8, 17, 16, 22, 2, 55
# RFC 3079 test vectors (docs: /work/shared/design/KERNELS.md): the kernel transmits with the
# SendStartKey128, receives with the MasterKey used as a start key
KEY_K2A = "8b7cdc149b993a1ba118cb153f56dccb"
KEY_A2K = "fdece3717a8c838cb388e527ae3cdd31"
CI = {"stateless": "120601000040", "stateful": "120600000040"}  # 18, 6, H bit, ..., S bit (128-bit)


def module_path(kernel) -> str:
    return f"/{kernel.module_dir}/ppp_mppe/ppp_mppe.kmod"


def agent(vm, cmd: str, expect: int | None = 0, timeout: float = 120) -> str:
    r = vm.run(cmd, timeout=timeout, check=False)
    if expect is not None:
        assert r.status == expect, f"agent `{cmd[:60]}`: status {r.status}, expected {expect}: {r.output}"
    return r.output


def counts(output: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=(\S+)", output))


def unit_up(vm, mode: str, mtu: int | None = None) -> None:
    """A ppp unit with MPPE-128 in `mode` both ways, CCP up; the agent holds the matching peer state."""
    agent(vm, "close")
    agent(vm, "open")
    if mtu:
        agent(vm, f"mtu {mtu}")
    k2a, a2k = CI[mode] + KEY_K2A, CI[mode] + KEY_A2K
    agent(vm, f"comp {k2a} t")
    agent(vm, f"comp {a2k} r")
    agent(vm, f"keys {k2a} {a2k}")
    out = agent(vm, f"ccpup {CI[mode]} {CI[mode]}")
    assert "comp_run" in out and "decomp_run" in out, out


def clean_batch(vm, direction: str, n: int, size: int, seed: int) -> dict[str, str]:
    c = counts(agent(vm, f"{direction} {n} {size} {seed}"))
    assert c["ok"] == str(n), f"{direction} {n}x{size}: {c}"
    return c


@pytest.fixture
def unloaded(nbvm):
    """No unit open and ppp_mppe not loaded before and after the scenario."""
    agent(nbvm, "close")
    agent(nbvm, "unload ppp_mppe", expect=None)
    yield nbvm
    agent(nbvm, "close")
    agent(nbvm, "unload ppp_mppe", expect=None)


def test_netbsd_boots_to_agent(nbvm, netbsd_kernel):
    assert nbvm.release == netbsd_kernel.release
    assert agent(nbvm, "ping").strip() == "pong"


def test_modctl_load_unload(unloaded, netbsd_kernel):
    vm = unloaded
    agent(vm, "stat ppp_mppe", expect=ENOENT)
    agent(vm, f"load {module_path(netbsd_kernel)}")
    assert "loaded" in agent(vm, "stat ppp_mppe")
    # a second load of the same file is refused and leaves the loaded module alone: this kernel answers
    # ENOEXEC (kobj refuses the second copy's global mppe_* symbols as redefined); EEXIST would do too
    again = vm.run(f"load {module_path(netbsd_kernel)}", timeout=60, check=False)
    assert again.status in (ENOEXEC, EEXIST), again
    assert "loaded" in agent(vm, "stat ppp_mppe")
    agent(vm, "unload ppp_mppe")
    agent(vm, "stat ppp_mppe", expect=ENOENT)
    agent(vm, "unload ppp_mppe", expect=ENOENT)


def test_autoload_by_name_and_ebusy(unloaded):
    """if_ppp autoloads `ppp_mppe` for CCP option 18; a unit using it keeps it loaded (EBUSY)."""
    vm = unloaded
    agent(vm, "stat ppp_mppe", expect=ENOENT)
    agent(vm, "open")
    agent(vm, f"comp {CI['stateless']}{KEY_K2A} t")
    assert "loaded" in agent(vm, "stat ppp_mppe")
    agent(vm, "unload ppp_mppe", expect=EBUSY)
    agent(vm, "close")
    agent(vm, "unload ppp_mppe")


@pytest.mark.parametrize("option,length,expect", [
    (CI["stateless"] + KEY_K2A, None, 0),  # 22 bytes, as pppd passes it
    (CI["stateful"] + KEY_K2A, None, 0),
    (CI["stateless"] + KEY_K2A + "00" * 18, None, ENOBUFS),  # 40 bytes
    (CI["stateless"] + KEY_K2A[:-2], None, ENOBUFS),  # 21 bytes: too short for a start key
    ("990601000040" + KEY_K2A, None, EINVAL),  # no compressor for option 0x99
], ids=["22-stateless", "22-stateful", "40", "21", "unknown"])
@pytest.mark.parametrize("direction", ["t", "r"])
def test_ioctl_table(nbvm, option, length, expect, direction):
    agent(nbvm, "close")
    agent(nbvm, "open")
    agent(nbvm, f"comp {option} {direction}", expect=expect)
    agent(nbvm, "close")


@pytest.mark.parametrize("mode", ["stateless", "stateful"])
def test_traffic_byte_exact(nbvm, mode):
    unit_up(nbvm, mode)
    for size, seed in ((1, 1), (64, 2), (1400, 3), (1496, 4)):
        clean_batch(nbvm, "a2k", 20, size, seed)
        clean_batch(nbvm, "k2a", 20, size, seed)


@pytest.mark.parametrize("mode", ["stateless", "stateful"])
def test_large_frame_50000(nbvm, mode):
    """The 1999 `ping -s 50000`: here one 50000-byte PPP frame each way (an mbuf chain in the kernel)."""
    unit_up(nbvm, mode, mtu=60000)
    clean_batch(nbvm, "a2k", 3, 50000, 7)
    clean_batch(nbvm, "k2a", 3, 50000, 7)
    clean_batch(nbvm, "a2k", 10, 100, 8)


@pytest.mark.parametrize("mode", ["stateless", "stateful"])
def test_ip_udp_both_ways(nbvm, mode):
    """IP through the unit: the unit addressed and up as IPCP would leave it, a UDP socket on the kernel's
    side; datagrams up to 65507 bytes (the 50000-byte one is the 1999 `ping -s 50000`), fragmented at MTU
    1500 by the kernel's IP stack one way and by the agent the other, every fragment MPPE-encrypted,
    reassembled and compared byte for byte."""
    unit_up(nbvm, mode)
    agent(nbvm, "ifup 192.168.100.1 192.168.100.2")
    for size, seed in ((100, 1), (1472, 2), (1473, 3), (8000, 4), (50000, 5), (65507, 6)):
        for direction in ("udp_a2k", "udp_k2a"):
            c = counts(agent(nbvm, f"{direction} 3 {size} {seed}"))
            assert c["ok"] == "3", f"{direction} 3x{size}: {c}"


# fault on frame 5 of 20 (what the wire does between the agent's encryption and the kernel's decryption)
FAULTS = ["drop=5", "swap=5", "dup=5", "corrupt=5", "drop=3,4,5,6"]


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("mode", ["stateless", "stateful"])
def test_faults_then_traffic_resumes(nbvm, mode, fault):
    """Loss, reordering, duplication, corrupted ciphertext: the kernel survives, the frames around the fault
    arrive intact, and after pppd's part of the reset (the agent's) traffic is byte-exact again."""
    unit_up(nbvm, mode)
    c = counts(agent(nbvm, f"a2k 20 200 11 {fault}"))
    marks = c["marks"]
    assert marks[:3] == "...", c
    if mode == "stateless":
        assert marks[7:] == "." * 13, c  # each frame carries its own key: no loss beyond the faulty ones
    clean_batch(nbvm, "a2k", 20, 200, 12)
    k = counts(agent(nbvm, f"k2a 20 200 13 {fault.replace('corrupt', 'drop').replace('swap', 'drop')}"))
    assert k["marks"][:3] == "...", k
    clean_batch(nbvm, "k2a", 20, 200, 14)


@pytest.mark.parametrize("mode", ["stateless", "stateful"])
def test_coherency_count_jump(nbvm, mode):
    """A frame whose coherency count jumps ahead by 7: DECOMP_ERROR/Reset path, no assertion; traffic is
    byte-exact again after the reset."""
    unit_up(nbvm, mode)
    c = counts(agent(nbvm, "a2k 20 100 21 jump=5"))
    assert c["marks"][:5] == ".....", c
    if mode == "stateless":
        # the kernel followed the count to +7: it must catch up with the peer's real count again
        unit_up(nbvm, mode)
    clean_batch(nbvm, "a2k", 20, 100, 22)


@pytest.mark.parametrize("mode", ["stateless", "stateful"])
def test_coherency_count_wrap(nbvm, mode, nb_figures):
    """More than 4096 frames: the 12-bit coherency count wraps in both directions. Figure: frames per
    second through the kernel (agent + console round trip included, under TCG)."""
    unit_up(nbvm, mode)
    seconds = {"a2k": 0.0, "k2a": 0.0}
    for seed in (31, 32):
        for direction in seconds:
            t0 = time.monotonic()
            clean_batch(nbvm, direction, 2100, 8, seed)
            seconds[direction] += time.monotonic() - t0
    for direction, s in seconds.items():
        nb_figures.record(f"netbsd_frames_per_s[{mode},{direction},10-byte frames]", round(4200 / s))


def test_fuzz_malformed_mppe_frames(nbvm):
    """Thousands of malformed MPPE frames at the kernel's decompressor; it stays up and, CCP renegotiated,
    decrypts byte-exact again."""
    unit_up(nbvm, "stateless")
    out = counts(agent(nbvm, "fuzz 3000 4242", timeout=600))
    assert out["sent"] == "3000"
    unit_up(nbvm, "stateless")
    clean_batch(nbvm, "a2k", 20, 300, 41)
    clean_batch(nbvm, "k2a", 20, 300, 42)


def test_harness_hang_times_out_and_reboots(nbvm):
    """The harness's own control: a command that never answers is a CommandTimeout; the guest is then
    dirty, refuses the next command, and answers again once rebooted (explicitly)."""
    from buildtool.errors import HarnessError
    from buildtool.vm.console import CommandTimeout

    generation = nbvm.generation
    with pytest.raises(CommandTimeout):
        nbvm.run("hang", timeout=5)
    assert nbvm.dirty
    with pytest.raises(HarnessError, match="dirty"):
        agent(nbvm, "ping")
    nbvm.reboot()
    assert agent(nbvm, "ping").strip() == "pong"
    assert nbvm.generation == generation + 1
