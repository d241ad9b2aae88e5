"""Building NetBSD kernel modules the way bsd.kmodule.mk does, with clang/lld, on this machine or a host.

The build happens in a *build root* that mirrors a NetBSD src checkout without touching the user's tree:

    root/sys              -> the --sysdir (a symlink here; a copy of its headers on a build host)
    root/common/include   -> common/include
    root/modules/Makefile.inc        copied from sys/modules/ (its CPPFLAGS: -DDIAGNOSTIC, common/include)
    root/modules/ppp_mppe/           our glue, its Makefile, and core/ (the portable MPPE core)
    root/modules/if_ppp/             the tree's own if_ppp Makefile and ppp.ioconf, plus a generated ioconf.h

Every command is an argv with paths relative to the module's folder, so the same list runs through a
LocalRunner here or an SSHRunner in a temporary folder on a build host (runner.py). The flags are those of
bsd.kmodule.mk and sys/modules/Makefile.inc for amd64 (recorded in ../shared/sources/README.md): the
`machine`, `x86` and `i386` links bsd.klinks.mk makes, `-nostdinc -isystem $S -isystem $S/arch`, and a
relocatable link with `ld -r -T $S/modules/xldscripts/kmodule`.
"""

from __future__ import annotations

import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import KernelError
from ..fsutil import atomic_path
from ..runner import Runner
from .netbsd_tree import KmodMakefile, NetBSDTree, ioconf_header, parse_kmod_makefile

TARGET = "x86_64-unknown-netbsd"
# bsd.kmodule.mk (CFLAGS, CPPFLAGS) and the amd64 kernel flags; -O2 -std=gnu99 as bsd.sys.mk sets them
KMOD_CFLAGS = (
    f"--target={TARGET}", "-O2", "-std=gnu99", "-ffreestanding", "-fno-strict-aliasing", "-Wno-pointer-sign",
    "-mcmodel=kernel", "-mno-red-zone", "-mno-mmx", "-mno-sse", "-mno-avx", "-msoft-float",
    "-fno-omit-frame-pointer", "-fno-common", "-Wall",
)
KMOD_CPPFLAGS = ("-nostdinc", "-I.", "-isystem", "../../sys", "-isystem", "../../sys/arch", "-isystem",
                 "../../common/include", "-D_KERNEL", "-D_LKM", "-D_MODULE", "-DSYSCTL_INCLUDE_DESCR")
MACHINE_LINKS = (("machine", "../../sys/arch/amd64/include"), ("amd64", "../../sys/arch/amd64/include"),
                 ("x86", "../../sys/arch/x86/include"),
                 ("i386", "../../sys/arch/i386/include"))
KMODSCRIPT = "../../sys/modules/xldscripts/kmodule"
MAKE_VARS = {"S": "../../sys", "NETBSDSRCDIR": "../..", ".CURDIR": "."}
COMPILE_TIMEOUT = 300.0

MPPE_MODULE = "ppp_mppe"
IF_PPP = "if_ppp"


@dataclass(frozen=True)
class ModulePlan:
    """One module of the build root: its folder, its Makefile's contents, its sources (relative paths)."""

    name: str
    spec: KmodMakefile
    sources: tuple[str, ...]

    @property
    def kmod(self) -> str:
        return f"{self.spec.kmod}.kmod"

    def objects(self) -> list[str]:
        return [Path(s).with_suffix(".o").name for s in self.sources]

    def commands(self) -> list[list[str]]:
        """argv lists, run in modules/<name>/: links, one compile per source, the link."""
        cmds = [["ln", "-sfn", dest, link] for link, dest in MACHINE_LINKS]
        cppflags = [*KMOD_CPPFLAGS, *self.spec.cppflags]
        for src, obj in zip(self.sources, self.objects(), strict=True):
            cmds.append(["clang", *KMOD_CFLAGS, *self.spec.cflags, *cppflags, "-c", src, "-o", obj])
        cmds.append(["ld.lld", "-r", "-d", "-T", KMODSCRIPT, "-o", self.kmod, *self.objects()])
        return cmds


def _link(path: Path, target: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target, target_is_directory=True)


def prepare_root(root: Path, tree: NetBSDTree, mppe_sources: Path, glue: Path | None = None) -> None:
    """A fresh build root for `tree`; `mppe_sources` is kmod/mppe (netbsd/ and core/ are used), `glue`
    another folder instead of its netbsd/ (negative controls)."""
    if root.exists():
        shutil.rmtree(root)
    _link(root / "sys", tree.sysdir)
    _link(root / "common" / "include", tree.common)
    modules = root / "modules"
    modules.mkdir(parents=True)
    shutil.copy2(tree.sysdir / "modules" / "Makefile.inc", modules / "Makefile.inc")
    for folder in ("netbsd", "core"):
        if not (mppe_sources / folder).is_dir():
            raise KernelError(f"{mppe_sources / folder}: missing (the MPPE module's sources)")
    shutil.copytree(glue or mppe_sources / "netbsd", modules / MPPE_MODULE)
    shutil.copytree(mppe_sources / "core", modules / MPPE_MODULE / "core")
    ifppp = modules / IF_PPP
    ifppp.mkdir()
    for name in ("Makefile", "ppp.ioconf"):
        shutil.copy2(tree.sysdir / "modules" / IF_PPP / name, ifppp / name)


def plan_module(root: Path, name: str) -> ModulePlan:
    """Read modules/<name>/Makefile (as bsd.kmodule.mk would) and locate each source on its .PATH."""
    moddir = root / "modules" / name
    spec = parse_kmod_makefile(moddir / "Makefile", MAKE_VARS)
    if spec.ioconf:
        with atomic_path(moddir / "ioconf.h") as tmp:
            tmp.write_text(ioconf_header(moddir / spec.ioconf))
    sources = []
    for src in spec.srcs:
        found = next((f"{d}/{src}" for d in [".", *spec.paths] if (moddir / d / src).is_file()), None)
        if found is None:
            raise KernelError(f"{moddir / 'Makefile'}: source {src} is in none of the .PATH folders "
                              f"{', '.join(['.', *spec.paths])}")
        sources.append(found.removeprefix("./"))
    return ModulePlan(name, spec, tuple(sources))


def run_plan(runner: Runner, plan: ModulePlan, module_dir: str, log: Path) -> None:
    for argv in plan.commands():
        runner.run(argv, cwd=module_dir, log=log, timeout=COMPILE_TIMEOUT,
                   what=f"building {plan.kmod} ({argv[0]} {argv[-1] if argv[0] != 'clang' else argv[-3]})")


# --- inputs for a build host -------------------------------------------------------------------------------
def _headers(root: Path, top: str) -> list[str]:
    base = (root / top).resolve()
    return [f"{top}/{p.relative_to(base)}" for p in base.rglob("*.h")]


def pack_inputs(root: Path, plans: list[ModulePlan], dest: Path) -> int:
    """A gzip tar of what the build host needs (symlinks followed, paths normalised); returns its size."""
    members = {"sys/modules/xldscripts/kmodule", "modules/Makefile.inc"}
    members.update(_headers(root, "sys"))
    members.update(_headers(root, "common/include"))
    for plan in plans:
        moddir = root / "modules" / plan.name
        members.update(str(p.relative_to(root)) for p in moddir.rglob("*")
                       if p.is_file() and not p.is_symlink())
        for src in plan.sources:
            members.add(_normalise(f"modules/{plan.name}/{src}"))
    with atomic_path(dest) as tmp:
        with tarfile.open(tmp, "w:gz", compresslevel=1, dereference=True) as tar:
            for m in sorted(members):
                info = tar.gettarinfo(str(root / m), arcname=m)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with open(root / m, "rb") as f:
                    tar.addfile(info, f)
    return dest.stat().st_size


def _normalise(rel: str) -> str:
    parts: list[str] = []
    for part in rel.split("/"):
        if part == "..":
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)
