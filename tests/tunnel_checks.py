"""Checks the tunnel scenarios (tests/vm) share: ping summaries, `pppinfo` output, and what a freshly
connected tunnel must show (MPPE in both pppd logs, pings and 50000-byte pings both ways)."""

from __future__ import annotations

import re

from buildtool.vm.topology import PING, Topology


def ping_stats(output: str) -> tuple[int, int]:
    """(transmitted, received) of a ping's summary line."""
    m = re.search(r"(\d+) packets transmitted, (\d+) received", output)
    assert m, f"no ping summary in:\n{output}"
    return int(m[1]), int(m[2])


def kv(output: str) -> dict[str, int]:
    """`name=value` lines (pppinfo, pptpfuzz) as integers."""
    return {k: int(v, 0) for k, v in re.findall(r"^(\w+)=(\S+)$", output, re.M)}


def mppe_and_pings(t: Topology) -> dict[str, str]:
    """Both pppd logs say MPPE came up with the key length and mode of `t.config` and show the CCP
    ConfAck; 3 pings and 2 50000-byte pings each way all come back. Returns each as received/sent."""
    c = t.config
    for side, log in ((t.client, c.client_log), (t.server, c.server_log)):
        text = side(f"cat {log}").output
        assert c.mppe_line in text, f"{log} does not say '{c.mppe_line}':\n{text}"
        assert "ConfAck id=" in text and c.mppe_ack in text, f"{log}: no CCP ConfAck {c.mppe_ack}:\n{text}"
    local, peer = t.client_ppp_addresses()
    pings = {}
    for name, side, dest in (("c->s", t.client, peer), ("s->c", t.server, local)):
        sent, received = ping_stats(side(f"{PING} -c 3 -i 0.2 -W 5 {dest}", check=False).output)
        pings[name] = f"{received}/{sent}"
        assert received == sent == 3, f"{name}: {received}/{sent} pings\n{t.ppp_logs()}"
    for name, side, dest in (("c->s 50000", t.client, peer), ("s->c 50000", t.server, local)):
        # -i 1, not 0.5: under TCG on a loaded host a 50000-byte ping took up to 1.3 s, and two of them in
        # flight at once (about 100 KB through pptp's userspace GRE and a pty) lost one now and then: seen
        # twice in 4 runs, both times ours -> stock, with no MPPE error on either kernel (no Reset-Request,
        # other rows and iperf3 fine). Not understood; one ping at a time is what the assertion is about.
        out = side(f"{PING} -s 50000 -c 2 -i 1 -W 10 {dest}", timeout=90, check=False).output
        sent, received = ping_stats(out)
        pings[name] = f"{received}/{sent}"
        assert received == sent == 2, (f"{name}: {received}/{sent} 50000-byte pings:\n{out}\n"
                                       f"{t.ccp_resets()}\n{t.ppp_logs(12)}")
    return pings
