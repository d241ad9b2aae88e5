"""A booted guest: the guest OS class (what differs between guest systems) and the Guest that drives one.

A GuestOS says how its kernel is told to die on a panic, which console it talks on, how it reports a crash,
how modules are loaded and how it halts. Guest puts a GuestOS, a VMM and an image together: it boots,
runs commands through the framed console and watches for crashes. A crash or a hang marks it dirty: it
then refuses commands until it is rebooted, which only set-up code does (`reboot`, `ensure_booted`: the
fixtures before a scenario, a topology's set-up), never a command in the middle of a scenario, so that
one guest serves many scenarios and no scenario reads logs from a guest other than the one it tested.
"""

from __future__ import annotations

import base64
import re
import shlex
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HarnessError, TestFailure
from .console import Channel, CommandResult, Console, GuestCrash, ShellChannel
from .qemu import BootRequest, SocketNic, Vmm

__all__ = ["ByteMatch", "CommandResult", "Guest", "GuestCrash", "GuestOS", "LinuxGuest"]


# Seconds between two checks in the guest-side wait loops (connect, disconnect). Each check forks a few
# busybox applets, which costs the single TCG vCPU a few milliseconds, so much shorter only steals time
# from the pppds being waited for.
POLL = 0.05


@dataclass(frozen=True)
class ByteMatch:
    """One byte of an IPv4 packet a traffic filter matches: (packet[offset] & mask) == value."""

    offset: int  # from the start of the IPv4 header
    value: int
    mask: int = 0xff


class GuestOS(ABC):
    """What a harness needs to know about a guest operating system. Subclass per OS.

    Besides booting, crashing and halting, a guest OS supplies the shell idioms the topologies use (network
    namespaces, links and addresses, traffic control, kernel modules, the guest-side wait loop): each method
    returns a command for the guest's shell, or parses what such a command printed. The defaults raise
    NotImplementedError: a guest OS without a shell (NetBSD's agent) offers none of them.
    """

    name = "unknown"
    console_device = ""
    ready_marker = ""  # printed by the guest's init once the shell is about to start
    crash_patterns: tuple[str, ...] = ()
    halt_command = ""
    channel_class: type[Channel] = ShellChannel  # the framed channel (a shell; NetBSD's agent speaks its own)

    def boot_request(self, kernel: Path, initrd: Path, memory_mb: int, nics: tuple) -> BootRequest:
        return BootRequest(kernel=kernel, initrd=initrd, cmdline=self.kernel_cmdline(), memory_mb=memory_mb,
                           nics=nics)

    @abstractmethod
    def kernel_cmdline(self) -> str:
        """The guest kernel's command line (console device, init, quiet, ...)."""

    @abstractmethod
    def load_module(self, name: str) -> str:
        """The command that loads kernel module `name` (modprobe; NetBSD's agent: modload)."""

    def health_command(self) -> str:
        """A command whose non-zero exit means the kernel is no longer healthy (output says why)."""
        return "true"

    def _none(self, what: str):
        raise NotImplementedError(f"the {self.name} guest has no shell idiom for {what}")

    # --- the guest-side wait loop --------------------------------------------------------------------
    def wait_until(self, condition: str, seconds: float, each: str = "", on_timeout: str = "") -> str:
        """Shell code that polls `condition` every POLL seconds and exits 1 after `seconds` (guest clock).
        `each` runs before every check (it may exit early); `on_timeout` runs before the exit on timeout."""
        return self._none("a wait loop")

    # --- files, settings, a deliberate crash ---------------------------------------------------------
    def write_file(self, path: str, text: str) -> str:
        """Replace the file at `path` with `text` (whole: written aside, then renamed)."""
        return self._none("writing a file")

    def set_sysctl(self, name: str, value: str | int) -> str:
        return self._none("kernel settings")

    def enable_forwarding(self) -> str:
        return self._none("IP forwarding")

    def panic_command(self) -> str:
        """Make the kernel panic at once (the harness's own negative control)."""
        return self._none("a forced panic")

    # --- network namespaces, links, addresses, routes ------------------------------------------------
    def namespace_prefix(self, ns: str) -> str:
        """The words that run a program in network namespace `ns`."""
        return self._none("network namespaces")

    def in_namespace(self, ns: str, cmd: str) -> str:
        """`cmd` (shell code) run by sh in network namespace `ns`."""
        return self._none("network namespaces")

    def add_namespaces(self, names: tuple[str, ...] | list[str]) -> str:
        return self._none("network namespaces")

    def delete_namespaces(self, prefix: str) -> str:
        """Kill every process in the namespaces named `prefix`* and delete them."""
        return self._none("network namespaces")

    def add_veth(self, a_ns: str, a_iface: str, b_ns: str, b_iface: str) -> str:
        """A virtual Ethernet pair, `a_iface` in namespace `a_ns` and `b_iface` in `b_ns`."""
        return self._none("veth pairs")

    def loopback_up(self, ns: str) -> str:
        return self._none("network namespaces")

    def address_up(self, ns: str, iface: str, addr: str, prefix: int) -> str:
        """Give `iface` in namespace `ns` the address `addr`/`prefix` and bring it up."""
        return self._none("network namespaces")

    def add_route(self, ns: str, route: str) -> str:
        return self._none("routes")

    def nic_up(self, iface: str, addr: str, prefix: int) -> str:
        """Load the NIC's driver, bring loopback and `iface` up with `addr`/`prefix` (no namespace)."""
        return self._none("NICs")

    # --- point-to-point (ppp) interfaces -------------------------------------------------------------
    def route_via(self, iface: str) -> str:
        """A condition: the routing table has a route through `iface`."""
        return self._none("routing tables")

    def has_peer_address(self, iface: str, quiet: bool = False) -> str:
        """A condition: `iface` has a point-to-point IPv4 address (with `quiet`, errors are not shown)."""
        return self._none("point-to-point addresses")

    def ptp_addresses(self, iface: str) -> str:
        """Print `iface`'s IPv4 addresses; parse_ptp_addresses reads them."""
        return self._none("point-to-point addresses")

    def parse_ptp_addresses(self, output: str) -> tuple[str, str] | None:
        """(local, peer) from ptp_addresses' output; None if it has no point-to-point address."""
        return self._none("point-to-point addresses")

    def ppp_units(self) -> str:
        """List the ppp interfaces; parse_ppp_units reads the list (empty output: none)."""
        return self._none("ppp interfaces")

    def parse_ppp_units(self, output: str) -> list[str]:
        return self._none("ppp interfaces")

    def ppp_unit_with_peer(self, local: str) -> str:
        """Print the ppp interface whose peer address is `local` (empty if none)."""
        return self._none("ppp interfaces")

    def no_ppp_peer(self, local: str) -> str:
        """A condition: no ppp interface has the peer address `local`."""
        return self._none("ppp interfaces")

    # --- processes -----------------------------------------------------------------------------------
    def executables(self, name: str) -> str:
        """Print the executable file of each process called `name` that runs in the network stack this
        command runs in (one path per line), read from the running kernel, not from a command line."""
        return self._none("process executables")

    # --- traffic control -----------------------------------------------------------------------------
    def clear_qdisc(self, iface: str) -> str:
        """Remove whatever shapes `iface`'s egress (no error if nothing does)."""
        return self._none("traffic control")

    def netem(self, iface: str, spec: str) -> str:
        """Impair `iface`'s egress with netem arguments `spec` (loss, delay, reorder, ...)."""
        return self._none("traffic control")

    def fifo(self, iface: str, limit: int) -> str:
        """A plain FIFO of `limit` packets as `iface`'s egress queue (`iface` may be a shell expansion)."""
        return self._none("traffic control")

    def corrupt_bytes(self, iface: str, protocol: int, rules: list[tuple[tuple[ByteMatch, ...], int]]) -> str:
        """Invert, in `iface`'s egress IPv4 packets of `protocol`, the byte at each rule's offset (from the
        IPv4 header) when every one of its ByteMatches holds. corrupted_count counts the packets changed."""
        return self._none("traffic control")

    def corrupted_count(self, iface: str) -> str:
        return self._none("traffic control")

    def parse_corrupted_count(self, output: str) -> int:
        return self._none("traffic control")

    # --- kernel modules ------------------------------------------------------------------------------
    def load_modules(self, names: tuple[str, ...] | list[str]) -> str:
        """Load these modules (and what they depend on), in order, stopping at the first failure."""
        return self._none("loading modules")

    def unload_module(self, name: str) -> str:
        return self._none("unloading modules")

    def unload_loaded(self, names: tuple[str, ...] | list[str]) -> str:
        """Unload those of `names` that are loaded, in order."""
        return self._none("unloading modules")

    def insert_module(self, path: str) -> str:
        """Load the module file at `path` (no dependency lookup)."""
        return self._none("loading module files")

    def insert_missing(self, release: str, relpaths: tuple[str, ...] | list[str]) -> str:
        """Load the module files `relpaths` (under the release's module tree) not already loaded, in order."""
        return self._none("loading module files")

    def loaded_modules(self) -> str:
        """List the loaded modules, one a line, each line starting with its name and a space."""
        return self._none("module lists")

    def module_taint(self, name: str) -> str:
        """Print a loaded module's taint flags (empty for the kernel's own signed modules)."""
        return self._none("module taint")

    def loaded_module_field(self, name: str, field: str) -> str:
        """Print a field of a loaded module (srcversion, refcnt, ...)."""
        return self._none("loaded module fields")

    def module_parameter(self, module: str, name: str) -> str:
        """Print the value of a loaded module's parameter."""
        return self._none("module parameters")

    def module_file(self, name: str) -> str:
        """Print the path of the module file `name` resolves to."""
        return self._none("module files")

    def module_file_field(self, field: str, path: str) -> str:
        """Print a field of a module file's module information."""
        return self._none("module files")

    def module_facts(self, name: str, symbol: str, extra_taints: dict[str, str]) -> str:
        """Print key=value lines: loaded=0|1 and, when loaded, taint=, refcnt=, marker=0|1 (whether `symbol`
        is in the running kernel under [name]) and, for each key -> module of `extra_taints`, key=<its
        taint>. parse_facts reads them."""
        return self._none("module facts")

    def parse_facts(self, output: str) -> dict[str, str]:
        return dict(re.findall(r"^(\w+)=(.*)$", output, re.M))

    def slab_usage(self, cache: str, module: str) -> str:
        """Print the slab cache `cache`'s counters and `module`'s reference count; parse_slab_usage reads
        them."""
        return self._none("slab caches")

    def parse_slab_usage(self, output: str, cache: str) -> dict[str, int] | None:
        """{"active_objs", "num_objs", "objperslab", "refcnt"}, or None if the output lacks them."""
        return self._none("slab caches")


# printk prefixes each line with "[  123.456789] "; anchoring the patterns on it keeps a command's own
# output (say, a grep for the word) from looking like a crash.
_PRINTK = r"\[\s*\d+\.\d+\] "

# Programs that busybox also has as applets: busybox's shell runs its own applet for a bare name even when
# the real program comes first in PATH, so the Linux guest calls these by absolute path.
IP = "/bin/ip"
TC = "/sbin/tc"
MODPROBE = "/sbin/modprobe"
MODINFO = "/sbin/modinfo"


class LinuxGuest(GuestOS):
    """Linux with the busybox initramfs the image builder makes."""

    name = "linux"
    console_device = "ttyS0"
    ready_marker = "buildtool-guest-ready"
    crash_patterns = tuple(_PRINTK + p for p in (
        r"Oops", r".*BUG: ", r"Kernel panic", r"general protection fault", r".*soft lockup",
        r".*hung task", r"INFO: task \S+ blocked for more than", r"WARNING: ", r"kernel BUG at",
        r"Unable to handle kernel", r"stack-protector: Kernel stack is corrupted", r"RCU detected stall",
    )) + (r"Kernel panic - not syncing",)
    halt_command = "poweroff -f"
    # taint bits that mean something went wrong (see Documentation/admin-guide/tainted-kernels.rst):
    # 5 B bad page, 7 D died (oops), 9 W warning, 14 L soft lockup. Loading our modules sets 12 O
    # (out of tree) and 13 E (unsigned: Debian's kernel signs its own modules); those are expected.
    bad_taint_mask = (1 << 5) | (1 << 7) | (1 << 9) | (1 << 14)
    allowed_taint_mask = (1 << 12) | (1 << 13)
    nic_drivers = ("virtio_pci", "virtio_net")  # QemuTcg's virtio-net-pci

    def kernel_cmdline(self) -> str:
        # loglevel=5 shows KERN_WARNING and worse on the console, so a WARNING: reaches the crash watch
        return (f"console={self.console_device},115200 panic=-1 loglevel=5 rdinit=/init "
                "printk.time=1 tsc=reliable no_timer_check mitigations=off i8042.noaux i8042.nokbd "
                "hung_task_timeout_secs=15")

    def load_module(self, name: str) -> str:
        return f"{MODPROBE} {name}"

    def health_command(self) -> str:
        return (f"t=$(cat /proc/sys/kernel/tainted); bad=$((t & {self.bad_taint_mask})); "
                f"extra=$((t & ~{self.bad_taint_mask | self.allowed_taint_mask})); "
                "echo tainted=$t; [ $bad -eq 0 ] && [ $extra -eq 0 ]")

    def wait_until(self, condition: str, seconds: float, each: str = "", on_timeout: str = "") -> str:
        """The deadline reads /proc/uptime with builtins only, so a check costs no more than the condition."""
        give_up = f"{on_timeout}; exit 1" if on_timeout else "exit 1"
        return (f"read up _ </proc/uptime; end=$((${{up%.*}} + {int(seconds) + 1})); "
                f"until {condition}; do {each + '; ' if each else ''}read up _ </proc/uptime; "
                f"[ ${{up%.*}} -lt $end ] || {{ {give_up}; }}; sleep {POLL}; done")

    def write_file(self, path: str, text: str) -> str:
        encoded = base64.b64encode(text.encode()).decode()
        return f"echo {encoded} | base64 -d > {path}.new && mv {path}.new {path}"

    def set_sysctl(self, name: str, value: str | int) -> str:
        return f"echo {value} > /proc/sys/{name.replace('.', '/')}"

    def enable_forwarding(self) -> str:
        return self.set_sysctl("net.ipv4.ip_forward", 1)

    def panic_command(self) -> str:
        return "echo c > /proc/sysrq-trigger"

    def namespace_prefix(self, ns: str) -> str:
        return f"{IP} netns exec {ns}"

    def in_namespace(self, ns: str, cmd: str) -> str:
        return f"{self.namespace_prefix(ns)} sh -c {shlex.quote(cmd)}"

    def add_namespaces(self, names: tuple[str, ...] | list[str]) -> str:
        return " && ".join(f"{IP} netns add {ns}" for ns in names)

    def delete_namespaces(self, prefix: str) -> str:
        return (f"for ns in $({IP} netns list | awk '/^{prefix}/ {{print $1}}'); do "
                f"pids=$({IP} netns pids $ns); [ -z \"$pids\" ] || kill -9 $pids; "
                f"{IP} netns del $ns; done")

    def add_veth(self, a_ns: str, a_iface: str, b_ns: str, b_iface: str) -> str:
        return f"{IP} link add {a_iface} netns {a_ns} type veth peer name {b_iface} netns {b_ns}"

    def loopback_up(self, ns: str) -> str:
        return f"{IP} -n {ns} link set lo up"

    def address_up(self, ns: str, iface: str, addr: str, prefix: int) -> str:
        return f"{IP} -n {ns} addr add {addr}/{prefix} dev {iface} && {IP} -n {ns} link set {iface} up"

    def add_route(self, ns: str, route: str) -> str:
        return f"{IP} -n {ns} route add {route}"

    def nic_up(self, iface: str, addr: str, prefix: int) -> str:
        return (" && ".join(f"{MODPROBE} {d}" for d in self.nic_drivers) + f" && {IP} link set lo up && "
                f"{IP} addr add {addr}/{prefix} dev {iface} && {IP} link set {iface} up")

    def route_via(self, iface: str) -> str:
        return f"grep -q '^{iface}\\s' /proc/net/route"

    def has_peer_address(self, iface: str, quiet: bool = False) -> str:
        return f"{IP} -4 -o addr show dev {iface}{' 2>/dev/null' if quiet else ''} | grep -q peer"

    def ptp_addresses(self, iface: str) -> str:
        return f"{IP} -4 -o addr show dev {iface}"

    def parse_ptp_addresses(self, output: str) -> tuple[str, str] | None:
        m = re.search(r"inet (\S+) peer (\S+?)(/\d+)?\s", output)
        return (m.group(1), m.group(2)) if m else None

    def ppp_units(self) -> str:
        return f"{IP} -o link show type ppp"

    def parse_ppp_units(self, output: str) -> list[str]:
        return re.findall(r"^\d+: (ppp\d+)", output, re.M)

    def ppp_unit_with_peer(self, local: str) -> str:
        return f"{IP} -4 -o addr show type ppp | grep -F 'peer {local}/' | awk '{{print $2}}'"

    def no_ppp_peer(self, local: str) -> str:
        return f"! {IP} -4 -o addr show type ppp | grep -q 'peer {local}/'"

    def executables(self, name: str) -> str:
        return ('me=$(readlink /proc/self/ns/net); '
                f'for p in $(pidof {name}); do [ "$(readlink /proc/$p/ns/net)" = "$me" ] && '
                'readlink /proc/$p/exe; done; true')

    def clear_qdisc(self, iface: str) -> str:
        return f"{TC} qdisc del dev {iface} root 2>/dev/null; true"

    def netem(self, iface: str, spec: str) -> str:
        return f"{TC} qdisc add dev {iface} root netem {spec}"

    def fifo(self, iface: str, limit: int) -> str:
        return f"{TC} qdisc replace dev {iface} root pfifo limit {limit}"

    def corrupt_bytes(self, iface: str, protocol: int, rules: list[tuple[tuple[ByteMatch, ...], int]]) -> str:
        """A prio qdisc with one u32 filter per rule whose pedit action inverts the byte."""
        cmds = [f"{MODPROBE} {m}" for m in ("sch_prio", "cls_u32", "act_pedit")]
        cmds.append(f"{TC} qdisc add dev {iface} root handle 1: prio")
        for matches, offset in rules:
            words = [f"match ip protocol {protocol} 0xff"]
            words += [f"match u8 {m.value:#04x} {m.mask:#04x} at {m.offset}" for m in matches]
            cmds.append(f"{TC} filter add dev {iface} parent 1: protocol ip prio 1 u32 "
                        f"{' '.join(words)} action pedit munge offset {offset} u8 invert")
        return " && ".join(cmds)

    def corrupted_count(self, iface: str) -> str:
        return f"{TC} -s filter show dev {iface} parent 1:"

    def parse_corrupted_count(self, output: str) -> int:
        return sum(int(n) for n in re.findall(r"Sent \d+ bytes (\d+) pkt", output))

    def load_modules(self, names: tuple[str, ...] | list[str]) -> str:
        return " && ".join(self.load_module(m) for m in names)

    def unload_module(self, name: str) -> str:
        return f"rmmod {name}"

    def unload_loaded(self, names: tuple[str, ...] | list[str]) -> str:
        return "; ".join(f"{{ ! [ -d /sys/module/{m} ] || rmmod {m}; }}" for m in names)

    def insert_module(self, path: str) -> str:
        return f"insmod {path}"

    def insert_missing(self, release: str, relpaths: tuple[str, ...] | list[str]) -> str:
        base = f"/lib/modules/{release}"
        return " && ".join(f"{{ [ -d /sys/module/{p.rsplit('/', 1)[1][:-3]} ] || insmod {base}/{p}; }}"
                           for p in relpaths)

    def loaded_modules(self) -> str:
        return "cat /proc/modules"

    def module_taint(self, name: str) -> str:
        return self.loaded_module_field(name, "taint")

    def loaded_module_field(self, name: str, field: str) -> str:
        return f"cat /sys/module/{name}/{field}"

    def module_parameter(self, module: str, name: str) -> str:
        return f"cat /sys/module/{module}/parameters/{name}"

    def module_file(self, name: str) -> str:
        return f"{MODINFO} -n {name}"

    def module_file_field(self, field: str, path: str) -> str:
        return f"{MODINFO} -F {field} {path}"

    def module_facts(self, name: str, symbol: str, extra_taints: dict[str, str]) -> str:
        extra = "".join(f"echo {key}=$(cat /sys/module/{mod}/taint); " for key, mod in extra_taints.items())
        return (f"if [ -d /sys/module/{name} ]; then echo loaded=1; "
                f"echo taint=$(cat /sys/module/{name}/taint); {extra}"
                f"echo refcnt=$(cat /sys/module/{name}/refcnt); "
                f"if grep -qE '[[:space:]]{symbol}[[:space:]]+\\[{name}\\]' /proc/kallsyms; "
                "then echo marker=1; else echo marker=0; fi; else echo loaded=0; fi")

    def slab_usage(self, cache: str, module: str) -> str:
        return f"grep '^{cache} ' /proc/slabinfo; echo refcnt $(cat /sys/module/{module}/refcnt)"

    def parse_slab_usage(self, output: str, cache: str) -> dict[str, int] | None:
        m = re.search(rf"^{re.escape(cache)}\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", output, re.M)
        r = re.search(r"^refcnt (\d+)", output, re.M)
        if not m or not r:
            return None
        return {"active_objs": int(m[1]), "num_objs": int(m[2]), "objperslab": int(m[4]), "refcnt": int(r[1])}


@dataclass
class Guest:
    """One guest: boots on first use, reboots when dirty, keeps every console log."""

    name: str
    os: GuestOS
    vmm: Vmm
    kernel: Path
    initrd: Path
    log_dir: Path
    release: str = ""
    memory_mb: int = 512
    nics: tuple[SocketNic, ...] = ()
    watchdog_seconds: float = 1800.0
    boot_timeout: float = 120.0
    generation: int = 0  # how many times it booted; topologies compare it to notice a reboot
    our_modules: tuple[str, ...] = ()  # our kernel modules in its image (Image.our_modules: the recipe's)
    dirty: bool = False
    dirty_reason: str = ""
    boot_seconds: list[float] = field(default_factory=list)
    _console: Console | None = None
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.watchdog_seconds

    @property
    def console_log(self) -> Path:
        return self.log_dir / f"{self.name}-boot{max(self.generation, 1)}.log"

    @property
    def console_logs(self) -> list[Path]:
        return [self.log_dir / f"{self.name}-boot{n}.log" for n in range(1, self.generation + 1)]

    # --- life cycle ----------------------------------------------------------------------------------
    def boot(self) -> float:
        """Start QEMU and wait for the shell; return the seconds from QEMU start to a ready prompt."""
        self.shutdown()
        self.generation += 1
        self.dirty, self.dirty_reason = False, ""
        req = self.os.boot_request(self.kernel, self.initrd, self.memory_mb, self.nics)
        t0 = time.monotonic()
        log = self.console_log
        log.unlink(missing_ok=True)
        self._console = Console(self.vmm.command(req), log, self.os.crash_patterns, self._deadline,
                                channel=self.os.channel_class)
        try:
            self._console.wait_ready(self.os.ready_marker, self.boot_timeout)
            self._console.set_prompt()
            release = self._console.run("uname -r", 30).output.strip()
        except (TestFailure, HarnessError) as e:
            self.mark_dirty(f"its boot failed: {_first_line(e)}")
            raise
        if self.release and release != self.release:
            raise HarnessError(f"guest {self.name} runs kernel {release}, expected {self.release}; "
                               f"console log: {log}")
        self.release = release
        seconds = time.monotonic() - t0
        self.boot_seconds.append(seconds)
        return seconds

    def ensure_booted(self) -> None:
        """Set-up only: boot the guest if it is not running or was left dirty."""
        if self._console is None or self.dirty or not self._console.alive():
            self.boot()

    def reboot(self) -> float:
        return self.boot()

    def shutdown(self) -> None:
        """Halt the guest (QEMU exits thanks to -no-reboot), or kill QEMU if it does not."""
        con, self._console = self._console, None
        if con is None:
            return
        try:
            if con.alive() and not self.dirty:
                con.send_raw(f"{self.os.halt_command}\n")
                con.wait_exit(10)
        except (OSError, HarnessError):
            pass
        finally:
            con.close()

    # --- commands ----------------------------------------------------------------------------------
    def run(self, cmd: str, timeout: float = 60, check: bool = True) -> CommandResult:
        """Run a shell command; with `check`, a non-zero status raises TestFailure (with the console log).

        A crash or a timeout marks the guest dirty; a dirty or unbooted guest refuses commands with a
        HarnessError (reboot it at set-up: `reboot`, `ensure_booted`).
        """
        if self._console is None:
            raise HarnessError(f"guest {self.name} is not booted: boot it (Guest.boot) before running: "
                               f"{cmd[:80]}")
        if self.dirty:
            raise HarnessError(f"guest {self.name} is dirty ({self.dirty_reason or 'marked so'}) and "
                               f"refuses commands until it is rebooted at set-up (Guest.reboot); refused: "
                               f"{cmd[:80]}\nconsole log: {self.console_log}")
        try:
            result = self._console.run(cmd, timeout)
        except (TestFailure, HarnessError) as e:
            self.mark_dirty(_first_line(e))
            raise
        if check and result.status != 0:
            raise TestFailure(f"guest command failed with exit status {result.status}: {cmd}\n"
                              f"{_tail(result.output)}\nconsole log: {self.console_log}")
        return result

    def check_health(self) -> None:
        """Fail if the kernel reported a crash since the last command or its taint shows one."""
        if self._console is None or self.dirty:
            return
        try:
            self._console.scan_pending()
        except GuestCrash as e:
            self.mark_dirty(_first_line(e))
            raise
        r = self.run(self.os.health_command(), timeout=30, check=False)
        if r.status != 0:
            self.mark_dirty(f"its kernel is tainted ({r.output.strip()})")
            raise GuestCrash(f"guest kernel is tainted by a warning or oops ({r.output.strip()})\n"
                             f"console log: {self.console_log}")

    def crash(self) -> None:
        """Mark the guest dirty (a scenario decided the kernel state cannot be trusted)."""
        self.mark_dirty("a scenario said its kernel state cannot be trusted")

    def mark_dirty(self, reason: str) -> None:
        """No more commands until a reboot; the first reason is the one kept."""
        if not self.dirty:
            self.dirty, self.dirty_reason = True, reason


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])
