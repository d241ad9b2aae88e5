"""Interop matrix: our ppp_mppe on one end, Debian's stock ppp_mppe on the other, across two guests.

Each guest runs a whole kernel side of its own (two-guest topology, QEMU socket network): the "ours" end
runs our ppp_generic + ppp_mppe (kmod/mppe) from extra/, the "stock" end Debian's signed ppp_generic,
ppp_async and ppp_mppe from kernel/. Which one a kernel runs is proven from the running kernel itself
(`topology.mppe_identity`: our marker function in /proc/kallsyms, the taint), never from srcversion.

Rows: both directions (ours as the pptpd server, ours as the client) x stateless/stateful x 128/40 bit.
Each row checks that both pppd logs say MPPE came up with that key length and mode, that the compressor
and decompressor run and count packets on both kernels, pings both ways, `ping -s 50000` both ways, and
records the iperf3 throughput (a figure, not asserted). The 128-bit rows also lose every frame the client
sends for a 300-packet burst and check the two implementations resync with each other: stateless from
the coherency count, stateful through a CCP Reset-Request/Reset-Ack (the server's decompressor asks, the
client's compressor answers with a flushed packet), which both pppd logs must show. The two guests boot
once for the whole matrix: between rows only the pppd options change (and, between directions, the loaded
modules).
"""

from __future__ import annotations

import re

import pytest
from tunnel_checks import kv, mppe_and_pings, ping_stats

from buildtool.vm.topology import IPERF3, PING, RESET_EXCHANGE, TwoGuests, mppe_identity, use_mppe

pytestmark = [pytest.mark.integration, pytest.mark.vm]

DIRECTIONS = (("ours", "stock"), ("stock", "ours"))  # (server end, client end)
MODES = ((False, 128), (False, 40), (True, 128), (True, 40))  # (stateful, bits)
BURST = 300  # packets lost in a row: crosses a 256-count key-change boundary
ROWS = [pytest.param(server, client, stateful, bits,
                     id=f"{server}_server-{client}_client-{'stateful' if stateful else 'stateless'}-{bits}")
        for server, client in DIRECTIONS for stateful, bits in MODES]


def loss_burst(t: TwoGuests, peer: str, stateful: bool) -> str:
    """Lose every frame the client sends for BURST packets; the link must resync (see the docstring)."""
    t.impair("loss 100%", ends=("client",))
    try:
        t.client(f"{PING} -c {BURST} -i 0.005 -W 1 {peer} >/dev/null", timeout=60, check=False)
    finally:
        t.impair("", ends=("client",))
    # our stateless decompressor catches a gap up MPPE_MAX_REKEYS (64) counts per packet, and on Linux each
    # step costs a CCP Reset-Request round trip (ppp_generic has no "drop quietly"): 300 -> 5 packets
    first = t.client(f"{PING} -c 20 -i 0.1 -W 1 {peer}", timeout=60, check=False).output
    sent, received = ping_stats(first)
    assert received >= sent // 2, f"only {received}/{sent} right after the burst: slow or no resync"
    sent, received = ping_stats(t.client(f"{PING} -c 10 -i 0.1 -W 2 {peer}", timeout=60, check=False).output)
    assert received == sent, (f"after a {BURST}-packet loss burst: {received}/{sent}: no resync; "
                              f"{t.ccp_resets()}\n{t.ppp_logs()}")
    if stateful:
        counts = t.ccp_resets()
        assert all(counts[k] for k in RESET_EXCHANGE), f"no CCP Reset-Request/Reset-Ack exchange: {counts}"
    return f"first 20: {ping_stats(first)[1]}/20, then {received}/{sent}"


@pytest.fixture(scope="module")
def matrix(two_guests: TwoGuests):
    """The two guests, given back with our modules and the default options once the matrix is done."""
    t = two_guests.ensure()
    yield t
    for role in (t.server_role, t.client_role):
        t.set_modules(role, "ours")  # the declaration: ours again, whatever the last row ran
    if not t.is_current():
        return  # a guest was left dirty: its next set-up boots it and loads ours
    if t.connected():
        t.disconnect()
    t.configure_mppe(128, False)
    for g in t.guests():
        use_mppe(g, "ours")


@pytest.mark.parametrize(("server_impl", "client_impl", "stateful", "bits"), ROWS)
def test_interop(matrix: TwoGuests, server_impl: str, client_impl: str, stateful: bool, bits: int,
                 figures, request):
    t = matrix.ensure()
    if t.connected():
        t.disconnect()
    # which modules each end runs is its role's parameter (a set-up after a reboot honours it too)
    proof = {"server": t.use_modules(t.server_role, server_impl),
             "client": t.use_modules(t.client_role, client_impl)}
    t.configure_mppe(bits, stateful)
    t.reset_logs()
    t.connect()
    c = t.config
    pings = mppe_and_pings(t)
    local, peer = t.client_ppp_addresses()
    if bits == 128:
        pings["after burst"] = loss_burst(t, peer, stateful)
    t.server(f"{IPERF3} -s -1 -D -B {peer}")
    t.client("sleep 0.3")
    out = t.client(f"{IPERF3} -c {peer} -t 2 -f m", timeout=60).output
    m = re.search(r"([\d.]+) Mbits/sec\s+\S*\s*receiver", out)
    assert m, out
    # the kernels' side, after the traffic: MPPE ran both ways on both ends and counted packets
    stats = {}
    for name, side, iface in (("client", t.client, f"ppp{c.client_unit}"), ("server", t.server,
                                                                           t.server_ppp_iface())):
        info = kv(side(f"pppinfo {iface}").output)
        assert info["comp_run"] == 1 and info["decomp_run"] == 1, f"{name} {iface}: MPPE not running: {info}"
        assert info["c_packets"] >= 10 and info["d_packets"] >= 10, f"{name} {iface}: too few packets: {info}"
        stats[name] = f"c={info['c_packets']} d={info['d_packets']}"
    # the modules that did it are still the ones the row asked for
    for name, guest, impl in (("server", t.server_guest, server_impl),
                              ("client", t.client_guest, client_impl)):
        now = mppe_identity(guest)
        assert now["impl"] == impl and now["refcnt"] != "0", f"{name}: {now} (was to be {impl}, in use)"
    row = request.node.callspec.id
    figures.record(f"interop[{row}]", {
        "server": server_impl, "client": client_impl, "mode": "stateful" if stateful else "stateless",
        "bits": bits, "pings": pings, "iperf3_mbit_s": float(m[1]), "mppe_packets": stats,
        "server_proof": {k: proof["server"][k] for k in ("impl", "taint", "marker")},
        "client_proof": {k: proof["client"][k] for k in ("impl", "taint", "marker")}})
    t.disconnect()
