"""PPTP through a Linux NAT router: a three-node topology in network namespaces of one guest.

Two layouts, declared as data (namespaces, the veth pairs that join them, routes):

- masquerade: PPTP clients `nat-c1`..`nat-cN` on a private LAN (one veth pair each to the router, so the
  router needs no bridge), the router `nat-router` masquerading them behind its public address, the server
  `nat-server` on the public LAN. A client `nat-direct` on a veth pair of its own to the server is the
  same tunnel without NAT, for the figures.
- forward: the server on the router's private LAN, its port 1723 and GRE forwarded from the router's
  public address, one client outside.

Roles configure namespaces: the router (IP forwarding, nftables rules rendered from
templates/vm/router.nft.j2, the PPTP conntrack/NAT helper modules) and the PPTP server (pptpd, as in the
other topologies). Each client is a Topology of its own (`ClientEnd`) sharing the server, so the
scenarios use the same connect/disconnect/ping code as the single-guest suite.

The server keeps the address of the image's pptpd.conf (10.0.0.1) in both layouts; clients dial
`dial_address()`, which is the router's public address when the server is behind port forwarding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from ..templating import render, template_env
from .guest import CommandResult, Guest, GuestOS
from .image import GuestContents, GuestDeb
from .topology import Topology, TunnelConfig

CONNTRACK = "/usr/sbin/conntrack"
# LCP echoes from the clients behind the router. Not for noticing a dead link: the router forgets a GRE
# mapping that carried nothing for nf_conntrack_gre_timeout_stream (180 s), and the call is dead from then
# on (measured: test_idle_call_loses_its_gre_mapping). An idle tunnel through NAT needs traffic.
KEEPALIVE = "lcp-echo-interval 10 lcp-echo-failure 6"
NFT = "/usr/sbin/nft"
FIFO_PACKETS = 1000  # the ppp units' egress queue (ClientEnd.link_up says why)
RULES_PATH = "/etc/nftables-router.conf"

# What the router role adds to the guest: nft and conntrack with their libraries (Debian's packages),
# /etc/protocols (netbase: nft and conntrack name protocols with it) and the netfilter modules.
# crc32c_generic: libcrc32c (which nf_conntrack needs) only soft-depends on a crc32c implementation, which
# modinfo's `depends` does not list; without one libcrc32c fails to load (ENOENT).
ROUTER_MODULES = ("crc32c_generic", "nf_conntrack", "nf_conntrack_pptp", "nf_nat", "nf_nat_pptp", "nf_tables",
                  "nft_ct", "nft_objref", "nft_nat", "nft_masq", "nft_chain_nat", "nf_conntrack_netlink")
ROUTER_CONTENTS = GuestContents(
    debs=(GuestDeb("nftables", ("usr/sbin/nft",)), GuestDeb("libnftables1"), GuestDeb("libnftnl11"),
          GuestDeb("libmnl0"), GuestDeb("libxtables12"), GuestDeb("libjansson4"), GuestDeb("libedit2"),
          GuestDeb("conntrack", ("usr/sbin/conntrack",)), GuestDeb("libnetfilter-conntrack3"),
          GuestDeb("libnfnetlink0"), GuestDeb("netbase", ("etc/protocols",))),
    modules=ROUTER_MODULES)


@dataclass(frozen=True)
class RouterRules:
    """The parameters of the router's nftables rules (templates/vm/router.nft.j2)."""

    wan: str  # the public interface: masquerade out of it
    lan: str  # the private interface(s), an nft interface name (a trailing * matches several)
    helper: bool = True  # the explicit PPTP helper assignment; False only for the negative control
    forward_to: str = ""  # the private server's address: forward TCP 1723 and GRE to it


def render_router_rules(rules: RouterRules) -> str:
    return render(template_env("vm"), "router.nft.j2", r=rules)


@dataclass(frozen=True)
class Veth:
    """One LAN segment: a veth pair between two namespaces, with an address on each end."""

    a: str
    a_iface: str
    a_addr: str
    b: str
    b_iface: str
    b_addr: str
    prefix: int = 24


@dataclass(frozen=True)
class NatLayout:
    """Namespaces, the veth pairs between them, routes, and who is who."""

    server: str
    router: str
    clients: tuple[str, ...]
    direct: str  # a client without NAT between it and the server ("" if none)
    veths: tuple[Veth, ...]
    routes: tuple[tuple[str, str], ...]  # (namespace, `ip route add` arguments)
    rules: RouterRules
    dial: str  # the address clients behind or outside the router dial

    @property
    def namespaces(self) -> tuple[str, ...]:
        return (self.server, self.router, *self.clients, *((self.direct,) if self.direct else ()))


SERVER_IP = TunnelConfig().server_ip  # what the image's pptpd.conf listens on
ROUTER_PUBLIC = "10.0.0.254"


def masquerade_layout(clients: int) -> NatLayout:
    veths = [Veth("nat-server", "vs", f"{SERVER_IP}", "nat-router", "wan", ROUTER_PUBLIC),
             Veth("nat-server", "vd", "10.0.1.1", "nat-direct", "vc", "10.0.1.2")]
    routes = [("nat-direct", "10.0.0.0/24 via 10.0.1.1")]
    names = tuple(f"nat-c{i}" for i in range(1, clients + 1))
    for i, ns in enumerate(names, 1):
        veths.append(Veth("nat-router", f"lan{i}", f"172.16.{i}.1", ns, "vc", f"172.16.{i}.2"))
        routes.append((ns, f"default via 172.16.{i}.1"))
    return NatLayout(server="nat-server", router="nat-router", clients=names, direct="nat-direct",
                     veths=tuple(veths), routes=tuple(routes), rules=RouterRules(wan="wan", lan="lan*"),
                     dial=SERVER_IP)


def forward_layout() -> NatLayout:
    public = "198.51.100.1"  # the router's public address (TEST-NET-2)
    veths = (Veth("nat-router", "lan1", "10.0.0.254", "nat-server", "vs", SERVER_IP),
             Veth("nat-router", "wan", public, "nat-c1", "vc", "198.51.100.2"))
    return NatLayout(server="nat-server", router="nat-router", clients=("nat-c1",), direct="",
                     veths=veths, routes=(("nat-server", "default via 10.0.0.254"),),
                     rules=RouterRules(wan="wan", lan="lan*", forward_to=SERVER_IP), dial=public)


@dataclass
class NatLab:
    """One guest holding one NAT layout at a time (each scenario starts from a fresh one)."""

    guest: Guest
    current: NatTopology | None = None

    def guests(self) -> list[Guest]:
        return [self.guest]

    def fresh(self, layout: NatLayout) -> NatTopology:
        """`layout` set up from scratch: whatever the last scenario left (calls, rules, state) is gone."""
        self.current = NatTopology(self.guest, layout)
        self.current.setup()
        return self.current


@dataclass
class NatTopology(Topology):
    """A NAT layout set up in one guest; `server`/`client` run in the server and the first client."""

    guest: Guest
    layout: NatLayout
    config: TunnelConfig = field(default_factory=TunnelConfig)
    _generation: int = -1

    def guests(self) -> list[Guest]:
        return [self.guest]

    def dial_address(self) -> str:
        return self.layout.dial

    @property
    def server_os(self) -> GuestOS:
        return self.guest.os

    @property
    def client_os(self) -> GuestOS:
        return self.guest.os

    def run_in(self, ns: str, cmd: str, timeout: float = 60, check: bool = True) -> CommandResult:
        """Run `cmd` in namespace `ns` of the guest."""
        return self.guest.run(self.guest.os.in_namespace(ns, cmd), timeout=timeout, check=check)

    def server(self, cmd: str, timeout: float = 60, check: bool = True) -> CommandResult:
        return self.run_in(self.layout.server, cmd, timeout=timeout, check=check)

    def client(self, cmd: str, timeout: float = 60, check: bool = True) -> CommandResult:
        return self.ends()[0].client(cmd, timeout=timeout, check=check)

    def router(self, cmd: str, timeout: float = 60, check: bool = True) -> CommandResult:
        return self.run_in(self.layout.router, cmd, timeout=timeout, check=check)

    def ends(self, count: int | None = None) -> list[ClientEnd]:
        """The clients behind (or outside) the router, each a Topology with its own log and pidfile."""
        return [self._end(ns) for ns in self.layout.clients[:count]]

    def direct(self) -> ClientEnd:
        """The client with no router between it and the server (for the NAT-versus-direct figures)."""
        return self._end(self.layout.direct)

    def _end(self, ns: str) -> ClientEnd:
        name = ns.removeprefix("nat-")
        address = next(v.b_addr for v in self.layout.veths if v.b == ns)
        return ClientEnd(self, ns, address, replace(self.config, client_linkname=name,
                                                    client_log=f"/var/log/ppp-{name}.log"))

    def is_current(self) -> bool:
        return self._generation == self.guest.generation and not self.guest.dirty

    # --- set-up --------------------------------------------------------------------------------------
    def setup(self) -> None:
        g, lay = self.guest, self.layout
        gos = g.os
        g.ensure_booted()
        self.load_modules(g)
        for name in ROUTER_MODULES:
            g.run(gos.load_module(name))
        self.teardown()
        g.run(gos.add_namespaces(lay.namespaces))
        for v in lay.veths:
            g.run(gos.add_veth(v.a, v.a_iface, v.b, v.b_iface))
            for ns, iface, addr in ((v.a, v.a_iface, v.a_addr), (v.b, v.b_iface, v.b_addr)):
                g.run(gos.address_up(ns, iface, addr, v.prefix))
        for ns in lay.namespaces:
            g.run(gos.loopback_up(ns))
        for ns, route in lay.routes:
            g.run(gos.add_route(ns, route))
        self.load_rules(lay.rules)
        self.start_server()
        self._generation = g.generation

    def teardown(self) -> None:
        """End every process in the NAT namespaces and delete them (a previous layout's, say), and the
        call managers' sockets the killed pptps left, and the pppd logs."""
        self.guest.run(self.guest.os.delete_namespaces("nat-") + "; rm -f /run/pptp/* /var/log/ppp-*.log")

    def load_rules(self, rules: RouterRules) -> None:
        """Enable forwarding in the router and (re)load its whole ruleset, rendered from the template."""
        text = render_router_rules(rules)
        self.router(f"{self.guest.os.enable_forwarding()} && cat > {RULES_PATH} <<'EOF'\n{text}EOF\n"
                    f"{NFT} -f {RULES_PATH}")

    def flush_conntrack(self) -> None:
        """What a router reboot does to the NAT state: forget every connection and expectation."""
        self.router(f"{CONNTRACK} -F 2>&1; {CONNTRACK} -F expect 2>&1; true")

    def conntrack(self, what: str = "") -> str:
        """The router's `conntrack -L [what]` (connections, or `expect` for the expectations)."""
        return self.router(f"{CONNTRACK} -L {what} 2>/dev/null; true").output

    def watch_expectations(self) -> None:
        """Start recording the router's expectation events (`conntrack -E expect`) in the background."""
        self.router(f"{CONNTRACK} -E expect > /tmp/expect-events.txt 2>&1 & "
                    "echo $! > /tmp/expect-events.pid; "
                    "sleep 0.3")

    def expectation_events(self) -> str:
        """Stop the recording; what it saw (one line per event: [NEW], [DESTROY])."""
        return self.router("kill $(cat /tmp/expect-events.pid) 2>/dev/null; sleep 0.2; "
                           "cat /tmp/expect-events.txt").output

    def stop_all(self, ends: list[ClientEnd], timeout: float = 30) -> None:
        """Disconnect several clients: stop their pppds first, then wait for the server's side of each."""
        for end in ends:
            end.stop_client(timeout)
        for end in ends:
            end.wait_calls_ended(timeout)


@dataclass
class ClientEnd(Topology):
    """One client namespace of a NAT layout, with the shared server."""

    nat: NatTopology
    netns: str
    address: str  # on its LAN
    config: TunnelConfig
    ppp_local_address: str = ""  # set by connect: the address the server gave this client

    def dial_address(self) -> str:
        return self.nat.layout.dial if self.netns != self.nat.layout.direct else SERVER_IP

    def pty_command(self) -> str:
        """pptp bound to this client's address: pptp names its call manager's socket in /var/run/pptp
        after the local and the server address, and the namespaces share that directory. Without the
        local address every client after the first would hand its call to the first one's call manager
        (one control connection for all, as on one host), which is not the case of separate machines."""
        return f"{super().pty_command()} --localbind {self.address}"

    def guests(self) -> list[Guest]:
        return self.nat.guests()

    @property
    def server_os(self) -> GuestOS:
        return self.nat.guest.os

    @property
    def client_os(self) -> GuestOS:
        return self.nat.guest.os

    def server(self, cmd: str, timeout: float = 60, check: bool = True) -> CommandResult:
        return self.nat.server(cmd, timeout=timeout, check=check)

    def client(self, cmd: str, timeout: float = 60, check: bool = True) -> CommandResult:
        return self.nat.run_in(self.netns, cmd, timeout=timeout, check=check)

    def wait_calls_ended(self, timeout: float = 30) -> None:
        """Wait until this client's server-side pppd is gone (other clients' calls may stay up)."""
        local = self.ppp_local_address
        if local:
            gos = self.server_os
            self.server(gos.wait_until(gos.no_ppp_peer(local), timeout), timeout=timeout + 10)

    def connect(self, timeout: float = 60, options: str = "", keepalive: bool = True) -> float:
        """As Topology.connect; with `keepalive` pppd sends LCP echoes (KEEPALIVE; `options` may override)."""
        seconds = super().connect(timeout, f"{KEEPALIVE if keepalive else ''} {options}")
        self.link_up()
        return seconds

    def link_up(self) -> None:
        """After a call came up (connect, or a redial by pppd itself): note the address the server gave
        this client, and give both ppp units a plain FIFO of 1000 packets.

        Why the FIFO: the kernel's default qdisc (fq_codel in Debian's config) drops packets that wait
        more than 5 ms for 100 ms. A ppp unit drains through a pty into pptp, and under TCG with several
        tunnels, on a loaded host, a 50000-byte ping's 35 fragments wait longer than that: measured with
        4 tunnels, `tc -s` showed 5-21 codel drops per unit and most 50000-byte pings lost, nothing lost
        anywhere else. That is the emulated CPU's speed, not NAT; pfifo_fast is no way out (it takes its
        limit from the ppp unit's txqueuelen, 3).
        """
        self.ppp_local_address = self.client_ppp_addresses()[0]
        self.client(self.client_os.fifo(f"ppp{self.config.client_unit}", FIFO_PACKETS))
        gos = self.server_os
        self.server(f"dev=$({gos.ppp_unit_with_peer(self.ppp_local_address)}) && [ -n \"$dev\" ] && "
                    + gos.fifo("$dev", FIFO_PACKETS))


# one GRE connection of `conntrack -L`: the original tuple, then the reply tuple, each with its keys
GRE_ENTRY = re.compile(r"^gre\s.*?src=(\S+) dst=(\S+) srckey=(0x[0-9a-f]+) dstkey=(0x[0-9a-f]+) "
                       r"src=(\S+) dst=(\S+) srckey=(0x[0-9a-f]+) dstkey=(0x[0-9a-f]+)", re.M)


@dataclass(frozen=True)
class GreCall:
    """A PPTP call's GRE connection on the router, seen from the client's side: the client's private
    address, its Call ID there, and the Call ID the server sees after NAT (the key of the server's GRE)."""

    client: str
    private_id: str
    public_id: str


def gre_calls(conntrack: str, server: str) -> list[GreCall]:
    """The GRE connections of `conntrack -L`, oriented by who sent the first GRE packet. A GRE key is the
    receiver's Call ID: when the client's packet opened the entry, its own Call ID is the original source
    key and the NATed one the reply's destination key; when the server's packet opened it (address
    `server`), the tuples are the other way round."""
    calls = []
    for src, _dst, skey, dkey, r_src, _r_dst, r_skey, r_dkey in GRE_ENTRY.findall(conntrack):
        if src == server:
            calls.append(GreCall(client=r_src, private_id=r_skey, public_id=dkey))
        else:
            calls.append(GreCall(client=src, private_id=skey, public_id=r_dkey))
    return calls
