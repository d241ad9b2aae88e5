"""The kept MPPE fixtures (tests/fixtures/mppe/) decrypt with the Python reference, byte-exact, so a fixture
cannot rot: frames captured from Linux's stock ppp_mppe and from NetBSD with our ppp_mppe.kmod."""

from __future__ import annotations

import mppe_reference as ref
import pytest
from mppe_fixtures import CASES, case_id, load, option, plaintexts, reference_decrypt, reference_encrypt


@pytest.mark.parametrize("source", ["linux", "netbsd"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_fixture_decrypts_with_reference(source, case):
    fx = load(source, *case)
    assert fx.option == option(*case)
    assert len(fx.start_key) == 32
    assert [p for p, _ in fx.frames] == plaintexts(*case)
    verdicts = reference_decrypt(fx)
    assert [v for v, _ in verdicts] == ["ok"] * len(fx.frames)
    assert [p for _, p in verdicts] == [p for p, _ in fx.frames]
    assert reference_encrypt(fx.mode, fx.bits, fx.start_key, [p for p, _ in fx.frames]) == \
        [f for _, f in fx.frames]


def test_stateful_fixture_crosses_a_flag_packet():
    fx = load("linux", "stateful", 128)
    counts = [(f[4] & 0x0F) << 8 | f[5] for _, f in fx.frames]
    assert counts == list(range(len(counts)))
    flushed = [c for (_, f), c in zip(fx.frames, counts, strict=True) if f[4] & 0x80]
    assert flushed == [255]  # the key changes on the flag packet only (no reset in the capture)


def test_a_flipped_byte_does_not_decrypt_byte_exact():
    """The control the kernel scenarios rely on: MPPE has no integrity check, so one flipped ciphertext byte
    gives a different plaintext (not an error); byte-exact comparison is what catches it."""
    fx = load("linux", "stateless", 128)
    plain, frame = fx.frames[5]
    bad = bytearray(frame)
    bad[10] ^= 0x01
    rx = ref.Receiver(bytes.fromhex(fx.start_key), fx.bits, True)
    verdict, got = rx.receive(bytes(bad[4:]))
    assert verdict == "ok" and got != plain and len(got) == len(plain)
