"""MPPE frames made by one kernel, kept with their keys so another kernel's decryptor can be fed them
(tests/fixtures/mppe/, format in its README.md; docs/vm-netbsd.md).

Each fixture is one JSON file `<source>-<mode>-<bits>.json`: the kernel that encrypted, the CCP option
(6 bytes) and the 16-byte start key it was given (PPPIOCSCOMPRESS: option + key), and the frames in the
order sent, each with its plaintext (PPP protocol + payload, hex) and the frame the kernel put on the wire
(address/control onwards, hex, FCS stripped). MPPE is deterministic given key, mode and plaintexts, so a
kernel asked again must produce the same frames: the capturing scenarios compare with the files and rewrite
them only when BUILDTOOL_REGEN_FIXTURES=1.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import mppe_reference as ref

DIR = Path(__file__).resolve().parent / "fixtures" / "mppe"
REGEN = os.environ.get("BUILDTOOL_REGEN_FIXTURES") == "1"
# RFC 3079 vectors (/work/shared/design/KERNELS.md): what Linux encrypts with (MasterKey used as a start
# key) and what NetBSD encrypts with (SendStartKey128)
LINUX_KEY = "fdece3717a8c838cb388e527ae3cdd31"
NETBSD_KEY = "8b7cdc149b993a1ba118cb153f56dccb"
# Linux's stock ppp_mppe encrypts only protocols 0x0021-0x00fa (others go out in clear); of those, 0x0031
# (bridging PDU) is one neither kernel hands to its network stack, so decrypted frames reach pppd's reader
PROTO_TEST = b"\x00\x31"
CASES = (("stateless", 128), ("stateful", 128), ("stateless", 40), ("stateful", 40))


def case_id(case: tuple[str, int]) -> str:
    return f"{case[0]}-{case[1]}"


def option(mode: str, bits: int) -> str:
    """CI_MPPE as pppd hands it down: 18, 6, H bit (stateless), 0, 0, S (128) or L (40)."""
    return f"1206{'01' if mode == 'stateless' else '00'}0000{'40' if bits == 128 else '20'}"


def _ip_like(i: int, size: int) -> bytes:
    """An IPv4 + UDP datagram of `size` bytes (truncated below 28): header fields, then a pattern."""
    body = bytes((i * 7 + k * 13) & 0xFF for k in range(max(0, size - 28)))
    udp = struct.pack("!HHHH", 40000 + i, 1723, 8 + len(body), 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + len(body), i, 0x4000, 64, 17, 0,
                     bytes((192, 168, 100, 2)), bytes((192, 168, 100, 1)))
    return (ip + udp + body)[:size]


def plaintexts(mode: str, bits: int) -> list[bytes]:
    """Stateless: sizes 1..1496 bytes (the MTU's edge); stateful: 300 frames, so the key changes on the
    flag packet (count 255) inside the fixture."""
    if mode == "stateless":
        sizes = [1, 8, 28, 64, 100, 576, 1000, 1400, 1496] + [40] * (12 if bits == 128 else 3)
    else:
        sizes = [1400, 28, 1] + [20 + k % 40 for k in range(297)]
    return [PROTO_TEST + _ip_like(i, size) for i, size in enumerate(sizes)]


@dataclass
class Fixture:
    source: str  # which kernel and module encrypted
    mode: str
    bits: int
    option: str  # 6-byte CCP option, hex
    start_key: str  # 16 bytes, hex
    frames: list[tuple[bytes, bytes]]  # (plaintext: protocol + payload, frame: ff 03 00 fd + MPPE)

    @property
    def ppp_option(self) -> str:
        """What PPPIOCSCOMPRESS gets: option + start key (22 bytes)."""
        return self.option + self.start_key


def path(source: str, mode: str, bits: int) -> Path:
    return DIR / f"{source}-{mode}-{bits}.json"


def load(source: str, mode: str, bits: int) -> Fixture:
    d = json.loads(path(source, mode, bits).read_text())
    return Fixture(d["source"], d["mode"], d["bits"], d["option"], d["start_key"],
                   [(bytes.fromhex(f["plain"]), bytes.fromhex(f["frame"])) for f in d["frames"]])


def save(short: str, fx: Fixture) -> Path:
    p = path(short, fx.mode, fx.bits)
    p.parent.mkdir(parents=True, exist_ok=True)
    data = {"source": fx.source, "mode": fx.mode, "bits": fx.bits, "option": fx.option,
            "start_key": fx.start_key,
            "frames": [{"plain": pl.hex(), "frame": fr.hex()} for pl, fr in fx.frames]}
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(p)
    return p


def reference_decrypt(fx: Fixture) -> list[tuple[str, bytes]]:
    """The Python reference's verdict and plaintext for each frame, in order."""
    rx = ref.Receiver(bytes.fromhex(fx.start_key), fx.bits, fx.mode == "stateless")
    return [rx.receive(frame[4:]) for _, frame in fx.frames]


def reference_encrypt(mode: str, bits: int, key: str, plains: list[bytes]) -> list[bytes]:
    tx = ref.Sender(bytes.fromhex(key), bits, mode == "stateless")
    return [b"\xff\x03\x00\xfd" + tx.send(p) for p in plains]


def record(short: str, fx: Fixture) -> None:
    """Capturing scenarios: rewrite the fixture (BUILDTOOL_REGEN_FIXTURES=1) or check the kernel made
    exactly the committed frames."""
    if REGEN:
        save(short, fx)
        return
    kept = load(short, fx.mode, fx.bits)
    assert (kept.option, kept.start_key) == (fx.option, fx.start_key)
    assert [p for p, _ in kept.frames] == [p for p, _ in fx.frames], "the plaintexts changed: regenerate"
    bad = [i for i, (a, b) in enumerate(zip(kept.frames, fx.frames, strict=True)) if a[1] != b[1]]
    assert not bad, (f"{fx.source} encrypted frames {bad[:10]} differently from "
                     f"{path(short, fx.mode, fx.bits)} (BUILDTOOL_REGEN_FIXTURES=1 rewrites it)")
