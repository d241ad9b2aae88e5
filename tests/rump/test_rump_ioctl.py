"""Issue 12 item 2: the CCP ioctl table through NetBSD's own pppioctl, with and without our ppp_mppe.

PPPIOCSCOMPRESS on a ppp unit of if_ppp (rump kernel, pty pair, PPP line discipline), one option per row;
the replies are NetBSD errno values. Rows whose answer depends on our component differ between the two
columns; the controls (BSD-Compress, Deflate, an unknown option) must not.
"""

from __future__ import annotations

import pytest
from rump_support import record

from buildtool.rump.driver import NB_ERRNO, SC_CCP_OPEN
from buildtool.rump.link import KEY_A, mppe_option

pytestmark = [pytest.mark.integration, pytest.mark.rump]

EINVAL, ENOBUFS, EEXIST, EBUSY, ENOENT = 22, 55, 17, 16, 2

# (row, option bytes, length field, expected with our ppp_mppe, expected without)
ROWS = [
    ("MPPE-128 stateless, 22 bytes", mppe_option(KEY_A, True), None, 0, EINVAL),
    ("MPPE-128 stateful, 22 bytes", mppe_option(KEY_A, False), None, 0, EINVAL),
    ("MPPE, 40 bytes", mppe_option(KEY_A, True) + bytes(18), None, ENOBUFS, EINVAL),
    ("BSD-Compress v1 15 bits", bytes([21, 3, 0x2F]), None, 0, 0),
    ("Deflate window 15", bytes([26, 4, 0x78, 0x00]), None, 0, 0),
    ("unknown option 254", bytes([254, 4, 0, 0]), None, EINVAL, EINVAL),
]


def _table(unit) -> dict[str, tuple[int, int]]:
    """Every row in both directions (transmit, receive)."""
    assert unit.set_flags(SC_CCP_OPEN) == 0
    return {name: (unit.set_compress(opt, True, n), unit.set_compress(opt, False, n))
            for name, opt, n, _, _ in ROWS}


def _show(table: dict[str, tuple[int, int]]) -> dict[str, str]:
    return {k: "/".join(NB_ERRNO.get(v, str(v)) for v in pair) for k, pair in table.items()}


def test_ioctl_table_with_our_module(netbsd):
    table = _table(netbsd)
    record("ioctl_table_with_ppp_mppe (transmit/receive)", _show(table))
    assert {k: v for k, v in table.items()} == {name: (w, w) for name, _, _, w, _ in ROWS}


def test_ioctl_table_without_our_module(netbsd_without):
    table = _table(netbsd_without)
    record("ioctl_table_without_ppp_mppe (transmit/receive)", _show(table))
    assert table == {name: (wo, wo) for name, _, _, _, wo in ROWS}


def test_register_twice_is_eexist(netbsd):
    assert netbsd.reregister("ppp_mppe") == EEXIST
    # the module keeps working after the refused second registration
    assert netbsd.set_flags(SC_CCP_OPEN) == 0
    assert netbsd.set_compress(mppe_option(KEY_A, True), True) == 0
    record("register ppp_mppe twice", "EEXIST")


def test_no_module_to_register_without_component(netbsd_without):
    assert netbsd_without.reregister("ppp_mppe") == ENOENT


def test_unload_while_in_use_is_ebusy_then_unloads(netbsd):
    assert netbsd.set_flags(SC_CCP_OPEN) == 0
    assert netbsd.set_compress(mppe_option(KEY_A, True), True) == 0
    busy = netbsd.mod_unload("ppp_mppe")
    # closing CCP frees the unit's compressor state and drops if_ppp's reference
    assert netbsd.set_flags(0) == 0
    free = netbsd.mod_unload("ppp_mppe")
    after = netbsd.set_compress(mppe_option(KEY_A, True), True)
    record("unload ppp_mppe in use / after CCP closed / option 18 after unload",
           f"{NB_ERRNO.get(busy, busy)} / {NB_ERRNO.get(free, free)} / {NB_ERRNO.get(after, after)}")
    assert busy == EBUSY
    assert free == 0


def test_if_ppp_keeps_a_reference_when_alloc_fails(netbsd):
    """A finding about NetBSD's if_ppp (2016, and unchanged in 2025's PPPIOCSCOMPRESS): when comp_alloc
    returns NULL (our ENOBUFS for a 40-byte option), the reference ppp_get_compressor took is never
    released, so ppp_mppe stays busy until the unit is destroyed. Our glue cannot undo it; pppd never
    sends such an option. Characterised here so that a change in if_ppp is noticed."""
    assert netbsd.set_flags(SC_CCP_OPEN) == 0
    assert netbsd.set_compress(mppe_option(KEY_A, True) + bytes(18), True) == ENOBUFS
    assert netbsd.set_flags(0) == 0
    leaked = netbsd.mod_unload("ppp_mppe")
    record("unload ppp_mppe after an ENOBUFS option and CCP closed", NB_ERRNO.get(leaked, leaked))
    assert leaked == EBUSY
