"""Issue 12 item 3: frames both ways between NetBSD's if_ppp with our ppp_mppe and the Linux side.

One rump ppp unit (IPv4 10.0.0.1 <-> 10.0.0.2, MTU 1496 as pppd sets it under MPPE) whose line the test
drives. NetBSD -> Linux: UDP datagrams sent from a socket in the rump kernel leave as MPPE frames on the
line and are decrypted by the peer. Linux -> NetBSD: the peer encrypts IPv4/UDP packets, they go onto the
line, and the datagram must arrive intact at a UDP socket in the rump kernel. Peers: our core built for
Linux user space, and the Python reference MPPE, each with the same keys. Loss, reordering and a corrupted
frame must give if_ppp what it expects (DECOMP_ERROR -> SC_DC_ERROR -> pppd's Reset-Request -> Reset-Ack,
or nothing at all where MPPE resynchronises by itself) and the link must carry traffic again afterwards;
a datagram that arrives must always be the one that was sent.
"""

from __future__ import annotations

import pytest
from rump_peers import CoreSide, ReferenceSide
from rump_support import record

from buildtool.rump import wire
from buildtool.rump.driver import SC_DC_ERROR, SC_DC_FERROR
from buildtool.rump.link import Link, bring_up

pytestmark = [pytest.mark.integration, pytest.mark.rump]

LOCAL, PEER = "10.0.0.1", "10.0.0.2"
LOCAL_B, PEER_B = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
PORT, MTU = 5000, 1496
MODES = {"stateless": True, "stateful": False}
_MATRIX: dict[str, dict[str, object]] = {}


def _peer(kind: str, core_peer, stateless: bool):
    return CoreSide(core_peer, stateless) if kind == "core" else ReferenceSide(stateless)


def _link(netbsd, peer, stateless) -> Link:
    link = bring_up(netbsd, peer, stateless)
    assert netbsd.ifup(LOCAL, PEER, MTU) == 0
    assert netbsd.udp_bind(PORT) == 0
    return link


def _size(i: int) -> int:
    return 1 + (i * 389) % 1400


def netbsd_sends(link: Link, seed: int, size: int, drop: bool = False) -> bytes | None:
    """One datagram from the rump kernel's socket; the peer decrypts it unless `drop` (lost on the line).
    Returns the UDP payload the peer decrypted, None if it could not."""
    assert link.netbsd.udp_send(PEER, PORT, size, seed) == 0
    frames = link.from_netbsd()
    assert len(frames) == 1, f"expected one MPPE frame for a {size}-byte datagram, got {len(frames)}"
    if drop:
        return None
    ok, plain = link.peer.decrypt(frames[0])
    if not ok:
        return None
    assert plain[:2] == b"\x00\x21", f"decrypted protocol {plain[:2].hex()} is not IPv4"
    return wire.reassemble_udp([plain[2:]])


def peer_packet(seed: int, size: int, ident: int) -> bytes:
    [ip] = wire.udp_fragments(PEER_B, LOCAL_B, PORT, PORT, wire.pattern(seed, size), MTU, ident)
    return b"\x00\x21" + ip


def received(link: Link, timeout_ms: int = 300) -> list[bytes]:
    out = []
    while (d := link.netbsd.udp_recv(timeout_ms)) is not None:
        out.append(d)
        timeout_ms = 50
    return out


def _row(direction: str, mode: str, peer: str, **values) -> None:
    key = f"{direction} {mode} {peer}"
    _MATRIX.setdefault(key, {}).update(values)
    record("frame_matrix", dict(sorted(_MATRIX.items())))


@pytest.mark.parametrize("peer_kind", ["core", "reference"])
@pytest.mark.parametrize("mode", MODES)
def test_frames_both_ways(netbsd, core_peer, mode, peer_kind):
    stateless = MODES[mode]
    link = _link(netbsd, _peer(peer_kind, core_peer, stateless), stateless)
    count = 40 if stateless else 300  # stateful: past the flag packet (count 0xff) and its rekey
    out_ok = sum(netbsd_sends(link, i, _size(i)) == wire.pattern(i, _size(i)) for i in range(count))
    in_ok = 0
    for i in range(count):
        link.to_netbsd(peer_packet(1000 + i, _size(i), i + 1))
        got = received(link, 2000)
        in_ok += got == [wire.pattern(1000 + i, _size(i))]
    _row("NetBSD->Linux", mode, peer_kind, packets=count, decrypted=out_ok)
    _row("Linux->NetBSD", mode, peer_kind, packets=count, delivered=in_ok)
    assert netbsd.flags() & (SC_DC_ERROR | SC_DC_FERROR) == 0
    assert (out_ok, in_ok) == (count, count)


def _deliver_and_recover(link: Link, packets: list[tuple[int, bytes]], order: list[int],
                         corrupt: set[int]) -> tuple[list[bytes], int]:
    """Send the peer-encrypted packets in `order` (indexes missing from it are lost), corrupting the
    header of those in `corrupt`; play pppd's part on every error. Returns what arrived and how many
    resets pppd had to do."""
    frames = [link.peer.encrypt(p) for _, p in packets]
    got, resets = [], 0
    for i in order:
        frame = frames[i]
        if i in corrupt:
            frame = bytes([frame[0] | 0x20]) + frame[1:]  # bit C: "MPPC-compressed", never valid here
        link.send_frame(frame)
        link.netbsd.sync()
        got += received(link, 150)
        if link.netbsd.flags() & SC_DC_ERROR:
            link.pppd_resets_peer()
            resets += 1
    got += received(link, 1000)  # stragglers of a loaded machine, before the recovery check
    return got, resets


@pytest.mark.parametrize("peer_kind", ["core", "reference"])
@pytest.mark.parametrize("anomaly", ["loss", "reorder", "corrupt"])
@pytest.mark.parametrize("mode", MODES)
def test_linux_to_netbsd_recovers(netbsd, core_peer, mode, anomaly, peer_kind):
    stateless = MODES[mode]
    link = _link(netbsd, _peer(peer_kind, core_peer, stateless), stateless)
    n = 12
    packets = [(i, peer_packet(2000 + i, _size(i), 100 + i)) for i in range(n)]
    order = list(range(n))
    corrupt: set[int] = set()
    if anomaly == "loss":
        order.remove(5)
    elif anomaly == "reorder":
        order[5], order[6] = 6, 5
    else:
        corrupt = {5}
    got, resets = _deliver_and_recover(link, packets, order, corrupt)
    sent = {wire.pattern(2000 + i, _size(i)) for i in range(n)}
    assert all(d in sent for d in got), "a datagram arrived that was never sent (decrypted with a wrong key)"
    # after the anomaly and pppd's reset handling the link carries traffic again
    after = []
    for i in range(8):
        link.to_netbsd(peer_packet(3000 + i, 200, 200 + i))
        after += received(link, 1000)
    assert after == [wire.pattern(3000 + i, 200) for i in range(8)], "the link did not recover"
    _row("Linux->NetBSD", mode, peer_kind, **{anomaly: f"{len(got)}/{n} delivered, {resets} reset(s)"})
    if anomaly == "loss" and stateless:
        assert resets == 0, "stateless MPPE resynchronises on the coherency count; no reset is needed"
        assert len(got) == n - 1
    if anomaly == "reorder" and stateless:
        assert len(got) == n - 1, "stateless MPPE decrypts the early frame and drops only the late one"
    if anomaly == "loss" and not stateless:
        assert resets >= 1, "stateful MPPE must report the loss (DECOMP_ERROR) so that pppd resets the peer"
    if anomaly == "corrupt":
        assert resets >= 1 and len(got) <= n - 1, "the corrupted frame must be refused with DECOMP_ERROR"
    assert netbsd.flags() & SC_DC_FERROR == 0


@pytest.mark.parametrize("peer_kind", ["core", "reference"])
@pytest.mark.parametrize("mode", MODES)
def test_netbsd_to_linux_loss_recovers(netbsd, core_peer, mode, peer_kind):
    stateless = MODES[mode]
    link = _link(netbsd, _peer(peer_kind, core_peer, stateless), stateless)
    results, resets = [], 0
    for i in range(12):
        got = netbsd_sends(link, 4000 + i, 300, drop=(i == 5))
        results.append(got == wire.pattern(4000 + i, 300))
        if got is None and i != 5:
            link.peer_resets_netbsd()  # the peer's Reset-Request; pppd's Reset-Ack resets our compressor
            resets += 1
    after = [netbsd_sends(link, 5000 + i, 300) == wire.pattern(5000 + i, 300) for i in range(8)]
    _row("NetBSD->Linux", mode, peer_kind, loss=f"{sum(results)}/11 decrypted, {resets} reset(s)")
    assert all(after), "the peer could not decrypt NetBSD's frames after the reset"
    if stateless:
        assert resets == 0 and sum(results) == 11


@pytest.mark.parametrize("mode", MODES)
def test_50000_byte_datagram_both_ways(netbsd, core_peer, mode):
    """The oversized case: fragmented into MTU-size frames, each encrypted, reassembled at the far end."""
    stateless = MODES[mode]
    link = _link(netbsd, CoreSide(core_peer, stateless), stateless)
    assert netbsd.udp_send(PEER, PORT, 50000, 7) == 0
    frames = link.from_netbsd()
    plains = []
    for f in frames:
        ok, plain = link.peer.decrypt(f)
        assert ok and plain[:2] == b"\x00\x21"
        assert len(plain) - 2 <= MTU
        plains.append(plain[2:])
    assert wire.reassemble_udp(plains) == wire.pattern(7, 50000)
    fragments = wire.udp_fragments(PEER_B, LOCAL_B, PORT, PORT, wire.pattern(8, 50000), MTU, 77)
    for pkt in fragments:
        link.to_netbsd(b"\x00\x21" + pkt)
    assert received(link, 3000) == [wire.pattern(8, 50000)]
    _row("NetBSD->Linux", mode, "core", datagram_50000=f"{len(frames)} frames, reassembled")
    _row("Linux->NetBSD", mode, "core", datagram_50000=f"{len(fragments)} frames, reassembled")
