"""The PPTP tunnel's topologies: where its two ends live, and how a scenario brings the tunnel up and down.

A topology is a Network declaration (vm/network.py: nodes, their NICs on LANs, the roles they play) on
booted guests. The roles here are the PPTP server (pptpd) and the PPTP client (pppd + pptp); the NAT
router is in vm/nat.py. Which userland (`Userland`) and which PPP modules ("ours" or "stock") a role runs
are its parameters. Topology sets a declaration up (boot, modules, namespaces, links, roles) and offers
the scenario's verbs (connect, disconnect, impair, ...), so a scenario does not care which one it has.

Two declarations serve the tunnel suite: `single_guest_network` (the default: one guest, namespaces
`server` and `client` joined by a veth pair `vs`/`vc` on which `tc netem` impairs traffic) and
`two_guests_network` (a server guest and a client guest on a QEMU socket network, for when the two ends
need different kernels or modules); SingleGuest and TwoGuests bind them to guests.

The addresses, names and secrets live in TunnelConfig; the image builder renders the configuration files
from the same object, so the two cannot drift.
"""

from __future__ import annotations

import re
import shlex
import time
from dataclasses import dataclass, replace

from ..errors import HarnessError, TestFailure
from ..templating import render, template_env
from .contents import GuestContents, GuestDeb
from .guest import ByteMatch, CommandResult, Guest, GuestOS
from .network import Lan, Network, Nic, Node, Place, Role, bring_up

# Programs that busybox also has as applets: busybox's shell runs its own applet for a bare name even when
# the real program comes first in PATH, so the scenarios call these by absolute path. (The guest OS's own
# tools, ip, tc and modprobe, are the guest OS class's business: vm/guest.py.)
PING = "/bin/ping"
IPERF3 = "/usr/bin/iperf3"
PPPD = "/usr/pkg/sbin/pppd"
PPTPD = "/usr/pkg/sbin/pptpd"
PPTP = "/usr/pkg/sbin/pptp"

@dataclass(frozen=True)
class TunnelConfig:
    """Addresses and credentials of the test tunnel (rendered into the guest's configuration files)."""

    server_ip: str = "10.0.0.1"  # the veth (or NIC) address pptpd listens on
    client_ip: str = "10.0.0.2"
    prefix: int = 24
    ppp_local: str = "192.168.100.1"  # server end of the PPP link
    ppp_remote_range: str = "192.168.100.2-60"  # pptpd hands these to clients
    user: str = "vpnuser"
    server_name: str = "pptp-server"
    secret: str = "mppe-test-secret-7Qv"
    server_iface: str = "vs"
    client_iface: str = "vc"
    pptpd_conf: str = "/etc/pptpd.conf"
    server_options: str = "/etc/ppp/options.pptpd"
    client_options: str = "/etc/ppp/options.client"
    server_log: str = "/var/log/ppp-server.log"
    client_log: str = "/var/log/ppp-client.log"
    client_linkname: str = "client"
    client_unit: int = 0
    mppe_bits: int = 128  # 40 or 128: both ends require exactly this key length
    mppe_stateful: bool = False  # True: both ends allow and (with the plugin) request stateful MPPE
    stateful_plugin: str = "/usr/local/lib/pppd/mppe_stateful.so"  # buildtool/vm/tools/plugins/

    @property
    def client_pidfile(self) -> str:
        return f"/var/run/ppp-{self.client_linkname}.pid"

    @property
    def mppe_line(self) -> str:
        """What both pppds log once CCP is up with this configuration."""
        mode = "stateful" if self.mppe_stateful else "stateless"
        return f"MPPE {self.mppe_bits}-bit {mode} compression enabled"

    @property
    def mppe_ack(self) -> str:
        """The MPPE option of the CCP Configure-Ack, as pppd prints it (H: stateless, S: 128, L: 40 bit)."""
        h = "-" if self.mppe_stateful else "+"
        s, ll = ("+", "-") if self.mppe_bits == 128 else ("-", "+")
        return f"<mppe {h}H -M {s}S {ll}L -D -C>"


# The stock modules the tunnel uses besides ours (ours: Guest.our_modules, the recipe's [kmod] modules).
STOCK_MODULES = ("slhc", "libarc4", "ppp_async", "veth", "sch_netem")

# A function only our ppp_mppe (kmod/mppe/linux) has: /proc/kallsyms lists it with [ppp_mppe] when ours is
# the loaded one. Debian's module cannot fake it, and it is read from the running kernel, not from a file.
MPPE_MARKER = "mppe_linux_comp_alloc"
# Debian's own PPP modules, by path under /lib/modules/<release>/, in load order
DEBIAN_PPP = ("kernel/drivers/net/slip/slhc.ko", "kernel/drivers/net/ppp/ppp_generic.ko",
              "kernel/drivers/net/ppp/ppp_async.ko", "kernel/lib/crypto/libarc4.ko",
              "kernel/drivers/net/ppp/ppp_mppe.ko")
PPP_USERS = ("ppp_mppe", "ppp_async", "ppp_generic")  # rmmod order
# A stateful resync after the client's frames were lost: the server's pppd asks (its decompressor lost
# sync), the client's answers (its kernel's compressor then sends a flushed packet). Keys of ccp_resets().
RESET_EXCHANGE = ("server_sent_resetreq", "client_rcvd_resetreq", "client_sent_resetack",
                  "server_rcvd_resetack")

# Where PPTP's data packets put the MPPE header (Topology.corrupt_mppe): IPv4 header without options, then
# enhanced GRE (RFC 2637: flags 0x30 = key + sequence present, then 0x01 = version 1 or 0x81 = version 1
# with an acknowledgment number), then the PPP header with or without address/control and with a 2- or
# 1-byte protocol field.
IPV4_HDR = 20
GRE_PROTOCOL = 47
GRE_LAYOUTS = ((0x01, 12), (0x81, 16))
PPP_HEADERS = (b"\xff\x03\x00\xfd", b"\xff\x03\xfd", b"\x00\xfd", b"\xfd")


def mppe_identity(guest: Guest) -> dict[str, str]:
    """Which ppp_mppe the guest's kernel runs: {"impl": "ours"|"stock"|"none"|"unknown", ...evidence}.

    ours: our marker function is in /proc/kallsyms under [ppp_mppe] and the module is out-of-tree (taint O).
    stock: no marker, and the module is Debian's signed in-tree one (no taint at all).
    """
    out = guest.run(guest.os.module_facts("ppp_mppe", MPPE_MARKER, {"generic_taint": "ppp_generic"})).output
    info = guest.os.parse_facts(out)
    if info.get("loaded") != "1":
        info["impl"] = "none"
    elif info.get("marker") == "1" and "O" in info.get("taint", ""):
        info["impl"] = "ours"
    elif info.get("marker") == "0" and info.get("taint", "") == "":
        info["impl"] = "stock"
    else:
        info["impl"] = "unknown"
    return info


def use_mppe(guest: Guest, impl: str) -> dict[str, str]:
    """Make the guest run our PPP modules ("ours": ppp_generic + ppp_mppe from extra/) or Debian's
    ("stock": ppp_generic, ppp_async, ppp_mppe from kernel/). No ppp link may be up. Returns the proof."""
    if mppe_identity(guest)["impl"] == impl:
        return mppe_identity(guest)
    unload = guest.os.unload_loaded(PPP_USERS)
    if impl == "ours":
        load = guest.os.load_modules((*guest.our_modules, "ppp_async"))
    elif impl == "stock":
        load = guest.os.insert_missing(guest.release, DEBIAN_PPP)
    else:
        raise ValueError(f"unknown MPPE implementation {impl!r} (ours, stock)")
    guest.run(f"{unload} && {load}")
    info = mppe_identity(guest)
    if info["impl"] != impl:
        raise TestFailure(f"guest {guest.name} was to run the {impl} ppp_mppe but runs {info}")
    return info


def mppe_slab(guest: Guest) -> dict[str, int]:
    """Our ppp_mppe's states: allocated and not freed (its live_states counter), its slab cache's counts,
    and the module's reference count."""
    gos = guest.os
    out = guest.run(gos.slab_usage("ppp_mppe_state", "ppp_mppe")
                    + f"; echo live $({gos.module_parameter('ppp_mppe', 'live_states')})").output
    usage = gos.parse_slab_usage(out, "ppp_mppe_state")
    live = re.search(r"^live (\d+)", out, re.M)
    if usage is None or not live:
        raise TestFailure(f"no ppp_mppe_state cache, refcnt or live_states in the guest (is our ppp_mppe "
                          f"loaded?):\n{out}")
    return {"live_states": int(live[1]), **usage}


@dataclass(frozen=True)
class Userland:
    """The PPTP programs a role runs: ours (the packages under /usr/pkg, in every stack image) or another
    build of them, with what the guest image needs to hold them (`contents`: the image of a scenario that
    runs this userland is built with them)."""

    name: str
    pppd: str
    pptpd: str
    pptp: str
    contents: GuestContents = GuestContents()


OURS = Userland("ours", pppd=PPPD, pptpd=PPTPD, pptp=PPTP)

# Debian 12's own pppd (package ppp), pptpd + pptpctrl (pptpd: its pptpd runs /usr/sbin/pptpctrl, compiled
# in) and pptp (pptp-linux), with the packages of the shared libraries they need that the image has no
# other source for (found with readelf/ldd on the unpacked binaries: libssl, libpam and libaudit,
# libcap-ng for pppd; libwrap and, through it, libnsl, libtirpc and Kerberos for pptpd). The rest (libc,
# libcrypto, libpcap, libsystemd and theirs) are already in the image for our packages and Debian's tools.
# Not taken: pptpd's logwtmp plugin (pptpd.conf.j2 leaves it off), bcrelay, the packages' /etc files.
DEBIAN = Userland("debian", pppd="/usr/sbin/pppd", pptpd="/usr/sbin/pptpd", pptp="/usr/sbin/pptp",
                  contents=GuestContents(debs=(
                      GuestDeb("ppp", ("usr/sbin/pppd",)),
                      GuestDeb("pptpd", ("usr/sbin/pptpd", "usr/sbin/pptpctrl")),
                      GuestDeb("pptp-linux", ("usr/sbin/pptp",)),
                      *(GuestDeb(name) for name in (
                          "libssl3", "libpam0g", "libaudit1", "libcap-ng0", "libwrap0", "libnsl2",
                          "libtirpc3", "libgssapi-krb5-2", "libkrb5-3", "libk5crypto3", "libcom-err2",
                          "libkrb5support0", "libkeyutils1")))))


def render_pptpd_conf(c: TunnelConfig, userland: Userland) -> str:
    """pptpd.conf for a server of `userland`: its `ppp` line names that userland's pppd."""
    return render(template_env("vm"), "pptpd.conf.j2", c=c, u=userland)


@dataclass(frozen=True)
class PptpServer(Role):
    """pptpd, serving calls with the pppd options of TunnelConfig (the image's files)."""

    netns: str = ""
    userland: Userland = OURS
    modules: str = "ours"  # the PPP modules of the node's kernel: "ours" (extra/) or "stock" (Debian's)

    def configure(self, at: Place, topology: Topology) -> None:
        self.start(at, topology.config)

    def start(self, at: Place, c: TunnelConfig) -> None:
        """Write pptpd.conf for this role's userland (the image's is ours) and start its pptpd."""
        at.run(at.os.write_file(c.pptpd_conf, render_pptpd_conf(c, self.userland)))
        at.run(f"{self.userland.pptpd} -c {c.pptpd_conf} && sleep 0.3 && pidof pptpd >/dev/null")

    def stop(self, at: Place, timeout: float = 30) -> None:
        """Stop pptpd (no call may be up) and wait until it has exited."""
        at.run("kill $(pidof pptpd) 2>/dev/null; " + at.os.wait_until("! pidof pptpd >/dev/null", timeout),
               timeout=timeout + 10)

    def alive(self, at: Place) -> bool:
        return at.run("pidof pptpd >/dev/null", check=False).status == 0

    def wait_calls_ended(self, at: Place, timeout: float) -> None:
        """Wait until no pppd is left (the server's notices the closed control connection and exits)."""
        at.run(at.os.wait_until("! pidof pppd >/dev/null", timeout), timeout=timeout + 10)

    def ppp_iface(self, at: Place) -> str:
        """The server's ppp interface for the (single) current call."""
        out = at.run(at.os.ppp_units()).output
        names = at.os.parse_ppp_units(out)
        if len(names) != 1:
            raise TestFailure(f"expected one ppp interface in the server, found {names or 'none'}:\n{out}")
        return names[0]


@dataclass(frozen=True)
class PptpClient(Role):
    """pppd with pptp as its pty, dialling the server (or `dial`, a router forwarding to it)."""

    netns: str = ""
    userland: Userland = OURS
    modules: str = "ours"
    dial: str = ""  # the address pptp connects to ("": TunnelConfig.server_ip)
    # bind pptp to this address: pptp names its call manager's socket in /var/run/pptp after the local and
    # the server address, and namespaces of one guest share that directory. Without it every client after
    # the first would hand its call to the first one's call manager (one control connection for all, as on
    # one host), which is not the case of separate machines.
    localbind: str = ""

    def pty_command(self, c: TunnelConfig) -> str:
        """The pptp command the client's pppd runs as its pty."""
        cmd = f"{self.userland.pptp} {self.dial or c.server_ip} --nolaunchpppd"
        return f"{cmd} --localbind {self.localbind}" if self.localbind else cmd

    def connect(self, at: Place, c: TunnelConfig, timeout: float = 60, options: str = "") -> float:
        """Start pppd and wait until IPCP gave ppp<unit> its addresses; return the seconds.

        pppd's `updetach` returns once the first network protocol is up (non-zero if the link failed);
        the wait that follows, in the same guest command, is for the IPv4 addresses. It watches the
        routing table (one busybox grep per check; `ip` costs the single vCPU ten times that) for the
        route to the peer that the kernel adds when ppp<unit> comes up, then checks the point-to-point
        address once with `ip`. `options` are extra pppd options (after the options file, so they win).
        """
        gos = at.os
        log = f"tail -n 40 {c.client_log}"
        unit = f"ppp{c.client_unit}"
        t0 = time.monotonic()
        at.run(
            f"{self.userland.pppd} pty {shlex.quote(self.pty_command(c))} "
            f"file {c.client_options} logfile {c.client_log} {options} "
            f"unit {c.client_unit} linkname {c.client_linkname} updetach || {{ {log}; exit 1; }}; "
            + gos.wait_until(gos.route_via(unit), timeout, on_timeout=log)
            + f"; {gos.has_peer_address(unit)}", timeout=timeout + 10)
        return time.monotonic() - t0

    def connected(self, at: Place, c: TunnelConfig) -> bool:
        return at.run(f"pid=$(head -n1 {c.client_pidfile} 2>/dev/null) && kill -0 $pid 2>/dev/null && "
                      + at.os.has_peer_address(f"ppp{c.client_unit}", quiet=True), check=False).status == 0

    def stop(self, at: Place, c: TunnelConfig, timeout: float = 30) -> None:
        """SIGTERM pppd (see Topology.disconnect) and wait until it has exited."""
        waiting = f"grep -c '^Waiting for' {c.client_log} 2>/dev/null"
        at.run(f"pid=$(head -n1 {c.client_pidfile} 2>/dev/null); [ -n \"$pid\" ] || exit 0; "
               f"w=$({waiting}); kill $pid; "
               + at.os.wait_until("! kill -0 $pid 2>/dev/null", timeout,
                                  each=f"[ \"$({waiting})\" = \"$w\" ] || kill $pid 2>/dev/null"),
               timeout=timeout + 10)

    def ppp_addresses(self, at: Place, c: TunnelConfig) -> tuple[str, str]:
        """(local, peer) IPv4 addresses of the client's ppp interface."""
        out = at.run(at.os.ptp_addresses(f"ppp{c.client_unit}")).output
        addresses = at.os.parse_ptp_addresses(out)
        if addresses is None:
            raise TestFailure(f"the client's ppp{c.client_unit} has no point-to-point address:\n{out}")
        return addresses


def load_modules(guest: Guest) -> None:
    """Load ours (modprobe finds them under extra/, which depmod ranks first) and the stock ones."""
    for name in (*guest.our_modules, *STOCK_MODULES):
        guest.run(guest.os.load_module(name))
    # /proc/sys/kernel/modprobe names kmod's modprobe, so `ppp-compress-18` autoloads the same ones


class Topology:
    """A declared network (vm/network.py) on booted guests, with the tunnel's roles: a PptpServer and at
    least one PptpClient. `server` and `client` run commands where those roles run (the first client), so
    a scenario does not care which declaration it has.

    The roles are parameters (userland, modules): `set_modules` changes one, and `setup` (after a reboot,
    say) applies what the roles say, never what the previous boot happened to run.
    """

    def __init__(self, network: Network, guests: dict[str, Guest], config: TunnelConfig | None = None):
        missing = [n.name for n in network.nodes if n.name not in guests]
        if missing:
            raise HarnessError(f"no guest for node(s) {', '.join(missing)} of the topology")
        if not network.roles(PptpServer) or not network.roles(PptpClient):
            raise HarnessError("a tunnel topology declares a PptpServer and a PptpClient role")
        self.network = network
        self.node_guests = dict(guests)
        self.config = config or TunnelConfig()
        self._generations: tuple[int, ...] = ()

    # --- where the roles run -------------------------------------------------------------------------
    def place(self, role: Role) -> Place:
        return Place(self.node_guests[self.network.node_of(role).name], role.netns)

    @property
    def server_role(self) -> PptpServer:
        return self.network.roles(PptpServer)[0]

    @property
    def client_role(self) -> PptpClient:
        return self.network.roles(PptpClient)[0]

    @property
    def server_os(self) -> GuestOS:
        """The OS of the guest `server` commands run in (it says how to write them)."""
        return self.place(self.server_role).os

    @property
    def client_os(self) -> GuestOS:
        return self.place(self.client_role).os

    def server(self, cmd: str, timeout: float = 60, check: bool = True) -> CommandResult:
        return self.place(self.server_role).run(cmd, timeout=timeout, check=check)

    def client(self, cmd: str, timeout: float = 60, check: bool = True) -> CommandResult:
        return self.place(self.client_role).run(cmd, timeout=timeout, check=check)

    def guests(self) -> list[Guest]:
        return [self.node_guests[n.name] for n in self.network.nodes]

    # --- set-up --------------------------------------------------------------------------------------
    def is_current(self) -> bool:
        """False when a guest was rebooted since setup (its namespaces and daemons are gone)."""
        gs = self.guests()
        return self._generations == tuple(g.generation for g in gs) and not any(g.dirty for g in gs)

    def ensure(self) -> Topology:
        if not self.is_current():
            self.setup()
        return self

    def setup(self) -> None:
        """Boot each node's guest if it is not running (or was left dirty), in declaration order (a node
        listening on a socket network first); per node: the kernel modules its roles ask for, what a
        previous set-up left (`clear`), its part of the network; check each socket network passes
        traffic; then configure the roles in declaration order."""
        self.config = self.booted_config()
        for node in self.network.nodes:
            g = self.node_guests[node.name]
            g.ensure_booted()
            self.prepare(node, g)
            self.clear(g)
            bring_up(self.network, node, g)
        for lan in self.network.shared_lans():
            (_, first), (node, _) = self.network.ends(lan)
            self.node_guests[node.name].run(f"{PING} -c 1 -W 10 {first.address} >/dev/null", timeout=30)
        for node in self.network.nodes:
            for role in node.roles:
                role.configure(self.place(role), self)
        self._generations = tuple(g.generation for g in self.guests())

    def prepare(self, node: Node, guest: Guest) -> None:
        """The node's kernel modules: the PPP ones its roles want (ours are loaded with the stock ones the
        tunnel uses; "stock" swaps the PPP ones for Debian's), then what each role loads itself."""
        impl = node.modules()
        if impl:
            load_modules(guest)
            if impl != "ours":
                use_mppe(guest, impl)
        for role in node.roles:
            role.prepare(guest)

    def clear(self, guest: Guest) -> None:
        """Remove what an earlier set-up on a guest that was not rebooted left (nothing, by default)."""

    def hang_up(self) -> None:
        """End a call an earlier scenario left up in these guests (scenarios may run in any order)."""
        if self.is_current() and self.connected():
            self.disconnect()

    def booted_config(self) -> TunnelConfig:
        """The config a freshly booted guest's files were rendered from (the image's MPPE defaults)."""
        d = TunnelConfig()
        return replace(self.config, mppe_bits=d.mppe_bits, mppe_stateful=d.mppe_stateful)

    # --- modules ------------------------------------------------------------------------------------
    load_modules = staticmethod(load_modules)

    def set_modules(self, role: Role, impl: str) -> Guest:
        """From now on the node of `role` runs `impl` ("ours" or "stock") PPP modules: every PPP role of
        that node (one kernel) says so, and the next setup loads them. Returns the node's guest."""
        if impl not in ("ours", "stock"):
            raise ValueError(f"unknown MPPE implementation {impl!r} (ours, stock)")
        node = self.network.node_of(role)
        for r in node.roles:
            if r.modules:
                self.network = self.network.with_role(r, replace(r, modules=impl))
        return self.node_guests[node.name]

    def use_modules(self, role: Role, impl: str) -> dict[str, str]:
        """set_modules, and swap the running kernel's modules now (no call may be up); the proof."""
        return use_mppe(self.set_modules(role, impl), impl)

    # --- userlands ----------------------------------------------------------------------------------
    def use_userland(self, role: PptpServer | PptpClient, userland: Userland) -> None:
        """From now on `role` runs the programs of `userland` (its parameter: a set-up after a reboot
        honours it). A server is restarted with them at once; a client uses them from its next connect.
        No call may be up."""
        if not any(r is role for r in self.network.roles(type(role))):
            raise HarnessError(f"{role} is not a role of this topology (a role replaced since?)")
        if role.userland == userland:
            return
        if self.is_current():
            self.require_programs(role, userland)
        self.network = self.network.with_role(role, replace(role, userland=userland))
        if isinstance(role, PptpServer) and self.is_current():
            at = self.place(self.server_role)
            self.server_role.stop(at)
            self.server_role.start(at, self.config)

    def require_programs(self, role: Role, userland: Userland) -> None:
        """A HarnessError unless the guest where `role` runs holds `userland`'s programs."""
        at = self.place(role)
        wanted = (userland.pppd, userland.pptpd, userland.pptp)
        missing = at.run("; ".join(f"[ -x {p} ] || echo {p}" for p in wanted), check=False).output.split()
        if missing:
            raise HarnessError(f"guest {at.guest.name} has no {', '.join(missing)}: its image was built "
                               f"without the {userland.name} userland (add its Userland.contents to the "
                               f"image's GuestContents, as tests/vm/conftest.py's userland_image does)")

    def programs(self, role: Role, name: str) -> list[str]:
        """The executable of each running process called `name` where `role` runs (its network stack)."""
        at = self.place(role)
        return at.run(at.os.executables(name)).output.split()

    # --- MPPE settings ------------------------------------------------------------------------------
    def configure_mppe(self, bits: int = 128, stateful: bool = False) -> None:
        """Rewrite both ends' pppd options for this key length and mode (read by the next connect).

        The files come from the same templates the image builder renders, from the changed config."""
        if (bits, stateful) == (self.config.mppe_bits, self.config.mppe_stateful):
            return
        self.config = replace(self.config, mppe_bits=bits, mppe_stateful=stateful)
        env, c = template_env("vm"), self.config
        for run, gos, path, template in ((self.server, self.server_os, c.server_options, "options.pptpd.j2"),
                                        (self.client, self.client_os, c.client_options, "options.client.j2")):
            run(gos.write_file(path, render(env, template, c=c)))

    # --- the link -----------------------------------------------------------------------------------
    def start_server(self) -> None:
        self.server_role.start(self.place(self.server_role), self.config)

    def server_alive(self) -> bool:
        return self.server_role.alive(self.place(self.server_role))

    def dial_address(self) -> str:
        """Where the client's pptp connects: the server's own address unless a router forwards to it."""
        return self.client_role.dial or self.config.server_ip

    def pty_command(self) -> str:
        """The pptp command the client's pppd runs as its pty."""
        return self.client_role.pty_command(self.config)

    def connect(self, timeout: float = 60, options: str = "") -> float:
        """Start the client's pppd and wait until IPCP gave ppp<unit> its addresses (PptpClient.connect);
        return the seconds."""
        return self.client_role.connect(self.place(self.client_role), self.config, timeout, options)

    def connected(self) -> bool:
        return self.client_role.connected(self.place(self.client_role), self.config)

    def ensure_connected(self) -> None:
        """A working tunnel for the next scenario: reconnect if the last one left it down or dead."""
        if self.connected():
            _, peer = self.client_ppp_addresses()
            if self.client(f"{PING} -c 1 -W 3 {peer} >/dev/null", check=False).status == 0:
                return
        self.disconnect()
        self.connect()

    def reset_logs(self) -> None:
        c = self.config
        self.server(f": > {c.server_log}")
        self.client(f": > {c.client_log}")

    def disconnect(self, timeout: float = 30) -> None:
        """SIGTERM the client's pppd and wait for both pppds to exit.

        With `updetach` the pppd that stays is not the parent of its pty child (pptp): the process that
        forked pptp exited when the link came up. So after LCP has terminated it cannot reap pptp and
        would wait its whole `child-timeout` ("Waiting for 1 child processes..." in its log) for a child
        that the call manager has already ended. A signal during that wait ends it (pppd then SIGTERMs
        its children, as at the end of the timeout), so the wait below repeats the SIGTERM once the log
        says pppd is waiting.
        """
        self.stop_client(timeout)
        self.wait_calls_ended(timeout)

    def stop_client(self, timeout: float = 30) -> None:
        """SIGTERM the client's pppd (see disconnect) and wait until it has exited."""
        self.client_role.stop(self.place(self.client_role), self.config, timeout)

    def wait_calls_ended(self, timeout: float = 30) -> None:
        """Wait until no pppd is left (the server's notices the closed control connection and exits)."""
        self.server_role.wait_calls_ended(self.place(self.server_role), timeout)

    def client_ppp_addresses(self) -> tuple[str, str]:
        """(local, peer) IPv4 addresses of the client's ppp interface."""
        return self.client_role.ppp_addresses(self.place(self.client_role), self.config)

    def server_ppp_iface(self) -> str:
        """The server's ppp interface for the (single) current call."""
        return self.server_role.ppp_iface(self.place(self.server_role))

    def impair(self, netem: str, ends: tuple[str, ...] = ("server", "client")) -> None:
        """Apply `tc netem` arguments on the given ends' egress (default both; empty netem: remove)."""
        c = self.config
        for end in ends:
            run, gos, iface = ((self.server, self.server_os, c.server_iface) if end == "server"
                              else (self.client, self.client_os, c.client_iface))
            run(gos.clear_qdisc(iface))
            if netem:
                run(gos.netem(iface, netem))

    def corrupt_mppe(self, rules: dict[str, tuple[int, int]]) -> None:
        """Corrupt MPPE frames the client sends, in flight (tc u32 + pedit on its egress).

        `rules`: name -> (k, offset): in every 8th GRE data packet whose sequence number is k mod 8,
        invert the byte at `offset` from the start of the MPPE header (1: the low byte of the coherency
        count; 2, 3: the first ciphertext bytes). The MPPE header's place depends on whether the GRE
        header carries an acknowledgment and on the PPP header (ACFC, PFC): one filter per layout,
        each matching the PPP header bytes and the MPPE D bit, so only the right one fires.
        Empty `rules`: remove. `corrupted()` says how many packets were changed.
        """
        iface, gos = self.config.client_iface, self.client_os
        self.client(gos.clear_qdisc(iface))
        if not rules:
            return
        filters = []
        for k, offset in rules.values():
            for gre_flags, gre_len in GRE_LAYOUTS:
                for ppp in PPP_HEADERS:
                    base = IPV4_HDR + gre_len
                    mppe = base + len(ppp)
                    match = [ByteMatch(IPV4_HDR, 0x30), ByteMatch(IPV4_HDR + 1, gre_flags),
                             ByteMatch(IPV4_HDR + 11, k, 0x07)]
                    match += [ByteMatch(base + i, b) for i, b in enumerate(ppp)]
                    match.append(ByteMatch(mppe, 0x10, 0x10))
                    filters.append((tuple(match), mppe + offset))
        self.client(gos.corrupt_bytes(iface, GRE_PROTOCOL, filters), timeout=60)

    def ccp_resets(self) -> dict[str, int]:
        """CCP Reset-Request/Reset-Ack lines in both pppd logs since reset_logs (pppd runs with debug)."""
        c = self.config
        counts = {}
        for end, run, log in (("server", self.server, c.server_log), ("client", self.client, c.client_log)):
            text = run(f"cat {log}").output
            for verb in ("sent", "rcvd"):
                for code in ("ResetReq", "ResetAck"):
                    counts[f"{end}_{verb}_{code.lower()}"] = len(re.findall(rf"{verb} \[CCP {code}\b", text))
        return counts

    def ppp_logs(self, lines: int = 25) -> str:
        """The tails of both pppd logs, for a failure message."""
        c = self.config
        return "\n".join(f"--- {end} {log}:\n" + run(f"tail -n {lines} {log}", check=False).output
                         for end, run, log in (("server", self.server, c.server_log),
                                               ("client", self.client, c.client_log)))

    def corrupted(self) -> int:
        """Packets the corrupt_mppe filters changed so far (the pedit actions' counters)."""
        out = self.client(self.client_os.corrupted_count(self.config.client_iface), check=False).output
        return self.client_os.parse_corrupted_count(out)


# --- the two declarations of the tunnel suite ---------------------------------------------------------

def single_guest_network(c: TunnelConfig) -> Network:
    """One node: the server in namespace `server`, the client in `client`, on a veth pair between them."""
    return Network(lans=(Lan("tunnel", c.prefix),), nodes=(
        Node("guest", nics=(Nic("tunnel", c.server_iface, c.server_ip, netns="server"),
                            Nic("tunnel", c.client_iface, c.client_ip, netns="client")),
             roles=(PptpServer(netns="server"), PptpClient(netns="client"))),))


TWO_GUESTS_CONFIG = TunnelConfig(server_iface="eth0", client_iface="eth0")


def two_guests_network(c: TunnelConfig = TWO_GUESTS_CONFIG) -> Network:
    """Two nodes on one LAN (a QEMU socket network, virtio-net NICs): the server's and the client's."""
    return Network(lans=(Lan("tunnel", c.prefix),), nodes=(
        Node("server", nics=(Nic("tunnel", c.server_iface, c.server_ip),), roles=(PptpServer(),)),
        Node("client", nics=(Nic("tunnel", c.client_iface, c.client_ip),), roles=(PptpClient(),))))


class SingleGuest(Topology):
    """Both ends in one guest, in network namespaces joined by a veth pair (single_guest_network)."""

    def __init__(self, guest: Guest, config: TunnelConfig | None = None):
        config = config or TunnelConfig()
        super().__init__(single_guest_network(config), {"guest": guest}, config)
        self.guest = guest


class TwoGuests(Topology):
    """The server in one guest, the client in another, joined by a QEMU socket network (two_guests_network;
    the guests boot with `network.socket_nics(node)`)."""

    def __init__(self, server_guest: Guest, client_guest: Guest, config: TunnelConfig | None = None):
        config = config or TWO_GUESTS_CONFIG
        super().__init__(two_guests_network(config), {"server": server_guest, "client": client_guest}, config)
        self.server_guest, self.client_guest = server_guest, client_guest
