"""MPPE on a rump ppp unit, brought up the way pppd brings it up, and the Linux-side peers it talks to.

pppd's part (the test plays it): PPPIOCSFLAGS with SC_CCP_OPEN, PPPIOCSCOMPRESS for each direction with
the 22-byte option (CI_MPPE, 6, four bits bytes, 16-byte start key), a CCP Configure-Ack written on the
tty (if_ppp's ppp_ccp sees it going out and calls comp_init: "we agree to send compressed"), the peer's
Configure-Ack arriving on the line (ppp_ccp calls decomp_init), then SC_CCP_UP. Reset handling follows
RFC 1962 and pppd: a packet if_ppp could not decompress goes up to pppd with SC_DC_ERROR set, pppd sends a
Reset-Request, the peer's compressor flushes and answers with a Reset-Ack, which clears SC_DC_ERROR in
ppp_ccp; and a Reset-Request from the peer is answered by pppd writing a Reset-Ack, which makes ppp_ccp
reset our compressor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from . import wire
from .driver import SC_CCP_OPEN, SC_CCP_UP, SC_COMP_RUN, SC_DECOMP_RUN, RumpDied, RumpPPP

CI_MPPE = 18
MPPE_H, MPPE_S = 0x01, 0x40  # stateless (byte 2), 128-bit (byte 5)
# RFC 3079's MS-CHAPv2 example start key (docs/KERNELS.md) one way, a second key the other way
KEY_A = bytes.fromhex("8B7CDC149B993A1BA118CB153F56DCCB")
KEY_B = bytes.fromhex("FDECE3717A8C838CB388E527AE3CDD31")


def mppe_option(key: bytes, stateless: bool) -> bytes:
    """What pppd hands the kernel for one direction: 18, 6, the supported bits, the 16-byte start key."""
    return bytes([CI_MPPE, 6, MPPE_H if stateless else 0, 0, 0, MPPE_S]) + key


class Peer(Protocol):
    """The Linux side: encrypts what it sends to NetBSD, decrypts what NetBSD sends."""

    name: str

    def encrypt(self, packet: bytes) -> bytes: ...
    def decrypt(self, frame: bytes) -> tuple[bool, bytes]: ...
    def reset_request_received(self) -> None: ...


@dataclass
class Link:
    """One rump ppp unit with MPPE up, and the peer on its line."""

    netbsd: RumpPPP
    peer: Peer
    stateless: bool
    ident: int = 1

    # NetBSD -> peer ---------------------------------------------------------------------------
    def from_netbsd(self) -> list[bytes]:
        """The MPPE frames NetBSD sent since the last call (other protocols are not expected here)."""
        frames = []
        for packet in self.netbsd.wire_read():
            proto, payload = wire.split_ppp(packet)
            if proto != wire.PPP_COMP:
                raise AssertionError(f"NetBSD sent protocol {proto:#06x} in clear while MPPE was up")
            frames.append(payload)
        return frames

    # peer -> NetBSD ---------------------------------------------------------------------------
    def to_netbsd(self, packet: bytes) -> None:
        """Encrypt `packet` (protocol + payload) at the peer and put it on NetBSD's line."""
        self.send_frame(self.peer.encrypt(packet))

    def send_frame(self, mppe_frame: bytes) -> None:
        if self.netbsd.deliver(wire.ppp(wire.PPP_COMP, mppe_frame)) != 0:
            raise RumpDied("writing on the pty master failed")

    # resets -----------------------------------------------------------------------------------
    def pppd_resets_peer(self) -> int:
        """pppd's answer to a decompression error: a Reset-Request to the peer, whose compressor flushes and
        acks; the ack reaches if_ppp. Returns how many packets went up to pppd undecrypted meanwhile."""
        undecrypted = [p for p in self.netbsd.ppp_read() if wire.protocol_of(p) == wire.PPP_COMP]
        self.ident = (self.ident + 1) & 0xFF
        self.netbsd.ppp_write(wire.ccp(wire.CCP_RESETREQ, self.ident))
        self.netbsd.wire_read()  # the Reset-Request on the line, read by the peer
        self.peer.reset_request_received()
        self.netbsd.deliver(wire.ccp(wire.CCP_RESETACK, self.ident))
        self.netbsd.sync()
        self.netbsd.ppp_read()  # pppd reads the Reset-Ack
        return len(undecrypted)

    def peer_resets_netbsd(self) -> None:
        """The peer lost sync: its Reset-Request goes up to pppd, which answers with a Reset-Ack that makes
        if_ppp reset our compressor (the next frame is flushed)."""
        self.ident = (self.ident + 1) & 0xFF
        self.netbsd.deliver(wire.ccp(wire.CCP_RESETREQ, self.ident))
        self.netbsd.sync()
        got = self.netbsd.ppp_read()
        if not any(wire.protocol_of(p) == wire.PPP_CCP for p in got):
            raise AssertionError("the peer's Reset-Request did not reach pppd")
        self.netbsd.ppp_write(wire.ccp(wire.CCP_RESETACK, self.ident))
        self.netbsd.wire_read()


def bring_up(netbsd: RumpPPP, peer: Peer, stateless: bool, *, tx_key: bytes = KEY_A,
             rx_key: bytes = KEY_B) -> Link:
    """MPPE-128 on the unit, as pppd sets it up; tx_key is NetBSD's send key (the peer's receive key)."""
    tx, rx = mppe_option(tx_key, stateless), mppe_option(rx_key, stateless)
    _expect(netbsd.set_flags(SC_CCP_OPEN), "PPPIOCSFLAGS CCP_OPEN")
    _expect(netbsd.set_compress(tx, transmit=True), "PPPIOCSCOMPRESS transmit")
    _expect(netbsd.set_compress(rx, transmit=False), "PPPIOCSCOMPRESS receive")
    _expect(netbsd.ppp_write(wire.ccp(wire.CCP_CONFACK, 1, tx[:6])), "writing our Configure-Ack")
    netbsd.wire_read()
    _expect(netbsd.deliver(wire.ccp(wire.CCP_CONFACK, 1, rx[:6])), "the peer's Configure-Ack")
    netbsd.sync()  # ppp_ccp must see the Configure-Ack before SC_CCP_UP is set
    netbsd.ppp_read()
    _expect(netbsd.set_flags(SC_CCP_OPEN | SC_CCP_UP), "PPPIOCSFLAGS CCP_UP")
    flags = netbsd.flags()
    if not (flags & SC_COMP_RUN and flags & SC_DECOMP_RUN):
        raise AssertionError(f"MPPE did not start in if_ppp: flags {flags:#x} (comp_init/decomp_init refused "
                             f"the Configure-Ack options)")
    return Link(netbsd, peer, stateless)


def _expect(rc: int, what: str) -> None:
    if rc != 0:
        raise AssertionError(f"{what}: errno {rc}")
