"""Prove the CCP_MAX_OPTION_LENGTH raise in a booted guest, against Debian's stock modules as the control.

ccp_probe hands PPPIOCSCOMPRESS a 40-byte CI_MPPE option. Debian's ppp_generic (buffer of 32) refuses the
length itself: EFAULT. Ours (64) accepts it, finds ppp_mppe, whose allocator then rejects an option that
is not 6 + 16 bytes: ENOBUFS. Measured on 6.1.0-56-amd64 under TCG: stock 40 -> EFAULT, 32 -> ENOBUFS;
ours 40 -> ENOBUFS, 64 -> ENOBUFS, 65 -> EFAULT. Both outcomes are asserted, so losing the raise (or
loading the stock module by mistake) fails the test.
"""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.vm]

# everything that can hold ppp_generic, in an order rmmod accepts (users first)
PPP_MODULES = ("ppp_mppe", "ppp_deflate", "bsd_comp", "ppp_async", "ppp_synctty", "pptp", "pppoe", "pppox",
               "ppp_generic")
STOCK = ("kernel/drivers/net/slip/slhc.ko", "kernel/lib/crypto/libarc4.ko",
         "kernel/drivers/net/ppp/ppp_generic.ko", "kernel/drivers/net/ppp/ppp_mppe.ko")
OURS = ("extra/ppp_generic.ko", "extra/ppp_mppe.ko")
RESULT = re.compile(r"^ccp_probe: len=(\d+) unit=\d+ result=(\w+)$", re.M)


@pytest.fixture(autouse=True)
def _probe_guest(_tunnel_topology, vm):
    """The probes unload the PPP modules, which a connected tunnel holds, and load other ones. In a
    parallel run the scenarios come in any order, so: take down a tunnel another scenario left up in this
    guest first, and afterwards load the modules the tunnel scenarios expect (ours) again."""
    t = _tunnel_topology
    t.hang_up()
    yield
    if not vm.dirty:
        t.load_modules(vm)


def unload_ppp(vm) -> None:
    for name in PPP_MODULES:
        vm.run(f"{vm.os.unload_module(name)} 2>/dev/null || true")
    loaded = vm.run(vm.os.loaded_modules()).output
    assert not re.search(r"^(ppp_generic|ppp_mppe) ", loaded, re.M), f"ppp modules still loaded:\n{loaded}"


def load(vm, relpaths: tuple[str, ...]) -> None:
    base = f"/lib/modules/{vm.release}"
    for rel in relpaths:
        name = rel.rsplit("/", 1)[1].removesuffix(".ko")
        if re.search(rf"^{name} ", vm.run(vm.os.loaded_modules()).output, re.M):
            continue  # a dependency such as slhc may stay loaded
        vm.run(vm.os.insert_module(f"{base}/{rel}"))


def module_taint(vm, name: str) -> str:
    """Taint flags of a loaded module ('O' = out of tree, 'E' = unsigned); empty for Debian's modules."""
    return vm.run(vm.os.module_taint(name)).output.strip()


def probe(vm, length: int) -> str:
    out = vm.run(f"/usr/local/bin/ccp_probe {length}").output
    m = RESULT.search(out)
    assert m, f"no result line from ccp_probe {length}:\n{out}"
    assert int(m[1]) == length
    return m[2]


def test_stock_ppp_generic_refuses_40_byte_option(vm):
    unload_ppp(vm)
    load(vm, STOCK)
    assert "O" not in module_taint(vm, "ppp_generic")  # Debian's own, not an out-of-tree build
    assert probe(vm, 32) == "ENOBUFS"  # control: a length within 32 does reach the MPPE allocator
    assert probe(vm, 40) == "EFAULT"  # the stock limit
    unload_ppp(vm)


def test_our_ppp_generic_accepts_40_byte_option(vm):
    unload_ppp(vm)
    load(vm, STOCK[:2] + OURS)
    assert "O" in module_taint(vm, "ppp_generic")  # out-of-tree: ours, not Debian's
    assert probe(vm, 40) == "ENOBUFS"  # accepted length, rejected by ppp_mppe's allocator
    assert probe(vm, 64) == "ENOBUFS"
    assert probe(vm, 65) == "EFAULT"  # the new limit holds
    # ours stays loaded: it is the product the other scenarios test
