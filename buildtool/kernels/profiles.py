"""The kernel profiles: one table of data (PROFILES), one row per kernel the MPPE modules are built for, and
the lookup by name. Plain data: no family code is imported here."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError


@dataclass(frozen=True)
class DebianKernel:
    """Where a Linux profile's kernel comes from: Debian's meta package (whose dependency names the current
    ABI) and the flavour of its image and headers packages."""

    meta_package: str
    flavour: str


@dataclass(frozen=True)
class NetBSDSources:
    """What a NetBSD profile builds against: files that must exist under --sysdir (the historic package's
    SYSDIR checks) and the usual place of the tree."""

    sysdir_checks: tuple[str, ...]
    default_sysdir: str = "/usr/src/sys"


@dataclass(frozen=True)
class Profile:
    """One kernel profile: what every family has, and the family's own part in `source` (None for a lane
    with no kernel to build against). Which modules are built is the recipe's ([kmod] modules)."""

    name: str
    family: str  # key of kernels.FAMILIES
    summary: str
    version: str  # kernel series (Linux: "6.1") or release (NetBSD: "1.4.1", "10")
    module_suffix: str
    opsys: str  # pkgsrc's OPSYS of the kernel's system, recorded in +BUILD_INFO
    source: DebianKernel | NetBSDSources | None = None
    cost: str = ""  # what the first use costs, as measured (shown by `buildtool kernels`)


_NETBSD_CHECKS = ("lib/libkern/libkern.h", "net/ppp-comp.h")

PROFILES: tuple[Profile, ...] = (
    Profile("linux-6.1", "linux", "Debian 12 (bookworm) Linux 6.1, amd64 (the default)", "6.1",
            module_suffix=".ko", opsys="Linux", source=DebianKernel("linux-image-amd64", "amd64"),
            cost="the first use downloads ~224 MB (214 MiB) of .debs (linux-image, linux-headers, "
                 "linux-kbuild, linux-source) and takes ~697 MB on disk under <cache>/kernel (measured with "
                 "6.1.0-57)"),
    Profile("netbsd-1.4.1", "netbsd-lkm", "NetBSD 1.4.1 (the historic pkgsrc target), LKM", "1.4.1",
            module_suffix=".o", opsys="NetBSD", source=NetBSDSources(_NETBSD_CHECKS)),
    Profile("netbsd-10", "netbsd", "NetBSD 10, ppp_mppe kernel module (bsd.kmodule.mk)", "10",
            module_suffix=".kmod", opsys="NetBSD",
            source=NetBSDSources(("sys/module.h", "net/if_ppp.h"))),
    Profile("netbsd-rump", "rump", "NetBSD's if_ppp as a rump kernel on Linux, with our ppp_mppe (test lane)",
            "7.99", module_suffix=" (rump component)", opsys="NetBSD"),
    Profile("netbsd-qemu", "netbsd-qemu", "a NetBSD 10.99.12 kernel built from source, booted in QEMU with "
            "our ppp_mppe.kmod and test agent (test lane; no NetBSD userland)", "10.99.12",
            module_suffix=".kmod", opsys="NetBSD",
            cost="no download (the tarballs are read from ../shared/sources); ~220 MB under <cache> (the "
                 "netbsd-kernel/ entry: a 13 MB kernel, the sys tree hard-linked from <cache>/sources, host "
                 "tools 3.4 MB); cold build 417 s (tools 137 s, kernel 280 s; 2 shared cores, load 2.5-9), "
                 "warm 0.5-0.9 s (distinfo check 0.33 s, cache key 0.22 s)"),
)


def profile_names() -> list[str]:
    return [p.name for p in PROFILES]


def get_profile(name: str) -> Profile:
    """The profile row called `name`; UsageError listing the known profiles otherwise."""
    for p in PROFILES:
        if p.name == name:
            return p
    raise UsageError(f"unknown kernel profile {name!r} (known: {', '.join(profile_names())}, or 'none' to "
                     f"build no kernel modules; see `buildtool kernels`)")
