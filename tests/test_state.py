"""Stamps and phase keys: a changed input changes the key of that phase and every later one."""

from buildtool.state import Stamps, phase_key


def test_key_chain_propagates():
    a = phase_key("", distfiles={"x": "1"})
    b = phase_key(a, patches={"patch-aa": "s1"})
    b2 = phase_key(a, patches={"patch-aa": "s2"})
    assert b != b2
    assert phase_key(b, build=[]) != phase_key(b2, build=[])
    assert phase_key("", distfiles={"x": "1"}) == a  # deterministic


def test_stamps(tmp_path):
    s = Stamps(tmp_path / ".stamps")
    assert not s.is_current("fetch", "k1")
    s.mark_done("fetch", "k1")
    assert s.is_current("fetch", "k1") and not s.is_current("fetch", "k2")
    s.clear("fetch")
    assert not s.is_current("fetch", "k1")
    s.clear("fetch")  # clearing twice is fine
