"""Just enough ELF64 (little-endian) reading to check a kernel module: header, sections, symbols, RELA.

Used by the NetBSD module checks (the module's type and machine, its symbol table, and the modinfo record
whose pointers are filled in by relocations in a relocatable object).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

ET_REL = 1
EM_X86_64 = 62
SHT_SYMTAB = 2
SHT_RELA = 4
SHN_UNDEF = 0
STB_LOCAL = 0
R_X86_64_64 = 1


class ELFFormatError(ValueError):
    pass


@dataclass(frozen=True)
class Section:
    index: int
    name: str
    type: int
    offset: int
    size: int
    link: int
    info: int
    entsize: int


@dataclass(frozen=True)
class Symbol:
    name: str
    value: int
    size: int
    bind: int
    type: int
    shndx: int

    @property
    def defined(self) -> bool:
        return self.shndx != SHN_UNDEF

    @property
    def is_global(self) -> bool:
        return self.bind != STB_LOCAL


@dataclass(frozen=True)
class Rela:
    offset: int
    type: int
    symbol: Symbol
    addend: int


class ELF64:
    def __init__(self, path: Path):
        self.path = path
        self.data = path.read_bytes()
        d = self.data
        if d[:4] != b"\x7fELF":
            raise ELFFormatError(f"{path}: not an ELF file (magic {d[:4]!r})")
        self.elf_class, self.endian = d[4], d[5]
        if self.elf_class != 2 or self.endian != 1:
            raise ELFFormatError(f"{path}: ELF class {self.elf_class}, data {self.endian}; expected ELF64 "
                                 f"little-endian (class 2, data 1)")
        (self.type, self.machine, _v, _entry, _phoff, shoff, _flags, _ehsize, _phes, _phnum, shentsize, shnum,
         shstrndx) = struct.unpack_from("<HHIQQQIHHHHHH", d, 16)
        raw = [struct.unpack_from("<IIQQQQIIQQ", d, shoff + i * shentsize) for i in range(shnum)]
        names = raw[shstrndx]
        self.sections = [Section(i, self._cstr(names[4] + r[0]), r[1], r[4], r[5], r[6], r[7], r[9])
                         for i, r in enumerate(raw)]
        self._symbols: list[Symbol] | None = None

    def _cstr(self, offset: int) -> str:
        end = self.data.index(b"\0", offset)
        return self.data[offset:end].decode(errors="replace")

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def symbols(self) -> list[Symbol]:
        if self._symbols is None:
            tab = next((s for s in self.sections if s.type == SHT_SYMTAB), None)
            self._symbols = []
            if tab is not None:
                strtab = self.sections[tab.link]
                for i in range(tab.size // 24):
                    name, info, _other, shndx, value, size = struct.unpack_from("<IBBHQQ", self.data,
                                                                                tab.offset + i * 24)
                    self._symbols.append(Symbol(self._cstr(strtab.offset + name) if name else "", value, size,
                                                info >> 4, info & 0xF, shndx))
        return self._symbols

    def undefined(self) -> set[str]:
        return {s.name for s in self.symbols() if not s.defined and s.name}

    def defined_globals(self) -> set[str]:
        return {s.name for s in self.symbols() if s.defined and s.is_global and s.name}

    def relocations(self, target: Section) -> list[Rela]:
        """RELA entries that patch section `target`."""
        syms = self.symbols()
        out = []
        for sec in self.sections:
            if sec.type == SHT_RELA and sec.info == target.index:
                for i in range(sec.size // 24):
                    offset, info, addend = struct.unpack_from("<QQq", self.data, sec.offset + i * 24)
                    out.append(Rela(offset, info & 0xFFFFFFFF, syms[info >> 32], addend))
        return out

    def pointer_target_string(self, section: Section, offset: int) -> str | None:
        """The C string an 8-byte pointer at `section`+`offset` points to, via its R_X86_64_64 relocation
        (symbol + addend into a string section); None if no relocation fills that pointer (a NULL)."""
        for r in self.relocations(section):
            if r.offset == offset and r.type == R_X86_64_64:
                dest = self.sections[r.symbol.shndx]
                return self._cstr(dest.offset + r.symbol.value + r.addend)
        return None
