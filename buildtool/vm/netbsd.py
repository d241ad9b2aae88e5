"""The QEMU-booted NetBSD guest: a NetBSD kernel built from source (kernels/netbsd_kernel.py) with our
ppp_mppe.kmod and our test agent, no NetBSD userland (docs/vm-netbsd.md).

Pieces, in the order the harness uses them:
  build_agent        tools/netbsd/agent.c + the portable MPPE core -> static NetBSD ELF (no libc), /sbin/init
  build_module       ppp_mppe.kmod from the same tree, by the netbsd profile's build (netbsd.build_and_check)
  build_boot_iso     makefs root file system (spec from a template) written into the kernel's md_root_image,
                     then a GRUB rescue ISO that boots it with `knetbsd --serial=com0,115200`
  NetBSDGuest        the GuestOS: console on com0, NetBSD's crash patterns, the agent's framed channel
  AgentChannel       the framed channel spoken by the agent instead of a shell
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .. import hosttools
from ..errors import KernelError
from ..fsutil import atomic_path, text_digest
from ..kernels.netbsd_kernel import MD_ROOT_MARKER, TARGET, BuiltKernel, run_logged
from ..templating import render, template_env
from .console import Channel, CommandResult
from .guest import GuestOS
from .qemu import BootRequest, QemuTcg

AGENT_DIR = Path(__file__).parent / "tools" / "netbsd"
AGENT_CFLAGS = ("-ffreestanding", "-nostdlib", "-static", "-fno-pic", "-fuse-ld=lld", "-O2", "-Wall",
                "-Wextra", "-Werror", "-fno-stack-protector", "-mno-red-zone")
BUILD_TIMEOUT = 300.0
READY_MARKER = "buildtool-netbsd-agent-ready"


def _run(argv: list[str], log: Path, cwd: Path, what: str) -> None:
    import sys

    run_logged(argv, log, cwd=cwd, timeout=BUILD_TIMEOUT, what=what, out=sys.stderr)


def build_agent(repo: Path, kernel: BuiltKernel, dest: Path, log: Path) -> Path:
    """Compile the agent with the core; the ELF note carries the kernel's __NetBSD_Version__."""
    core = repo / "kmod" / "mppe" / "core"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp:
        _run(["clang", f"--target={TARGET}", *AGENT_CFLAGS, f"-DNETBSD_VERSION={kernel.version_number}",
              f"-I{AGENT_DIR}", f"-I{core}", str(AGENT_DIR / "agent.c"),
              *(str(core / f) for f in ("mppe.c", "rc4.c", "sha1.c")), "-o", str(tmp)],
             log, dest.parent, "building the NetBSD test agent")
    return dest


def build_module(repo: Path, kernel: BuiltKernel, work: Path, cache: Path, log: Path,
                 glue: Path | None = None) -> Path:
    """ppp_mppe.kmod for this kernel's tree, by the netbsd profile's build and checks; `glue` replaces
    kmod/mppe/netbsd (the negative controls)."""
    from ..kernels.netbsd import build_and_check
    from ..kmod import KernelTarget

    target = KernelTarget(
        profile="netbsd-10", release=kernel.release, abi=str(kernel.version_number), package_version="",
        vmlinuz=Path("/dev/null"), modules_root=Path("/dev/null"), build_dir=kernel.sysdir,
        source_dir=kernel.sysdir, vermagic="",
        packages={"sysdir": str(kernel.sysdir), "common": str(kernel.common), "host": "",
                  "host_kind": "local", "ssh_identity": ""},
        compiler="clang")
    result = build_and_check(target, repo / "kmod" / "mppe", work, cache, log, module_sources=glue)
    return result.kmod


def control_patches(repo: Path) -> list[Path]:
    """The negative controls: broken variants of the NetBSD glue (patches/netbsd-vm/broken/patch-x*)."""
    from ..patch import series

    return series(repo / "patches" / "netbsd-vm" / "broken")


def expected_failures(patch: Path) -> list[str]:
    """The scenarios a control must break, from its `Expect-Fail:` line."""
    for line in patch.read_text(errors="replace").splitlines():
        if line.startswith("Expect-Fail:"):
            return line.split(":", 1)[1].split()
    raise KernelError(f"{patch}: no `Expect-Fail: <test names>` line")


def expects_crash(patch: Path) -> bool:
    """Whether a control must make the kernel crash (`Expect-Crash: yes`): the harness must say so."""
    return any(line.strip() == "Expect-Crash: yes" for line in patch.read_text(errors="replace").splitlines())


def broken_glue(repo: Path, patch: Path, dest: Path, log: Path) -> Path:
    """A copy of kmod/mppe/netbsd with one control patch applied (never shipped)."""
    from ..kernels.netbsd_kernel import apply_patches

    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(repo / "kmod" / "mppe" / "netbsd", dest)
    apply_patches([patch.resolve()], dest, log)
    return dest


@dataclass(frozen=True)
class BootMedia:
    iso: Path
    kernel: Path  # the kernel with the root file system in it
    seconds: float


def build_boot_iso(kernel: BuiltKernel, agent: Path, kmod: Path, work: Path, log: Path) -> BootMedia:
    """Root file system (agent as /sbin/init, the module where the loader finds it, device nodes from the
    spec), written into a copy of the kernel's md_root_image; a GRUB ISO booting that kernel on com0."""
    t0 = time.monotonic()
    env = template_env("netbsd-vm")
    if work.exists():
        shutil.rmtree(work)
    stage = work / "root"
    (stage / "sbin").mkdir(parents=True)
    shutil.copy2(agent, stage / "sbin" / "init")
    moddir = stage / kernel.module_dir / "ppp_mppe"
    moddir.mkdir(parents=True)
    shutil.copy2(kmod, moddir / "ppp_mppe.kmod")
    spec = work / "root.spec"
    spec.write_text(render(env, "root.spec.j2", module_dir=kernel.module_dir))
    image = work / "root.img"
    size = kernel.md_root_sectors * 512
    _run(["makefs", "-t", "ffs", "-B", "le", "-o", "version=1", "-s", str(size), "-F", str(spec), str(image),
          str(stage)], log, work, "making the NetBSD root file system (makefs)")
    data = image.read_bytes()
    blob = kernel.kernel.read_bytes()
    at = blob.find(MD_ROOT_MARKER)
    if at < 0 or blob.count(MD_ROOT_MARKER) != 1:
        raise KernelError(f"{kernel.kernel}: no single md_root_image to write the root file system into")
    if len(data) > size:
        raise KernelError(f"{image}: {len(data)} bytes, more than md_root_image's {size}")
    iso_tree = work / "iso"
    (iso_tree / "boot" / "grub").mkdir(parents=True)
    (iso_tree / "netbsd").write_bytes(blob[:at] + data + blob[at + len(data):])
    (iso_tree / "boot" / "grub" / "grub.cfg").write_text(render(env, "grub.cfg.j2"))
    iso = work / "boot.iso"
    _run(["grub-mkrescue", "-o", str(iso), str(iso_tree)], log, work,
         "making the GRUB boot ISO (grub-mkrescue)")
    return BootMedia(iso, iso_tree / "netbsd", time.monotonic() - t0)


def media_key(*paths: Path) -> str:
    return text_digest(b"".join(p.read_bytes() for p in paths))[:16]


# --- the guest ------------------------------------------------------------------------------------------
class AgentChannel(Channel):
    """The agent's framed channel: "<token> <seq> <verb> <args>" in, output lines ". ..." and
    "<token>-<seq>=<status>" out (the agent turns echo off before it prints its ready marker)."""

    def set_prompt(self, timeout: float = 30) -> None:
        pass  # no shell: the agent reads commands as soon as it is ready

    def run(self, cmd: str, timeout: float) -> CommandResult:
        self._seq += 1
        token = "".join(self._halves)
        self.child.send(f"{token} {self._seq} {cmd}\n")
        sentinel = re.compile(re.escape(token) + f"-{self._seq}=(-?\\d+)\r*\n")
        m = self.expect(sentinel, timeout, f"running agent command: {cmd[:80]}")
        lines = (self.child.before or "").replace("\r", "").splitlines()
        output = "\n".join(line[2:] for line in lines if line.startswith(". "))
        return CommandResult(int(m.group(1)), output + ("\n" if output else ""))

    def interrupt(self) -> None:
        pass  # the agent has no job control; a hung command means the guest is dirty and rebooted


class NetBSDGuest(GuestOS):
    """NetBSD booted from a GRUB ISO with our agent as init (kernel messages carry "[ sec.frac]")."""

    name = "netbsd"
    console_device = "com0"
    ready_marker = READY_MARKER
    channel_class = AgentChannel
    # DDB_ONPANIC=0 prints the panic and reboots, which -no-reboot turns into QEMU's exit
    crash_patterns = (
        r"panic: ", r"uvm_fault\(", r"fatal page fault", r"fatal protection fault", r"trap type \d+",
        r"kernel diagnostic assertion", r"KASSERT", r"db\{\d+\}> ", r"lockdebug", r"LOCKDEBUG",
        r"Mutex error", r"Reader / writer lock error", r"stopped in pid",
    )
    halt_command = "bt 0 reboot"

    def kernel_cmdline(self) -> str:
        return ""  # GRUB's knetbsd line carries the console (templates/netbsd-vm/grub.cfg.j2)

    def boot_request(self, kernel: Path, initrd: Path, memory_mb: int, nics: tuple) -> BootRequest:
        return BootRequest(kernel=kernel, initrd=initrd, cmdline="", memory_mb=memory_mb, nics=nics,
                           iso=kernel)

    def load_module(self, name: str) -> str:
        return f"load {name}"

    def health_command(self) -> str:
        return "ping"


def qemu_available() -> None:
    QemuTcg().executable()


def tool_missing(*names: str) -> list[str]:
    return hosttools.missing(*names)


def clang_targets_netbsd() -> bool:
    try:
        proc = subprocess.run(["clang", f"--target={TARGET}", "-x", "c", "-c", "-o", "/dev/null", "-"],
                              input=b"int x;\n", capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0
