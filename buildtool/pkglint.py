"""Checks modelled on pkglint's main rules, run over an exported pkgsrc package directory.

Each check returns a list of problems (empty when the directory passes); the tests run them all.
They are our own reading of pkgsrc's conventions, not pkglint itself (which is not packaged for Debian).
"""

from __future__ import annotations

import re
import shlex
import tarfile
from pathlib import Path

from .distinfo import DISTFILE_LINES, parse_line, patch_sha1
from .patch import diff_targets, patch_targets
from .plist import plist_lines, split_guard

REQUIRED_FILES = ("Makefile", "DESCR", "PLIST", "distinfo")
# Makefile variables of the header paragraphs, in the order pkglint wants them.
HEADER_ORDER = (("DISTNAME", "PKGNAME", "PKGREVISION", "CATEGORIES", "MASTER_SITES", "DISTFILES",
                 "EXTRACT_SUFX"), ("MAINTAINER", "HOMEPAGE", "COMMENT", "LICENSE"))
REQUIRED_VARS = ("DISTNAME", "CATEGORIES", "MASTER_SITES", "MAINTAINER", "HOMEPAGE", "COMMENT", "LICENSE")
# Idioms too new for the pkgsrc trees this package must still work in.
TOO_NEW = ("USE_CC_FEATURES", "USE_CXX_FEATURES", "FORCE_C_STD", "FORCE_CXX_STD", "SUBST_NOOP_OK")
_ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_.+-]*?)\s*[+?:!]?=")
# The install macros of pkgsrc's mk/ (each `${INSTALL} -c -o ... -m ...`) and the options taking a value.
INSTALL_MACROS = ("${INSTALL_DATA}", "${INSTALL_SCRIPT}", "${INSTALL_PROGRAM}", "${INSTALL_MAN}",
                  "${INSTALL_LIB}")
_INSTALL_VALUE_OPTIONS = ("-m", "-o", "-g")
_DEST_PREFIX = "${DESTDIR}${PREFIX}/"
# Where upstream's `make install` never writes: every PLIST file there must come from an install line.
PACKAGE_ONLY_DIRS = ("share/examples/",)


def check_required_files(pkgdir: Path) -> list[str]:
    problems = [f"{pkgdir}: {name} is missing" for name in REQUIRED_FILES if not (pkgdir / name).is_file()]
    makefile = pkgdir / "Makefile"
    if makefile.is_file() and '.include "options.mk"' in makefile.read_text() \
            and not (pkgdir / "options.mk").is_file():
        problems.append(f"{pkgdir}: Makefile includes options.mk, which is missing")
    return problems


def check_headers(pkgdir: Path) -> list[str]:
    """Every file starts with its RCS id line in the form pkgsrc uses for that file."""
    first_lines = {"Makefile": "# $NetBSD$", "options.mk": "# $NetBSD$", "buildlink3.mk": "# $NetBSD$",
                   "PLIST": "@comment $NetBSD$", "distinfo": "$NetBSD$"}
    problems = []
    for path in sorted(pkgdir.glob("PLIST.*")):
        first_lines[path.name] = "@comment $NetBSD$"
    for name, want in first_lines.items():
        path = pkgdir / name
        if path.is_file() and path.read_text().splitlines()[:1] != [want]:
            problems.append(f"{path}: the first line must be {want!r}")
    distinfo = pkgdir / "distinfo"
    if distinfo.is_file() and distinfo.read_text().splitlines()[1:2] != [""]:
        problems.append(f"{distinfo}: the second line must be empty")
    message = pkgdir / "MESSAGE"
    if message.is_file():
        lines = message.read_text().splitlines()
        framed = len(lines) >= 4 and set(lines[0]) == {"="} and set(lines[-1]) == {"="}
        if not framed or lines[1] != "$NetBSD$":
            problems.append(f"{message}: must be framed by '=' lines with $NetBSD$ on the second line")
    return problems


def patch_problems(patch: Path) -> list[str]:
    """A patch: $NetBSD$, blank, a comment saying why, blank, then a unified diff (one file, -p0 paths)."""
    lines = patch.read_text().splitlines()
    if lines[:2] != ["$NetBSD$", ""]:
        return [f"{patch}: must start with '$NetBSD$' and an empty line"]
    try:
        diff_start = next(i for i, line in enumerate(lines) if line.startswith("--- "))
    except StopIteration:
        return [f"{patch}: no unified diff ('--- ' line) found"]
    comment = lines[2:diff_start]
    problems = []
    if not comment or not comment[0].strip() or comment[-1] != "":
        problems.append(f"{patch}: needs a comment saying why the patch exists, between empty lines, "
                        "before the diff")
    if any(line.startswith(("diff ", "Index:", "===")) for line in comment):
        problems.append(f"{patch}: the comment holds diff or VCS headers; keep only the explanation")
    targets = diff_targets(lines)
    if len(targets) != 1:
        problems.append(f"{patch}: patches one file per patch as pkgdiff does, found {len(targets)}")
    for t in targets:
        if t.startswith(("/", "a/", "b/")) or ".." in t.split("/"):
            problems.append(f"{patch}: target {t!r} is not a -p0 path inside WRKSRC")
    if not any(line.startswith("@@ ") for line in lines):
        problems.append(f"{patch}: no hunks")
    return problems


def check_patches(pkgdir: Path) -> list[str]:
    problems = []
    patch_dir = pkgdir / "patches"
    if patch_dir.is_dir():
        for p in sorted(patch_dir.iterdir()):
            if not re.fullmatch(r"patch-[a-z0-9][a-z0-9_.-]*", p.name):
                problems.append(f"{p}: files in patches/ must be named patch-*")
                continue
            problems += patch_problems(p)
    return problems


def distfile_files(distfile: Path, wrksrc: str) -> set[str]:
    """The regular files of a tar distfile under its WRKSRC directory, relative to WRKSRC."""
    prefix = wrksrc.strip("/") + "/"
    with tarfile.open(distfile) as tar:
        return {m.name.removeprefix("./")[len(prefix):] for m in tar.getmembers()
                if m.isfile() and m.name.removeprefix("./").startswith(prefix)}


def patch_target_problems(patches: list[Path], files: set[str]) -> list[str]:
    """A patch whose target is not in the distfile makes patch(1) prompt "File to patch:", and pkgsrc's
    patch stage then waits forever: each such patch is a problem."""
    return [f"{p.name}: target {t} is not in the distfile's WRKSRC"
            for p in patches for t in patch_targets(p) if t not in files]


def check_distinfo(pkgdir: Path) -> list[str]:
    """distinfo's patch lines match patches/ exactly (SHA1 with $NetBSD lines removed); distfile lines
    come as BLAKE2s, SHA512, Size."""
    distinfo = pkgdir / "distinfo"
    if not distinfo.is_file():
        return []
    problems = []
    recorded: dict[str, str] = {}
    per_file: dict[str, list[str]] = {}
    for line in distinfo.read_text().splitlines()[2:]:
        parsed = parse_line(line)
        if parsed is None:
            problems.append(f"{distinfo}: not a distinfo line: {line!r}")
        elif parsed.is_patch:
            recorded[parsed.name] = parsed.value
        else:
            per_file.setdefault(parsed.name, []).append(parsed.alg)
    for name, algs in per_file.items():
        if algs != list(DISTFILE_LINES):
            problems.append(f"{distinfo}: {name} has {algs}, pkgsrc writes {', '.join(DISTFILE_LINES)}")
    patch_dir = pkgdir / "patches"
    patches = {p.name: p for p in sorted(patch_dir.glob("patch-*"))} if patch_dir.is_dir() else {}
    if list(recorded) != sorted(recorded):
        problems.append(f"{distinfo}: patch lines are not sorted by name")
    for name in sorted(set(patches) - set(recorded)):
        problems.append(f"{distinfo}: no SHA1 line for patches/{name}")
    for name in sorted(set(recorded) - set(patches)):
        problems.append(f"{distinfo}: SHA1 line for {name}, which is not in patches/")
    for name in sorted(set(recorded) & set(patches)):
        if patch_sha1(patches[name]) != recorded[name]:
            problems.append(f"{distinfo}: SHA1 of {name} does not match the patch (run makepatchsum)")
    return problems


def plist_paths(path: Path) -> list[str]:
    """A PLIST's entries as written (with ${PLIST.x} guards), comments dropped."""
    return [line for _, line in plist_lines(path)]


def check_plists(pkgdir: Path) -> list[str]:
    problems = []
    seen: dict[str, Path] = {}
    for path in sorted(pkgdir.glob("PLIST*")):
        entries = plist_paths(path)
        keys = [split_guard(e)[1] for e in entries]
        if keys != sorted(keys):
            problems.append(f"{path}: entries are not sorted")
        for e, key in zip(entries, keys, strict=True):
            if e.startswith("@"):
                problems.append(f"{path}: directive {e.split()[0]} where only paths are expected")
            if key.startswith("/"):
                problems.append(f"{path}: {e} must be relative to PREFIX")
            if key in seen:
                problems.append(f"{path}: {key} is also listed in {seen[key].name}")
            seen[key] = path
    return problems


def install_lines(pkgdir: Path) -> list[tuple[str, list[str], str]]:
    """(file:line, sources, destination relative to PREFIX) for each ${INSTALL_*} command line of the
    Makefile and the *.mk files; the destination is the last word and must start with ${DESTDIR}${PREFIX}/."""
    out = []
    for path in [pkgdir / "Makefile", *sorted(pkgdir.glob("*.mk"))]:
        if not path.is_file():
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if not line.startswith("\t"):
                continue
            words = shlex.split(line.replace("${RUN}", "", 1), posix=False)
            if not words or words[0] not in INSTALL_MACROS:
                continue
            args, skip = [], False
            for w in words[1:]:
                if skip:
                    skip = False
                elif w in _INSTALL_VALUE_OPTIONS:
                    skip = True
                elif not w.startswith("-"):
                    args.append(w)
            out.append((f"{path.name}:{i}", args[:-1], args[-1] if args else ""))
    return out


def installed_by_makefile(pkgdir: Path) -> tuple[set[str], list[str]]:
    """(paths relative to PREFIX the install lines create, problems with those lines). With one source the
    destination is the file when its last component is the source's name, else the directory."""
    paths: set[str] = set()
    problems = []
    for where, sources, dest in install_lines(pkgdir):
        if not dest.startswith(_DEST_PREFIX) or not sources:
            problems.append(f"{pkgdir}/{where}: an install line needs sources and a destination under "
                            f"{_DEST_PREFIX}")
            continue
        dest = dest[len(_DEST_PREFIX):].rstrip("/")
        if len(sources) == 1 and dest.rsplit("/", 1)[-1] == sources[0].rsplit("/", 1)[-1]:
            paths.add(dest)
        else:
            paths.update(f"{dest}/{s.rsplit('/', 1)[-1]}" for s in sources)
    return paths, problems


def check_installed(pkgdir: Path) -> list[str]:
    """Every PLIST file under share/examples/ (where upstream's install never writes) is installed by an
    install line, and every file an install line names (without variables) is in a PLIST."""
    installed, problems = installed_by_makefile(pkgdir)
    listed = {split_guard(e)[1] for path in sorted(pkgdir.glob("PLIST*")) for e in plist_paths(path)}
    for entry in sorted(listed):
        if entry.startswith(PACKAGE_ONLY_DIRS) and entry not in installed:
            problems.append(f"{pkgdir}: the PLIST lists {entry}, which no install line of the Makefile "
                            "installs")
    for path in sorted(installed):
        if "${" not in path and path not in listed:
            problems.append(f"{pkgdir}: the Makefile installs {path}, which no PLIST lists")
    return problems


def makefile_assignments(text: str) -> list[tuple[int, str]]:
    """(paragraph number, variable) for each assignment outside conditionals and targets."""
    out = []
    paragraph = 0
    for line in text.splitlines():
        if not line.strip():
            paragraph += 1
            continue
        m = _ASSIGN.match(line)
        if m:
            out.append((paragraph, m[1]))
    return out


def check_makefile(pkgdir: Path) -> list[str]:
    makefile = pkgdir / "Makefile"
    if not makefile.is_file():
        return []
    text = makefile.read_text()
    problems = []
    assigned = makefile_assignments(text)
    names = [n for _, n in assigned]
    for var in REQUIRED_VARS:
        if var not in names:
            problems.append(f"{makefile}: {var} is not set")
    for number, group in enumerate(HEADER_ORDER):
        seen = [(p, n) for p, n in assigned if n in group]
        order = [n for _, n in seen]
        if order != sorted(order, key=group.index):
            problems.append(f"{makefile}: {', '.join(order)} are out of order (want {', '.join(group)})")
        if len({p for p, _ in seen}) > 1:
            problems.append(f"{makefile}: {', '.join(order)} must form one paragraph")
        if seen and number == 1:
            first_group = [p for p, n in assigned if n in HEADER_ORDER[0]]
            if first_group and seen[0][0] <= max(first_group):
                problems.append(f"{makefile}: MAINTAINER... must come in the paragraph after DISTNAME...")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or lines[-1] != '.include "../../mk/bsd.pkg.mk"':
        problems.append(f'{makefile}: the last line must be .include "../../mk/bsd.pkg.mk"')
    for path in [makefile, *sorted(pkgdir.glob("*.mk"))]:
        for idiom in TOO_NEW:
            if re.search(rf"\b{idiom}\b", path.read_text()):
                problems.append(f"{path}: uses {idiom}, too new for older pkgsrc trees")
    for path in [makefile, *sorted(pkgdir.glob("*.mk"))]:
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if line.rstrip() != line:
                problems.append(f"{path}:{i}: trailing white space")
    return problems


def lint(pkgdir: Path) -> list[str]:
    """All checks over one package directory."""
    return (check_required_files(pkgdir) + check_headers(pkgdir) + check_patches(pkgdir)
            + check_distinfo(pkgdir) + check_plists(pkgdir) + check_makefile(pkgdir)
            + check_installed(pkgdir))
