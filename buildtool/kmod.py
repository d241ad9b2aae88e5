"""The kmod phase: resolve a kernel profile to a KernelTarget, build the MPPE modules against it.

`resolve_target` runs once per build and hands back plain data (KernelTarget) that the kmod phase, the
package phase (`plist_vars`) and the VM harness (`vmlinuz`, `modules_root`, `release`) use. The work itself
is done by the profile's family class (buildtool.kernels.linux / .netbsd); this module only dispatches.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .distinfo import Distinfo
from .errors import KernelError
from .fsutil import write_if_changed
from .layout import Layout
from .recipe import Recipe


@dataclass(frozen=True)
class KernelTarget:
    """A resolved kernel: what the modules are built against and what the VM boots."""

    profile: str
    release: str  # `uname -r`, e.g. 6.1.0-56-amd64
    abi: str  # e.g. 6.1.0-56
    package_version: str  # Debian version of the kernel packages, e.g. 6.1.192-2
    vmlinuz: Path
    modules_root: Path  # holds lib/modules/<release>/ of the distribution kernel
    build_dir: Path  # the kernel build tree (kbuild's -C)
    source_dir: Path  # the pristine partial kernel source tree the modules are built from
    vermagic: str  # of the distribution kernel's own modules
    packages: dict[str, str] = field(default_factory=dict)  # package (or local path) -> version
    compiler: str = ""  # program the kernel was built with, e.g. gcc-12
    compiler_version: str = ""  # CONFIG_CC_VERSION_TEXT
    makefile: Path | None = None  # the kernel's top Makefile when build_dir's Makefile only includes it
    modules: tuple[str, ...] = ()

    def manifest(self) -> dict:
        """The resolved versions and locations, JSON-able (and the kmod phase's key)."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, Path):
                data[key] = str(value)
        data["modules"] = list(self.modules)
        return data

    @classmethod
    def from_manifest(cls, data: dict) -> KernelTarget:
        paths = {"vmlinuz", "modules_root", "build_dir", "source_dir", "makefile"}
        values = {k: (Path(v) if k in paths and v is not None else v) for k, v in data.items()}
        values["modules"] = tuple(values.get("modules", ()))
        return cls(**values)

    def plist_vars(self) -> dict[str, str]:
        """KMOD_RELEASE, and KMOD_MODULE (NetBSD's PLIST: the first module as <name>/<name><suffix>)."""
        from .kernels import get_profile

        suffix = get_profile(self.profile).module_suffix
        first = self.modules[0] if self.modules else ""
        return {"KMOD_RELEASE": self.release, "KMOD_MODULE": f"{first}/{first}{suffix}"}


def manifest_path(layout: Layout, profile: str) -> Path:
    """Where the resolved manifest of a profile is written for this work tree."""
    return layout.work / "kernel" / profile / "manifest.json"


def cached_manifest_path(layout: Layout, profile: str) -> Path:
    """The last manifest resolved online, kept with the cache so that --offline works after `clean`."""
    return layout.cache / "kernel" / f"{profile}.manifest.json"


def write_manifest(target: KernelTarget, layout: Layout) -> Path:
    text = json.dumps(target.manifest(), indent=2, sort_keys=True) + "\n"
    write_if_changed(cached_manifest_path(layout, target.profile), text)
    path = manifest_path(layout, target.profile)
    write_if_changed(path, text)
    return path


def read_cached_manifest(layout: Layout, profile: str) -> KernelTarget:
    path = cached_manifest_path(layout, profile)
    if not path.exists():
        raise KernelError(
            f"--offline: no kernel has been resolved for profile {profile} yet ({path} is missing).\n"
            f"Run once without --offline so the kernel packages are downloaded into "
            f"{layout.cache / 'kernel'}, or point at local copies with --kernel-dir and --kernel-source.")
    try:
        return KernelTarget.from_manifest(json.loads(path.read_text()))
    except (ValueError, TypeError) as e:
        raise KernelError(f"{path}: not a kernel manifest ({e}); delete it and run once without --offline") \
            from None


def resolve_target(profile_name: str, layout: Layout, kernel_options: dict, offline: bool,
                   log: Path) -> KernelTarget:
    """Find (download and unpack if needed) the kernel of profile `profile_name`; write its manifest."""
    from .kernels import get_profile, get_profile_class

    profile = get_profile(profile_name)
    family = get_profile_class(profile_name)(profile, layout, dict(kernel_options or {}), log)
    target = family.resolve(offline=offline)
    write_manifest(target, layout)
    return target


def install_dir(target: KernelTarget, prefix: Path, layout: Layout) -> Path:
    """Where the profile's family puts its modules under `prefix` (Linux: lib/modules/<release>/extra,
    NetBSD: lib/modules/<release>/<module>)."""
    from .kernels import get_profile, get_profile_class

    family = get_profile_class(target.profile)(get_profile(target.profile), layout, {}, Path("/dev/null"))
    return family.install_dir(prefix, target)


def build_modules(target: KernelTarget, recipe: Recipe, patches: list[Path], distinfo: Distinfo,
                  layout: Layout, jobs: int, log_dir: Path, extra_patches: Sequence[Path] = (),
                  dest: Path | None = None, mppe: str | None = None) -> list[Path]:
    """Build the profile's modules with the kernel-side patch series (and any extra patches).

    Without `dest` the modules are installed into the package's stage under
    `{stage_prefix}/lib/modules/<release>/extra/`; with `dest` (a variant, e.g. a negative control built
    with unchecksummed `extra_patches`) they are written to `dest` instead. Returns the installed paths.
    """
    from .kernels import get_profile, get_profile_class

    profile = get_profile(target.profile)
    family = get_profile_class(target.profile)(profile, layout, {}, log_dir / "kmod.log")
    if dest is None:
        # modules of an earlier kernel target must not linger in the stage (the package lists one release)
        modules_root = layout.stage_prefix(recipe.name) / "lib" / "modules"
        if modules_root.exists():
            shutil.rmtree(modules_root)
        dest = install_dir(target, layout.stage_prefix(recipe.name), layout)
    return family.build_modules(target, recipe, list(patches), distinfo, jobs=jobs, log_dir=log_dir,
                                extra_patches=list(extra_patches), dest=dest, mppe=mppe)
