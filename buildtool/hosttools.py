"""Host programs the phases run, and the Debian package that provides each one."""

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


def require(*programs: str) -> None:
    """Raise HostToolError naming every missing program and the Debian package to install."""
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pkgs = sorted({TOOL_PACKAGES.get(p, p) for p in missing})
        raise HostToolError(
            f"missing host program(s): {', '.join(missing)}\n"
            f"install with: apt-get install {' '.join(pkgs)}   (or run: make setup)")
