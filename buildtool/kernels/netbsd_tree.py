"""A NetBSD kernel source tree (`src/sys`, the --sysdir) and what the module build needs to know of it.

`inspect_tree` finds the version (`__NetBSD_Version__` in sys/sys/param.h), checks that the tree has the
module framework (sys/module.h's MODULE(), modules/xldscripts/kmodule) and if_ppp's compressor registry
(`ppp_register_compressor` in net/if_ppp.h: NetBSD 7 and later), and finds `common/include` (beside sys/
in a NetBSD src checkout, or given with --common). `parse_kmod_makefile` reads the subset of a
bsd.kmodule.mk Makefile the build uses (KMOD, SRCS, .PATH, CPPFLAGS, IOCONF, and the Makefile.inc it
includes), so the list of sources has one copy: the Makefile a native build uses too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import KernelError

FRAMEWORK_FILES = ("sys/module.h", "modules/xldscripts/kmodule", "modules/Makefile.inc", "net/if_ppp.c",
                   "net/ppp-comp.h")


def decode_version(number: int) -> str:
    """__NetBSD_Version__ MMmmrrpp00 (major, minor, release, patch) -> '10.99.12' (1099001200), '9.3'
    (903000000), '1.4.1' (104010000)."""
    major, minor, rel, patch = (number // 100000000, number // 1000000 % 100, number // 10000 % 100,
                                number // 100 % 100)
    parts = [major, minor] + ([rel] if rel else []) + ([patch] if patch else [])
    return ".".join(map(str, parts))


def tree_version(sysdir: Path) -> tuple[int, str]:
    param = sysdir / "sys" / "param.h"
    try:
        text = param.read_text(errors="replace")
    except OSError as e:
        raise KernelError(f"--sysdir {sysdir}: cannot read {param} ({e.strerror}); is this a NetBSD src/sys "
                          f"tree?") from None
    m = re.search(r"^#define\s+__NetBSD_Version__\s+(\d+)", text, re.M)
    if not m:
        raise KernelError(f"{param}: no `#define __NetBSD_Version__ <number>` line; not a NetBSD sys tree")
    return int(m[1]), decode_version(int(m[1]))


@dataclass(frozen=True)
class NetBSDTree:
    sysdir: Path
    common: Path  # common/include
    version_number: int
    release: str  # '10.99.12'


def find_common(sysdir: Path, given: Path | None) -> Path:
    if given is not None:
        common = Path(given).resolve()
        if common.name != "include" and (common / "include").is_dir():
            common = common / "include"
        if not (common / "prop").is_dir():
            raise KernelError(f"--common {given}: not a NetBSD common/include folder (no prop/ in {common})")
        return common
    candidate = sysdir.parent / "common" / "include"
    if (candidate / "prop").is_dir():
        return candidate
    raise KernelError(f"--sysdir {sysdir}: no common/include beside it ({candidate} is missing); the kernel "
                      f"headers include <prop/proplib.h> from src/common/include.\n"
                      f"Give it with --common DIR (the common/include of a NetBSD src tree of similar age).")


def inspect_tree(sysdir: Path, common: Path | None = None) -> NetBSDTree:
    """The tree's version; KernelError naming the interface a too-old or incomplete tree lacks."""
    sysdir = Path(sysdir).resolve()
    if not sysdir.is_dir():
        raise KernelError(f"--sysdir {sysdir}: no such directory (a NetBSD src/sys tree, e.g. /usr/src/sys)")
    number, release = tree_version(sysdir)
    missing = [f for f in FRAMEWORK_FILES if not (sysdir / f).is_file()]
    if missing:
        raise KernelError(
            f"--sysdir {sysdir} (NetBSD {release}) lacks {', '.join(missing)}: the ppp_mppe module needs the "
            f"kernel module framework (MODULE(), modules/xldscripts/kmodule; NetBSD 5 and later) and "
            f"if_ppp's compressor registry (NetBSD 7 and later).\n"
            f"For NetBSD 1.x LKMs use --kernel netbsd-1.4.1 on a NetBSD 1.4.1 build host.")
    if "define\tMODULE(" not in (sysdir / "sys/module.h").read_text(errors="replace").replace(" ", "\t"):
        raise KernelError(f"{sysdir / 'sys/module.h'} (NetBSD {release}) defines no MODULE() macro: the "
                          f"tree has no kernel module framework")
    ifh = sysdir / "net" / "if_ppp.h"
    if not ifh.is_file() or "ppp_register_compressor" not in ifh.read_text(errors="replace"):
        raise KernelError(
            f"{ifh} (NetBSD {release}) declares no ppp_register_compressor: this if_ppp keeps compressors in "
            f"a fixed table, so a ppp_mppe module cannot register itself (the interface appeared in "
            f"NetBSD 7; use a NetBSD 7 or later sys tree)")
    return NetBSDTree(sysdir, find_common(sysdir, common), number, release)


# --- bsd.kmodule.mk Makefiles ------------------------------------------------------------------------------
@dataclass
class KmodMakefile:
    kmod: str = ""
    srcs: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)  # .PATH folders
    cppflags: list[str] = field(default_factory=list)
    cflags: list[str] = field(default_factory=list)
    ioconf: str = ""


_ASSIGN = re.compile(r"^([A-Za-z_.]+)\s*(\+?=|\?=|!=)\s*(.*)$")


def _expand(value: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{([A-Za-z_.]+)\}", lambda m: variables.get(m[1], m[0]), value)


def parse_kmod_makefile(path: Path, variables: dict[str, str]) -> KmodMakefile:
    """The KMOD, SRCS, .PATH, CPPFLAGS and IOCONF of a module Makefile and the Makefiles it includes by a
    quoted relative path; `variables` gives S, NETBSDSRCDIR and .CURDIR as the build sees them."""
    spec = KmodMakefile()
    _read_makefile(path, variables, spec)
    if not spec.kmod or not spec.srcs:
        raise KernelError(f"{path}: no KMOD= or SRCS= line; not a bsd.kmodule.mk module Makefile")
    return spec


def _read_makefile(path: Path, variables: dict[str, str], spec: KmodMakefile) -> None:
    try:
        lines = path.read_text(errors="replace").replace("\\\n", " ").splitlines()
    except OSError as e:
        raise KernelError(f"cannot read the module Makefile {path}: {e.strerror}") from None
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if m := re.match(r'^\.include\s+"([^"]+)"', line):
            _read_makefile(path.parent / m[1], variables, spec)
        elif m := re.match(r"^\.PATH:\s*(.*)$", line):
            spec.paths += _expand(m[1], variables).split()
        elif m := _ASSIGN.match(line):
            name, op, value = m[1], m[2], _expand(m[3], variables).split()
            if name == "KMOD":
                spec.kmod = value[0] if value else ""
            elif name == "SRCS":
                spec.srcs = spec.srcs + value if op == "+=" else value
            elif name == "CPPFLAGS" and op == "+=":
                spec.cppflags += value
            elif name == "CFLAGS" and op == "+=":
                spec.cflags += value
            elif name == "IOCONF":
                spec.ioconf = value[0] if value else ""


def ioconf_header(ioconf: Path) -> str:
    """What config(1) -x writes to ioconf.h for a module's pseudo-devices: one attach prototype each."""
    try:
        text = ioconf.read_text(errors="replace")
    except OSError as e:
        raise KernelError(f"cannot read {ioconf}: {e.strerror}") from None
    names = re.findall(r"^\s*pseudo-device\s+(\w+)", text, re.M)
    return "".join(f"void {n}attach(int);\n" for n in names)
