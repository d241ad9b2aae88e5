"""The distribution's userland against ours: Debian 12's own pppd, pptpd and pptp on one end of the tunnel,
our packages on the other, our kernel modules under both.

Which programs a role runs is its `userland` parameter (topology.OURS: /usr/pkg; topology.DEBIAN:
/usr/sbin, from Debian's ppp, pptpd and pptp-linux packages). Only these scenarios need Debian's programs,
so they boot a guest of their own image (the suite's plus `DEBIAN.contents`, the `userland_vm` fixture);
both ends live in it, in the namespaces `server` and `client` as in the single-guest suite.

Rows: Debian's pptp client (with Debian's pppd) against our pptpd + pppd, and our client against Debian's
pptpd + pppd. Each row proves which programs ran from the running processes (their executables in
/proc, per namespace), so a row whose userland parameter were ignored fails; then 128-bit stateless MPPE
in both pppd logs and in both kernels' ppp units, pings both ways, 50000-byte pings both ways, and the
survival checks of the tunnel suite (still up after the traffic, a clean disconnect that leaves no pppd,
pptp, pptpctrl or ppp unit, pptpd still serving; the guest's health after each scenario). The connect
time is a figure, never asserted. A last scenario checks that the suite's own image holds none of Debian's
programs and that a role asked to run them there is refused.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest
from tunnel_checks import kv, mppe_and_pings

from buildtool.errors import HarnessError
from buildtool.vm.guest import Guest
from buildtool.vm.topology import DEBIAN, OURS, SingleGuest, Userland, mppe_identity

pytestmark = [pytest.mark.integration, pytest.mark.vm]

# (client's userland, server's userland); the id names the end that runs Debian's
ROWS = [pytest.param(DEBIAN, OURS, id="debian_client"), pytest.param(OURS, DEBIAN, id="debian_server")]


@pytest.fixture(scope="module")
def userland_tunnel(userland_vm: Guest):
    """The single-guest topology in the userland image's guest; ours again on both ends afterwards."""
    t = SingleGuest(userland_vm)
    yield t
    if t.is_current() and t.connected():
        t.disconnect()
    for role in (t.server_role, t.client_role):
        t.use_userland(role, OURS)  # a server in a guest that is still up restarts with ours


def running(t: SingleGuest) -> dict[str, list[str]]:
    """The executables of the tunnel's processes, per end (from /proc, in each end's namespace)."""
    return {f"{end} {name}": t.programs(role, name)
            for end, role, names in (("client", t.client_role, ("pppd", "pptp")),
                                     ("server", t.server_role, ("pptpd", "pptpctrl", "pppd")))
            for name in names}


@pytest.mark.parametrize(("client_userland", "server_userland"), ROWS)
def test_distribution_userland(userland_tunnel: SingleGuest, userland_vm: Guest, client_userland: Userland,
                               server_userland: Userland, figures, request):
    t = userland_tunnel.ensure()
    if t.connected():
        t.disconnect()
    # the roles' parameters: the server's pptpd restarts with its userland's programs and pptpd.conf
    t.use_userland(t.server_role, server_userland)
    t.use_userland(t.client_role, client_userland)
    t.reset_logs()
    seconds = t.connect()

    # which programs ran: each end's processes, by executable, in that end's namespace
    ran = running(t)
    expected = {"client pppd": client_userland.pppd, "client pptp": client_userland.pptp,
                "server pptpd": server_userland.pptpd,
                # pptpd runs the pptpctrl beside it (the path is compiled into both builds)
                "server pptpctrl": str(PurePosixPath(server_userland.pptpd).with_name("pptpctrl")),
                "server pppd": server_userland.pppd}
    wrong = {k: v for k, v in ran.items() if not v or set(v) != {expected[k]}}
    assert not wrong, f"not the programs of the row's userlands ({expected}): {wrong}"
    proof = mppe_identity(userland_vm)
    assert proof["impl"] == "ours", f"the guest does not run our ppp_mppe: {proof}"

    c = t.config
    pings = mppe_and_pings(t)
    # the kernel's side: MPPE ran as compressor and decompressor on both units and counted the packets
    for name, side, iface in (("client", t.client, f"ppp{c.client_unit}"),
                              ("server", t.server, t.server_ppp_iface())):
        info = kv(side(f"pppinfo {iface}").output)
        assert info["comp_run"] == 1 and info["decomp_run"] == 1, f"{name} {iface}: MPPE not running: {info}"
        assert info["c_packets"] >= 5 and info["d_packets"] >= 5, f"{name} {iface}: too few packets: {info}"

    # survival: the link and pptpd outlived the traffic; a disconnect ends every process of the call
    assert t.connected(), f"the client's pppd went away during the traffic\n{t.ppp_logs()}"
    assert t.server_alive(), "pptpd died"
    t.disconnect()
    left = {k: v for k, v in running(t).items() if v and k != "server pptpd"}
    assert not left, f"processes left after the disconnect: {left}"
    for side in (t.client, t.server):
        units = side(t.server_os.ppp_units()).output.strip()
        assert units == "", f"ppp units left after the disconnect:\n{units}"
    assert t.server_alive(), "pptpd died at the disconnect"
    figures.record(f"distribution_userland[{request.node.callspec.id}]", {
        "client": client_userland.name, "server": server_userland.name, "connect_seconds": round(seconds, 2),
        "pings": pings})


def test_the_suite_image_has_no_distribution_userland(tunnel: SingleGuest):
    """The suite's own image stays without Debian's programs, and a role asked to run them there is
    refused with a HarnessError naming what is missing, before the declaration changes."""
    for role in (tunnel.server_role, tunnel.client_role):
        with pytest.raises(HarnessError, match=r"has no /usr/sbin/pppd, /usr/sbin/pptpd, /usr/sbin/pptp: "):
            tunnel.use_userland(role, DEBIAN)
    assert [r.userland for r in tunnel.network.nodes[0].roles] == [OURS, OURS]
