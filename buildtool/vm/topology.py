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

import base64
import re
import shlex
import time
from dataclasses import dataclass, field, replace

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
GRE_LAYOUTS = ((0x01, 12), (0x81, 16))
PPP_HEADERS = (b"\xff\x03\x00\xfd", b"\xff\x03\xfd", b"\x00\xfd", b"\xfd")


def mppe_identity(guest: Guest) -> dict[str, str]:
    """Which ppp_mppe the guest's kernel runs: {"impl": "ours"|"stock"|"none"|"unknown", ...evidence}.

    ours: our marker function is in /proc/kallsyms under [ppp_mppe] and the module is out-of-tree (taint O).
    stock: no marker, and the module is Debian's signed in-tree one (no taint at all).
    """
    out = guest.run(
        "if [ -d /sys/module/ppp_mppe ]; then echo loaded=1; echo taint=$(cat /sys/module/ppp_mppe/taint); "
        "echo generic_taint=$(cat /sys/module/ppp_generic/taint); "
        "echo refcnt=$(cat /sys/module/ppp_mppe/refcnt); "
        f"if grep -qE '[[:space:]]{MPPE_MARKER}[[:space:]]+\\[ppp_mppe\\]' /proc/kallsyms; "
        "then echo marker=1; else echo marker=0; fi; else echo loaded=0; fi").output
    info = dict(re.findall(r"^(\w+)=(.*)$", out, re.M))
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
    unload = "; ".join(f"{{ ! [ -d /sys/module/{m} ] || rmmod {m}; }}" for m in PPP_USERS)
    if impl == "ours":
        load = " && ".join(f"{MODPROBE} {m}" for m in ("ppp_generic", "ppp_async", "ppp_mppe"))
    elif impl == "stock":
        base = f"/lib/modules/{guest.release}"
        load = " && ".join(f"{{ [ -d /sys/module/{p.rsplit('/', 1)[1][:-3]} ] || insmod {base}/{p}; }}"
                           for p in DEBIAN_PPP)
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
    out = guest.run("grep '^ppp_mppe_state ' /proc/slabinfo; "
                    "echo refcnt $(cat /sys/module/ppp_mppe/refcnt); "
                    "echo live $(cat /sys/module/ppp_mppe/parameters/live_states)").output
    m = re.search(r"^ppp_mppe_state\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", out, re.M)
    r = re.search(r"^refcnt (\d+)", out, re.M)
    live = re.search(r"^live (\d+)", out, re.M)
    if not m or not r or not live:
        raise TestFailure(f"no ppp_mppe_state cache, refcnt or live_states in the guest (is our ppp_mppe "
                          f"loaded?):\n{out}")
    return {"live_states": int(live[1]), "active_objs": int(m[1]), "num_objs": int(m[2]),
            "objperslab": int(m[4]), "refcnt": int(r[1])}


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
            guest.run(f"{MODPROBE} {name}")
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
        for run, path, template in ((self.server, c.server_options, "options.pptpd.j2"),
                                    (self.client, c.client_options, "options.client.j2")):
            text = base64.b64encode(render(env, template, c=c).encode()).decode()
            run(f"echo {text} | base64 -d > {path}.new && mv {path}.new {path}")

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

    def impair(self, netem: str, ends: tuple[str, ...] = ("server", "client")) -> None:
        """Apply `tc netem` arguments on the given ends' egress (default both; empty netem: remove)."""
        c = self.config
        for end in ends:
            run, iface = (self.server, c.server_iface) if end == "server" else (self.client, c.client_iface)
            run(f"{TC} qdisc del dev {iface} root 2>/dev/null; true")
            if netem:
                run(f"{TC} qdisc add dev {iface} root netem {netem}")

    def corrupt_mppe(self, rules: dict[str, tuple[int, int]]) -> None:
        """Corrupt MPPE frames the client sends, in flight (tc u32 + pedit on its egress).

        `rules`: name -> (k, offset): in every 8th GRE data packet whose sequence number is k mod 8,
        invert the byte at `offset` from the start of the MPPE header (1: the low byte of the coherency
        count; 2, 3: the first ciphertext bytes). The MPPE header's place depends on whether the GRE
        header carries an acknowledgment and on the PPP header (ACFC, PFC): one filter per layout,
        each matching the PPP header bytes and the MPPE D bit, so only the right one fires.
        Empty `rules`: remove. `corrupted()` says how many packets were changed.
        """
        iface = self.config.client_iface
        self.client(f"{TC} qdisc del dev {iface} root 2>/dev/null; true")
        if not rules:
            return
        cmds = [f"{MODPROBE} {m}" for m in ("sch_prio", "cls_u32", "act_pedit")]
        cmds.append(f"{TC} qdisc add dev {iface} root handle 1: prio")
        for k, offset in rules.values():
            for gre_flags, gre_len in GRE_LAYOUTS:
                for ppp in PPP_HEADERS:
                    base = IPV4_HDR + gre_len
                    mppe = base + len(ppp)
                    match = ["match ip protocol 47 0xff", f"match u8 0x30 0xff at {IPV4_HDR}",
                             f"match u8 {gre_flags:#04x} 0xff at {IPV4_HDR + 1}",
                             f"match u8 {k:#04x} 0x07 at {IPV4_HDR + 11}"]
                    match += [f"match u8 {b:#04x} 0xff at {base + i}" for i, b in enumerate(ppp)]
                    match.append(f"match u8 0x10 0x10 at {mppe}")
                    cmds.append(f"{TC} filter add dev {iface} parent 1: protocol ip prio 1 u32 "
                                f"{' '.join(match)} action pedit munge offset {mppe + offset} u8 invert")
        self.client(" && ".join(cmds), timeout=60)

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
        out = self.client(f"{TC} -s filter show dev {self.config.client_iface} parent 1:", check=False).output
        return sum(int(n) for n in re.findall(r"Sent \d+ bytes (\d+) pkt", out))


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
        self.config = self.booted_config()
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
        self.config = c = self.booted_config()
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
