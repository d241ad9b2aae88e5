"""Issue 12 item 4: a bounded fuzz of malformed MPPE frames from the pty side, with DIAGNOSTIC on.

The rump kernel is built with DIAGNOSTIC (buildrump.sh's default), so a failed KASSERT panics and the
process dies, which fails the test; a diagnostic printed on the console fails it too (the fixture checks).
Frames (seeded, so a failure can be replayed): random bytes behind PPP_COMP, MPPE headers with every
combination of bits and random coherency counts, truncations (0-3 bytes), valid frames with bytes flipped
or the count moved far ahead or back, and raw line garbage (bad FCS, runts, frames longer than the MRU).
pppd's part is played after each frame: a DECOMP_ERROR is answered with a Reset-Request/Ack, a
DECOMP_FATALERROR by closing and reopening CCP, as pppd does. At the end the link must still carry
traffic and the kernel's count of mbufs in use must be back where it started.
"""

from __future__ import annotations

import random
import time

import pytest
from rump_peers import CoreSide
from rump_support import record
from test_rump_frames import LOCAL, MTU, PEER, PORT, netbsd_sends, peer_packet, received

from buildtool.rump import wire
from buildtool.rump.driver import SC_DC_ERROR, SC_DC_FERROR
from buildtool.rump.link import bring_up

pytestmark = [pytest.mark.integration, pytest.mark.rump]

FRAMES = 1500
SEED = 12


def malformed(rng: random.Random, valid: bytes) -> tuple[str, bytes]:
    kind = rng.choice(["random", "header", "truncated", "flipped", "count", "line"])
    if kind == "random":
        return kind, wire.ppp(wire.PPP_COMP, rng.randbytes(rng.randrange(0, 1600)))
    if kind == "header":
        head = bytes([rng.randrange(256), rng.randrange(256)])
        return kind, wire.ppp(wire.PPP_COMP, head + rng.randbytes(rng.randrange(0, 64)))
    if kind == "truncated":
        return kind, wire.ppp(wire.PPP_COMP, valid[:rng.randrange(0, 4)])
    if kind == "flipped":
        b = bytearray(valid)
        for _ in range(rng.randrange(1, 4)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        return kind, wire.ppp(wire.PPP_COMP, bytes(b))
    if kind == "count":
        count = rng.randrange(4096)
        head = bytes([(valid[0] & 0xF0) | count >> 8, count & 0xFF])
        return kind, wire.ppp(wire.PPP_COMP, head + valid[2:])
    return kind, b""  # raw line garbage, built by the caller


def line_garbage(rng: random.Random) -> bytes:
    choice = rng.randrange(3)
    if choice == 0:  # a frame whose FCS is wrong
        f = bytearray(wire.frame(wire.ppp(wire.PPP_COMP, rng.randbytes(40))))
        f[-2] ^= 0x55 if f[-2] not in (0x7E ^ 0x55, 0x7D ^ 0x55) else 0x11
        return bytes(f)
    if choice == 1:  # runts and stray flags
        return bytes([0x7E, rng.randrange(256), 0x7E, 0x7D, 0x7E])
    return wire.frame(wire.ppp(wire.PPP_COMP, rng.randbytes(3000)))  # longer than the MRU


@pytest.mark.parametrize("mode", ["stateless", "stateful"])
def test_fuzz_malformed_frames(netbsd, core_peer, mode):
    stateless = mode == "stateless"
    peer = CoreSide(core_peer, stateless)
    link = bring_up(netbsd, peer, stateless)
    assert netbsd.ifup(LOCAL, PEER, MTU) == 0 and netbsd.udp_bind(PORT) == 0
    for i in range(3):  # warm the pools and caches before counting
        link.to_netbsd(peer_packet(i, 500, i + 1))
    received(link)
    netbsd.ppp_read()
    start = netbsd.mbufs()
    # the counter sees mbufs that are held: packets queued for pppd and not read yet
    for i in range(3):
        netbsd.deliver(wire.ppp(0x8021, bytes([1, i, 0, 4])))
    held, deadline = start, time.monotonic() + 10
    while held < start + 3 and time.monotonic() < deadline:
        time.sleep(0.02)
        held = netbsd.mbufs()
    netbsd.ppp_read()
    assert held >= start + 3 and netbsd.mbufs() == start, f"mbuf counter: {start}, {held} held, then drained"
    rng = random.Random(SEED)
    kinds: dict[str, int] = {}
    errors = fatals = 0
    t0 = time.monotonic()
    for n in range(FRAMES):
        valid = peer.encrypt(peer_packet(10 + n, rng.randrange(1, 200), n))
        kind, packet = malformed(rng, valid)
        kinds[kind] = kinds.get(kind, 0) + 1
        netbsd.wire_write(line_garbage(rng) if kind == "line" else wire.frame(packet))
        netbsd.sync()
        flags = netbsd.flags()
        if flags & SC_DC_FERROR:
            fatals += 1
            netbsd.ppp_read()
            assert netbsd.set_flags(0) == 0  # pppd takes CCP down ...
            peer = CoreSide(core_peer, stateless)
            link = bring_up(netbsd, peer, stateless)  # ... and negotiates it again
        elif flags & SC_DC_ERROR:
            errors += 1
            link.pppd_resets_peer()
        if n % 100 == 0:
            netbsd.ppp_read()
            received(link, 10)
    seconds = time.monotonic() - t0
    netbsd.ppp_read()
    if netbsd.flags() & SC_DC_ERROR:
        link.pppd_resets_peer()
    # Forged frames with a coherency count far ahead move the decompressor's key chain ahead of the real
    # sender (MPPE has no integrity check, so nothing can tell them apart): the genuine frames then look
    # late and are dropped. pppd's way out is to renegotiate CCP, which must work after the fuzz.
    link.to_netbsd(peer_packet(8999, 300, 8999))
    survived_without_renegotiation = received(link, 500) == [wire.pattern(8999, 300)]
    netbsd.ppp_read()
    assert netbsd.set_flags(0) == 0
    link = bring_up(netbsd, CoreSide(core_peer, stateless), stateless)
    for i in range(5):
        link.to_netbsd(peer_packet(9000 + i, 300, 9000 + i))
    assert received(link, 1000) == [wire.pattern(9000 + i, 300) for i in range(5)]
    for i in range(5):
        assert netbsd_sends(link, 9100 + i, 300) == wire.pattern(9100 + i, 300)
    netbsd.ppp_read()
    end = netbsd.mbufs()
    for _ in range(20):  # mbufs freed by a softint or callout a moment later
        if end == start:
            break
        time.sleep(0.1)
        end = netbsd.mbufs()
    record(f"fuzz_{mode}", {"frames": FRAMES, "seed": SEED, "kinds": kinds, "decomp_errors": errors,
                            "fatal_errors": fatals, "mbufs_start": start, "mbufs_end": end,
                            "traffic_without_renegotiation": survived_without_renegotiation,
                            "seconds": round(seconds, 1), "console_lines": len(netbsd.console)})
    assert end == start, f"mbufs in use: {start} before the fuzz, {end} after (leak)"
