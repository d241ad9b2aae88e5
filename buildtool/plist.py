"""PLIST files: the list of files a package installs, relative to PREFIX, in pkgsrc's format.

    @comment $NetBSD$
    sbin/pppd
    ${PLIST.kmod}lib/modules/${KVER}/extra/ppp_mppe.ko

`@comment` lines are ignored. A line starting with `${PLIST.<option>}` is kept only when that option is on
(pkgsrc's PLIST_VARS). Any other `${VAR}` is replaced from the PLIST variables (pkgsrc's PLIST_SUBST).
Besides PLIST, a recipe may hold `PLIST.<OPSYS>` (e.g. PLIST.Linux) with the files only that OS installs;
pkgsrc reads the same pair.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import RecipeError

_OPTION = re.compile(r"^\$\{PLIST\.(?P<option>[A-Za-z0-9_.-]+)\}")
_VAR = re.compile(r"\$\{(?P<name>[^}]*)\}")


@dataclass(frozen=True)
class PlistEntry:
    """One file line, before substitution: the raw path template and the option guarding it (if any)."""

    path: str
    option: str | None
    lineno: int

    @property
    def raw(self) -> str:
        """The line as pkgsrc writes it."""
        return f"${{PLIST.{self.option}}}{self.path}" if self.option else self.path


def plist_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, line) of each line of a PLIST that is not blank or an @comment, as written."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise RecipeError(f"{path}: PLIST is missing") from None
    return [(n, line) for n, line in enumerate(lines, 1) if line.strip() and not line.startswith("@comment")]


def split_guard(line: str) -> tuple[str | None, str]:
    """(the option of a leading `${PLIST.<option>}` guard or None, the rest of the line)."""
    m = _OPTION.match(line)
    return (m["option"], line[m.end():]) if m else (None, line)


def parse_plist(path: Path) -> list[PlistEntry]:
    """The file lines of a PLIST (comments dropped), unsubstituted."""
    entries = []
    for lineno, line in plist_lines(path):
        if line.startswith("@"):
            raise RecipeError(f"{path}:{lineno}: unsupported PLIST directive {line.split()[0]!r} "
                              "(only @comment is allowed; modes come from [plist] modes)")
        option, line = split_guard(line)
        if line.startswith("/") or ".." in line.split("/"):
            raise RecipeError(f"{path}:{lineno}: PLIST paths are relative to PREFIX, inside it: {line!r}")
        entries.append(PlistEntry(line, option, lineno))
    return entries


def substitute(entry: PlistEntry, source: Path, variables: dict[str, str]) -> str:
    def value(m: re.Match[str]) -> str:
        name = m["name"]
        if name not in variables:
            raise RecipeError(f"{source}:{entry.lineno}: unknown PLIST variable ${{{name}}} "
                              f"(known: {', '.join(sorted(variables)) or 'none'})")
        return variables[name]

    return _VAR.sub(value, entry.path)


def read_plist(path: Path, variables: dict[str, str], options: dict[str, bool]) -> list[str]:
    """The paths a PLIST lists for these options, with variables substituted, in file order."""
    paths = []
    for entry in parse_plist(path):
        if entry.option is not None:
            if entry.option not in options:
                raise RecipeError(f"{path}:{entry.lineno}: unknown PLIST option ${{PLIST.{entry.option}}} "
                                  f"(known: {', '.join(sorted(options)) or 'none'})")
            if not options[entry.option]:
                continue
        paths.append(substitute(entry, path, variables))
    return paths


def plist_sources(recipe_dir: Path, opsys: str) -> list[Path]:
    """PLIST and, when present, PLIST.<opsys>: the files read for a build on that OS."""
    sources = [recipe_dir / "PLIST"]
    per_os = recipe_dir / f"PLIST.{opsys}"
    if per_os.exists():
        sources.append(per_os)
    return sources


def read_plists(sources: list[Path], variables: dict[str, str], options: dict[str, bool]) -> list[str]:
    """Concatenate several PLISTs (PLIST then PLIST.<OPSYS>); a path listed twice is an error."""
    seen: dict[str, Path] = {}
    paths = []
    for source in sources:
        for p in read_plist(source, variables, options):
            if p in seen:
                raise RecipeError(f"{source}: {p} is already listed in {seen[p]}")
            seen[p] = source
            paths.append(p)
    return paths
