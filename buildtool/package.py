"""The package phase: a pkgsrc binary package (.tgz) from a staged install and the recipe's PLIST.

The archive holds, in pkg_create's order, +CONTENTS, +COMMENT, +DESC, +DISPLAY (when the recipe has a
message), +BUILD_INFO, +SIZE_PKG, then the files in PLIST order, paths relative to PREFIX (`@cwd`).
Builds are reproducible: every member is owned by root:wheel with mtime SOURCE_DATE_EPOCH (environment;
0 when unset), the gzip header carries that mtime and no file name, and modes do not depend on the umask.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import platform
import re
import stat
import tarfile
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

from .errors import DISK_ERRNOS, RecipeError, UsageError, disk_error
from .fsutil import atomic_path, text_digest
from .layout import PREFIX
from .plist import plist_sources, read_plists
from .recipe import Recipe
from .templating import render, template_env

OWNER, GROUP = "root", "wheel"
META_MODE = 0o644
SECRET_MODE = 0o600
# Files holding passwords or keys: readable by root only unless the recipe says otherwise in [plist] modes.
SECRET_PATTERNS = ("*-secrets", "*.key")
# Members pkg_create lists after the files as `@ignore` entries (metadata, not installed).
IGNORED_META = ("+BUILD_INFO", "+SIZE_PKG")
REQUIRED_META = ("+CONTENTS", "+COMMENT", "+DESC", "+BUILD_INFO", "+SIZE_PKG")


@dataclass(frozen=True)
class PackedFile:
    path: str  # relative to PREFIX
    source: Path
    mode: int
    md5: str
    size: int
    target: str | None = None  # symlink target; None for a regular file

    @property
    def mode_line(self) -> str:
        """The `@mode` value pkgsrc would write, or "" for the ordinary 0644/0755 (and symlinks)."""
        if self.target is not None or self.mode in (0o644, 0o755):
            return ""
        return f"{self.mode:04o}"


# pkg_install version data: pkg_add warns "package lacks pkg_install version data" without it and refuses a
# package that asks for newer tools than its own. pkgsrc writes PKGTOOLS_VERSION_REQD, the oldest pkg_install
# that understands the package format (mk/pkgformat/pkg/pkgformat-vars.mk; 20091115 in 2014Q1 as today).
PKGTOOLS_VERSION = "20091115"


def writer_digest() -> str:
    """The package writer itself (this module and its templates): part of the package phase's key, so a
    change of the package format (e.g. +BUILD_INFO's PKGTOOLS_VERSION) repackages existing builds."""
    here = Path(__file__).resolve()
    parts = [here, *sorted((here.parent / "templates" / "package").glob("*"))]
    return text_digest(b"".join(p.name.encode() + b"\0" + p.read_bytes() for p in parts))


def source_date_epoch(environ: Mapping[str, str]) -> int:
    """SOURCE_DATE_EPOCH from the environment (reproducible-builds.org), 0 when unset."""
    raw = environ.get("SOURCE_DATE_EPOCH", "")
    if raw == "":
        return 0
    if not raw.isdigit():
        raise UsageError(f"SOURCE_DATE_EPOCH must be a non-negative whole number of seconds, got {raw!r}")
    return int(raw)


def machine_arch() -> str:
    """MACHINE_ARCH as pkgsrc spells it on Linux."""
    machine = platform.machine() or "unknown"
    return "i386" if re.fullmatch(r"i[3-6]86", machine) else machine


def os_version(kernel: str) -> str:
    """OS_VERSION: the kernel profile's version (6.1, 10, 1.4.1), else the host's release (e.g. 6.1.0)."""
    from .kernels import PROFILES

    for p in PROFILES:
        if p.name == kernel:
            return p.version
    return re.match(r"[0-9.]*", platform.release())[0].rstrip(".") or "unknown"


def opsys(kernel: str) -> str:
    """OPSYS: the system of the kernel profile the package is built for, else the host's."""
    from .kernels import PROFILES

    for p in PROFILES:
        if p.name == kernel:
            return p.opsys
    return platform.system() or "Linux"


def default_build_info(recipe: Recipe, kernel: str,
                       environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """+BUILD_INFO: what pkgsrc records about a build, kept deterministic (no host name, no wall clock)."""
    epoch = source_date_epoch(os.environ if environ is None else environ)
    # a package with kernel modules is for the kernel profile's system; the others are for this host's
    host = platform.system() or "Linux"
    target_kernel = kernel if recipe.kernel_patches or opsys(kernel) == host else ""
    return {
        "BUILD_DATE": time.strftime("%Y-%m-%d %H:%M:%S +0000", time.gmtime(epoch)),
        "CATEGORIES": " ".join(recipe.categories),
        "HOMEPAGE": recipe.homepage,
        "KERNEL_PROFILE": kernel,
        "LICENSE": recipe.license,
        "LOCALBASE": PREFIX,
        "MACHINE_ARCH": machine_arch(),
        "OPSYS": opsys(target_kernel),
        "OS_VERSION": os_version(target_kernel),
        "PKGPATH": recipe.pkgpath,
        "PKGTOOLS_VERSION": PKGTOOLS_VERSION,
    }


def pkgdeps(recipe: Recipe, recipes: Mapping[str, Recipe]) -> list[str]:
    """`@pkgdep` patterns: one `name>=version` per dependency that is itself packaged."""
    deps = []
    for name in recipe.depends:
        dep = recipes.get(name)
        if dep is None:
            raise RecipeError(f"{recipe.toml_path}: depends on {name!r}, which is not a loaded recipe")
        if dep.packaged:
            deps.append(f"{dep.name}>={dep.version}")
    return deps


def _stage_files(stage_prefix: Path) -> set[str]:
    """Every regular file and symlink under the stage, relative to it; other file types are errors."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(stage_prefix):
        for name in [*filenames, *(d for d in dirnames if (Path(dirpath) / d).is_symlink())]:
            p = Path(dirpath) / name
            st = p.lstat()
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                raise RecipeError(f"{p}: neither a regular file nor a symlink; a package cannot carry it")
            found.add(p.relative_to(stage_prefix).as_posix())
    return found


def check_stage(plist: list[str], stage_prefix: Path, sources: list[Path]) -> None:
    """pkgsrc's check-files: the PLIST and the staged files must match exactly."""
    if not stage_prefix.is_dir():
        raise RecipeError(f"{stage_prefix}: staged install is missing (run the build phase first)")
    staged = _stage_files(stage_prefix)
    listed = set(plist)
    names = " + ".join(str(s) for s in sources)
    missing = [p for p in plist if p not in staged]
    if missing:
        raise RecipeError(f"{names}: {len(missing)} file(s) listed but not installed under {stage_prefix}:\n"
                          + "\n".join(f"  {p}" for p in missing))
    extra = sorted(staged - listed)
    if extra:
        raise RecipeError(f"{stage_prefix}: {len(extra)} installed file(s) missing from {names} "
                          "(list them there or stop installing them):\n" + "\n".join(f"  {p}" for p in extra))


def _parse_mode(recipe: Recipe, path: str, text: str) -> int:
    if not re.fullmatch(r"0?[0-7]{3,4}", text):
        raise RecipeError(f"{recipe.toml_path}: key 'plist.modes' value for {path!r} must be an octal mode "
                          f"such as \"0600\", got {text!r}")
    return int(text, 8)


def file_mode(recipe: Recipe, path: str, st_mode: int) -> int:
    """The archived mode: [plist] modes if set; 0600 for secrets; else the stage's minus group/other write."""
    if path in recipe.plist_modes:
        return _parse_mode(recipe, path, recipe.plist_modes[path])
    if any(fnmatch(Path(path).name, pat) for pat in SECRET_PATTERNS):
        return SECRET_MODE
    return stat.S_IMODE(st_mode) & ~0o022


def _counted_size(f: PackedFile) -> int:
    """What +SIZE_PKG counts per file, as pkgsrc does (lstat sizes): a symlink's is its target's length."""
    return f.size if f.target is None else len(f.target.encode())


def _packed_file(recipe: Recipe, stage_prefix: Path, path: str) -> PackedFile:
    source = stage_prefix / path
    st = source.lstat()
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(source)
        return PackedFile(path, source, 0o777, hashlib.md5(target.encode()).hexdigest(), 0, target)
    with source.open("rb") as f:
        md5 = hashlib.file_digest(f, "md5").hexdigest()
    return PackedFile(path, source, file_mode(recipe, path, st.st_mode), md5, st.st_size)


def _check_modes_listed(recipe: Recipe, plist: list[str]) -> None:
    unknown = sorted(set(recipe.plist_modes) - set(plist))
    if unknown:
        raise RecipeError(f"{recipe.toml_path}: key 'plist.modes' names file(s) not in the PLIST: "
                          + ", ".join(unknown))


def metadata(recipe: Recipe, files: list[PackedFile], deps: list[str],
             build_info: dict[str, str]) -> list[tuple[str, str]]:
    """The + files, in the order pkg_create writes them, each rendered from its template."""
    env = template_env("package")
    members = [
        ("+CONTENTS", render(env, "CONTENTS.j2", pkgname=recipe.pkgname, pkgdeps=deps, prefix=PREFIX,
                             files=files, ignored=IGNORED_META)),
        ("+COMMENT", render(env, "COMMENT.j2", comment=recipe.comment)),
        ("+DESC", render(env, "DESC.j2", description=recipe.description, homepage=recipe.homepage)),
    ]
    if recipe.message.strip():
        members.append(("+DISPLAY", render(env, "DISPLAY.j2", message=recipe.message)))
    members.append(("+BUILD_INFO", render(env, "BUILD_INFO.j2", build_info=build_info)))
    members.append(("+SIZE_PKG", render(env, "SIZE_PKG.j2", size=sum(_counted_size(f) for f in files))))
    return members


def _tarinfo(name: str, epoch: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = epoch
    info.uid = info.gid = 0
    info.uname, info.gname = OWNER, GROUP
    return info


def _write_archive(dest: Path, meta: list[tuple[str, str]], files: list[PackedFile], epoch: int) -> None:
    with dest.open("wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=epoch, compresslevel=9) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, text in meta:
            data = text.encode()
            info = _tarinfo(name, epoch)
            info.size, info.mode = len(data), META_MODE
            tar.addfile(info, io.BytesIO(data))
        for f in files:
            info = _tarinfo(f.path, epoch)
            info.mode = f.mode
            if f.target is not None:
                info.type, info.linkname = tarfile.SYMTYPE, f.target
                tar.addfile(info)
                continue
            with f.source.open("rb") as data:
                info.size = f.size
                tar.addfile(info, data)


def make_package(recipe: Recipe, stage_prefix: Path, outdir: Path, plist_vars: dict[str, str],
                 plist_options: dict[str, bool], build_info: dict[str, str], *,
                 pkgdeps: list[str] | None = None, epoch: int | None = None) -> Path:
    """Write outdir/<pkgname>.tgz (pkgsrc binary package) from the files PLIST lists under stage_prefix.

    PLIST.<OPSYS> (OPSYS from build_info) is read after PLIST when the recipe has one. `epoch` defaults to
    SOURCE_DATE_EPOCH from the environment.
    """
    sources = plist_sources(recipe.dir, build_info.get("OPSYS", "Linux"))
    plist = read_plists(sources, plist_vars, plist_options)
    check_stage(plist, stage_prefix, sources)
    _check_modes_listed(recipe, plist)
    files = [_packed_file(recipe, stage_prefix, p) for p in plist]
    meta = metadata(recipe, files, pkgdeps or [], build_info)
    mtime = source_date_epoch(os.environ) if epoch is None else epoch
    dest = outdir / f"{recipe.pkgname}.tgz"
    for stale in outdir.glob(f".{dest.name}.*.tmp"):  # left by a run killed while writing it
        stale.unlink()
    try:
        with atomic_path(dest) as tmp:
            _write_archive(tmp, meta, files, mtime)
            tmp.chmod(0o644)
    except OSError as e:
        if e.errno in DISK_ERRNOS:
            raise disk_error(e, f"writing the package {dest.name}", where=outdir) from None
        raise
    return dest


# --- verification -------------------------------------------------------------------------------------

def _member_md5(tar: tarfile.TarFile, member: tarfile.TarInfo) -> str:
    if member.issym():
        return hashlib.md5(member.linkname.encode()).hexdigest()
    f = tar.extractfile(member)
    return hashlib.md5(f.read() if f else b"").hexdigest()


def _contents_entries(text: str) -> tuple[list[str], list[tuple[str, dict[str, str]]]]:
    """+CONTENTS as (problems, [(path, {"md5", "symlink", "mode"})]) for the file entries."""
    problems: list[str] = []
    entries: list[tuple[str, dict[str, str]]] = []
    mode = ""
    ignore_next = False
    for line in text.splitlines():
        if line.startswith("@comment MD5:") and entries:
            entries[-1][1]["md5"] = line.removeprefix("@comment MD5:")
        elif line.startswith("@comment Symlink:") and entries:
            entries[-1][1]["symlink"] = line.removeprefix("@comment Symlink:")
        elif line.startswith("@mode"):
            mode = line.removeprefix("@mode").strip()
        elif line.startswith("@ignore"):
            ignore_next = True
        elif line.startswith("@"):
            continue
        elif ignore_next:
            ignore_next = False
        else:
            entries.append((line, {"mode": mode}))
    if not any(line.startswith("@name ") for line in text.splitlines()):
        problems.append("+CONTENTS has no @name line")
    if not any(line.startswith("@cwd ") for line in text.splitlines()):
        problems.append("+CONTENTS has no @cwd line")
    return problems, entries


def verify_package(path: Path) -> list[str]:
    """Problems with a binary package: missing + files, files missing or extra, wrong MD5, mode or size."""
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            return _verify_open(path, tar)
    except (OSError, tarfile.TarError, EOFError, zlib.error) as e:
        return [f"{path}: not a readable gzip'd tar archive: {e}"]


def _verify_open(path: Path, tar: tarfile.TarFile) -> list[str]:
    members = {m.name: m for m in tar.getmembers()}
    order = list(members)
    problems = [f"{path}: {name} is missing" for name in REQUIRED_META if name not in members]
    if order and order[0] != "+CONTENTS":
        problems.append(f"{path}: the first member is {order[0]}, not +CONTENTS")
    if "+CONTENTS" not in members:
        return problems
    contents = tar.extractfile(members["+CONTENTS"]).read().decode()
    found, entries = _contents_entries(contents)
    problems += [f"{path}: {p}" for p in found]
    size = 0
    for name, facts in entries:
        member = members.get(name)
        if member is None:
            problems.append(f"{path}: {name} is listed in +CONTENTS but not in the archive")
            continue
        size += member.size if member.isfile() else len(member.linkname.encode()) if member.issym() else 0
        if member.issym():
            if facts.get("symlink") != member.linkname:
                problems.append(f"{path}: {name}: symlink target {member.linkname!r} does not match "
                                "+CONTENTS")
        elif "md5" not in facts:
            problems.append(f"{path}: {name} has no @comment MD5: line")
        elif _member_md5(tar, member) != facts["md5"]:
            problems.append(f"{path}: {name}: MD5 does not match +CONTENTS")
        if facts["mode"] and int(facts["mode"], 8) != member.mode:
            problems.append(f"{path}: {name}: mode {member.mode:04o}, +CONTENTS says {facts['mode']}")
    listed = {name for name, _ in entries}
    problems += [f"{path}: {name} is in the archive but not in +CONTENTS"
                 for name in order if not name.startswith("+") and name not in listed]
    if "+SIZE_PKG" in members:
        recorded = tar.extractfile(members["+SIZE_PKG"]).read().decode().strip()
        if recorded != str(size):
            problems.append(f"{path}: +SIZE_PKG says {recorded}, the files add up to {size}")
    return problems
