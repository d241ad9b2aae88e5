"""Two-guest mode: pptpd in one guest, the client in another, joined by a QEMU socket network.

This is the topology for when the two ends need different kernels or modules; here both run the same
image, which checks that the mode itself works: connect, MPPE-128 on both ends, pings both ways.
"""

from __future__ import annotations

import re

import pytest

from buildtool.vm.topology import PING, TwoGuests

pytestmark = [pytest.mark.integration, pytest.mark.vm]


def test_two_guest_tunnel(two_guests: TwoGuests, figures):
    t = two_guests.ensure()
    figures.record("two_guest_tunnel_up_seconds", round(t.connect(), 2))
    c = t.config
    for side, log in ((t.client, c.client_log), (t.server, c.server_log)):
        assert "MPPE 128-bit stateless compression enabled" in side(f"cat {log}").output
    local, peer = t.client_ppp_addresses()
    for side, dest in ((t.client, peer), (t.server, local)):
        out = side(f"{PING} -c 3 -i 0.2 -W 5 {dest}").output
        assert re.search(r"3 packets transmitted, 3 received", out), out
    out = t.client(f"{PING} -c 2 -i 0.5 -W 10 -s 50000 {peer}", timeout=90).output
    assert re.search(r"2 packets transmitted, 2 received", out), out
    t.disconnect()
