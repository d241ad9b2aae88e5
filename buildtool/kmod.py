"""The kmod phase: resolve a kernel profile to a KernelTarget, build the MPPE modules against it.

`resolve_target` runs once per build and hands back plain data (KernelTarget) that the kmod phase, the
package phase (`plist_vars`) and the VM harness (`vmlinuz`, `modules_root`, `release`) use. The work itself
is done by the profile's family class (buildtool.kernels.linux / .netbsd); this module only dispatches.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from .distinfo import Distinfo
from .fsutil import write_if_changed
from .kernels import get_profile, get_profile_class
from .kernels.base import KernelTarget, cached_manifest_path, read_cached_manifest
from .layout import Layout
from .recipe import Recipe

__all__ = ["KernelTarget", "build_modules", "cached_manifest_path", "install_dir", "manifest_path",
           "modules_of", "plist_vars", "read_cached_manifest", "resolve_target", "write_manifest"]


def manifest_path(layout: Layout, profile: str) -> Path:
    """Where the resolved manifest of a profile is written for this work tree."""
    return layout.work / "kernel" / profile / "manifest.json"


def write_manifest(target: KernelTarget, layout: Layout) -> Path:
    text = json.dumps(target.manifest(), indent=2, sort_keys=True) + "\n"
    write_if_changed(cached_manifest_path(layout, target.profile), text)
    path = manifest_path(layout, target.profile)
    write_if_changed(path, text)
    return path


def resolve_target(profile_name: str, layout: Layout, kernel_options: dict, offline: bool,
                   log: Path) -> KernelTarget:
    """Find (download and unpack if needed) the kernel of profile `profile_name`; write its manifest."""
    profile = get_profile(profile_name)
    family = get_profile_class(profile_name)(profile, layout, dict(kernel_options or {}), log)
    target = family.resolve(offline=offline)
    write_manifest(target, layout)
    return target


def modules_of(target: KernelTarget, recipe: Recipe) -> tuple[str, ...]:
    """The modules `recipe` builds for the target's kernel family ([kmod] modules)."""
    return recipe.modules_for(get_profile(target.profile).family)


def plist_vars(target: KernelTarget, recipe: Recipe) -> dict[str, str]:
    return target.plist_vars(modules_of(target, recipe))


def install_dir(target: KernelTarget, recipe: Recipe, prefix: Path, layout: Layout) -> Path:
    """Where the profile's family puts the recipe's modules under `prefix` (Linux:
    lib/modules/<release>/extra, NetBSD: lib/modules/<release>/<module>)."""
    profile = get_profile(target.profile)
    family = get_profile_class(target.profile)(profile, layout, {}, Path("/dev/null"))
    return family.install_dir(prefix, target, modules_of(target, recipe))


def build_modules(target: KernelTarget, recipe: Recipe, patches: list[Path], distinfo: Distinfo,
                  layout: Layout, jobs: int, log_dir: Path, extra_patches: Sequence[Path] = (),
                  dest: Path | None = None, mppe: str | None = None) -> list[Path]:
    """Build the profile's modules with the kernel-side patch series (and any extra patches).

    Without `dest` the modules are installed into the package's stage under
    `{stage_prefix}/lib/modules/<release>/extra/`; with `dest` (a variant, e.g. a negative control built
    with unchecksummed `extra_patches`) they are written to `dest` instead. Returns the installed paths.
    """
    profile = get_profile(target.profile)
    family = get_profile_class(target.profile)(profile, layout, {}, log_dir / "kmod.log")
    if dest is None:
        # modules of an earlier kernel target must not linger in the stage (the package lists one release)
        modules_root = layout.stage_prefix(recipe.name) / "lib" / "modules"
        if modules_root.exists():
            shutil.rmtree(modules_root)
        dest = install_dir(target, recipe, layout.stage_prefix(recipe.name), layout)
    return family.build_modules(target, recipe, list(patches), distinfo, jobs=jobs, log_dir=log_dir,
                                extra_patches=list(extra_patches), dest=dest, mppe=mppe)
