"""PPP on an asynchronous line (RFC 1662 HDLC-like framing) and the CCP packets the rump lane exchanges.

The rump kernel's pty master is the wire: what NetBSD's ppp_tty sends arrives there framed and escaped,
and what the test writes there must be framed the same way for ppp_tty's input routine to accept it.
"""

from __future__ import annotations

import struct

FLAG, ESCAPE = 0x7E, 0x7D
ALLSTATIONS, UI = 0xFF, 0x03
PPP_IP, PPP_COMP, PPP_CCP = 0x0021, 0x00FD, 0x80FD
CCP_CONFACK, CCP_RESETREQ, CCP_RESETACK = 2, 14, 15


def _fcs_table() -> list[int]:
    table = []
    for b in range(256):
        v = b
        for _ in range(8):
            v = (v >> 1) ^ 0x8408 if v & 1 else v >> 1
        table.append(v)
    return table


_FCS = _fcs_table()
GOOD_FCS = 0xF0B8


def fcs16(data: bytes, fcs: int = 0xFFFF) -> int:
    for b in data:
        fcs = (fcs >> 8) ^ _FCS[(fcs ^ b) & 0xFF]
    return fcs


def frame(packet: bytes) -> bytes:
    """One async-HDLC frame: flag, escaped packet + FCS, flag (every control character escaped)."""
    body = packet + struct.pack("<H", fcs16(packet) ^ 0xFFFF)
    out = bytearray([FLAG])
    for b in body:
        if b < 0x20 or b in (FLAG, ESCAPE):
            out += bytes([ESCAPE, b ^ 0x20])
        else:
            out.append(b)
    out.append(FLAG)
    return bytes(out)


def unframe(stream: bytes) -> tuple[list[bytes], int]:
    """The packets in a byte stream from the line (FCS checked and stripped), and how many frames failed
    the FCS check."""
    packets, bad = [], 0
    for chunk in stream.split(bytes([FLAG])):
        if not chunk:
            continue
        data, i = bytearray(), 0
        while i < len(chunk):
            if chunk[i] == ESCAPE and i + 1 < len(chunk):
                data.append(chunk[i + 1] ^ 0x20)
                i += 2
            else:
                data.append(chunk[i])
                i += 1
        if len(data) < 4 or fcs16(bytes(data)) != GOOD_FCS:
            bad += 1
            continue
        packets.append(bytes(data[:-2]))
    return packets, bad


def ppp(protocol: int, payload: bytes) -> bytes:
    """A PPP packet with the full header (address, control, protocol), as pppd writes and reads them."""
    return struct.pack(">BBH", ALLSTATIONS, UI, protocol) + payload


def split_ppp(packet: bytes) -> tuple[int, bytes]:
    """(protocol, payload) of a packet with the full 4-byte header."""
    if len(packet) < 4 or packet[0] != ALLSTATIONS or packet[1] != UI:
        raise ValueError(f"not a PPP packet with address/control: {packet[:8].hex()}")
    return struct.unpack(">H", packet[2:4])[0], packet[4:]


def protocol_of(packet: bytes) -> int | None:
    """The protocol of a packet pppd read, or None for one that is too short or malformed (a fuzzed frame
    that if_ppp passed up as it came, e.g. with a one-byte protocol field)."""
    try:
        return split_ppp(packet)[0]
    except ValueError:
        return None


def ccp(code: int, ident: int, options: bytes = b"") -> bytes:
    return ppp(PPP_CCP, struct.pack(">BBH", code, ident, 4 + len(options)) + options)


def ip_checksum(header: bytes) -> int:
    if len(header) % 2:
        header += b"\0"
    total = sum(struct.unpack(f">{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_fragments(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes, mtu: int,
                  ident: int) -> list[bytes]:
    """An IPv4 UDP datagram (checksum 0: allowed for UDP over IPv4) cut into fragments of at most `mtu`."""
    udp = struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload
    step = (mtu - 20) // 8 * 8
    frags = []
    for off in range(0, len(udp), step):
        part = udp[off:off + step]
        more = 0x2000 if off + step < len(udp) else 0
        hdr = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(part), ident, more | (off // 8), 64, 17, 0,
                          src, dst)
        hdr = hdr[:10] + struct.pack(">H", ip_checksum(hdr)) + hdr[12:]
        frags.append(hdr + part)
    return frags


def reassemble_udp(fragments: list[bytes]) -> bytes:
    """The UDP payload of one datagram from its IPv4 fragments (any order)."""
    parts = {}
    for f in fragments:
        ihl = (f[0] & 0x0F) * 4
        off = (struct.unpack(">H", f[6:8])[0] & 0x1FFF) * 8
        total = struct.unpack(">H", f[2:4])[0]
        parts[off] = f[ihl:total]
    data = b"".join(parts[k] for k in sorted(parts))
    return data[8:8 + struct.unpack(">H", data[4:6])[0] - 8]


def pattern(seed: int, n: int) -> bytes:
    """The payload rumpppp's udpsend makes for SEED (same formula as pattern() in rumpppp.c)."""
    return bytes(((seed * 131 + i * 7 + (i >> 8)) & 0xFF) for i in range(n))
