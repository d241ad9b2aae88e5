"""What every kernel family shares: the resolved kernel (KernelTarget, plain data the kmod phase, the package
phase and the VM harness use) and the family base class. Its own module, below both `kmod` (which dispatches
to the families) and the family modules (which build KernelTargets), so neither imports the other."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..distinfo import Distinfo
from ..errors import KernelError
from ..layout import Layout
from ..recipe import Recipe
from .profiles import Profile, get_profile


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

    def manifest(self) -> dict:
        """The resolved versions and locations, JSON-able (and the kmod phase's key)."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, Path):
                data[key] = str(value)
        return data

    @classmethod
    def from_manifest(cls, data: dict) -> KernelTarget:
        paths = {"vmlinuz", "modules_root", "build_dir", "source_dir", "makefile"}
        known = {f.name for f in fields(cls)}  # a manifest of an older version may hold more (modules)
        values = {k: (Path(v) if k in paths and v is not None else v) for k, v in data.items() if k in known}
        return cls(**values)

    def plist_vars(self, modules: tuple[str, ...]) -> dict[str, str]:
        """KMOD_RELEASE, and KMOD_MODULE (NetBSD's PLIST: the first of the recipe's `modules` as
        <name>/<name><suffix>)."""
        suffix = get_profile(self.profile).module_suffix
        first = modules[0] if modules else ""
        return {"KMOD_RELEASE": self.release, "KMOD_MODULE": f"{first}/{first}{suffix}"}


def cached_manifest_path(layout: Layout, profile: str) -> Path:
    """The last manifest resolved online, kept with the cache so that --offline works after `clean`."""
    return layout.cache / "kernel" / f"{profile}.manifest.json"


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


class KernelFamily(ABC):
    """One kernel family (LinuxKernel, NetBSDKernel, NetBSDLKMKernel, RumpLane): how a profile's kernel is
    found and how modules are built against it. A new family implements the abstract methods."""

    # What `buildtool test --kernel <profile>` runs, as "module:function" (function(args, layout) -> exit
    # status): the VM suite with Linux guests unless the family is a test lane with scenarios of its own.
    # A name, not an import: the runners import kmod, which imports the families.
    scenarios = "buildtool.vm.suite:run_suite"

    def __init__(self, profile: Profile, layout: Layout, options: dict, log: Path):
        self.profile = profile
        self.layout = layout
        self.options = options  # --sysdir, --common, --kernel-dir, --kernel-source, --host, --ssh-identity
        self.log = log

    @classmethod
    @abstractmethod
    def needs(cls, profile: Profile) -> list[str]:
        """What `buildtool kernels` says the profile needs (inputs, host programs, options)."""

    @classmethod
    def status(cls, profile: Profile) -> list[str]:
        """What `buildtool kernels` says is verified and what is not (beyond the test suite's defaults)."""
        return []

    def check(self) -> None:  # noqa: B027 (not abstract: most families have nothing to check)
        """The family's own checks of its options, before any work starts (KernelError naming each
        problem). Nothing to check by default."""

    @abstractmethod
    def resolve(self, offline: bool = False) -> KernelTarget:
        """Find (download, unpack, probe) the kernel the modules are built against."""

    @abstractmethod
    def build_modules(self, target: KernelTarget, recipe: Recipe, patches: list[Path], distinfo: Distinfo, *,
                      jobs: int, log_dir: Path, extra_patches: list[Path], dest: Path,
                      mppe: str | None = None) -> list[Path]:
        """Build the recipe's modules for `target` into `dest`; return the installed paths."""

    def install_dir(self, stage_prefix: Path, target: KernelTarget, modules: tuple[str, ...]) -> Path:
        """Where the package stage holds the built `modules` (Linux: lib/modules/<release>/extra)."""
        return stage_prefix / "lib" / "modules" / target.release / "extra"


class TestLaneFamily(KernelFamily):
    """A profile that is a test lane (netbsd-rump, netbsd-qemu), not a kernel to build modules for: it names
    its own scenarios (`scenarios`) and refuses resolve and build_modules."""

    __test__ = False  # not a pytest test class, whatever its name

    def _not_a_build_target(self) -> KernelError:
        name = self.profile.name
        return KernelError(f"{name} is a test lane, not a kernel to build modules for: run `buildtool test "
                           f"--kernel {name}` (and --control for its negative controls)")

    def resolve(self, offline: bool = False) -> KernelTarget:
        raise self._not_a_build_target()

    def build_modules(self, target: KernelTarget, recipe: Recipe, patches: list[Path], distinfo: Distinfo, *,
                      jobs: int, log_dir: Path, extra_patches: list[Path], dest: Path,
                      mppe: str | None = None) -> list[Path]:
        raise self._not_a_build_target()
