"""An independent MPPE reference in Python, written from RFC 3078 and RFC 3079 for the core's tests.

Deliberately simple and unbounded (it rekeys as often as the RFC says, however large the gap); the C core
is compared with it byte for byte. SHA-1 comes from hashlib; RC4 is written out here.
"""

from __future__ import annotations

import hashlib

PAD1 = b"\x00" * 40
PAD2 = b"\xf2" * 40
SALT = {40: b"\xd1\x26\x9e", 56: b"\xd1", 128: b""}
KEYLEN = {40: 8, 56: 8, 128: 16}
SPACE = 4096


class RC4:
    def __init__(self, key: bytes):
        s = list(range(256))
        j = 0
        for i in range(256):
            j = (j + s[i] + key[i % len(key)]) % 256
            s[i], s[j] = s[j], s[i]
        self.s, self.i, self.j = s, 0, 0

    def crypt(self, data: bytes) -> bytes:
        s, i, j = self.s, self.i, self.j
        out = bytearray(len(data))
        for n, byte in enumerate(data):
            i = (i + 1) % 256
            j = (j + s[i]) % 256
            s[i], s[j] = s[j], s[i]
            out[n] = byte ^ s[(s[i] + s[j]) % 256]
        self.i, self.j = i, j
        return bytes(out)


def get_new_key_from_sha(start: bytes, session: bytes, n: int) -> bytes:
    return hashlib.sha1(start[:n] + PAD1 + session[:n] + PAD2).digest()[:n]


def reduce(key: bytes, bits: int) -> bytes:
    return SALT[bits] + key[len(SALT[bits]):]


def initial_session_key(start: bytes, bits: int) -> bytes:
    n = KEYLEN[bits]
    return reduce(get_new_key_from_sha(start, start, n), bits)


def next_session_key(start: bytes, bits: int, current: bytes) -> bytes:
    n = KEYLEN[bits]
    interim = get_new_key_from_sha(start, current, n)
    return reduce(RC4(interim).crypt(interim), bits)


# MS-CHAPv2 side (pppd's job, not the kernel's): checks that the constants above are RFC 3079's.
MAGIC1 = b"This is the MPPE Master Key"
MAGIC2 = b"On the client side, this is the send key; on the server side, it is the receive key."
MAGIC3 = b"On the client side, this is the receive key; on the server side, it is the send key."


def master_key(password_hash_hash: bytes, nt_response: bytes) -> bytes:
    return hashlib.sha1(password_hash_hash + nt_response + MAGIC1).digest()[:16]


def asymmetric_start_key(master: bytes, n: int, is_send: bool, is_server: bool) -> bytes:
    magic = MAGIC3 if is_send == is_server else MAGIC2
    return hashlib.sha1(master + PAD1 + magic + PAD2).digest()[:n]


class KeyChain:
    """Session keys of one direction: key(0) is the initial one, key(k+1) follows key(k)."""

    def __init__(self, start: bytes, bits: int):
        self.start, self.bits = start, bits
        self.key = initial_session_key(start, bits)
        self.changes = 0

    def change(self) -> None:
        self.key = next_session_key(self.start, self.bits, self.key)
        self.changes += 1


class Sender:
    """RFC 3078 encryptor: header A|D + 12-bit count, RC4 over protocol + payload."""

    def __init__(self, start: bytes, bits: int, stateless: bool):
        self.chain = KeyChain(start, bits)
        self.stateless = stateless
        self.rc4 = RC4(self.chain.key)
        self.count = -1
        self.reset_asked = False

    def reset_request(self) -> None:
        self.reset_asked = True

    def send(self, packet: bytes) -> bytes:
        self.count = (self.count + 1) % SPACE
        flushed = self.stateless or self.count % 256 == 255 or self.reset_asked
        if flushed:
            self.chain.change()
            self.rc4 = RC4(self.chain.key)
            self.reset_asked = False
        head = bytes([(0x80 if flushed else 0) | 0x10 | self.count >> 8, self.count & 0xFF])
        return head + self.rc4.crypt(packet)


KNOWN_PROTOCOLS = {0x0021, 0x0057, 0x002D, 0x002F, 0x002B, 0x0029, 0x0031, 0x0281}


def known_protocol(head: bytes) -> bool:
    if head[0] & 1:
        return head[0] in KNOWN_PROTOCOLS
    return len(head) == 2 and int.from_bytes(head, "big") in KNOWN_PROTOCOLS


class Receiver:
    """RFC 3078 decryptor. Returns (verdict, plaintext): verdict is ok, drop, reset or bad."""

    def __init__(self, start: bytes, bits: int, stateless: bool):
        self.chain = KeyChain(start, bits)
        self.stateless = stateless
        self.rc4 = RC4(self.chain.key)
        self.last = SPACE - 1
        self.discard = False

    def _rekey(self, times: int) -> None:
        for _ in range(times):
            self.chain.change()
        self.rc4 = RC4(self.chain.key)

    def receive(self, frame: bytes) -> tuple[str, bytes]:
        if len(frame) < 3:
            return "bad", b""
        a, b, c, d = (frame[0] >> 7) & 1, (frame[0] >> 6) & 1, (frame[0] >> 5) & 1, (frame[0] >> 4) & 1
        count = (frame[0] & 0x0F) << 8 | frame[1]
        if not d or b or c:
            return "bad", b""
        if self.stateless:
            if not a:
                return "bad", b""
            ahead = (count - self.last) % SPACE
            if ahead == 0 or ahead > SPACE // 2:
                return "drop", b""
            self._rekey(ahead)
        else:
            expected = (self.last + 1) % SPACE
            ahead = (count - self.last) % SPACE
            if ahead == 0 or ahead > SPACE // 2:
                return "drop", b""  # late or duplicate: the RC4 stream has not moved
            if count == expected and not self.discard:
                if a or count % 256 == 255:
                    self._rekey(1)
            elif not a:
                if self.discard:
                    return "drop", b""
                self.discard = True
                return "reset", b""
            else:
                # flag packets missed between the first lost count and this one, then this packet's own,
                # plus 0..3 for lost flushed replies to Reset-Requests: the first guess whose plaintext
                # starts with a known protocol, else none
                missed = sum(1 for k in range(expected, expected + (count - expected) % SPACE)
                             if k % 256 == 255)
                for _ in range(missed):
                    self.chain.change()
                guesses = []
                for _ in range(4):
                    self.chain.change()
                    guesses.append(self.chain.key)
                heads = [RC4(key).crypt(frame[2:4]) for key in guesses]
                pick = next((n for n, head in enumerate(heads) if known_protocol(head)), 0)
                self.chain.key = guesses[pick]
                self.rc4 = RC4(self.chain.key)
                self.discard = False
        self.last = count
        plain = self.rc4.crypt(frame[2:])
        if plain[0] & 1:
            plain = b"\x00" + plain
        return "ok", plain
