"""Which symbols a NetBSD kernel built from a given sys tree defines, derived from that tree itself.

A module's undefined symbols must be resolved at load time by the kernel or by the modules it requires. No
NetBSD kernel binary exists here, so the kernel's side is derived from the same sources: for each symbol
wanted, the source files that textually define it (a KNF function definition `name(` at the start of a line,
a file-scope variable, an assembler ENTRY()/alias, a __strong_alias/__weak_alias) are found in the folders
an amd64 kernel is built from (SEARCH_DIRS, and common/lib/libc beside common/include), each candidate is
compiled (or assembled) with the kernel's flags (-D_KERNEL -D_KERNEL_OPT, and an empty header for each
header config(1) would have generated: opt_*.h with every option off, device counts such as ether.h, assym.h
for assembler files, whose offsets only feed instructions, not which symbols are defined), and the symbol
counts as defined only if the resulting object's symbol table defines it globally. A textual match alone
never counts: a symbol whose candidates do not compile stays undefined, and the check names it with the
files tried.

Objects' symbol lists are cached under <cache>/netbsd-symbols/, keyed by the source file's sha256, the tree
and the flags.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..elf import ELF64, ELFFormatError
from ..fsutil import file_digest, text_digest, write_if_changed
from ..runner import LocalRunner
from .netbsd_build import KMOD_CFLAGS, TARGET
from .netbsd_tree import NetBSDTree

# where an amd64 kernel's code lives in sys/ (relative to --sysdir), searched in this order
SEARCH_DIRS = ("kern", "lib/libkern", "net", "netinet", "netinet6", "uvm", "arch/amd64/amd64",
               "arch/x86/x86", "crypto", "dev")
COMMON_DIRS = ("lib/libc/arch/x86_64", "lib/libc/string", "lib/libc/gen", "lib/libc/hash", "lib/libc/stdlib")
MAX_OPT_HEADERS = 40
KERNEL_CPPFLAGS = ("-D_KERNEL", "-D_KERNEL_OPT", "-Wno-error", "-w")
# headers config(1) writes into a kernel build folder: opt_*.h (options), counts (ether.h: NETHER), assym.h
_MISSING_HEADER = re.compile(r"error: '([\w.]+\.h)' file not found")


@dataclass
class Derivation:
    """The outcome for a set of wanted symbols."""

    defined: dict[str, str] = field(default_factory=dict)  # symbol -> source file (relative) defining it
    tried: dict[str, list[str]] = field(default_factory=dict)  # unresolved symbol -> candidate files tried
    objects: dict[str, list[str]] = field(default_factory=dict)  # source -> the globals its object defines
    failed: dict[str, str] = field(default_factory=dict)  # source -> why it did not compile

    def kernel_symbols(self) -> set[str]:
        return {s for syms in self.objects.values() for s in syms}


def _definition_patterns(name: str) -> list[re.Pattern]:
    n = re.escape(name)
    return [
        re.compile(rf"^{n}\(", re.M),
        re.compile(rf"^[A-Za-z_][\w \t*]*[ \t*]{n}[ \t]*(\[[^\]\n]*\])?([ \t]+__\w+)*[ \t]*(=|;)", re.M),
        re.compile(rf"\b(?:ENTRY|NENTRY|ENTRY_NP|STRONG_ALIAS|WEAK_ALIAS)\({n}[,)]"),
        re.compile(rf"__(?:strong|weak)_alias\({n}\s*,"),
    ]


class SymbolDeriver:
    def __init__(self, tree: NetBSDTree, work: Path, cache: Path, log: Path):
        self.tree = tree
        self.work = work
        self.cache = cache / "netbsd-symbols"
        self.log = log
        self._files: list[tuple[Path, str]] | None = None

    def roots(self) -> list[tuple[Path, str]]:
        """(folder, label) pairs searched: sys/ folders, then common/lib/libc beside common/include."""
        out = [(self.tree.sysdir / d, f"sys/{d}") for d in SEARCH_DIRS]
        out += [(self.tree.common.parent / d, f"common/{d}") for d in COMMON_DIRS]
        return [(p, label) for p, label in out if p.is_dir()]

    def source_files(self) -> list[tuple[Path, str]]:
        if self._files is None:
            files = []
            for base, label in self.roots():
                for p in sorted(base.rglob("*")):
                    if p.suffix in (".c", ".S") and p.is_file():
                        rel = p.relative_to(base)
                        if "arch" in rel.parts and not _amd64_path(rel):
                            continue
                        files.append((p, f"{label}/{rel}"))
            self._files = files
        return self._files

    def candidates(self, names: Iterable[str]) -> dict[str, list[tuple[Path, str]]]:
        """name -> files whose text defines it (one pass over the sources)."""
        names = sorted(set(names))
        found: dict[str, list[tuple[Path, str]]] = {n: [] for n in names}
        if not names:
            return found
        quick = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
        patterns = {n: _definition_patterns(n) for n in names}
        for path, label in self.source_files():
            text = path.read_text(errors="replace")
            for n in set(quick.findall(text)):
                if any(p.search(text) for p in patterns[n]):
                    found[n].append((path, label))
        for files in found.values():
            files += self._includers(files)
        return found

    def _includers(self, files: list[tuple[Path, str]]) -> list[tuple[Path, str]]:
        """Files of the same folder that #include a candidate (x86_64 memcpy.S includes bcopy.S with
        MEMCOPY defined): the definition may only be assembled through them."""
        out = []
        for path, _ in files:
            include = f'#include "{path.name}"'
            out += [(p, label) for p, label in self.source_files()
                    if p.parent == path.parent and p != path and include in p.read_text(errors="replace")]
        return out

    def derive(self, wanted: Iterable[str]) -> Derivation:
        result = Derivation()
        wanted = set(wanted)
        for name, files in self.candidates(wanted).items():
            if name in result.defined:
                continue
            for path, label in files:
                if label not in result.objects and label not in result.failed:
                    try:
                        result.objects[label] = self.object_symbols(path, label)
                    except _CompileFailed as e:
                        result.failed[label] = str(e)
                        continue
                for sym in result.objects.get(label, []):
                    if sym in wanted and sym not in result.defined:
                        result.defined[sym] = label
                if name in result.defined:
                    break
            if name not in result.defined:
                result.tried[name] = [label for _, label in files]
        return result

    def object_symbols(self, source: Path, label: str) -> list[str]:
        """The global symbols the compiled `source` defines (cached by content and flags)."""
        flags = self.flags(source)
        inputs = [file_digest(source, "sha256"), str(self.tree.sysdir), str(self.tree.common), *flags]
        key = text_digest("\0".join(inputs))[:32]
        cached = self.cache / f"{key}.json"
        if cached.exists():
            data = json.loads(cached.read_text())
            if data.get("error"):
                raise _CompileFailed(data["error"])
            return data["symbols"]
        try:
            symbols = sorted(self._compile(source, label, flags))
        except _CompileFailed as e:
            write_if_changed(cached, json.dumps({"source": label, "error": str(e)}) + "\n")
            raise
        write_if_changed(cached, json.dumps({"source": label, "symbols": symbols}) + "\n")
        return symbols

    def flags(self, source: Path) -> list[str]:
        lang = ["-x", "assembler-with-cpp", "-D_LOCORE"] if source.suffix == ".S" else []
        return [*KMOD_CFLAGS, *KERNEL_CPPFLAGS, *lang]

    def _include_dir(self) -> Path:
        inc = self.work / "include"
        if not inc.exists():
            inc.mkdir(parents=True)
            for link, dest in (("machine", "arch/amd64/include"), ("amd64", "arch/amd64/include"),
                               ("x86", "arch/x86/include"), ("i386", "arch/i386/include")):
                (inc / link).symlink_to(self.tree.sysdir / dest, target_is_directory=True)
        return inc

    def _compile(self, source: Path, label: str, flags: list[str]) -> set[str]:
        inc = self._include_dir()
        obj = self.work / "objs" / (label.replace("/", "_") + ".o")
        obj.parent.mkdir(parents=True, exist_ok=True)
        sysdir, common = self.tree.sysdir, self.tree.common
        argv = ["clang", *flags, "-nostdinc", "-I", str(inc), "-isystem", str(sysdir), "-isystem",
                str(sysdir / "arch"), "-isystem", str(common), "-c", str(source), "-o", str(obj)]
        runner = LocalRunner()
        for _ in range(MAX_OPT_HEADERS):
            res = runner.run(argv, log=self.log, timeout=120, what=f"compiling {label}", check=False)
            if res.returncode == 0:
                break
            m = _MISSING_HEADER.search(res.stdout)
            if not m or (inc / m[1]).exists():
                last = [ln for ln in res.stdout.splitlines() if "error" in ln][:1]
                raise _CompileFailed(last[0] if last else f"exit status {res.returncode}")
            (inc / m[1]).write_text("/* empty: option off */\n")
        else:
            raise _CompileFailed(f"more than {MAX_OPT_HEADERS} option headers wanted")
        try:
            return ELF64(obj).defined_globals()
        except ELFFormatError as e:
            raise _CompileFailed(str(e)) from None


class _CompileFailed(Exception):
    pass


def _amd64_path(rel: Path) -> bool:
    parts = rel.parts
    i = parts.index("arch")
    return i + 1 < len(parts) and parts[i + 1] in ("x86_64", "amd64", "x86")


__all__ = ["Derivation", "SymbolDeriver", "TARGET"]
