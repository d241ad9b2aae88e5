"""The patch phase: apply a package's patch series, strictly and in a fixed order.

The series is the `patch-*` files of `patches/<package>/`, in C-locale (byte) order: `a*` patches sync the
sources to the target OS and toolchain, `b*` add MPPE support, `c*` build the kernel module, `d*` are the
rest. Each patch is a pkgsrc patch: a `$NetBSD$` line, a paragraph saying why the patch exists, then a
unified diff with `--- file.orig` / `+++ file` headers applied with -p0 from the tree root.

Before anything is changed, every patch's header is checked and its SHA1 compared with distinfo. Each patch
then goes through GNU patch twice, first with --dry-run so that a patch that does not apply changes
nothing, with no fuzz and no chance of a prompt. A failure names the patch, the file and the hunk, and the
tree is left as it is for inspection.
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .distinfo import Distinfo, verify_patch
from .errors import HostToolError, PatchError
from .hosttools import require

PATCH_NAME = re.compile(r"patch-[a-z][a-z0-9]*")
LEFTOVER_SUFFIXES = (".orig", ".rej", "~")
PATCH_TIMEOUT = 600.0  # seconds; GNU patch takes well under one on our trees

# no fuzz, never prompt, no backups; -N turns "already applied" into a failure instead of a question
PATCH_COMMAND = ["patch", "-p0", "-F0", "-N", "-E", "--batch", "--no-backup-if-mismatch"]

_NETBSD_ID = re.compile(r"^\$NetBSD(: .*)?\$$")
_DIFF_START = ("--- ", "diff ", "Index: ", "@@ ")


# --- the series -------------------------------------------------------------------------------------------
def series(patch_dir: Path, include: str = "", exclude: str = "") -> list[Path]:
    """The patch-* files of patch_dir in C-locale order; `include`/`exclude` are fnmatch globs on names.

    Several globs may be given separated by spaces; an empty string means no filter. Subdirectories (such
    as `broken/`, holding negative controls) and hidden files are not part of the series. A missing
    patch_dir means the package has no patches.
    """
    if not patch_dir.exists():
        return []
    if not patch_dir.is_dir():
        raise PatchError(f"{patch_dir}: the patch directory is not a directory")
    patches = []
    for entry in sorted(patch_dir.iterdir(), key=c_locale_key):
        if entry.is_dir() or entry.name.startswith("."):
            continue
        check_patch_name(entry)
        patches.append(entry)
    return [p for p in patches if _selected(p.name, include, exclude)]


def split_series(patch_dir: Path, kernel_globs: str) -> tuple[list[Path], list[Path]]:
    """(patches for the source tree, patches for the kernel tree): the series split by the recipe's [kmod]
    profile_patches globs. The build and the pkgsrc export both split it here, so they cannot disagree."""
    if not kernel_globs.split():
        return series(patch_dir), []
    return series(patch_dir, exclude=kernel_globs), series(patch_dir, include=kernel_globs)


def c_locale_key(path: Path) -> bytes:
    """Sort key giving the order `LC_ALL=C ls` gives: by the bytes of the name."""
    return os.fsencode(path.name)


def check_patch_name(path: Path) -> None:
    name = path.name
    if name.endswith(LEFTOVER_SUFFIXES):
        raise PatchError(
            f"{path}: leftover file in the patch directory (a .orig, .rej or ~ file comes from running patch "
            f"or an editor by hand). Remove it: the directory must hold only the patch series.")
    if not PATCH_NAME.fullmatch(name):
        raise PatchError(
            f"{path}: {name!r} is not a patch name. The series holds files named patch-<letter> followed by "
            f"lower-case letters or digits (patch-aa, patch-ab, patch-b1, ...), applied in C-locale order "
            f"(a*: OS/toolchain sync, b*: MPPE, c*: kernel module, d*: misc). Rename it, or move it into a "
            f"subdirectory if it must not be applied.")


def _selected(name: str, include: str, exclude: str) -> bool:
    if include and not any(fnmatch.fnmatchcase(name, g) for g in include.split()):
        return False
    return not (exclude and any(fnmatch.fnmatchcase(name, g) for g in exclude.split()))


# --- one patch file ---------------------------------------------------------------------------------------
def check_header(path: Path) -> None:
    """Refuse a patch without the `$NetBSD$` line or without a comment before its diff."""
    lines = path.read_text(errors="replace").splitlines()
    if not lines or not _NETBSD_ID.match(lines[0].rstrip()):
        raise PatchError(
            f"{path}: patch {path.name} must start with a `$NetBSD$` line (pkgsrc patch format: `$NetBSD$`, "
            f"a blank line, a paragraph saying why the patch exists, a blank line, the diff)")
    comment = []
    for line in lines[1:]:
        if line.startswith(_DIFF_START):
            break
        if line.strip():
            comment.append(line)
    else:
        raise PatchError(f"{path}: patch {path.name} holds no unified diff (no `--- file.orig` line)")
    if not comment:
        raise PatchError(
            f"{path}: patch {path.name} has no comment saying why it exists; write a paragraph between the "
            f"`$NetBSD$` line and the diff (then run `buildtool makepatchsum`)")


def header_name(line: str) -> str:
    """The file a `--- ` or `+++ ` header line names: up to the tab before a timestamp, trimmed."""
    return line[4:].split("\t")[0].strip()


def diff_targets(lines: list[str]) -> list[str]:
    """The files a unified diff patches (its `+++` names), in order."""
    return [header_name(line) for line in lines if line.startswith("+++ ")]


def patch_targets(path: Path) -> list[str]:
    """The files a patch file patches."""
    return diff_targets(path.read_text(errors="replace").splitlines())


def hunk_lines(path: Path) -> dict[str, list[int]]:
    """For each file a patch touches (under its old and new names): the patch line of each hunk."""
    found: dict[str, list[int]] = {}
    names: list[str] = []
    for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if line.startswith("--- "):
            names = [header_name(line)]
        elif line.startswith("+++ "):
            names.append(header_name(line))
            for n in names:
                found.setdefault(n, [])
        elif line.startswith("@@ ") and names:
            for n in names:
                found[n].append(lineno)
    return found


# --- reading GNU patch's output ---------------------------------------------------------------------------
@dataclass
class Problem:
    """One thing GNU patch reported as wrong."""

    file: str
    what: str
    hunk: int = 0


_FILE = re.compile(r"^(?:checking|patching) file (.+)$")
_HUNK_FAILED = re.compile(r"^Hunk #(\d+) FAILED at (\d+)")
_NOT_FOUND = re.compile(r"^can't find file to patch at input line (\d+)")
_QUOTED_HEADER = re.compile(r"^\|((?:\+\+\+|---) .+)$")
_DANGEROUS = re.compile(r"^Ignoring potentially dangerous file name (.+)$")
_NOT_REGULAR = re.compile(r"^File (.+) is not a regular file")
_FATAL = re.compile(r"^patch: \*\*\*\* (.+)$")


def parse_problems(output: str) -> list[Problem]:
    problems: list[Problem] = []
    current = ""
    missing: Problem | None = None  # a "can't find file" whose name follows in the quoted header
    for line in output.splitlines():
        if m := _FILE.match(line):
            current, missing = _unquote(m[1]), None
        elif m := _HUNK_FAILED.match(line):
            problems.append(Problem(current, f"hunk #{m[1]} FAILED at {m[2]}", int(m[1])))
        elif "Reversed (or previously applied) patch detected" in line:
            problems.append(Problem(current, "reversed (or previously applied)"))
        elif m := _NOT_FOUND.match(line):
            missing = Problem("?", f"can't find file to patch (patch input line {m[1]})")
            problems.append(missing)
        elif missing is not None and (m := _QUOTED_HEADER.match(line)):
            # prefer the +++ name, which comes second
            missing.file = header_name(m[1])
        elif m := _DANGEROUS.match(line):
            problems.append(Problem(_unquote(m[1]), "potentially dangerous file name refused"))
        elif m := _NOT_REGULAR.match(line):
            problems.append(Problem(_unquote(m[1]), "not a regular file"))
        elif m := _FATAL.match(line):
            problems.append(Problem("", m[1]))
    return problems


def _unquote(name: str) -> str:
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "'\"":
        return name[1:-1]
    return name


def describe(patch: Path, problems: list[Problem], output: str) -> str:
    """One line per problem: 'patch-ab: hunk #2 FAILED at 118 in pppd/Makefile.linux (...)'."""
    if not problems:
        tail = "\n".join(f"    {line}" for line in output.strip().splitlines()[-10:])
        return f"  {patch.name}: GNU patch failed; its last words:\n{tail}"
    hunks = hunk_lines(patch)
    lines = []
    for p in problems:
        where = f" in {p.file}" if p.file else ""
        at = ""
        if p.hunk and p.hunk <= len(hunks.get(p.file, [])):
            at = f" (hunk at line {hunks[p.file][p.hunk - 1]} of {patch.name})"
        lines.append(f"  {patch.name}: {p.what}{where}{at}")
    return "\n".join(lines)


# --- applying ---------------------------------------------------------------------------------------------
@dataclass
class PatchRun:
    command: list[str]
    returncode: int
    output: str


def apply_series(patches: list[Path], info: Distinfo, tree: Path, log: Path, *,
                 timeout: float = PATCH_TIMEOUT) -> list[str]:
    """Verify each patch's SHA1 against distinfo, apply it with no fuzz; return the names applied."""
    if not tree.is_dir():
        raise PatchError(f"{tree}: the tree to patch does not exist; run `buildtool extract` first")
    _refuse_duplicates(patches)
    for p in patches:  # every check before the first change to the tree
        check_header(p)
        verify_patch(p, info)
    if not patches:
        return []
    require_gnu_patch()
    log.parent.mkdir(parents=True, exist_ok=True)
    applied: list[str] = []
    with log.open("a") as out:
        for p in patches:
            out.write(f"\n=== {p.name}: SHA1 matches distinfo; checking with --dry-run\n")
            trial = run_patch(p, tree, out, dry_run=True, timeout=timeout)
            if trial.returncode != 0:
                out.write(f"=== {p.name}: does not apply; stopped\n")
                raise PatchError(_not_applying(p, trial, tree, log, applied, info))
            real = run_patch(p, tree, out, dry_run=False, timeout=timeout)
            if real.returncode != 0:
                out.write(f"=== {p.name}: failed after a clean dry run; stopped\n")
                raise PatchError(_failed_for_real(p, real, tree, log, applied))
            applied.append(p.name)
        out.write(f"\n=== applied: {' '.join(applied)}\n")
    return applied


def _refuse_duplicates(patches: list[Path]) -> None:
    seen: dict[str, Path] = {}
    for p in patches:
        if p.name in seen:
            raise PatchError(f"patch {p.name} is in the series twice ({seen[p.name]} and {p}); "
                             f"patch names must be unique")
        seen[p.name] = p


def require_gnu_patch() -> None:
    """Our flags (--batch, --no-backup-if-mismatch, -F0) are GNU patch's."""
    require("patch")
    try:
        version = subprocess.run(["patch", "--version"], capture_output=True, text=True, timeout=30,
                                 stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        raise HostToolError(f"cannot run `patch --version`: {e}; install GNU patch: apt-get install patch"
                            ) from None
    if "GNU patch" not in version:
        raise HostToolError("the `patch` on PATH is not GNU patch; install it with: apt-get install patch")


def run_patch(patch: Path, tree: Path, out, *, dry_run: bool, timeout: float) -> PatchRun:
    """Run GNU patch once in `tree`, its output appended to `out` and returned."""
    cmd = [*PATCH_COMMAND, *(["--dry-run"] if dry_run else []), "-i", str(patch.resolve())]
    env = {k: v for k, v in os.environ.items() if k != "POSIXLY_CORRECT"}  # it changes how names are chosen
    env["LC_ALL"] = "C"
    out.write(f"$ (cd {tree} && {' '.join(cmd)})\n")
    out.flush()
    try:
        proc = subprocess.run(cmd, cwd=tree, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired:
        state = "unchanged (dry run)" if dry_run else f"possibly partly patched by {patch.name}"
        raise PatchError(f"{patch.name}: GNU patch did not finish within {timeout:.0f}s; the tree {tree} is "
                         f"{state}. Re-run `buildtool patch` to start again from pristine sources.") from None
    output = proc.stdout.decode(errors="replace")
    out.write(output)
    out.write(f"[exit status {proc.returncode}]\n")
    out.flush()
    return PatchRun(cmd, proc.returncode, output)


def _not_applying(patch: Path, run: PatchRun, tree: Path, log: Path, applied: list[str],
                  info: Distinfo) -> str:
    return "\n".join([
        f"patch {patch.name} does not apply to {tree}:",
        describe(patch, parse_problems(run.output), run.output),
        f"Nothing of {patch.name} was written (checked with --dry-run first); applied before it: "
        f"{', '.join(applied) or 'none'}.",
        f"The work tree is left as it is for inspection: {tree}",
        f"GNU patch's full output: {log}",
        f"Next: remake {patch} against the pristine sources (no fuzz is allowed), then run "
        f"`buildtool makepatchsum {info.path.parent.name}`.",
    ])


def _failed_for_real(patch: Path, run: PatchRun, tree: Path, log: Path, applied: list[str]) -> str:
    return "\n".join([
        f"patch {patch.name} passed its dry run but failed when applied to {tree}:",
        describe(patch, parse_problems(run.output), run.output),
        f"The tree may hold part of {patch.name} (applied before it: {', '.join(applied) or 'none'}); it is "
        f"left for inspection: {tree}",
        f"GNU patch's full output: {log}",
        "Next: check the disk (space, permissions) and re-run `buildtool patch`, which starts again from "
        "pristine sources.",
    ])
