"""Our rump components, built against a cached rump kernel with its own rumpmake and Makefile.rump.

- `rumpnet_ppp`: NetBSD's PPP stack from the rump kernel's own tree (if_ppp, the tty line discipline,
  VJ compression and the compressors if_ppp lists, BSD-Compress and Deflate) plus `kmod/rump/ppp_component.c`.
- `rumpnet_ppp_mppe`: our ppp_mppe, from `kmod/mppe/core` and `kmod/mppe/netbsd` with the SRCS list of the
  glue's own bsd.kmodule.mk Makefile: the same files, unchanged, that make ppp_mppe.kmod.
- `rumpppp_test`: kernel-side hooks the driver needs (`kmod/rump/rumpppp_hooks.c`).

and the driver, `buildtool/rump/tools/rumpppp.c`, linked twice: with and without ppp_mppe.

Each component is built in a fresh folder and renamed into place under the rump kernel's cache folder,
keyed by the hash of everything it is built from, so a changed source (or a broken variant of the glue
that a negative control builds) gets a folder of its own and a finished one is reused in a second.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..errors import KernelError, PhaseError
from ..fsutil import text_digest, write_if_changed
from ..runlog import log_tail, run
from ..templating import render, template_env
from .kernel import RumpKernel

COMPONENT_TIMEOUT = 900  # seconds per component; each takes seconds on an idle machine

# what if_ppp.c and its friends include by name; a kernel config generates these (config(1))
PPP_HEADERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("ppp.h", "one ppp pseudo-device, as `pseudo-device ppp` gives", ("#define NPPP 1",)),
    ("opt_ppp.h", "the options GENERIC kernels build ppp with",
     ("#define PPP_COMPRESS 1", "#define PPP_BSDCOMP 1", "#define PPP_DEFLATE 1")),
    ("opt_inet.h", "INET comes from the rump kernel's opt_rumpkernel.h", ()),
    ("opt_gateway.h", "GATEWAY comes from the rump kernel's opt_rumpkernel.h", ()),
    ("ioconf.h", "what config(1) would declare for `pseudo-device ppp`", ("void pppattach(int);",)),
)
PPP_SOURCES = ("if_ppp.c", "ppp_tty.c", "slcompress.c", "bsd-comp.c", "ppp-deflate.c")


@dataclass(frozen=True)
class Component:
    lib: str
    paths: tuple[Path, ...]
    srcs: tuple[str, ...]
    cppflags: tuple[str, ...] = ()
    headers: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    def source_files(self) -> list[Path]:
        """Every file the build reads from `paths`: the SRCS and the headers beside them."""
        files = []
        for d in self.paths:
            files += sorted(p for p in d.iterdir() if p.is_file() and p.suffix in (".c", ".h"))
        return [f for f in files if f.suffix == ".h" or f.name in self.srcs]


@dataclass(frozen=True)
class BuiltComponent:
    lib: str
    folder: Path  # holds lib<lib>.so


@dataclass
class Components:
    """The driver programs of one build: `base` (no ppp_mppe) and `mppe` (with it)."""

    programs: dict[str, Path] = field(default_factory=dict)
    libdirs: list[Path] = field(default_factory=list)


def kmod_sources_of(makefile: Path) -> tuple[str, ...]:
    """SRCS of a bsd.kmodule.mk Makefile (`SRCS=` and `SRCS+=` lines, backslash continuations)."""
    if not makefile.is_file():
        raise KernelError(f"{makefile}: not found; the rump lane builds ppp_mppe from the NetBSD glue's "
                          f"Makefile SRCS (merge the netbsd branch: kmod/mppe/netbsd)")
    text = makefile.read_text().replace("\\\n", " ")
    srcs: list[str] = []
    for m in re.finditer(r"^\s*SRCS\s*(\+?=)\s*(.*)$", text, re.M):
        if m[1] == "=":
            srcs = []
        srcs += m[2].split("#")[0].split()
    if not srcs:
        raise KernelError(f"{makefile}: no SRCS= line; expected a bsd.kmodule.mk Makefile (KMOD=ppp_mppe)")
    return tuple(srcs)


def ppp_component(kernel: RumpKernel, repo: Path) -> Component:
    return Component("rumpnet_ppp", (kernel.src / "sys" / "net", repo / "kmod" / "rump"),
                     (*PPP_SOURCES, "ppp_component.c"), headers=PPP_HEADERS)


def mppe_component(glue: Path, core: Path) -> Component:
    srcs = kmod_sources_of(glue / "Makefile")
    return Component("rumpnet_ppp_mppe", (glue, core), srcs, cppflags=(f"-I{glue}", f"-I{core}"))


def hooks_component(repo: Path) -> Component:
    return Component("rumpppp_test", (repo / "kmod" / "rump",), ("rumpppp_hooks.c",))


def component_key(kernel: RumpKernel, comp: Component) -> str:
    env = template_env("rump")
    parts = [kernel.root.name, comp.lib, *comp.srcs, *comp.cppflags, repr(comp.headers),
             env.loader.get_source(env, "component.mk.j2")[0]]
    for f in comp.source_files():
        parts += [f.name, text_digest(f.read_bytes())]
    return text_digest("\n".join(parts))[:16]


def build_component(kernel: RumpKernel, comp: Component, out) -> BuiltComponent:
    """Build `comp` with rumpmake unless a finished build of the same inputs is in the cache."""
    folder = kernel.root / "components" / f"{comp.lib}-{component_key(kernel, comp)}"
    if (folder / "COMPLETE").is_file():
        return BuiltComponent(comp.lib, folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        _write_makefile(kernel, comp, scratch)
        log = scratch / "build.log"
        print(f"rump: building component {comp.lib} ({len(comp.srcs)} sources)", file=out, flush=True)
        for target in ("obj", "dependall"):
            _rumpmake(kernel, scratch, target, log)
        if not (scratch / f"lib{comp.lib}.so").exists():
            raise PhaseError(f"rump component {comp.lib}: rumpmake finished without lib{comp.lib}.so",
                             log=log, tail=log_tail(log))
        write_if_changed(scratch / "COMPLETE", "\n".join(comp.srcs) + "\n")
        if folder.exists():  # a half-renamed leftover of a killed run
            shutil.rmtree(folder)
        scratch.rename(folder)
    finally:
        if scratch.exists():
            _keep_failed_log(scratch, folder)
    return BuiltComponent(comp.lib, folder)


def _keep_failed_log(scratch: Path, folder: Path) -> None:
    log = scratch / "build.log"
    if log.exists():
        shutil.copy(log, folder.parent / f"{folder.name}.failed.log")
    shutil.rmtree(scratch, ignore_errors=True)


def _write_makefile(kernel: RumpKernel, comp: Component, folder: Path) -> None:
    env = template_env("rump")
    write_if_changed(folder / "Makefile", render(
        env, "component.mk.j2", lib=comp.lib, paths=[str(p) for p in comp.paths], srcs=comp.srcs,
        cppflags=comp.cppflags, rumptop=str(kernel.src / "sys" / "rump")))
    for name, why, lines in comp.headers:
        write_if_changed(folder / name, render(env, "header.h.j2", why=why, lines=lines))


def _rumpmake(kernel: RumpKernel, folder: Path, target: str, log: Path) -> None:
    cmd = [str(kernel.rumpmake), f"MAKEOBJDIR={folder}", target]
    try:
        run(["timeout", "-k", "10", str(COMPONENT_TIMEOUT), *cmd], log=log, cwd=folder,
            what=f"rumpmake {target} in {folder.name}")
    except subprocess.TimeoutExpired:  # pragma: no cover - `timeout` ends it first
        raise


def tool_source(name: str) -> Path:
    return Path(str(resources.files("buildtool.rump") / "tools" / name))


def build_driver(kernel: RumpKernel, built: list[BuiltComponent], dest: Path, log: Path) -> Path:
    """Link the driver against the rump kernel and `built`, with rpaths so it runs from anywhere."""
    libdirs = [kernel.lib, *(b.folder for b in built)]
    ours = [f"-l{b.lib}" for b in built]
    rump_libs = ["-lrumpnet_netinet", "-lrumpnet_net", "-lrumpnet", "-lrumpkern_tty", "-lrumpkern_z",
                 "-lrumpvfs", "-lrumpdev", "-lrump", "-lrumpuser"]
    cmd = ["cc", "-O2", "-g", "-Wall", "-Werror", f"-I{kernel.include}", "-o", str(dest),
           str(tool_source("rumpppp.c")), *[f"-L{d}" for d in libdirs],
           *[f"-Wl,-rpath,{d}" for d in libdirs], "-Wl,--no-as-needed", *ours, *rump_libs,
           "-Wl,--as-needed", "-lpthread", "-ldl", "-lrt"]
    dest.parent.mkdir(parents=True, exist_ok=True)
    run(["timeout", "-k", "10", "300", *cmd], log=log, what=f"linking {dest.name}")
    return dest


def build_peer(mppe_root: Path, dest: Path, log: Path) -> Path:
    """mppe_peer: the core's .c files with the userspace mppe_os, as the Linux side of the link."""
    core, userspace = mppe_root / "core", mppe_root / "userspace"
    sources = [*sorted(core.glob("*.c")), userspace / "mppe_os.c"]  # not the other userspace programs
    cmd = ["cc", "-O2", "-g", "-Wall", "-Werror", f"-I{userspace}", f"-I{core}", "-o", str(dest),
           str(tool_source("mppe_peer.c")), *map(str, sources)]
    dest.parent.mkdir(parents=True, exist_ok=True)
    run(["timeout", "-k", "10", "300", *cmd], log=log, what=f"building {dest.name}")
    return dest
