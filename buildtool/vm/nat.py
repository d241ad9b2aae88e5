"""PPTP through a Linux NAT router: a three-role topology in network namespaces of one guest.

Two layouts, each a Network declaration (vm/network.py: one node, its NICs on LANs, routes, roles):

- masquerade: PPTP clients `nat-c1`..`nat-cN` each on a LAN of its own to the router (a veth pair each, so
  the router needs no bridge), the router `nat-router` masquerading them behind its public address, the
  server `nat-server` on the public LAN. A client `nat-direct` on a LAN of its own to the server is the
  same tunnel without NAT, for the figures.
- forward: the server on the router's private LAN, its port 1723 and GRE forwarded from the router's
  public address, one client outside.

Roles configure namespaces: the Router here (its modules, IP forwarding, nftables rules rendered from
templates/vm/router.nft.j2), the PptpServer and PptpClients of vm/topology.py (each client binds pptp to
its own address and dials the server, or the router's public address when the server is behind port
forwarding). Each client is a Topology of its own (`ClientEnd`) sharing the server, so the scenarios use
the same connect/disconnect/ping code as the single-guest suite.

The server keeps the address of the image's pptpd.conf (10.0.0.1) in both layouts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ..templating import render, template_env
from .contents import GuestContents, GuestDeb
from .guest import CommandResult, Guest
from .network import Lan, Network, Nic, Node, Place, Role
from .topology import PptpClient, PptpServer, Topology, TunnelConfig

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


SERVER_IP = TunnelConfig().server_ip  # what the image's pptpd.conf listens on
ROUTER_PUBLIC = "10.0.0.254"
NODE = "nat"  # the one guest every namespace lives in
DIRECT = "nat-direct"  # the namespace of the client with no router between it and the server


@dataclass(frozen=True)
class Router(Role):
    """A Linux NAT router in namespace `netns`: the conntrack/NAT/nftables modules, IP forwarding, and the
    nftables ruleset rendered from `rules`."""

    rules: RouterRules = RouterRules(wan="wan", lan="lan*")
    netns: str = ""
    modules: str = ""  # no PPP modules of its own

    def prepare(self, guest: Guest) -> None:
        for name in ROUTER_MODULES:
            guest.run(guest.os.load_module(name))

    def configure(self, at: Place, topology: Topology) -> None:
        self.load_rules(at, self.rules)

    def load_rules(self, at: Place, rules: RouterRules) -> None:
        """Enable forwarding and (re)load the whole ruleset, rendered from the template."""
        text = render_router_rules(rules)
        at.run(f"{at.os.enable_forwarding()} && cat > {RULES_PATH} <<'EOF'\n{text}EOF\n"
               f"{NFT} -f {RULES_PATH}")


def _pair(lan: str, a_ns: str, a_iface: str, a_addr: str, b_ns: str, b_iface: str, b_addr: str
          ) -> tuple[Nic, Nic]:
    return Nic(lan, a_iface, a_addr, netns=a_ns), Nic(lan, b_iface, b_addr, netns=b_ns)


def masquerade_layout(clients: int) -> Network:
    """Clients nat-c1..N each on a LAN of its own behind the masquerading router, the server on the public
    LAN, and the direct client on a LAN of its own to the server."""
    nics = [*_pair("public", "nat-server", "vs", SERVER_IP, "nat-router", "wan", ROUTER_PUBLIC),
            *_pair("direct", "nat-server", "vd", "10.0.1.1", DIRECT, "vc", "10.0.1.2")]
    routes = [(DIRECT, "10.0.0.0/24 via 10.0.1.1")]
    roles: list[Role] = [Router(netns="nat-router", rules=RouterRules(wan="wan", lan="lan*")),
                         PptpServer(netns="nat-server")]
    for i in range(1, clients + 1):
        ns, address = f"nat-c{i}", f"172.16.{i}.2"
        nics += _pair(f"lan{i}", "nat-router", f"lan{i}", f"172.16.{i}.1", ns, "vc", address)
        routes.append((ns, f"default via 172.16.{i}.1"))
        roles.append(PptpClient(netns=ns, dial=SERVER_IP, localbind=address))
    roles.append(PptpClient(netns=DIRECT, dial=SERVER_IP, localbind="10.0.1.2"))
    lans = tuple(dict.fromkeys(Lan(n.lan) for n in nics))
    return Network(lans=lans, nodes=(Node(NODE, nics=tuple(nics), roles=tuple(roles), routes=tuple(routes)),))


def forward_layout() -> Network:
    """The server on the router's private LAN, its port 1723 and GRE forwarded from the router's public
    address, which the one client outside dials."""
    public = "198.51.100.1"  # the router's public address (TEST-NET-2)
    nics = (*_pair("private", "nat-router", "lan1", "10.0.0.254", "nat-server", "vs", SERVER_IP),
            *_pair("public", "nat-router", "wan", public, "nat-c1", "vc", "198.51.100.2"))
    roles = (Router(netns="nat-router", rules=RouterRules(wan="wan", lan="lan*", forward_to=SERVER_IP)),
             PptpServer(netns="nat-server"),
             PptpClient(netns="nat-c1", dial=public, localbind="198.51.100.2"))
    return Network(lans=(Lan("private"), Lan("public")), nodes=(
        Node(NODE, nics=nics, roles=roles, routes=(("nat-server", "default via 10.0.0.254"),)),))


def router_rules(layout: Network) -> RouterRules:
    """The ruleset a layout's router is declared with."""
    return layout.roles(Router)[0].rules


@dataclass
class NatLab:
    """One guest holding one NAT layout at a time (each scenario starts from a fresh one)."""

    guest: Guest
    current: NatTopology | None = None

    def guests(self) -> list[Guest]:
        return [self.guest]

    def fresh(self, layout: Network) -> NatTopology:
        """`layout` set up from scratch: whatever the last scenario left (calls, rules, state) is gone."""
        self.current = NatTopology(self.guest, layout)
        self.current.setup()
        return self.current


class NatTopology(Topology):
    """A NAT layout set up in one guest; `server`/`client` run in the server and the first client."""

    def __init__(self, guest: Guest, layout: Network, config: TunnelConfig | None = None):
        super().__init__(layout, {NODE: guest}, config)
        self.guest = guest

    @property
    def router_role(self) -> Router:
        return self.network.roles(Router)[0]

    def run_in(self, ns: str, cmd: str, timeout: float = 60, check: bool = True) -> CommandResult:
        """Run `cmd` in namespace `ns` of the guest."""
        return Place(self.guest, ns).run(cmd, timeout=timeout, check=check)

    def router(self, cmd: str, timeout: float = 60, check: bool = True) -> CommandResult:
        return self.place(self.router_role).run(cmd, timeout=timeout, check=check)

    def ends(self, count: int | None = None) -> list[ClientEnd]:
        """The clients behind (or outside) the router, each a Topology with its own log and pidfile."""
        clients = [r for r in self.network.roles(PptpClient) if r.netns != DIRECT]
        return [ClientEnd(self, r) for r in clients[:count]]

    def direct(self) -> ClientEnd:
        """The client with no router between it and the server (for the NAT-versus-direct figures)."""
        return ClientEnd(self, next(r for r in self.network.roles(PptpClient) if r.netns == DIRECT))

    def clear(self, guest: Guest) -> None:
        """End every process in the NAT namespaces and delete them (a previous layout's, say), and the
        call managers' sockets the killed pptps left, and the pppd logs."""
        guest.run(guest.os.delete_namespaces("nat-") + "; rm -f /run/pptp/* /var/log/ppp-*.log")

    def load_rules(self, rules: RouterRules) -> None:
        """The router runs `rules` from now on: its role's parameter, (re)loaded at once."""
        old = self.router_role
        self.network = self.network.with_role(old, replace(old, rules=rules))
        self.router_role.load_rules(self.place(self.router_role), rules)

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


class ClientEnd(Topology):
    """One client namespace of a NAT layout (its PptpClient role), with the shared server."""

    def __init__(self, nat: NatTopology, role: PptpClient):
        name = role.netns.removeprefix("nat-")
        super().__init__(nat.network, nat.node_guests, replace(nat.config, client_linkname=name,
                                                               client_log=f"/var/log/ppp-{name}.log"))
        self.nat = nat
        self._role = role
        self.ppp_local_address = ""  # set by connect: the address the server gave this client

    @property
    def client_role(self) -> PptpClient:
        return self._role

    @property
    def netns(self) -> str:
        return self._role.netns

    @property
    def address(self) -> str:
        """Its address on its LAN (pptp binds to it)."""
        return self._role.localbind

    def is_current(self) -> bool:
        return self.nat.is_current()

    def setup(self) -> None:
        self.nat.setup()

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
