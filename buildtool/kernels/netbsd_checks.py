"""Checks of a built NetBSD kernel module, each failing with a KernelError that names what is wrong.

- `check_elf`: an ELF64 little-endian relocatable object for x86-64 (what modload(8) links).
- `read_modinfo` / `check_modinfo`: the one `link_set_modules` entry points at a modinfo_t whose mi_name
  and mi_required are the expected strings (read through the object's relocations, as the kernel's
  linker would resolve them).
- `check_symbols`: every undefined symbol is defined by a module it requires (if_ppp.kmod built from the
  same tree) or by the kernel (netbsd_symbols derives that from the same tree's sources).
The compile-time checks (CCP_MAX_OPTION_LENGTH, struct compressor's size and offsets) are CTASSERTs in
the glue (kmod/mppe/netbsd/ppp_mppe.c): a tree that breaks them fails the build itself.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from ..elf import ELF64, EM_X86_64, ET_REL, ELFFormatError
from ..errors import KernelError
from .netbsd_symbols import SymbolDeriver

LINK_SET = "link_set_modules"
MI_NAME, MI_REQUIRED = 16, 24  # offsets in modinfo_t on LP64: u_int, int, modcmd pointer, name, required


def load(path: Path) -> ELF64:
    try:
        return ELF64(path)
    except (OSError, ELFFormatError, struct.error) as e:
        raise KernelError(f"{path}: cannot be read as an ELF64 object: {e}") from None


def check_elf(path: Path) -> ELF64:
    elf = load(path)
    if elf.type != ET_REL or elf.machine != EM_X86_64:
        raise KernelError(f"{path}: ELF type {elf.type} machine {elf.machine}; a NetBSD amd64 module is a "
                          f"relocatable object (type {ET_REL}) for x86-64 (machine {EM_X86_64})")
    return elf


@dataclass(frozen=True)
class ModInfo:
    name: str
    required: str | None


def read_modinfo(elf: ELF64) -> ModInfo:
    links = elf.section(LINK_SET)
    if links is None:
        raise KernelError(f"{elf.path}: no {LINK_SET} section: the source has no MODULE() declaration")
    if links.size != 8:
        raise KernelError(f"{elf.path}: {LINK_SET} holds {links.size // 8} entries; a module has exactly one")
    relocs = [r for r in elf.relocations(links) if r.offset == 0]
    if not relocs:
        raise KernelError(f"{elf.path}: the {LINK_SET} entry is not relocated to a modinfo record")
    r = relocs[0]
    record = elf.sections[r.symbol.shndx]
    base = r.symbol.value + r.addend
    name = elf.pointer_target_string(record, base + MI_NAME)
    if name is None:
        raise KernelError(f"{elf.path}: the modinfo record has no mi_name")
    return ModInfo(name, elf.pointer_target_string(record, base + MI_REQUIRED))


def check_modinfo(path: Path, name: str, required: str) -> ModInfo:
    info = read_modinfo(load(path))
    if info.name != name:
        raise KernelError(f"{path}: modinfo names the module {info.name!r}, expected {name!r} (if_ppp "
                          f"autoloads a module called {name!r} for CCP option 18)")
    if info.required != required:
        raise KernelError(f"{path}: modinfo requires {info.required!r}, expected {required!r}")
    return info


@dataclass
class SymbolReport:
    undefined: list[str]
    from_required: list[str]  # defined by the required module (if_ppp)
    from_kernel: dict[str, str]  # symbol -> kernel source file that defines it
    missing: dict[str, list[str]] = field(default_factory=dict)  # symbol -> candidate files tried
    module_defined: int = 0  # global symbols the module defines
    required_defined: int = 0  # global symbols the required module defines
    kernel_objects: int = 0  # kernel sources compiled for the derivation
    kernel_defined: int = 0  # global symbols those objects define

    def summary(self) -> str:
        return (f"{len(self.undefined)} undefined symbols: {len(self.from_required)} defined by if_ppp.kmod "
                f"({self.required_defined} globals), {len(self.from_kernel)} by the kernel (derived from "
                f"{self.kernel_objects} sources compiled, {self.kernel_defined} globals); the module defines "
                f"{self.module_defined} globals")


def check_symbols(module: Path, required: Path, deriver: SymbolDeriver) -> SymbolReport:
    mod, req = load(module), load(required)
    undefined = sorted(mod.undefined())
    req_defined = req.defined_globals()
    from_req = [s for s in undefined if s in req_defined]
    rest = [s for s in undefined if s not in req_defined]
    derived = deriver.derive(rest)
    report = SymbolReport(undefined, from_req, dict(sorted(derived.defined.items())),
                          {s: derived.tried.get(s, []) for s in rest if s not in derived.defined},
                          len(mod.defined_globals()), len(req_defined), len(derived.objects),
                          len(derived.kernel_symbols()))
    if report.missing:
        lines = []
        for sym, tried in report.missing.items():
            why = [f"{t} ({derived.failed[t]})" if t in derived.failed else f"{t} (does not define it)"
                   for t in tried]
            lines.append(f"  {sym}: " + ("; ".join(why) if why else "no source in the tree defines it"))
        raise KernelError(f"{module.name} needs symbols that neither {required.name} nor the kernel of "
                          f"{deriver.tree.sysdir} defines, so modload would refuse it:\n" + "\n".join(lines))
    return report
