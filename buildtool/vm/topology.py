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
from dataclasses import dataclass, field, replace

from ..errors import TestFailure
from .guest import ByteMatch, CommandResult, Guest, GuestOS

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


# What the modules scenario expects to be loaded: ours (from extra/) and the stock ones the tunnel uses.
OUR_MODULES = ("ppp_generic", "ppp_mppe")
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
        load = guest.os.load_modules(("ppp_generic", "ppp_async", "ppp_mppe"))
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


class Topology:
    """The two ends of the tunnel. Subclasses say where `server` and `client` commands run."""

    config: TunnelConfig

    def server(self, cmd: str, timeout: float = 60, check: bool = True) -> CommandResult:
        raise NotImplementedError

    def client(self, cmd: str, timeout: float = 60, check: bool = True) -> CommandResult:
        raise NotImplementedError

    def guests(self) -> list[Guest]:
        raise NotImplementedError

    @property
    def server_os(self) -> GuestOS:
        """The OS of the guest `server` commands run in (it says how to write them)."""
        raise NotImplementedError

    @property
    def client_os(self) -> GuestOS:
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

    def hang_up(self) -> None:
        """End a call an earlier scenario left up in these guests (scenarios may run in any order)."""
        if self.is_current() and self.connected():
            self.disconnect()

    def booted_config(self) -> TunnelConfig:
        """The config a freshly booted guest's files were rendered from (the image's MPPE defaults)."""
        d = TunnelConfig()
        return replace(self.config, mppe_bits=d.mppe_bits, mppe_stateful=d.mppe_stateful)

    # --- modules ------------------------------------------------------------------------------------
    @staticmethod
    def load_modules(guest: Guest) -> None:
        """Load ours (modprobe finds them under extra/, which depmod ranks first) and the stock ones."""
        for name in (*OUR_MODULES, *STOCK_MODULES):
            guest.run(guest.os.load_module(name))
        # /proc/sys/kernel/modprobe names kmod's modprobe, so `ppp-compress-18` autoloads the same ones

    # --- MPPE settings ------------------------------------------------------------------------------
    def configure_mppe(self, bits: int = 128, stateful: bool = False) -> None:
        """Rewrite both ends' pppd options for this key length and mode (read by the next connect).

        The files come from the same templates the image builder renders, from the changed config."""
        from ..templating import render, template_env

        if (bits, stateful) == (self.config.mppe_bits, self.config.mppe_stateful):
            return
        self.config = replace(self.config, mppe_bits=bits, mppe_stateful=stateful)
        env, c = template_env("vm"), self.config
        for run, gos, path, template in ((self.server, self.server_os, c.server_options, "options.pptpd.j2"),
                                        (self.client, self.client_os, c.client_options, "options.client.j2")):
            run(gos.write_file(path, render(env, template, c=c)))

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
        c, gos = self.config, self.client_os
        log = f"tail -n 40 {c.client_log}"
        unit = f"ppp{c.client_unit}"
        t0 = time.monotonic()
        self.client(
            f"{PPPD} pty {shlex.quote(self.pty_command())} "
            f"file {c.client_options} logfile {c.client_log} {options} "
            f"unit {c.client_unit} linkname {c.client_linkname} updetach || {{ {log}; exit 1; }}; "
            + gos.wait_until(gos.route_via(unit), timeout, on_timeout=log)
            + f"; {gos.has_peer_address(unit)}", timeout=timeout + 10)
        return time.monotonic() - t0

    def connected(self) -> bool:
        c = self.config
        return self.client(f"pid=$(head -n1 {c.client_pidfile} 2>/dev/null) && kill -0 $pid 2>/dev/null && "
                           + self.client_os.has_peer_address(f"ppp{c.client_unit}", quiet=True),
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
                    + self.client_os.wait_until(
                        "! kill -0 $pid 2>/dev/null", timeout,
                        each=f"[ \"$({waiting})\" = \"$w\" ] || kill $pid 2>/dev/null")
                    , timeout=timeout + 10)

    def wait_calls_ended(self, timeout: float = 30) -> None:
        """Wait until no pppd is left (the server's notices the closed control connection and exits)."""
        self.server(self.server_os.wait_until("! pidof pppd >/dev/null", timeout), timeout=timeout + 10)

    def client_ppp_addresses(self) -> tuple[str, str]:
        """(local, peer) IPv4 addresses of the client's ppp interface."""
        out = self.client(self.client_os.ptp_addresses(f"ppp{self.config.client_unit}")).output
        addresses = self.client_os.parse_ptp_addresses(out)
        if addresses is None:
            raise TestFailure(f"the client's ppp{self.config.client_unit} has no point-to-point "
                              f"address:\n{out}")
        return addresses

    def server_ppp_iface(self) -> str:
        """The server's ppp interface for the (single) current call."""
        out = self.server(self.server_os.ppp_units()).output
        names = self.server_os.parse_ppp_units(out)
        if len(names) != 1:
            raise TestFailure(f"expected one ppp interface in the server, found {names or 'none'}:\n{out}")
        return names[0]

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


@dataclass
class SingleGuest(Topology):
    """Both ends in one guest, in network namespaces joined by a veth pair."""

    guest: Guest
    config: TunnelConfig = field(default_factory=TunnelConfig)
    _generation: int = -1

    def guests(self) -> list[Guest]:
        return [self.guest]

    @property
    def server_os(self) -> GuestOS:
        return self.guest.os

    @property
    def client_os(self) -> GuestOS:
        return self.guest.os

    def server(self, cmd: str, timeout: float = 60, check: bool = True) -> CommandResult:
        return self.guest.run(self.guest.os.in_namespace("server", cmd), timeout=timeout, check=check)

    def client(self, cmd: str, timeout: float = 60, check: bool = True) -> CommandResult:
        return self.guest.run(self.guest.os.in_namespace("client", cmd), timeout=timeout, check=check)

    def is_current(self) -> bool:
        return self._generation == self.guest.generation and not self.guest.dirty

    def setup(self) -> None:
        self.config = self.booted_config()
        g, c = self.guest, self.config
        g.ensure_booted()
        self.load_modules(g)
        gos = g.os
        g.run(gos.add_namespaces(("server", "client")) + " && "
              + gos.add_veth("server", c.server_iface, "client", c.client_iface))
        ends = (("server", c.server_iface, c.server_ip), ("client", c.client_iface, c.client_ip))
        for ns, iface, addr in ends:
            g.run(gos.loopback_up(ns) + " && " + gos.address_up(ns, iface, addr, c.prefix))
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

    @property
    def server_os(self) -> GuestOS:
        return self.server_guest.os

    @property
    def client_os(self) -> GuestOS:
        return self.client_guest.os

    def server(self, cmd: str, timeout: float = 60, check: bool = True) -> CommandResult:
        return self.server_guest.run(cmd, timeout=timeout, check=check)

    def client(self, cmd: str, timeout: float = 60, check: bool = True) -> CommandResult:
        return self.client_guest.run(cmd, timeout=timeout, check=check)

    def is_current(self) -> bool:
        return self._generations == (self.server_guest.generation, self.client_guest.generation) and not (
            self.server_guest.dirty or self.client_guest.dirty)

    def setup(self) -> None:
        self.config = c = self.booted_config()
        # the server listens on the socket network, so it boots first
        for g, iface, addr in ((self.server_guest, c.server_iface, c.server_ip),
                               (self.client_guest, c.client_iface, c.client_ip)):
            g.ensure_booted()
            self.load_modules(g)
            g.run(g.os.nic_up(iface, addr, c.prefix))
        self.client(f"{PING} -c 1 -W 10 {c.server_ip} >/dev/null", timeout=30)
        self.start_server()
        self._generations = (self.server_guest.generation, self.client_guest.generation)
