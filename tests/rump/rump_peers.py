"""The Linux-side peers of the rump lane: our MPPE core built for user space (mppe_peer) and the Python
reference MPPE of the core's tests (tests/mppe_reference.py, written from RFC 3078/3079), with the same
keys. Both turn NetBSD's send key into a receiver and NetBSD's receive key into a sender."""

from __future__ import annotations

import mppe_reference

from buildtool.rump.driver import CorePeer
from buildtool.rump.link import KEY_A, KEY_B, mppe_option


class CoreSide:
    name = "core"

    def __init__(self, proc: CorePeer, stateless: bool, tx_key: bytes = KEY_A, rx_key: bytes = KEY_B):
        self.proc = proc
        assert proc.init("decomp", mppe_option(tx_key, stateless)) == 0
        assert proc.init("comp", mppe_option(rx_key, stateless)) == 0

    def encrypt(self, packet: bytes) -> bytes:
        return self.proc.compress(packet)

    def decrypt(self, frame: bytes) -> tuple[bool, bytes]:
        rc, plain = self.proc.decompress(frame)
        return rc == 0, plain

    def reset_request_received(self) -> None:
        self.proc.comp_reset()

    def lost_sync(self) -> None:
        """Nothing to do: the core's decompressor waits for the flushed frame by itself."""


class ReferenceSide:
    name = "reference"

    def __init__(self, stateless: bool, tx_key: bytes = KEY_A, rx_key: bytes = KEY_B):
        self.rx = mppe_reference.Receiver(tx_key, 128, stateless)
        self.tx = mppe_reference.Sender(rx_key, 128, stateless)

    def encrypt(self, packet: bytes) -> bytes:
        return self.tx.send(packet)

    def decrypt(self, frame: bytes) -> tuple[bool, bytes]:
        verdict, plain = self.rx.receive(frame)
        return verdict == "ok", plain

    def reset_request_received(self) -> None:
        self.tx.reset_request()
