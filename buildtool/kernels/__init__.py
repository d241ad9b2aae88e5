"""Kernel profiles: one table of data (PROFILES) plus one small class per kernel family.

A profile names a kernel the MPPE modules are built for. What differs between kernels of one family is data
(a row of PROFILES); what differs between families (how the kernel is found, how modules are built) is a
class: `LinuxKernel` (kernels/linux.py) and `NetBSDKernel` (kernels/netbsd.py). `buildtool kernels` prints
`describe_profiles()`; the CLI validates `--kernel NAME` with `get_profile_class()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..layout import Layout


@dataclass(frozen=True)
class Profile:
    """One kernel profile. Fields a family does not use stay empty."""

    name: str
    family: str  # key of FAMILIES
    summary: str
    version: str  # kernel series (Linux: "6.1") or release (NetBSD: "1.4.1", "10")
    modules: tuple[str, ...]  # kernel modules built, without suffix
    module_suffix: str
    opsys: str  # pkgsrc's OPSYS of the kernel's system, recorded in +BUILD_INFO
    # Linux (Debian): the meta package whose dependency names the current ABI, and the flavour
    meta_package: str = ""
    flavour: str = ""
    # NetBSD: files that must exist under --sysdir (the historic package's SYSDIR checks)
    sysdir_checks: tuple[str, ...] = ()
    # NetBSD: which module framework the kernel uses ("lkm": NetBSD 1.x modload; "module": modload(8) of 5+)
    module_kind: str = ""
    default_sysdir: str = ""


_NETBSD_CHECKS = ("lib/libkern/libkern.h", "net/ppp-comp.h")

PROFILES: tuple[Profile, ...] = (
    Profile("linux-6.1", "linux", "Debian 12 (bookworm) Linux 6.1, amd64 (the default)", "6.1",
            modules=("ppp_generic", "ppp_mppe"), module_suffix=".ko", opsys="Linux",
            meta_package="linux-image-amd64",
            flavour="amd64"),
    Profile("netbsd-1.4.1", "netbsd-lkm", "NetBSD 1.4.1 (the historic pkgsrc target), LKM", "1.4.1",
            modules=("mppe",), module_suffix=".o", opsys="NetBSD", sysdir_checks=_NETBSD_CHECKS,
            module_kind="lkm",
            default_sysdir="/usr/src/sys"),
    Profile("netbsd-10", "netbsd", "NetBSD 10, ppp_mppe kernel module (bsd.kmodule.mk)", "10",
            modules=("ppp_mppe",), module_suffix=".kmod", opsys="NetBSD",
            sysdir_checks=("sys/module.h", "net/if_ppp.h"),
            module_kind="module", default_sysdir="/usr/src/sys"),
)


class KernelFamily:
    """What every kernel family class holds; LinuxKernel and NetBSDKernel add how to resolve and build."""

    def __init__(self, profile: Profile, layout: Layout, options: dict, log: Path):
        self.profile = profile
        self.layout = layout
        self.options = options  # --sysdir, --common, --kernel-dir, --kernel-source, --host, --ssh-identity
        self.log = log


    def install_dir(self, stage_prefix: Path, target) -> Path:
        """Where the package stage holds the built modules (Linux: lib/modules/<release>/extra)."""
        return stage_prefix / "lib" / "modules" / target.release / "extra"


def _families() -> dict[str, type]:
    from .linux import LinuxKernel
    from .netbsd import NetBSDKernel, NetBSDLKMKernel

    return {"linux": LinuxKernel, "netbsd": NetBSDKernel, "netbsd-lkm": NetBSDLKMKernel}


def profile_names() -> list[str]:
    return [p.name for p in PROFILES]


def get_profile(name: str) -> Profile:
    """The profile row called `name`; UsageError listing the known profiles otherwise."""
    for p in PROFILES:
        if p.name == name:
            return p
    raise UsageError(f"unknown kernel profile {name!r} (known: {', '.join(profile_names())}, or 'none' to "
                     f"build no kernel modules; see `buildtool kernels`)")


def get_profile_class(name: str) -> type:
    """The family class that handles profile `name` (LinuxKernel, NetBSDKernel)."""
    return _families()[get_profile(name).family]


def describe_profiles() -> str:
    """What `buildtool kernels` prints: each profile, its modules and what it needs."""
    families = _families()
    blocks = []
    for p in PROFILES:
        lines = [f"{p.name}: {p.summary}", f"  modules: {', '.join(m + p.module_suffix for m in p.modules)}"]
        lines += [f"  needs: {need}" for need in families[p.family].needs(p)]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n\n'none': userland only, no kernel modules."
