"""Where the two ends of the tunnel live, and how a scenario brings the tunnel up and down.

Single-guest mode (the default): one guest, two network namespaces `server` and `client` joined by a veth
pair (`vs` in server, `vc` in client) on which `tc netem` impairs traffic; pptpd runs in `server`, pptp +
pppd in `client`. Two-guest mode: a server guest and a client guest, each with one virtio-net NIC on a
QEMU socket network, for when the two ends need different kernels or modules. Both offer the same
methods, so a scenario does not care which one it has.

The addresses, names and secrets live in TunnelConfig; the image builder renders the configuration files
from the same object, so the two cannot drift.
"""

from __future__ import annotations

import re
import shlex
import time
from dataclasses import dataclass, field

from ..errors import TestFailure
from .guest import CommandResult, Guest

# Programs that busybox also has as applets: busybox's shell runs its own applet for a bare name even when
# the real program comes first in PATH, so the scenarios call these by absolute path.
IP = "/bin/ip"
TC = "/sbin/tc"
PING = "/bin/ping"
IPERF3 = "/usr/bin/iperf3"
MODPROBE = "/sbin/modprobe"
PPPD = "/usr/pkg/sbin/pppd"
PPTPD = "/usr/pkg/sbin/pptpd"
PPTP = "/usr/pkg/sbin/pptp"

# Seconds between two checks in the guest-side wait loops (connect, disconnect). Each check forks a few
# busybox applets, which costs the single TCG vCPU a few milliseconds, so much shorter only steals time
# from the pppds being waited for.
POLL = 0.05


def wait_until(condition: str, seconds: float, each: str = "", on_timeout: str = "") -> str:
    """Shell code that polls `condition` every POLL seconds and exits 1 after `seconds` (guest clock).

    `each` runs before every check (it may exit early); `on_timeout` runs before the exit on timeout.
    The deadline reads /proc/uptime with builtins only, so a check costs no more than the condition.
    """
    give_up = f"{on_timeout}; exit 1" if on_timeout else "exit 1"
    return (f"read up _ </proc/uptime; end=$((${{up%.*}} + {int(seconds) + 1})); "
            f"until {condition}; do {each + '; ' if each else ''}read up _ </proc/uptime; "
            f"[ ${{up%.*}} -lt $end ] || {{ {give_up}; }}; sleep {POLL}; done")


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

    @property
    def client_pidfile(self) -> str:
        return f"/var/run/ppp-{self.client_linkname}.pid"


# What the modules scenario expects to be loaded: ours (from extra/) and the stock ones the tunnel uses.
OUR_MODULES = ("ppp_generic", "ppp_mppe")
STOCK_MODULES = ("slhc", "libarc4", "ppp_async", "veth", "sch_netem")


class Topology:
    """The two ends of the tunnel. Subclasses say where `server` and `client` commands run."""

    config: TunnelConfig

    def server(self, cmd: str, timeout: float = 60, check: bool = True) -> CommandResult:
        raise NotImplementedError

    def client(self, cmd: str, timeout: float = 60, check: bool = True) -> CommandResult:
        raise NotImplementedError

    def guests(self) -> list[Guest]:
        raise NotImplementedError

    def setup(self) -> None:
        raise NotImplementedError

    def is_current(self) -> bool:
        """False when a guest was rebooted since setup (its namespaces and daemons are gone)."""
        raise NotImplementedError

    def ensure(self) -> Topology:
        if not self.is_current():
            self.setup()
        return self

    # --- modules ------------------------------------------------------------------------------------
    @staticmethod
    def load_modules(guest: Guest) -> None:
        """Load ours (modprobe finds them under extra/, which depmod ranks first) and the stock ones."""
        for name in (*OUR_MODULES, *STOCK_MODULES):
            guest.run(f"{MODPROBE} {name}")
        # /proc/sys/kernel/modprobe names kmod's modprobe, so `ppp-compress-18` autoloads the same ones

    # --- the link -----------------------------------------------------------------------------------
    def start_server(self) -> None:
        c = self.config
        self.server(f"{PPTPD} -c {c.pptpd_conf} && sleep 0.3 && pidof pptpd >/dev/null")

    def server_alive(self) -> bool:
        return self.server("pidof pptpd >/dev/null", check=False).status == 0

    def dial_address(self) -> str:
        """Where the client's pptp connects: the server's own address unless a router forwards to it."""
        return self.config.server_ip

    def pty_command(self) -> str:
        """The pptp command the client's pppd runs as its pty."""
        return f"{PPTP} {self.dial_address()} --nolaunchpppd"

    def connect(self, timeout: float = 60, options: str = "") -> float:
        """Start the client's pppd and wait until IPCP gave ppp<unit> its addresses; return the seconds.

        pppd's `updetach` returns once the first network protocol is up (non-zero if the link failed);
        the wait that follows, in the same guest command, is for the IPv4 addresses. It watches the
        routing table (one busybox grep per check; `ip` costs the single vCPU ten times that) for the
        route to the peer that the kernel adds when ppp<unit> comes up, then checks the point-to-point
        address once with `ip`. `options` are extra pppd options (after the options file, so they win).
        """
        c = self.config
        log = f"tail -n 40 {c.client_log}"
        t0 = time.monotonic()
        self.client(
            f"{PPPD} pty {shlex.quote(self.pty_command())} "
            f"file {c.client_options} logfile {c.client_log} {options} "
            f"unit {c.client_unit} linkname {c.client_linkname} updetach || {{ {log}; exit 1; }}; "
            + wait_until(f"grep -q '^ppp{c.client_unit}\\s' /proc/net/route", timeout, on_timeout=log)
            + f"; {IP} -4 -o addr show dev ppp{c.client_unit} | grep -q peer", timeout=timeout + 10)
        return time.monotonic() - t0

    def connected(self) -> bool:
        c = self.config
        return self.client(f"pid=$(head -n1 {c.client_pidfile} 2>/dev/null) && kill -0 $pid 2>/dev/null && "
                           f"{IP} -4 -o addr show dev ppp{c.client_unit} 2>/dev/null | grep -q peer",
                           check=False).status == 0

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
        c = self.config
        waiting = f"grep -c '^Waiting for' {c.client_log} 2>/dev/null"
        self.client(f"pid=$(head -n1 {c.client_pidfile} 2>/dev/null); [ -n \"$pid\" ] || exit 0; "
                    f"w=$({waiting}); kill $pid; "
                    + wait_until("! kill -0 $pid 2>/dev/null", timeout,
                                 each=f"[ \"$({waiting})\" = \"$w\" ] || kill $pid 2>/dev/null")
                    , timeout=timeout + 10)

    def wait_calls_ended(self, timeout: float = 30) -> None:
        """Wait until no pppd is left (the server's notices the closed control connection and exits)."""
        self.server(wait_until("! pidof pppd >/dev/null", timeout), timeout=timeout + 10)

    def client_ppp_addresses(self) -> tuple[str, str]:
        """(local, peer) IPv4 addresses of the client's ppp interface."""
        out = self.client(f"{IP} -4 -o addr show dev ppp{self.config.client_unit}").output
        m = re.search(r"inet (\S+) peer (\S+?)(/\d+)?\s", out)
        if not m:
            raise TestFailure(f"the client's ppp{self.config.client_unit} has no point-to-point "
                              f"address:\n{out}")
        return m.group(1), m.group(2)

    def server_ppp_iface(self) -> str:
        """The server's ppp interface for the (single) current call."""
        out = self.server(f"{IP} -o link show type ppp").output
        names = re.findall(r"^\d+: (ppp\d+)", out, re.M)
        if len(names) != 1:
            raise TestFailure(f"expected one ppp interface in the server, found {names or 'none'}:\n{out}")
        return names[0]

    def impair(self, netem: str) -> None:
        """Apply `tc netem` arguments on both ends of the link (empty: remove)."""
        for run, iface in ((self.server, self.config.server_iface), (self.client, self.config.client_iface)):
            run(f"{TC} qdisc del dev {iface} root 2>/dev/null; true")
            if netem:
                run(f"{TC} qdisc add dev {iface} root netem {netem}")


@dataclass
class SingleGuest(Topology):
    """Both ends in one guest, in network namespaces joined by a veth pair."""

    guest: Guest
    config: TunnelConfig = field(default_factory=TunnelConfig)
    _generation: int = -1

    def guests(self) -> list[Guest]:
        return [self.guest]

    def server(self, cmd: str, timeout: float = 60, check: bool = True) -> CommandResult:
        return self.guest.run(f"{IP} netns exec server sh -c {shlex.quote(cmd)}", timeout=timeout,
                              check=check)

    def client(self, cmd: str, timeout: float = 60, check: bool = True) -> CommandResult:
        return self.guest.run(f"{IP} netns exec client sh -c {shlex.quote(cmd)}", timeout=timeout,
                              check=check)

    def is_current(self) -> bool:
        return self._generation == self.guest.generation and not self.guest.dirty

    def setup(self) -> None:
        g, c = self.guest, self.config
        g.ensure_booted()
        self.load_modules(g)
        g.run(f"{IP} netns add server && {IP} netns add client && "
              f"{IP} link add {c.server_iface} netns server type veth "
              f"peer name {c.client_iface} netns client")
        ends = (("server", c.server_iface, c.server_ip), ("client", c.client_iface, c.client_ip))
        for ns, iface, addr in ends:
            g.run(f"{IP} -n {ns} link set lo up && {IP} -n {ns} addr add {addr}/{c.prefix} dev {iface} && "
                  f"{IP} -n {ns} link set {iface} up")
        self.start_server()
        self._generation = g.generation


@dataclass
class TwoGuests(Topology):
    """The server in one guest, the client in another, joined by a QEMU socket network (virtio-net NICs)."""

    server_guest: Guest
    client_guest: Guest
    config: TunnelConfig = field(
        default_factory=lambda: TunnelConfig(server_iface="eth0", client_iface="eth0"))
    _generations: tuple[int, int] = (-1, -1)

    def guests(self) -> list[Guest]:
        return [self.server_guest, self.client_guest]

    def server(self, cmd: str, timeout: float = 60, check: bool = True) -> CommandResult:
        return self.server_guest.run(cmd, timeout=timeout, check=check)

    def client(self, cmd: str, timeout: float = 60, check: bool = True) -> CommandResult:
        return self.client_guest.run(cmd, timeout=timeout, check=check)

    def is_current(self) -> bool:
        return self._generations == (self.server_guest.generation, self.client_guest.generation) and not (
            self.server_guest.dirty or self.client_guest.dirty)

    def setup(self) -> None:
        c = self.config
        # the server listens on the socket network, so it boots first
        for g, addr in ((self.server_guest, c.server_ip), (self.client_guest, c.client_ip)):
            g.ensure_booted()
            self.load_modules(g)
            g.run(f"{MODPROBE} virtio_pci && {MODPROBE} virtio_net && {IP} link set lo up && "
                  f"{IP} addr add {addr}/{c.prefix} dev eth0 && "
                  f"{IP} link set eth0 up")
        self.client(f"{PING} -c 1 -W 10 {c.server_ip} >/dev/null", timeout=30)
        self.start_server()
        self._generations = (self.server_guest.generation, self.client_guest.generation)
