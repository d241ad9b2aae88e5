"""Linux's stock ppp_mppe and the kept MPPE fixtures (tests/fixtures/mppe/, tests/mppe_fixtures.py), through
a real ppp unit on a pty (`mppe_frames`, buildtool/vm/tools/mppe_frames.c):

- Debian's signed ppp_generic/ppp_async/ppp_mppe encrypt the fixture plaintexts with the fixture keys and
  must put exactly the kept `linux-*` frames on the wire (BUILDTOOL_REGEN_FIXTURES=1 rewrites them): the
  frames NetBSD's scenarios are fed (tests/netbsd_vm/test_netbsd_fixtures.py);
- the same stock decryptor is fed the `netbsd-*` frames (made by NetBSD's if_ppp with our ppp_mppe.kmod)
  and must hand pppd's reader the plaintexts byte-exact;
- figure: frames per second through Linux's ppp unit, the NetBSD lane's counterpart (ratio printed at the
  end of the session when both ran).
The guest runs our modules again afterwards.
"""

from __future__ import annotations

import re

import pytest
from kernel_fps import BENCH_FRAMES, BENCH_SIZE, record_fps
from mppe_fixtures import CASES, LINUX_KEY, NETBSD_KEY, Fixture, case_id, load, option, plaintexts, record

from buildtool.vm.topology import use_mppe

pytestmark = [pytest.mark.integration, pytest.mark.vm]


@pytest.fixture(scope="module")
def stock(vm, _tunnel_topology):
    t = _tunnel_topology
    t.hang_up()  # swapping the modules needs no call up: a call holds them
    info = t.use_modules(t.server_role, "stock")  # the guest's roles (server and client: one kernel)
    yield vm, info
    t.set_modules(t.server_role, "ours")
    if not vm.dirty:  # a dirty guest is rebooted before the next scenario, and set up with ours
        use_mppe(vm, "ours")


def frames_tool(vm, verb: str, ppp_option: str, items: list[bytes], tag: str) -> list[bytes | None]:
    out = vm.run(f"/usr/local/bin/mppe_frames {verb} {ppp_option} {' '.join(i.hex() for i in items)}",
                 timeout=300).output
    got = re.findall(rf"^{tag} (\w+)$", out, re.M)
    assert len(got) == len(items), \
        f"mppe_frames {verb}: {len(got)} results for {len(items)} inputs:\n{out[-2000:]}"
    return [None if g == "none" else bytes.fromhex(g) for g in got]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_stock_linux_makes_the_kept_frames(stock, case):
    vm, info = stock
    mode, bits = case
    plains = plaintexts(mode, bits)
    frames = frames_tool(vm, "encrypt", option(mode, bits) + LINUX_KEY, plains, "frame")
    assert None not in frames, f"the kernel sent no frame for #{frames.index(None)}"
    clear = [i for i, f in enumerate(frames) if f[:4] != b"\xff\x03\x00\xfd"]
    assert not clear, f"frames {clear[:10]} went out without MPPE: {frames[clear[0]].hex()[:80]}"
    fx = Fixture(f"linux {vm.release} stock ppp_mppe (Debian, signed)", mode, bits, option(mode, bits),
                 LINUX_KEY, list(zip(plains, frames, strict=True)))
    record("linux", fx)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_stock_linux_decrypts_netbsd_frames(stock, case):
    vm, _ = stock
    fx = load("netbsd", *case)
    assert fx.start_key == NETBSD_KEY
    got = frames_tool(vm, "decrypt", fx.ppp_option, [f for _, f in fx.frames], "plain")
    bad = [i for i, ((p, _), g) in enumerate(zip(fx.frames, got, strict=True)) if g != p]
    assert not bad, f"frames {bad[:10]} not decrypted byte-exact; first: {got[bad[0]]!r:.200}"


def test_stock_linux_rejects_a_flipped_frame_byte_exact(stock):
    """Control: the comparison sees a single flipped ciphertext byte (MPPE has no integrity check)."""
    vm, _ = stock
    fx = load("netbsd", "stateless", 128)
    frames = [f for _, f in fx.frames[:4]]
    frames[2] = frames[2][:8] + bytes([frames[2][8] ^ 0x01]) + frames[2][9:]
    got = frames_tool(vm, "decrypt", fx.ppp_option, frames, "plain")
    assert [g == p for g, (p, _) in zip(got, fx.frames[:4], strict=True)] == [True, True, False, True]


@pytest.mark.parametrize("mode", ["stateless", "stateful"])
def test_linux_frames_per_second(stock, mode, figures, request):
    vm, _ = stock
    out = vm.run(f"/usr/local/bin/mppe_frames bench {option(mode, 128)}{LINUX_KEY} {BENCH_FRAMES} "
                 f"{BENCH_SIZE}", timeout=300).output
    m = dict(re.findall(r"(\w+)=(\S+)", out))
    assert m.get("frames") == m.get("mppe") == m.get("ok") == str(BENCH_FRAMES), out
    for direction, key in (("encrypt", "k2w_fps"), ("decrypt", "w2k_fps")):
        figures.record(f"linux_stock_frames_per_s[{mode},kernel {direction}s]", int(float(m[key])))
        record_fps(request.config, "linux", mode, direction, float(m[key]))
