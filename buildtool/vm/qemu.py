"""Virtual machine monitors: one small class per VMM, each turning a boot request into a command line.

Only QEMU under TCG is used here (KVM is not usable in this sandbox). The class owns every VMM-specific
flag; the guest OS class supplies the kernel command line, the harness supplies kernel, initrd and NICs.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .. import hosttools
from ..errors import HarnessError


@dataclass(frozen=True)
class SocketNic:
    """One NIC on a QEMU socket network: the first guest listens on `port`, the second connects to it."""

    port: int
    listen: bool
    mac: str


@dataclass(frozen=True)
class BootRequest:
    kernel: Path
    initrd: Path
    cmdline: str
    memory_mb: int = 512
    cpus: int = 1
    nics: tuple[SocketNic, ...] = ()
    iso: Path | None = None  # boot this CD image (GRUB) instead of kernel + initrd


@dataclass
class Vmm:
    """A virtual machine monitor. Subclasses set the binary and build the argument vector."""

    name: str = "vmm"
    binary: str = ""
    extra_args: list[str] = field(default_factory=list)

    def executable(self) -> str:
        path = shutil.which(self.binary)
        if path is None:
            raise HarnessError(f"{self.binary} is not installed; it comes with the Debian package "
                               f"{hosttools.package_of(self.binary)} (scripts/setup installs it)")
        return path

    def command(self, req: BootRequest) -> list[str]:
        raise NotImplementedError


@dataclass
class QemuTcg(Vmm):
    """qemu-system-x86_64 with the TCG accelerator, no devices but a serial console on stdio.

    `-no-reboot` together with the guest's `panic=-1` turns a kernel panic into QEMU exiting at once.
    The console is a stdio chardev with `signal=off`, so a ^C we send reaches the guest's shell instead of
    killing QEMU.
    """

    name: str = "qemu-tcg"
    binary: str = "qemu-system-x86_64"
    nic_model: str = "virtio-net-pci"

    def command(self, req: BootRequest) -> list[str]:
        argv = [
            self.executable(), "-accel", "tcg", "-machine", "pc", "-m", str(req.memory_mb),
            "-smp", str(req.cpus), "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console",
        ]
        if req.iso is not None:
            argv += ["-cdrom", str(req.iso), "-boot", "d"]
        else:
            argv += ["-kernel", str(req.kernel), "-initrd", str(req.initrd), "-append", req.cmdline]
        for i, nic in enumerate(req.nics):
            where = f"listen=127.0.0.1:{nic.port}" if nic.listen else f"connect=127.0.0.1:{nic.port}"
            argv += ["-netdev", f"socket,id=net{i},{where}",
                     "-device", f"{self.nic_model},netdev=net{i},mac={nic.mac}"]
        return argv + self.extra_args


VMMS: dict[str, type[Vmm]] = {"qemu-tcg": QemuTcg}
