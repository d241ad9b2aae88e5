"""The historic crash cases against our ppp_mppe: a lost-packet burst and decryption failures.

The historic module "doesn't recover from lost packets or decryption failure". Here, with our module on
both ends (one guest, the usual namespaces), in stateless and in stateful mode:

- loss burst: every frame the client sends is lost for a 300-packet flood (the burst crosses a
  256-count key-change boundary). Stateless MPPE resyncs from the next packet's coherency count (every
  packet is flushed, with the key chain caught up MPPE_MAX_REKEYS at a time); stateful MPPE discards
  until the sender answers a CCP Reset-Request with a flushed packet: both pppd logs must show that
  Reset-Request / Reset-Ack exchange.
- decryption failure: in flight, tc u32 + pedit corrupt the client's MPPE frames: in one packet of 8
  the low byte of the coherency count (the receiver decrypts with the wrong key or at the wrong stream
  position: it must notice and resync, stateful through Reset-Request/Ack), in another one of 8 the
  first ciphertext bytes (garbage plaintext: MPPE has no integrity check, the packet is lost but the
  key stream must stay in step).

After each: the tunnel passes 10/10 pings and a 50000-byte ping, pppd is still up, the kernel logged no
warning or oops (the health check after every scenario), and once the link is down no MPPE state is left:
the module's reference count is 0 and its own slab cache holds no more than one slab's worth of objects
(SLUB counts the objects of the slab cached per CPU as active).
"""

from __future__ import annotations

import time

import pytest
from tunnel_checks import ping_stats

from buildtool.vm.topology import PING, RESET_EXCHANGE, SingleGuest, mppe_slab

pytestmark = [pytest.mark.integration, pytest.mark.vm]

MODES = {"stateless": False, "stateful": True}
# > 256: a stateful burst crosses a key-change boundary; a stateless gap > MPPE_MAX_REKEYS
BURST_PACKETS = 300
CATCH_UP_PACKETS = 300  # a corrupted low count byte can jump the stateless key chain up to 255 ahead
CORRUPTION = {"count": (0, 1), "ciphertext": (4, 2)}  # name -> (GRE seq mod 8, byte after the MPPE header)
LEAK_WAIT = 10  # seconds for the states of a call that just ended to be freed


@pytest.fixture(scope="module")
def modes_link(_tunnel_topology: SingleGuest):
    """The single-guest tunnel; afterwards disconnected and back to 128-bit stateless for the others."""
    yield _tunnel_topology
    t = _tunnel_topology
    if t.is_current():
        t.impair("")
        t.corrupt_mppe({})
        if t.connected():
            t.disconnect()
        t.configure_mppe(128, False)


def connect_in_mode(t: SingleGuest, stateful: bool) -> None:
    t.ensure()
    if t.connected():
        t.disconnect()
    t.configure_mppe(128, stateful)
    t.reset_logs()
    t.connect()
    for side, log in ((t.client, t.config.client_log), (t.server, t.config.server_log)):
        text = side(f"cat {log}").output
        assert t.config.mppe_line in text, f"{log} does not say '{t.config.mppe_line}':\n{text}"


def check_recovered(t: SingleGuest, what: str) -> None:
    local, peer = t.client_ppp_addresses()
    sent, received = ping_stats(t.client(f"{PING} -c 10 -i 0.1 -W 2 {peer}", timeout=60, check=False).output)
    assert received == sent, (f"after {what}: {received}/{sent}: the tunnel did not recover; "
                              f"{t.ccp_resets()}\n{t.ppp_logs()}")
    for name, side, dest in (("client->server", t.client, peer), ("server->client", t.server, local)):
        out = side(f"{PING} -c 1 -W 10 -s 50000 {dest}", timeout=60, check=False).output
        sent, received = ping_stats(out)
        assert received == sent, f"after {what}: the 50000-byte ping {name} did not come back"
    assert t.connected(), f"after {what}: the client's pppd went away"


def check_reset_exchange(t: SingleGuest, what: str) -> dict[str, int]:
    """Stateful: the server (whose decompressor lost sync) asked, the client answered."""
    counts = t.ccp_resets()
    assert all(counts[k] for k in RESET_EXCHANGE), f"{what}: no Reset-Request/Ack exchange: {counts}"
    return counts


def check_no_leak(t: SingleGuest, vm, what: str) -> dict[str, int]:
    """After the call: no state of our ppp_mppe left (its exact live_states counter back to 0; the slab's
    active count stays approximate under SLUB and is only a figure) and no reference to the module."""
    if t.connected():
        t.disconnect()
    live = vm.os.module_parameter("ppp_mppe", "live_states")
    vm.run(vm.os.wait_until(f'[ "$({live})" = 0 ]', LEAK_WAIT), check=False)
    slab = mppe_slab(vm)
    assert slab["refcnt"] == 0, f"after {what} and disconnect: ppp_mppe still referenced: {slab}"
    assert slab["live_states"] == 0, (f"after {what} and disconnect: {slab['live_states']} MPPE states were "
                                      f"never freed (after {LEAK_WAIT} s): {slab}")
    assert slab["active_objs"] <= slab["objperslab"], f"after {what}: MPPE states left behind: {slab}"
    return slab


@pytest.mark.parametrize("mode", list(MODES))
def test_loss_burst(modes_link: SingleGuest, vm, mode: str, figures):
    t = modes_link
    connect_in_mode(t, MODES[mode])
    local, peer = t.client_ppp_addresses()
    t.client(f"{PING} -c 3 -i 0.2 -W 5 {peer} >/dev/null")
    t.impair("loss 100%", ends=("client",))
    try:
        # exactly BURST_PACKETS (ping -w would keep a flood going until its deadline)
        t.client(f"{PING} -c {BURST_PACKETS} -i 0.005 -W 1 {peer} >/dev/null", timeout=60, check=False)
    finally:
        t.impair("", ends=("client",))
    time.sleep(0.3)
    sent, received = ping_stats(t.client(f"{PING} -c 20 -i 0.1 -W 1 {peer}", timeout=60, check=False).output)
    figures.record(f"loss_burst_{mode}_first_20_after", f"{received}/{sent}")
    assert received >= sent // 2, f"{mode}: only {received}/{sent} right after the burst: slow or no resync"
    check_recovered(t, f"a {BURST_PACKETS}-packet loss burst ({mode})")
    if MODES[mode]:
        figures.record(f"loss_burst_{mode}_resets", check_reset_exchange(t, f"{mode} loss burst"))
    figures.record(f"loss_burst_{mode}_slab_after", check_no_leak(t, vm, f"the {mode} loss burst"))


@pytest.mark.parametrize("mode", list(MODES))
def test_decryption_failure(modes_link: SingleGuest, vm, mode: str, figures):
    t = modes_link
    connect_in_mode(t, MODES[mode])
    local, peer = t.client_ppp_addresses()
    t.corrupt_mppe(CORRUPTION)
    try:
        out = t.client(f"{PING} -c 40 -i 0.05 -W 1 -s 200 {peer}", timeout=60, check=False).output
        corrupted = t.corrupted()
    finally:
        t.corrupt_mppe({})
    sent, received = ping_stats(out)
    figures.record(f"decrypt_fail_{mode}_during", f"{received}/{sent} with {corrupted} frames corrupted")
    assert corrupted >= 6, f"the injection corrupted only {corrupted} frames: it does not see the MPPE frames"
    assert t.connected(), f"{mode}: pppd gave up during the corruption"
    time.sleep(0.3)
    if not MODES[mode]:
        # a corrupted count may have moved the stateless key chain ahead: the sender must pass it first
        t.client(f"{PING} -c {CATCH_UP_PACKETS} -i 0.005 -W 1 {peer} >/dev/null", timeout=60, check=False)
    else:
        t.client(f"{PING} -c 2 -i 0.2 -W 1 {peer} >/dev/null", timeout=30, check=False)
    check_recovered(t, f"corrupted MPPE frames ({mode})")
    if MODES[mode]:
        figures.record(f"decrypt_fail_{mode}_resets", check_reset_exchange(t, f"{mode} decryption failure"))
    figures.record(f"decrypt_fail_{mode}_slab_after", check_no_leak(t, vm, f"the {mode} corruption"))
