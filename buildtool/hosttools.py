"""Host programs the phases run, and the Debian package that provides each one: the one table of them
(the build phases, the guest image builder and the VMMs all name their packages from it)."""

from __future__ import annotations

import shutil
import subprocess

from .errors import HostToolError

# program -> Debian package that installs it (what `make setup` installs; named in the error)
TOOL_PACKAGES: dict[str, str] = {
    "apt-get": "apt",
    "bmake": "bmake",
    "bzip2": "bzip2",
    "cc": "gcc",
    "clang": "clang",
    "ld.lld": "lld",
    "cpio": "cpio",
    "depmod": "kmod",
    "ldd": "libc-bin",
    "dpkg-deb": "dpkg",
    "gcc": "gcc",
    "gzip": "gzip",
    "make": "make",
    "modinfo": "kmod",
    "patch": "patch",
    "perl": "perl",
    "qemu-system-x86_64": "qemu-system-x86",
    "busybox": "busybox-static",
    "tar": "tar",
    "xz": "xz-utils",
    "ld": "binutils",
    "objcopy": "binutils",
    "file": "file",
    "ccache": "ccache",
}


def version_line(program: str, timeout: float = 60.0) -> str | None:
    """The first line `program --version` prints, or None when it cannot be run or prints nothing."""
    try:
        out = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=timeout,
                             stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.splitlines()[0] if out.strip() else None


def toolchain_id(cc: str = "cc") -> str:
    """The compiler identity cache keys depend on (a compiler upgrade rebuilds what it compiled)."""
    return version_line(cc) or "unknown"


# where Debian puts administrators' programs (modinfo, depmod), often not on an ordinary user's PATH
SBIN_DIRS = ("/usr/sbin", "/sbin")


def package_of(program: str) -> str:
    """The Debian package that installs `program`."""
    return TOOL_PACKAGES.get(program, program)


def missing(*programs: str) -> list[str]:
    """The programs that are not on PATH (every command runs them by name, so PATH is what counts)."""
    return [p for p in programs if shutil.which(p) is None]


def require(*programs: str) -> None:
    """Raise HostToolError naming every missing program and the Debian package to install."""
    absent = missing(*programs)
    if absent:
        pkgs = sorted({package_of(p) for p in absent})
        off_path = [f"{d}/{p}" for p in absent for d in SBIN_DIRS if shutil.which(p, path=d)]
        hint = (f"\n{', '.join(off_path)} exist(s) but not on PATH: add {', '.join(SBIN_DIRS)} to PATH"
                if off_path else "")
        raise HostToolError(
            f"missing host program(s): {', '.join(absent)}\n"
            f"install with: apt-get install {' '.join(pkgs)}   (or run: make setup){hint}")
