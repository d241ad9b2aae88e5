"""The PPTP/MPPE scenarios, in one guest: pptpd in namespace `server`, pptp + pppd in `client`.

One booted guest serves all of them (session fixture); a scenario that crashes the kernel leaves the guest
dirty and the next one boots a fresh guest and sets the topology up again. The `smoke` subset (modules,
connect + MPPE-128, ping both ways, ping -s 50000) is what `make demo` runs. Figures (times, throughput)
are recorded for the benchmark output, never asserted.
"""

from __future__ import annotations

import re
import time

import pytest
from tunnel_checks import kv, ping_stats

from buildtool.vm.topology import IPERF3, PING, PPTPD, SingleGuest, mppe_identity

pytestmark = [pytest.mark.integration, pytest.mark.vm]

MPPE_LINE = "MPPE 128-bit stateless compression enabled"
PATTERN = "5ec7e75ec7e7b0b0cafe0ddba11f00d5"  # 16 bytes ping -p puts into every echo request


def peers(t: SingleGuest) -> tuple[str, str]:
    """(client's tunnel address, server's tunnel address)."""
    return t.client_ppp_addresses()


@pytest.fixture
def link(tunnel: SingleGuest) -> SingleGuest:
    tunnel.ensure_connected()
    return tunnel


# --- smoke -------------------------------------------------------------------------------------------


@pytest.mark.smoke
def test_smoke_modules_load(tunnel: SingleGuest, vm):
    """Ours are loaded (out-of-tree taint 'O' on exactly the recipe's modules: ppp_generic and ppp_mppe),
    nothing else taints."""
    gos = vm.os
    assert vm.our_modules == ("ppp_generic", "ppp_mppe"), vm.our_modules
    for name in vm.our_modules:
        taint = vm.run(gos.module_taint(name)).output.strip()
        assert "O" in taint, f"{name} is not our out-of-tree build (taint {taint!r})"
        path = vm.run(gos.module_file(name)).output.strip()
        assert path.endswith(f"/extra/{name}.ko"), f"modprobe resolves {name} to {path}, not extra/"
    for name in ("slhc", "ppp_async", "veth", "sch_netem", "libarc4"):
        assert vm.run(gos.module_taint(name)).output.strip() == "", f"{name} is tainted"
    srcversion = vm.run(gos.loaded_module_field("ppp_mppe", "srcversion")).output.strip()
    ko = f"/lib/modules/{vm.release}/extra/ppp_mppe.ko"
    shipped = vm.run(gos.module_file_field("srcversion", ko)).output.strip()
    assert srcversion == shipped, "the loaded ppp_mppe is not the one shipped under extra/"
    # srcversion alone cannot tell our module from Debian's: the running kernel has our glue's marker
    # function under [ppp_mppe], and the file it came from carries our modinfo field
    proof = mppe_identity(vm)
    assert proof["impl"] == "ours", f"the loaded ppp_mppe is not kmod/mppe: {proof}"
    impl = vm.run(gos.module_file_field("implementation", ko)).output.strip()
    assert impl.startswith("buildtool kmod/mppe"), f"{ko} has modinfo implementation={impl!r}"
    stock = f"/lib/modules/{vm.release}/kernel/drivers/net/ppp/ppp_mppe.ko"
    stock_impl = vm.run(gos.module_file_field("implementation", stock)).output.strip()
    assert stock_impl == "", "control: stock has none"
    vm.check_health()  # taint: only O and E; no oops, no warning


@pytest.mark.smoke
def test_smoke_connect_mppe128(tunnel: SingleGuest, vm, figures):
    """PPTP connects and both pppds, and the kernel, run 128-bit stateless MPPE."""
    if tunnel.connected():
        tunnel.disconnect()
    tunnel.reset_logs()
    figures.record("tunnel_up_seconds", round(tunnel.connect(), 2))
    c = tunnel.config
    for side, log in ((tunnel.client, c.client_log), (tunnel.server, c.server_log)):
        text = side(f"cat {log}").output
        assert MPPE_LINE in text, f"{log} does not say '{MPPE_LINE}':\n{text}"
        assert re.search(r"rcvd \[CCP ConfAck id=\S+ <mppe \+H -M \+S -L -D -C>\]", text), text
        assert "CHAP authentication succeeded" in text or "authorized" in text, text
    local, peer = peers(tunnel)
    tunnel.client(f"{PING} -c 2 -W 5 {peer} >/dev/null")
    # the kernel's side: MPPE runs as compressor and decompressor on both units, and saw the packets
    for side, iface in ((tunnel.client, f"ppp{c.client_unit}"), (tunnel.server, tunnel.server_ppp_iface())):
        info = kv(side(f"pppinfo {iface}").output)
        assert info["comp_run"] == 1 and info["decomp_run"] == 1, f"{iface}: MPPE not running: {info}"
        assert info["c_packets"] >= 2 and info["d_packets"] >= 2, f"{iface}: MPPE saw no packets: {info}"


@pytest.mark.smoke
def test_smoke_ping_both_ways(link: SingleGuest):
    local, peer = peers(link)
    for side, dest in ((link.client, peer), (link.server, local)):
        sent, received = ping_stats(side(f"{PING} -c 3 -i 0.2 -W 5 {dest}").output)
        assert received == sent == 3


@pytest.mark.smoke
def test_smoke_ping_50000(link: SingleGuest, figures):
    """50000-byte pings (about 36 fragments each way) all come back, in both directions, without a hang."""
    local, peer = peers(link)
    directions = (("client_to_server", link.client, peer), ("server_to_client", link.server, local))
    for name, side, dest in directions:
        out = side(f"{PING} -s 50000 -c 3 -i 0.5 -W 10 {dest}", timeout=90).output
        sent, received = ping_stats(out)
        assert received == sent == 3, out
        m = re.search(r"= [\d.]+/([\d.]+)/", out)
        if m:
            figures.record(f"ping50000_{name}_avg_ms", float(m[1]))


# --- the rest ----------------------------------------------------------------------------------------


def test_traffic_is_encrypted(link: SingleGuest):
    """The GRE payload on the veth is MPPE (PPP protocol 0x00fd), never the plaintext ping pattern."""
    c = link.config
    local, peer = peers(link)
    # control: the same capture does see the pattern when it crosses the veth in clear
    link.server(f"pktgrep {c.server_iface} 1 3 {PATTERN} > /tmp/cap-clear.txt 2>&1 &")
    link.server("until grep -q ready /tmp/cap-clear.txt; do sleep 0.1; done", timeout=10)
    link.client(f"{PING} -c 3 -i 0.2 -p {PATTERN[:32]} {c.server_ip} >/dev/null")
    clear = kv(link.server("until grep -q ppp_other /tmp/cap-clear.txt; do sleep 0.2; done; "
                           "cat /tmp/cap-clear.txt", timeout=15).output)
    assert clear["matched"] >= 3, f"the capture cannot see the pattern in clear ICMP: {clear}"
    # through the tunnel
    link.server(f"pktgrep {c.server_iface} 47 4 {PATTERN} > /tmp/cap-gre.txt 2>&1 &")
    link.server("until grep -q ready /tmp/cap-gre.txt; do sleep 0.1; done", timeout=10)
    link.client(f"{PING} -c 5 -i 0.2 -s 200 -p {PATTERN[:32]} {peer} >/dev/null")
    gre = kv(link.server("until grep -q ppp_other /tmp/cap-gre.txt; do sleep 0.2; done; cat /tmp/cap-gre.txt",
                         timeout=15).output)
    assert gre["ppp_mppe"] >= 10, f"expected MPPE frames in GRE for 5 pings both ways: {gre}"
    assert gre["ppp_ip"] == 0, f"plain IP inside GRE: the tunnel is not encrypted: {gre}"
    assert gre["matched"] == 0, f"the ping payload crossed the veth in clear inside GRE: {gre}"


def test_size_sweep_around_tunnel_mtu(link: SingleGuest):
    """Tunnel MTU -8..+8 with DF (too big: refused locally, no hang), without DF (all pass); 8000, 65507."""
    c = link.config
    local, peer = peers(link)
    mtu = int(link.client(f"cat /sys/class/net/ppp{c.client_unit}/mtu").output)
    sizes = [mtu - 28 + d for d in range(-8, 9)]
    script = "; ".join(
        f"{PING} -c 1 -W 5 -M {df} -s {s} {peer} >/dev/null 2>&1; echo r {s} {df} $?"
        for s in sizes for df in ("do", "dont"))
    out = link.client(script, timeout=180).output
    results = {(int(s), df): int(rc) for s, df, rc in re.findall(r"^r (\d+) (\w+) (\d+)$", out, re.M)}
    assert len(results) == 2 * len(sizes), out
    wrong = []
    for s in sizes:
        fits = s + 28 <= mtu
        if (results[(s, "do")] == 0) != fits:
            wrong.append(f"-M do -s {s} (packet {s + 28}, mtu {mtu}): exit {results[(s, 'do')]}")
        if results[(s, "dont")] != 0:
            wrong.append(f"-M dont -s {s}: exit {results[(s, 'dont')]}")
    assert not wrong, "\n".join(wrong)
    for s in (8000, 65507):
        sent, received = ping_stats(link.client(f"{PING} -c 2 -i 0.5 -W 15 -s {s} {peer}", timeout=90).output)
        assert received == sent, f"{s}-byte ping: {received}/{sent}"


IMPAIRMENTS = {
    "loss": "loss 5%",
    "reorder": "delay 5ms reorder 25% 50%",
    "duplicate": "duplicate 5%",
    "corrupt": "corrupt 5%",
}

# Nothing below the PPP layer detects netem's bit flips (PPTP's GRE carries no checksum and the PPP frames
# no FCS). A flip in MPPE's 12-bit coherency count makes the stateless receiver rekey ahead to the bogus
# count (RFC 3078 8.1: it cannot tell it from a real one), and the genuine packets that follow are then
# discarded as late until the sender's count catches up: a burst of up to 2047 lost packets. Seen here:
# 12/40 small pings in one run, 33-40/40 in others. So under corruption the tunnel must survive, and after
# it recover once the sender has sent enough packets to pass any bogus count; a quick flood does that.
CATCH_UP_PACKETS = 2100  # > 2047, the largest jump a corrupted count can make without looking late


@pytest.mark.parametrize("kind", list(IMPAIRMENTS))
def test_netem(link: SingleGuest, kind: str, figures):
    """Under netem the tunnel still passes traffic, and fully afterwards (stateless MPPE resyncs)."""
    local, peer = peers(link)
    link.impair(IMPAIRMENTS[kind])
    try:
        sent, received = ping_stats(link.client(f"{PING} -c 40 -i 0.05 -W 1 {peer}", timeout=60,
                                                check=False).output)
        big = link.client(f"{PING} -c 4 -i 0.2 -W 2 -s 3000 {peer}", timeout=60, check=False).output
        figures.record(f"netem_{kind}_small_received", f"{received}/{sent}")
        big_sent, big_received = ping_stats(big)
        figures.record(f"netem_{kind}_3000_received", f"{big_received}/{big_sent}")
        if kind != "corrupt":  # see above: corruption may black the tunnel out for its whole duration
            assert received >= sent // 2, f"{kind}: only {received}/{sent} small pings got through"
        assert link.connected(), f"during {kind}: the client's pppd went away"
    finally:
        link.impair("")
    time.sleep(0.3)
    if kind == "corrupt":
        # with -w, ping -c waits for that many replies (or the deadline): enough packets pass the bogus
        # count however slowly a loaded host runs the guest; a tunnel that recovers ends this in seconds
        link.client(f"{PING} -f -c {CATCH_UP_PACKETS} -w 240 {peer} >/dev/null", timeout=270, check=False)
    sent, received = ping_stats(link.client(f"{PING} -c 10 -i 0.1 -W 2 {peer}", timeout=60,
                                            check=False).output)
    assert received == sent, (f"after {kind}: {received}/{sent}: the tunnel did not recover (client's pppd "
                              f"{'still' if link.connected() else 'no longer'} up)\n{link.ppp_logs(40)}")
    sent, received = ping_stats(link.client(f"{PING} -c 1 -W 10 -s 50000 {peer}", timeout=60,
                                            check=False).output)
    assert received == sent, f"after {kind}: the 50000-byte ping did not come back"
    assert link.connected(), f"after {kind}: the client's pppd went away"


def test_flood_and_iperf3(link: SingleGuest, figures):
    """Figures: flood ping for a fixed time, iperf3 through the tunnel and on the plain veth."""
    c = link.config
    local, peer = peers(link)
    out = link.client(f"{PING} -f -w 3 {peer}", timeout=60).output
    sent, received = ping_stats(out)
    figures.record("flood_3s_sent", sent)
    figures.record("flood_3s_received", received)
    assert received > 0, out
    for name, server_addr in (("tunnel", peer), ("veth", c.server_ip)):
        link.server(f"{IPERF3} -s -1 -D -B {server_addr}")
        link.client("sleep 0.3")
        out = link.client(f"{IPERF3} -c {server_addr} -t 3 -f m", timeout=60).output
        m = re.search(r"([\d.]+) Mbits/sec\s+\S*\s*receiver", out)
        assert m, out
        figures.record(f"iperf3_{name}_mbit_s", float(m[1]))


def test_connect_cycles(tunnel: SingleGuest, figures):
    """20 connect/disconnect cycles: no leaked ppp units or processes, pptpd still serving."""
    t0 = time.monotonic()
    for _ in range(20):
        if tunnel.connected():
            tunnel.disconnect()
        tunnel.connect()
        local, peer = peers(tunnel)
        tunnel.client(f"{PING} -c 1 -W 5 {peer} >/dev/null")
        tunnel.disconnect()
    figures.record("connect_cycle_seconds", round((time.monotonic() - t0) / 20, 2))
    for side in (tunnel.client, tunnel.server):
        left = side(tunnel.server_os.ppp_units()).output.strip()
        assert left == "", f"ppp units left after 20 cycles:\n{left}"
    procs = tunnel.server("ps -o pid,args | grep -E 'pppd|pptpctrl|pptp ' | grep -v grep || true").output
    assert procs.strip() == "", f"processes left after 20 cycles:\n{procs}"
    assert tunnel.server_alive(), "pptpd died"
    tunnel.connect()
    assert tunnel.server_ppp_iface() == "ppp0", "the server did not reuse unit 0: units leak"


def test_malformed_input(link: SingleGuest, figures):
    """Thousands of malformed PPTP control messages and GRE frames: pptpd and the kernel survive."""
    c = link.config
    out = link.client(f"pptpfuzz {c.server_ip} 1 3000 3000", timeout=300).output
    figures.record("fuzz", out.strip().splitlines()[-1] if out.strip() else "")
    assert "tcp_messages=3000" in out and "gre_frames=3000" in out, out
    assert link.server_alive(), f"pptpd died under malformed input ({PPTPD})"
    link.disconnect()
    link.connect()
    local, peer = peers(link)
    sent, received = ping_stats(link.client(f"{PING} -c 3 -i 0.2 -W 5 {peer}").output)
    assert received == sent


GRE_JUMP = 1 << 24  # one flipped bit in the sequence field's high byte


def test_gre_sequence_jump_does_not_black_out_the_call(link: SingleGuest, figures):
    """One GRE data packet of the call with a sequence number far ahead (a flipped high bit: GRE has no
    checksum) must not stop the server taking the client's packets. pptpd 1.4.0 queued it, jumped its
    receive sequence to it when the queue timed out, and took every later packet for an old one: the call
    carried nothing more (patches/poptop/patch-da). The same is what netem's corruption runs into."""
    c = link.config
    local, peer = peers(link)
    # client traffic, so that a GRE data packet of the call can be watched, and so that pptpd reads a
    # packet after its 0.3 s queue timeout (that is when it would jump)
    out = link.client(f"{PING} -c 100 -i 0.02 -W 1 {peer} >/dev/null 2>&1 & "
                      f"grejump {c.client_iface} {c.server_ip} 10 {GRE_JUMP}; wait", timeout=60,
                      check=False).output
    assert "sent=" in out, f"no GRE data packet of the call seen on {c.client_iface}:\n{out}"
    sent, received = ping_stats(link.client(f"{PING} -c 10 -i 0.1 -W 2 {peer}", timeout=60,
                                            check=False).output)
    figures.record("gre_jump_pings_after", f"{received}/{sent}")
    assert received == sent, (f"after one GRE packet {GRE_JUMP} ahead ({' '.join(out.split())}): "
                              f"{received}/{sent} pings: the server no longer takes the call's packets\n"
                              f"{link.ppp_logs(20)}")
    assert link.server_alive(), f"pptpd died ({PPTPD})"
