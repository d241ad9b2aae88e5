"""A booted guest: the guest OS class (what differs between guest systems) and the Guest that drives one.

A GuestOS says how its kernel is told to die on a panic, which console it talks on, how it reports a crash,
how modules are loaded and how it halts. Guest puts a GuestOS, a VMM and an image together: it boots,
runs commands through the framed console, watches for crashes, and reboots lazily when a scenario left it
dirty (crashed or hung), so that one guest serves many scenarios.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HarnessError, TestFailure
from .console import Channel, CommandResult, Console, GuestCrash, ShellChannel
from .qemu import BootRequest, SocketNic, Vmm

__all__ = ["CommandResult", "Guest", "GuestCrash", "GuestOS", "LinuxGuest"]


class GuestOS:
    """What a harness needs to know about a guest operating system. Subclass per OS."""

    name = "unknown"
    console_device = ""
    ready_marker = ""  # printed by the guest's init once the shell is about to start
    crash_patterns: tuple[str, ...] = ()
    halt_command = ""
    channel_class: type[Channel] = ShellChannel  # the framed channel (a shell; NetBSD's agent speaks its own)

    def boot_request(self, kernel: Path, initrd: Path, memory_mb: int, nics: tuple) -> BootRequest:
        return BootRequest(kernel=kernel, initrd=initrd, cmdline=self.kernel_cmdline(), memory_mb=memory_mb,
                           nics=nics)

    def kernel_cmdline(self) -> str:
        raise NotImplementedError

    def load_module(self, name: str) -> str:
        raise NotImplementedError

    def health_command(self) -> str:
        """A command whose non-zero exit means the kernel is no longer healthy (output says why)."""
        return "true"


# printk prefixes each line with "[  123.456789] "; anchoring the patterns on it keeps a command's own
# output (say, a grep for the word) from looking like a crash.
_PRINTK = r"\[\s*\d+\.\d+\] "


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

    def kernel_cmdline(self) -> str:
        # loglevel=5 shows KERN_WARNING and worse on the console, so a WARNING: reaches the crash watch
        return (f"console={self.console_device},115200 panic=-1 loglevel=5 rdinit=/init "
                "printk.time=1 tsc=reliable no_timer_check mitigations=off i8042.noaux i8042.nokbd "
                "hung_task_timeout_secs=15")

    def load_module(self, name: str) -> str:
        return f"/sbin/modprobe {name}"

    def health_command(self) -> str:
        return (f"t=$(cat /proc/sys/kernel/tainted); bad=$((t & {self.bad_taint_mask})); "
                f"extra=$((t & ~{self.bad_taint_mask | self.allowed_taint_mask})); "
                "echo tainted=$t; [ $bad -eq 0 ] && [ $extra -eq 0 ]")


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
    dirty: bool = False
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
        self.dirty = False
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
        except TestFailure:
            self.dirty = True
            raise
        if self.release and release != self.release:
            raise HarnessError(f"guest {self.name} runs kernel {release}, expected {self.release}; "
                               f"console log: {log}")
        self.release = release
        seconds = time.monotonic() - t0
        self.boot_seconds.append(seconds)
        return seconds

    def ensure_booted(self) -> None:
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

        A crash or a timeout marks the guest dirty: the next command boots a fresh one.
        """
        self.ensure_booted()
        assert self._console is not None
        try:
            result = self._console.run(cmd, timeout)
        except (TestFailure, HarnessError):
            self.dirty = True
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
        except GuestCrash:
            self.dirty = True
            raise
        r = self.run(self.os.health_command(), timeout=30, check=False)
        if r.status != 0:
            self.dirty = True
            raise GuestCrash(f"guest kernel is tainted by a warning or oops ({r.output.strip()})\n"
                             f"console log: {self.console_log}")

    def crash(self) -> None:
        """Mark the guest dirty (a scenario decided the kernel state cannot be trusted)."""
        self.dirty = True


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])
