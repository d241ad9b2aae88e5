"""Kernel profiles: one table of data (PROFILES) plus one small class per kernel family.

A profile names a kernel the MPPE modules are built for. What differs between kernels of one family is data
(a row of PROFILES); what differs between families (how the kernel is found, how modules are built) is a
class: `LinuxKernel` (kernels/linux.py) and `NetBSDKernel` (kernels/netbsd.py). `buildtool kernels` prints
`describe_profiles()`; the CLI validates `--kernel NAME` with `get_profile_class()`.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Iterable
from pathlib import Path

from ..errors import KernelError, UsageError
from ..layout import Layout
from ..recipe import Recipe
from .base import KernelFamily, KernelTarget
from .profiles import PROFILES, Profile, get_profile, profile_names

__all__ = ["PROFILES", "KernelFamily", "KernelTarget", "Profile", "check_options", "describe_profiles",
           "get_profile", "get_profile_class", "profile_names", "scenario_runner"]


def _families() -> dict[str, type]:
    from .linux import LinuxKernel
    from .netbsd import NetBSDKernel, NetBSDLKMKernel
    from .netbsd_qemu import NetBSDQemuLane
    from .rump import RumpLane

    return {"linux": LinuxKernel, "netbsd": NetBSDKernel, "netbsd-lkm": NetBSDLKMKernel, "rump": RumpLane,
            "netbsd-qemu": NetBSDQemuLane}


def get_profile_class(name: str) -> type:
    """The family class that handles profile `name` (LinuxKernel, NetBSDKernel)."""
    return _families()[get_profile(name).family]


def scenario_runner(name: str) -> Callable[[argparse.Namespace, Layout], int]:
    """What `buildtool test --kernel NAME` runs: the function the family's `scenarios` names ('none': the
    VM suite, as for the base class)."""
    family = KernelFamily if name == "none" else get_profile_class(name)
    module, function = family.scenarios.split(":")
    return getattr(importlib.import_module(module), function)


# the kernel options each family uses (the others are refused, not silently ignored); flag -> what it is
KERNEL_OPTIONS = {"sysdir": "--sysdir", "common": "--common", "kernel_dir": "--kernel-dir",
                  "kernel_source": "--kernel-source", "host": "--host", "ssh_identity": "--ssh-identity"}
FAMILY_OPTIONS = {"linux": ("kernel_dir", "kernel_source"),
                  "netbsd": ("sysdir", "common", "host", "ssh_identity"),
                  "netbsd-lkm": ("sysdir", "host", "ssh_identity"),
                  "rump": (), "netbsd-qemu": ()}
_PATH_OPTIONS = ("sysdir", "common", "kernel_dir", "kernel_source", "ssh_identity")
REMOTE_PATH_OPTIONS = {"netbsd-lkm": ("sysdir",)}  # paths on the build host, not checked here


def check_options(name: str, options: dict, layout: Layout, building: bool) -> None:
    """Every problem with --kernel and its options, at once, before any work starts.

    Options the profile does not use are refused (UsageError); a path option must exist; when the run
    builds kernel modules (`building`), the family's own checks run too (NetBSD: --sysdir's files, --host's
    form). A UsageError when an option is misplaced, else a KernelError, naming every problem.
    """
    given = [k for k in KERNEL_OPTIONS if options.get(k)]
    if name == "none":
        used: tuple[str, ...] = ()
        profile = None
    else:
        profile = get_profile(name)
        used = FAMILY_OPTIONS[profile.family]
    wanted = ", ".join(KERNEL_OPTIONS[k] for k in used) or "no kernel options"
    misplaced = [f"{KERNEL_OPTIONS[k]} is not used with --kernel {name} (it takes {wanted})"
                 for k in given if k not in used]
    remote = REMOTE_PATH_OPTIONS.get(profile.family, ()) if profile else ()
    problems = [f"{KERNEL_OPTIONS[k]} {options[k]}: no such file or directory"
                for k in given if k in used and k in _PATH_OPTIONS and k not in remote
                and not Path(options[k]).exists()]
    if profile and building and not problems:
        try:
            _families()[profile.family](profile, layout, dict(options), layout.work / "kernel.log").check()
        except KernelError as e:
            problems.append(str(e))
    if misplaced:
        raise UsageError("\n".join(misplaced + problems) + "\nSee `buildtool kernels`.")
    if problems:
        raise KernelError("\n".join(problems))


def describe_profiles(recipes: Iterable[Recipe]) -> str:
    """What `buildtool kernels` prints: each profile, the modules the recipes build for it ([kmod] modules)
    and what it needs."""
    families = _families()
    blocks = []
    for p in PROFILES:
        built = [f"{', '.join(m + p.module_suffix for m in r.kernel_modules[p.family])} ({r.name})"
                 for r in recipes if p.family in r.kernel_modules]
        lines = [f"{p.name}: {p.summary}", f"  modules: {'; '.join(built) or 'none'}"]
        lines += [f"  needs: {need}" for need in families[p.family].needs(p)]
        lines += [f"  cost: {p.cost}"] if p.cost else []
        lines += [f"  {line}" for line in families[p.family].status(p)]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n\n'none': userland only, no kernel modules."
