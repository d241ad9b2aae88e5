"""Host programs the phases run, and the Debian package that provides each one."""

from __future__ import annotations

import shutil

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


def require(*programs: str) -> None:
    """Raise HostToolError naming every missing program and the Debian package to install."""
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pkgs = sorted({TOOL_PACKAGES.get(p, p) for p in missing})
        raise HostToolError(
            f"missing host program(s): {', '.join(missing)}\n"
            f"install with: apt-get install {' '.join(pkgs)}   (or run: make setup)")
