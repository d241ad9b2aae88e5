"""pkgsrc-style distinfo: read, compute, verify, write.

Format, as pkgsrc's `make distinfo` writes it:

    $NetBSD$

    BLAKE2s (ppp-2.4.9.tar.gz) = <hex>
    SHA512 (ppp-2.4.9.tar.gz) = <hex>
    Size (ppp-2.4.9.tar.gz) = 716165 bytes
    SHA1 (patch-aa) = <hex>

Patch hashes are SHA1 over the patch with every line containing `$NetBSD` removed (pkgsrc does this so the
RCS id line can change without changing the checksum).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ChecksumError, RecipeError
from .fsutil import file_digest, write_if_changed

DISTFILE_ALGORITHMS = ("BLAKE2s", "SHA512")  # the hashes of a distfile, in the order pkgsrc writes them
DISTFILE_LINES = (*DISTFILE_ALGORITHMS, "Size")  # a distfile's lines, in order
_HASHLIB_NAME = {"BLAKE2s": "blake2s", "SHA512": "sha512", "SHA1": "sha1", "SHA256": "sha256"}
_LINE = re.compile(r"^(?P<alg>[A-Za-z0-9]+) \((?P<name>[^)]+)\) = (?P<value>.+)$")


@dataclass(frozen=True)
class DistinfoLine:
    """One `ALG (name) = value` line."""

    alg: str
    name: str
    value: str

    @property
    def is_patch(self) -> bool:
        """A patch's SHA1 (pkgsrc's `makepatchsum`), not one of a distfile's lines."""
        return self.alg == "SHA1" and self.name.startswith("patch-")


def parse_line(line: str) -> DistinfoLine | None:
    """The line's parts, or None when it is not an `ALG (name) = value` line."""
    m = _LINE.match(line)
    return DistinfoLine(m["alg"], m["name"], m["value"]) if m else None


@dataclass
class DistfileSum:
    name: str
    size: int
    hashes: dict[str, str]  # algorithm name as distinfo spells it -> lower-case hex


@dataclass
class Distinfo:
    path: Path
    distfiles: dict[str, DistfileSum] = field(default_factory=dict)
    patches: dict[str, str] = field(default_factory=dict)  # patch name -> SHA1

    def distfile(self, name: str) -> DistfileSum:
        try:
            return self.distfiles[name]
        except KeyError:
            raise ChecksumError(
                f"{self.path}: no checksum entry for distfile {name}; refusing to use an unchecked file.\n"
                f"If the recipe is right, run: buildtool makesum {self.path.parent.name}") from None

    def patch_sum(self, name: str) -> str:
        try:
            return self.patches[name]
        except KeyError:
            raise ChecksumError(
                f"{self.path}: no SHA1 entry for patch {name}; refusing to apply an unchecked patch.\n"
                f"If the patch is intended, run: buildtool makepatchsum {self.path.parent.name}") from None


def read_distinfo(path: Path) -> Distinfo:
    if not path.exists():
        raise RecipeError(f"{path}: distinfo is missing (run: buildtool makesum {path.parent.name})")
    info = Distinfo(path=path)
    sizes: dict[str, int] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("$NetBSD"):
            continue
        parsed = parse_line(line)
        if parsed is None:
            raise RecipeError(f"{path}:{lineno}: not a distinfo line: {line!r}")
        alg, name, value = parsed.alg, parsed.name, parsed.value
        if alg == "Size":
            size = re.fullmatch(r"(\d+) bytes", value.strip())
            if not size:
                raise RecipeError(f"{path}:{lineno}: key 'Size ({name})' must be a whole number of bytes "
                                  f"such as '716165 bytes', got {value!r}; fix the line or regenerate it "
                                  f"with: buildtool makesum {path.parent.name}")
            sizes[name] = int(size[1])
        elif parsed.is_patch:
            info.patches[name] = value.lower()
        else:
            entry = info.distfiles.setdefault(name, DistfileSum(name, -1, {}))
            entry.hashes[alg] = value.lower()
    for name, size in sizes.items():
        info.distfiles.setdefault(name, DistfileSum(name, -1, {})).size = size
    for entry in info.distfiles.values():
        if entry.size < 0 or not entry.hashes:
            raise RecipeError(f"{path}: distfile {entry.name} needs both a Size and at least one hash line")
    return info


def patch_sha1(path: Path) -> str:
    """SHA1 of a patch with its `$NetBSD` lines removed, as pkgsrc computes it."""
    kept = [line for line in path.read_bytes().splitlines(keepends=True) if b"$NetBSD" not in line]
    return hashlib.sha1(b"".join(kept)).hexdigest()


def distfile_sum(path: Path, name: str | None = None) -> DistfileSum:
    return DistfileSum(
        name=name or path.name,
        size=path.stat().st_size,
        hashes={alg: file_digest(path, _HASHLIB_NAME[alg]) for alg in DISTFILE_ALGORITHMS},
    )


def verify_distfile(path: Path, expected: DistfileSum) -> None:
    """Raise ChecksumError naming the file, the expected and the actual size and hashes if `path` does not
    match (all of them: a wrong size alone would not say which file it is instead)."""
    size = path.stat().st_size
    wrong = [] if size == expected.size else [f"size mismatch: expected {expected.size} bytes, got {size}"]
    for alg, want in sorted(expected.hashes.items()):
        got = file_digest(path, _HASHLIB_NAME[alg])
        if got != want:
            wrong.append(f"{alg} mismatch:\n  expected {want}\n  actual   {got}")
    if wrong:
        raise ChecksumError(f"{expected.name} ({path}) does not match distinfo:\n" + "\n".join(wrong))


def verify_patch(path: Path, info: Distinfo) -> None:
    want = info.patch_sum(path.name)
    got = patch_sha1(path)
    if got != want:
        raise ChecksumError(
            f"SHA1 mismatch for patch {path.name} ({path}):\n  expected {want}\n  actual   {got}\n"
            f"If the change to the patch is intended, run: buildtool makepatchsum {info.path.parent.name}")


def format_distinfo(distfiles: list[DistfileSum], patches: dict[str, str]) -> str:
    lines = ["$NetBSD$", ""]
    for d in sorted(distfiles, key=lambda d: d.name):
        for alg in DISTFILE_ALGORITHMS:
            lines.append(f"{alg} ({d.name}) = {d.hashes[alg]}")
        lines.append(f"Size ({d.name}) = {d.size} bytes")
    for name in sorted(patches):
        lines.append(f"SHA1 ({name}) = {patches[name]}")
    return "\n".join(lines) + "\n"


def write_distinfo(path: Path, distfiles: list[DistfileSum], patches: dict[str, str]) -> bool:
    """Write distinfo through a temporary file; leave it untouched when nothing changed."""
    return write_if_changed(path, format_distinfo(distfiles, patches))
