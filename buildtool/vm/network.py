"""Test networks as data: nodes (one booted guest each) with NICs on LANs, and the roles each node plays.

A Lan is a network segment. A Nic puts a node on a LAN with an address, either in the node's own network
stack or in a network namespace of it (`netns`). A LAN between two namespaces of one node is a veth pair; a
LAN between two nodes is a QEMU socket network (the first node listens, the second connects), whose NICs
the guests get at boot (`Network.socket_nics`). Roles (vm/topology.py: PPTP server and client; vm/nat.py:
router) say what a node runs and where (`Role.netns`); they are configured once the network is up.

`bring_up` builds one node's part of the network through its guest OS's shell idioms (vm/guest.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import HarnessError
from .guest import CommandResult, Guest, GuestOS
from .qemu import SocketNic


@dataclass(frozen=True)
class Lan:
    name: str
    prefix: int = 24


@dataclass(frozen=True)
class Nic:
    lan: str
    iface: str
    address: str
    netns: str = ""  # "" = the node's own network stack


class Role:
    """Something a node runs, in its network namespace `netns` ("" = the node's own stack).

    `modules` is the PPP kernel modules the role needs ("ours", "stock", or "" for none): the roles of one
    node share its kernel, so they must agree. Subclasses are frozen dataclasses with these fields."""

    netns: str = ""
    modules: str = ""

    def prepare(self, guest: Guest) -> None:
        """Load what the role needs in the node's kernel, before the network is built."""

    def configure(self, at: Place, topology) -> None:
        """Start the role once the network is up (`topology`: the Topology it belongs to)."""


@dataclass(frozen=True)
class Node:
    name: str
    nics: tuple[Nic, ...] = ()
    roles: tuple[Role, ...] = ()
    routes: tuple[tuple[str, str], ...] = ()  # (netns, `ip route add` arguments)

    @property
    def namespaces(self) -> tuple[str, ...]:
        """The node's network namespaces, in the order its NICs and roles name them."""
        names = [n.netns for n in self.nics] + [r.netns for r in self.roles] + [ns for ns, _ in self.routes]
        return tuple(dict.fromkeys(n for n in names if n))

    def modules(self) -> str:
        """The PPP modules this node's kernel runs ("" if no role needs any)."""
        wanted = sorted({r.modules for r in self.roles if r.modules})
        if len(wanted) > 1:
            raise HarnessError(f"node {self.name}: its roles want different PPP modules "
                               f"({', '.join(wanted)}); one kernel runs one set: put the roles on nodes of "
                               f"their own")
        return wanted[0] if wanted else ""


@dataclass(frozen=True)
class Network:
    """Nodes x LANs. Checked on construction: every LAN joins exactly two NICs."""

    lans: tuple[Lan, ...]
    nodes: tuple[Node, ...]
    mac_prefix: str = "52:54:00:00:00"

    def __post_init__(self) -> None:
        names = {lan.name for lan in self.lans}
        for node in self.nodes:
            for nic in node.nics:
                if nic.lan not in names:
                    raise HarnessError(f"node {node.name}: NIC {nic.iface} is on LAN {nic.lan!r}, which the "
                                       f"network does not declare ({', '.join(sorted(names))})")
        for lan in self.lans:
            ends = self.ends(lan)
            if len(ends) != 2:
                raise HarnessError(f"LAN {lan.name}: {len(ends)} NICs on it; a veth pair or a socket network "
                                   f"joins exactly two")

    def ends(self, lan: Lan) -> list[tuple[Node, Nic]]:
        return [(node, nic) for node in self.nodes for nic in node.nics if nic.lan == lan.name]

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def node_of(self, role: Role) -> Node:
        return next(n for n in self.nodes if any(r is role for r in n.roles))

    def roles(self, kind: type) -> list[Role]:
        return [r for n in self.nodes for r in n.roles if isinstance(r, kind)]

    def lan(self, name: str) -> Lan:
        return next(lan for lan in self.lans if lan.name == name)

    def local_lans(self, node: Node) -> list[Lan]:
        """LANs inside `node`: both NICs on it (a veth pair between two of its namespaces)."""
        return [lan for lan in self.lans if all(n is node for n, _ in self.ends(lan))]

    def shared_lans(self) -> list[Lan]:
        """LANs between two nodes (a QEMU socket network each)."""
        return [lan for lan in self.lans if len({id(n) for n, _ in self.ends(lan)}) == 2]

    def socket_nics(self, node_name: str, first_port: int) -> tuple[SocketNic, ...]:
        """The QEMU NICs node `node_name` boots with: one per LAN it shares with another node, on port
        `first_port` + the LAN's index among those; the LAN's first node listens. MACs: the node's number."""
        nics = []
        number = next(i for i, n in enumerate(self.nodes, 1) if n.name == node_name)
        for i, lan in enumerate(self.shared_lans()):
            ends = self.ends(lan)
            if any(n.name == node_name for n, _ in ends):
                nics.append(SocketNic(first_port + i, listen=ends[0][0].name == node_name,
                                      mac=f"{self.mac_prefix}:{number:02x}"))
        return tuple(nics)

    def with_role(self, old: Role, new: Role) -> Network:
        """The same network with role `old` replaced by `new` (roles are parameters: modules, userland)."""
        nodes = tuple(Node(n.name, n.nics, tuple(new if r is old else r for r in n.roles), n.routes)
                      for n in self.nodes)
        return Network(self.lans, nodes, self.mac_prefix)


@dataclass(frozen=True)
class Place:
    """Where a role runs: a guest, and a network namespace of it ("" = its own stack)."""

    guest: Guest
    netns: str = ""

    @property
    def os(self) -> GuestOS:
        return self.guest.os

    def run(self, cmd: str, timeout: float = 60, check: bool = True) -> CommandResult:
        wrapped = self.os.in_namespace(self.netns, cmd) if self.netns else cmd
        return self.guest.run(wrapped, timeout=timeout, check=check)


def plan_node(network: Network, node: Node, gos: GuestOS) -> list[str]:
    """The commands that build `node`'s part of the network, in order: namespaces, the veth pairs of its
    own LANs with their addresses, loopbacks, its NICs on shared LANs, routes."""
    commands = []
    if node.namespaces:
        commands.append(gos.add_namespaces(node.namespaces))
    for lan in network.local_lans(node):
        (_, a), (_, b) = network.ends(lan)
        commands.append(gos.add_veth(a.netns, a.iface, b.netns, b.iface))
        for nic in (a, b):
            commands.append(gos.address_up(nic.netns, nic.iface, nic.address, lan.prefix))
    for ns in node.namespaces:
        commands.append(gos.loopback_up(ns))
    for lan in network.shared_lans():
        for n, nic in network.ends(lan):
            if n is not node:
                continue
            if nic.netns:
                raise HarnessError(f"node {node.name}: NIC {nic.iface} on the shared LAN {lan.name} is in "
                                   f"namespace {nic.netns}; a guest's socket NIC is in its own stack")
            commands.append(gos.nic_up(nic.iface, nic.address, lan.prefix))
    for ns, route in node.routes:
        commands.append(gos.add_route(ns, route))
    return commands


def bring_up(network: Network, node: Node, guest: Guest) -> None:
    for cmd in plan_node(network, node, guest.os):
        guest.run(cmd)
