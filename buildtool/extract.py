"""The extract phase: unpack a distfile into the work tree, refusing anything that would land outside it.

Every member is checked before a byte is written: no absolute names, no `..` in names, no member stored
under a symlink, no link whose target leaves the tree, nothing but files, directories and links. Where
Python's tarfile has the `data` filter (3.11.4+, 3.12+) it checks each member again as it is written (it
resolves links already on disk, which a check of names alone cannot); on Debian 12's python3 (3.11.2) it does
not exist and our own checks carry the load, with modes and owners sanitised the way the filter would. A
last pass resolves every symlink written. `extract_members` is the one place an archive is written to disk
(distfiles here, packages into the VM image, the tests).

The archive is unpacked into a scratch directory beside `dest`; only once that finished are its top-level
entries renamed into `dest`, so an interrupted extract never leaves a tree that looks complete.
"""

from __future__ import annotations

import glob
import lzma
import os
import posixpath
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path

from .errors import DISK_ERRNOS, ExtractError, disk_error

# archive suffix -> compression; the suffix must tell the truth about the compression. The one list of the
# archives buildtool handles: the extract phase opens them, the pkgsrc export names them in EXTRACT_SUFX,
# kernel sources are streamed through DECOMPRESS_COMMANDS.
ARCHIVE_SUFFIXES: dict[str, str] = {
    ".tar.gz": "gz",
    ".tgz": "gz",
    ".tar.xz": "xz",
    ".txz": "xz",
    ".tar.bz2": "bz2",
    ".tbz2": "bz2",
}
# compression -> the command writing the decompressed stream to stdout
DECOMPRESS_COMMANDS: dict[str, list[str]] = {
    "gz": ["gzip", "-dc"],
    "xz": ["xz", "-dc"],
    "bz2": ["bzip2", "-dc"],
}

# tarfile's extraction filters arrived in Python 3.11.4; before that our own checks stand alone
HAS_DATA_FILTER = hasattr(tarfile, "data_filter")

_READ_ERRORS = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError)
_FILTER_ERROR = getattr(tarfile, "FilterError", ())  # absent before 3.11.4: nothing to catch then


def extract(archive: Path, dest: Path) -> None:
    """Extract an archive of ARCHIVE_SUFFIXES into dest, refusing members that would land outside it."""
    mode = open_mode(archive)
    if not archive.is_file():
        raise ExtractError(f"{archive}: archive not found; run `buildtool fetch` first")
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_scratch(dest)
    scratch = Path(tempfile.mkdtemp(prefix=_scratch_prefix(dest), dir=dest.parent))
    try:
        unpack(archive, mode, scratch)
        move_entries(archive, scratch, dest)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def archive_suffix(name: str) -> str | None:
    """The suffix of ARCHIVE_SUFFIXES `name` ends with, or None."""
    return next((s for s in ARCHIVE_SUFFIXES if name.endswith(s)), None)


def open_mode(archive: Path) -> str:
    suffix = archive_suffix(archive.name)
    if suffix is None:
        raise ExtractError(
            f"{archive}: unknown archive type; buildtool extracts {', '.join(ARCHIVE_SUFFIXES)}.\n"
            f"Check the distfile name in the recipe.")
    return f"r:{ARCHIVE_SUFFIXES[suffix]}"


def unpack(archive: Path, mode: str, scratch: Path) -> None:
    """Check every member of `archive`, then write them all under `scratch`."""
    try:
        with tarfile.open(archive, mode) as tar:
            members = tar.getmembers()
    except _READ_ERRORS as e:
        raise ExtractError(
            f"{archive}: cannot be read as a {mode[2:]}-compressed tar archive ({e}).\n"
            f"The file is truncated, corrupt or mis-named: remove it and run `buildtool fetch` again."
        ) from None
    try:
        with tarfile.open(archive, mode) as tar:
            extract_members(archive, tar, members, scratch)
    except ExtractError:
        raise
    except _READ_ERRORS as e:
        raise ExtractError(f"{archive}: extracting into {scratch} failed: {e}") from None


def extract_members(archive: Path, tar: tarfile.TarFile, members: list[tarfile.TarInfo], dest: Path) -> None:
    """Write `members` of the open `tar` under `dest` after our checks (and the data filter, where it exists).

    A write the disk refuses (no space, read-only, no permission) is a DiskError naming the path, not a
    verdict on the archive.
    """
    check_members(archive, members)
    try:
        if HAS_DATA_FILTER:
            tar.extractall(dest, members=members, filter="data")
        else:
            tar.extractall(dest, members=[_sanitized(m) for m in members])
    except _FILTER_ERROR as e:
        name = e.tarinfo.name if e.tarinfo is not None else "?"
        raise ExtractError(f"{archive}: member {name!r} refused by the tar data filter: {e}.\n"
                           f"{_NOT_SAFE}") from None
    except OSError as e:
        if e.errno in DISK_ERRNOS:
            raise disk_error(e, f"extracting {archive.name}", where=dest) from None
        raise
    check_links_inside(archive, dest)


_NOT_SAFE = ("The archive is not safe to unpack. Check that it is the distfile distinfo names "
             "(`buildtool fetch` verifies it) and report it upstream; nothing was written to the work tree.")


def check_members(archive: Path, members: list[tarfile.TarInfo]) -> None:
    """Refuse any member that could put a file outside the tree it is extracted into."""
    symlinks = {posixpath.normpath(m.name) for m in members if m.issym()}
    for m in members:
        name = _checked_name(archive, m)
        under = _symlink_ancestor(name, symlinks)
        if under:
            _refuse(archive, m, f"is stored under the symlink {under!r} (it would be written through it)")
        if not (m.isreg() or m.isdir() or m.issym() or m.islnk()):
            _refuse(archive, m, "is a device, fifo or other special file")
        if m.issym() or m.islnk():
            _check_link(archive, m, name, symlinks)


def _checked_name(archive: Path, m: tarfile.TarInfo) -> str:
    if m.name.startswith("/"):
        _refuse(archive, m, "has an absolute path")
    if ".." in m.name.split("/"):
        _refuse(archive, m, "has a '..' component in its path")
    return posixpath.normpath(m.name)


def _check_link(archive: Path, m: tarfile.TarInfo, name: str, symlinks: set[str]) -> None:
    kind = "symlink" if m.issym() else "hard link"
    if m.linkname.startswith("/"):
        _refuse(archive, m, f"is a {kind} to the absolute path {m.linkname!r}")
    # a symlink is relative to its own directory, a hard link's target is a member name
    base = posixpath.dirname(name) if m.issym() else ""
    target = posixpath.normpath(posixpath.join(base, m.linkname))
    if target == ".." or target.startswith("../"):
        _refuse(archive, m, f"is a {kind} to {m.linkname!r}, which points outside the tree")
    if m.islnk():
        under = _symlink_ancestor(target, symlinks) or (target if target in symlinks else "")
        if under:
            _refuse(archive, m, f"is a hard link through the symlink {under!r}")


def _symlink_ancestor(name: str, symlinks: set[str]) -> str:
    """The first proper parent directory of `name` that is a symlink member, or ''."""
    parts = name.split("/")
    for i in range(1, len(parts)):
        parent = "/".join(parts[:i])
        if parent in symlinks:
            return parent
    return ""


def _refuse(archive: Path, m: tarfile.TarInfo, why: str) -> None:
    raise ExtractError(f"{archive}: member {m.name!r} {why}; refusing to extract.\n{_NOT_SAFE}")


def _sanitized(m: tarfile.TarInfo) -> tarfile.TarInfo:
    """What the data filter does to modes and owners, for interpreters without it."""
    if m.isdir():
        m.mode = 0o755
    elif m.isreg() or m.islnk():
        m.mode = (m.mode & 0o755) | 0o600
        if not m.mode & 0o100:
            m.mode &= ~0o111
    m.uid, m.gid = os.getuid(), os.getgid()
    m.uname = m.gname = ""
    return m


def check_links_inside(archive: Path, scratch: Path) -> None:
    """Resolve every symlink written and refuse the archive if one leads out of the tree."""
    root = os.path.realpath(scratch)
    for dirpath, dirnames, filenames in os.walk(scratch):
        for entry in dirnames + filenames:
            path = os.path.join(dirpath, entry)
            if os.path.islink(path):
                target = os.path.realpath(path)
                if os.path.commonpath([root, target]) != root:
                    member = os.path.relpath(path, scratch)
                    raise ExtractError(f"{archive}: symlink {member!r} resolves outside the tree "
                                       f"(to {target}); refusing to extract.\n{_NOT_SAFE}")


def move_entries(archive: Path, scratch: Path, dest: Path) -> None:
    """Rename the finished top-level entries of `scratch` into `dest`, refusing to overwrite anything."""
    entries = sorted(scratch.iterdir())
    if not entries:
        raise ExtractError(f"{archive}: the archive holds no files; remove it and run `buildtool fetch`")
    clashes = [e.name for e in entries if os.path.lexists(dest / e.name)]
    if clashes:
        raise ExtractError(f"{archive}: {dest} already holds {', '.join(clashes)}; refusing to mix two "
                           f"extractions. Remove {dest} and extract again.")
    dest.mkdir(parents=True, exist_ok=True)
    for e in entries:
        os.rename(e, dest / e.name)


def remove_stale_scratch(dest: Path) -> None:
    """Scratch directories left beside dest by an extract that was killed."""
    pattern = os.path.join(glob.escape(str(dest.parent)), glob.escape(_scratch_prefix(dest)) + "*")
    for stale in glob.glob(pattern):
        shutil.rmtree(stale, ignore_errors=True)


def _scratch_prefix(dest: Path) -> str:
    return f".{dest.name}.extract-"
