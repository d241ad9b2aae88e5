"""NetBSD's if_ppp with our ppp_mppe.kmod and MPPE frames of another kernel (tests/fixtures/mppe/,
tests/mppe_fixtures.py):

- the `linux-*` fixtures (frames Debian's stock ppp_mppe put on the wire, with their keys; captured and
  re-checked by tests/vm/test_mppe_fixtures_linux.py) are fed to the kernel on the pty and the plaintexts
  pppd's reader gets must be byte-exact;
- the kernel encrypts the fixture plaintexts with NetBSD's key: the frames must be the kept `netbsd-*`
  ones (BUILDTOOL_REGEN_FIXTURES=1 rewrites them), which Linux's stock decryptor is fed in the VM suite,
  and which the Python reference decrypts (tests/test_mppe_fixtures.py);
- control: a frame with one flipped ciphertext byte is not accepted byte-exact, the kernel survives;
- figure: frames per second through the kernel, timed in the agent as Linux's tool times it (ratio printed
  at the end of the session when the Linux suite ran too).
"""

from __future__ import annotations

import re

import pytest
from kernel_fps import BENCH_FRAMES, BENCH_SIZE, record_fps
from mppe_fixtures import CASES, LINUX_KEY, NETBSD_KEY, Fixture, case_id, load, option, plaintexts, record

pytestmark = [pytest.mark.integration, pytest.mark.vm]
PIECE = 800  # hex characters per console line (the agent stages longer frames in pieces)


def agent(vm, cmd: str, timeout: float = 60) -> str:
    r = vm.run(cmd, timeout=timeout, check=False)
    assert r.status == 0, f"agent `{cmd[:60]}`: status {r.status}: {r.output}"
    return r.output


def unit_up(vm, mode: str, bits: int, rx_key: str, tx_key: str) -> None:
    """A ppp unit with MPPE both ways, CCP up; the agent's peer state matches (keys)."""
    ci = option(mode, bits)
    agent(vm, "close")
    agent(vm, "open")
    agent(vm, f"comp {ci}{tx_key} t")
    agent(vm, f"comp {ci}{rx_key} r")
    agent(vm, f"keys {ci}{tx_key} {ci}{rx_key}")
    out = agent(vm, f"ccpup {ci} {ci}")
    assert "comp_run" in out and "decomp_run" in out, out


def staged(vm, verb: str, data: bytes, tag: str) -> bytes | None:
    """Send `data` to the agent in pieces, then `verb` the whole; what the kernel gave back."""
    h = data.hex()
    for i in range(0, max(len(h) - PIECE, 0), PIECE):
        agent(vm, f"chunk {h[i:i + PIECE]}")
    last = h[(max(len(h) - 1, 0) // PIECE) * PIECE:]
    out = agent(vm, f"{verb} {last}")
    m = re.search(rf"^{tag} (\w+)$", out, re.M)
    assert m, f"no `{tag}` from the agent: {out}"
    return None if m[1] == "none" else bytes.fromhex(m[1])


def inject(vm, frame: bytes) -> bytes | None:
    """Feed one frame (address/control onwards); the slave's reader gets ff 03 + protocol + payload."""
    got = staged(vm, "inject", frame, "got")
    return got[2:] if got is not None and got[:2] == b"\xff\x03" else got


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_netbsd_accepts_linux_frames(nbvm, case):
    fx = load("linux", *case)
    unit_up(nbvm, fx.mode, fx.bits, rx_key=fx.start_key, tx_key=NETBSD_KEY)
    got = [inject(nbvm, frame) for _, frame in fx.frames]
    bad = [i for i, ((p, _), g) in enumerate(zip(fx.frames, got, strict=True)) if g != p]
    assert not bad, (f"frames {bad[:10]} of linux-{case_id(case)} not decrypted byte-exact: "
                     f"{got[bad[0]]!r:.200}")


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_netbsd_emits_the_kept_frames(nbvm, case, netbsd_kernel):
    mode, bits = case
    unit_up(nbvm, mode, bits, rx_key=NETBSD_KEY, tx_key=NETBSD_KEY)
    plains = plaintexts(mode, bits)
    frames = [staged(nbvm, "emit", p, "frame") for p in plains]
    assert None not in frames, f"the kernel sent no frame for #{frames.index(None)}"
    record("netbsd", Fixture(f"netbsd {netbsd_kernel.release} if_ppp + our ppp_mppe.kmod", mode, bits,
                             option(mode, bits), NETBSD_KEY, list(zip(plains, frames, strict=True))))


def test_netbsd_flipped_fixture_byte_is_not_accepted(nbvm):
    """Control: one flipped ciphertext byte in a Linux frame gives a different plaintext (MPPE has no
    integrity check; the byte-exact comparison is what sees it), and the kernel survives."""
    fx = load("linux", "stateless", 128)
    unit_up(nbvm, fx.mode, fx.bits, rx_key=fx.start_key, tx_key=NETBSD_KEY)
    frames = [f for _, f in fx.frames[:4]]
    frames[2] = frames[2][:8] + bytes([frames[2][8] ^ 0x01]) + frames[2][9:]
    got = [inject(nbvm, f) for f in frames]
    assert [g == p for g, (p, _) in zip(got, fx.frames[:4], strict=True)] == [True, True, False, True], got
    assert agent(nbvm, "ping").strip() == "pong"


@pytest.mark.parametrize("mode", ["stateless", "stateful"])
def test_netbsd_frames_per_second(nbvm, mode, nb_figures, request):
    unit_up(nbvm, mode, 128, rx_key=LINUX_KEY, tx_key=NETBSD_KEY)
    m = dict(re.findall(r"(\w+)=(\d+)", agent(nbvm, f"bench {BENCH_FRAMES} {BENCH_SIZE}", timeout=600)))
    assert m["decrypted"] == m["ok"] == m["encrypted"] == str(BENCH_FRAMES), m
    for direction in ("encrypt", "decrypt"):
        fps = BENCH_FRAMES / (int(m[f"{direction}_us"]) / 1e6)
        nb_figures.record(f"netbsd_frames_per_s[{mode},kernel {direction}s]", int(fps))
        record_fps(request.config, "netbsd", mode, direction, fps)
