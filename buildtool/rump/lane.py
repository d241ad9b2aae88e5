"""What the rump lane runs: the rump kernel, our components, and the programs the scenarios drive.

`prepare()` makes (or finds in the cache) everything `tests/rump/` needs and returns a `LaneBuild`:
- `base`: rumpppp linked with NetBSD's PPP stack but not our ppp_mppe (the "without" column),
- `mppe`: the same with our ppp_mppe component (from `kmod/mppe/{core,netbsd}`, or a broken variant of
  them for a negative control),
- `peer`: mppe_peer, our MPPE core built for Linux user space.

A negative control is a patch under `patches/rump-mppe/broken/` applied to a copy of `kmod/mppe`; the
variant's component is keyed by its own sources, so it never replaces the real one in the cache.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import KernelError
from ..layout import Layout
from ..runlog import run
from . import component
from .kernel import RumpKernel, ensure_rump_kernel

CONTROLS_DIR = Path("patches") / "rump-mppe" / "broken"


@dataclass
class LaneBuild:
    kernel: RumpKernel
    base: Path
    mppe: Path | None  # None: our MPPE sources are not in this tree (`missing` says which)
    peer: Path | None
    missing: list[str] = field(default_factory=list)
    variant: str = ""
    seconds: dict[str, float] = field(default_factory=dict)


def default_sources(root: Path) -> Path:
    """Where the shared tarballs are: `../shared/sources` seen from the repository."""
    return (root.parent / "shared" / "sources").resolve()


def glue_dirs(root: Path) -> tuple[Path, Path]:
    return root / "kmod" / "mppe" / "netbsd", root / "kmod" / "mppe" / "core"


def missing_glue(root: Path) -> list[str]:
    glue, core = glue_dirs(root)
    need = [glue / "Makefile", core / "mppe.h", root / "kmod" / "mppe" / "userspace" / "mppe_os.h"]
    return [str(p.relative_to(root)) for p in need if not p.is_file()]


def variant_tree(layout: Layout, patch: Path) -> Path:
    """A copy of kmod/mppe with `patch` applied (a negative control), fresh for every run."""
    dest = layout.work / "rump" / "variants" / patch.stem / "kmod-mppe"
    if dest.parent.exists():
        shutil.rmtree(dest.parent)
    shutil.copytree(layout.root / "kmod" / "mppe", dest)
    run(["timeout", "60", "patch", "-p3", "--batch", "--forward", "-d", str(dest), "-i", str(patch)],
        log=dest.parent / "patch.log", what=f"applying negative control {patch.name}")
    return dest


def prepare(layout: Layout, sources: Path, *, variant: Path | None = None, jobs: int = 2,
            out=None) -> LaneBuild:
    out = out or sys.stderr
    missing = missing_glue(layout.root)
    if missing and variant:
        raise KernelError(f"negative control {variant.name}: missing {', '.join(missing)}")
    t0 = time.monotonic()
    kernel = ensure_rump_kernel(sources, layout.cache, jobs=jobs, out=out)
    t_kernel = time.monotonic()
    ppp = component.build_component(kernel, component.ppp_component(kernel, layout.root), out)
    _check_diagnostic(ppp)
    hooks = component.build_component(kernel, component.hooks_component(layout.root), out)
    name = variant.stem if variant else "default"
    progdir = layout.work / "rump" / "programs" / name
    log = progdir / "link.log"
    base = component.build_driver(kernel, [ppp, hooks], progdir / "rumpppp-base", log)
    with_mppe = peer = None
    t_components = time.monotonic()
    if not missing:
        mppe_root = variant_tree(layout, variant) if variant else layout.root / "kmod" / "mppe"
        mppe = component.build_component(
            kernel, component.mppe_component(mppe_root / "netbsd", mppe_root / "core"), out)
        t_components = time.monotonic()
        with_mppe = component.build_driver(kernel, [ppp, hooks, mppe], progdir / "rumpppp-mppe", log)
        # the peer is always the real core: a broken variant must not be checked against itself
        peer = component.build_peer(layout.root / "kmod" / "mppe", progdir / "mppe_peer", log)
    done = time.monotonic()
    return LaneBuild(kernel, base, with_mppe, peer, missing=missing, variant=name if variant else "",
                     seconds={"rump_kernel": round(t_kernel - t0, 1),
                              "components": round(t_components - t_kernel, 1),
                              "programs": round(done - t_components, 1)})


def _check_diagnostic(ppp: component.BuiltComponent) -> None:
    """The survival scenarios rely on DIAGNOSTIC (KASSERTs panic): make sure our components got it."""
    log = ppp.folder / "build.log"
    if "-DDIAGNOSTIC" not in log.read_text(errors="replace"):
        raise KernelError(f"{log}: the PPP component was compiled without -DDIAGNOSTIC; the rump "
                          f"kernel must be built without buildrump.sh's -r (release) (KASSERTs on)")
