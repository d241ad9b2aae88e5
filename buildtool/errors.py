"""Error classes and the exit codes they map to.

Every error the driver raises on purpose is a BuildError: its message says what went wrong and, where
there is one, what to do next. The CLI prints it and exits with the class's code (documented in README).
"""

from __future__ import annotations

import errno
from pathlib import Path


class BuildError(Exception):
    """Base class: a user-facing failure with an exit code."""

    exit_code = 1


class UsageError(BuildError):
    """Bad command line: unknown package, unknown kernel profile, conflicting options."""

    exit_code = 2


class RecipeError(BuildError):
    """A recipe or distinfo file is malformed (names the file and the key)."""

    exit_code = 3


class ChecksumError(BuildError):
    """A file's size or hash does not match distinfo, or distinfo has no entry for it."""

    exit_code = 4


class FetchError(BuildError):
    """No mirror delivered a distfile that verifies."""

    exit_code = 5


class PatchError(BuildError):
    """A patch does not apply (names patch, file and hunk)."""

    exit_code = 6


class HostToolError(BuildError):
    """A program the build needs is missing from the host (names the Debian package)."""

    exit_code = 7


class PhaseError(BuildError):
    """A command of a phase failed: carries the command, the log tail and the log path."""

    exit_code = 8

    def __init__(self, message: str, *, command: list[str] | None = None, log: Path | None = None,
                 tail: str = ""):
        self.command = command
        self.log = log
        self.tail = tail
        parts = [message]
        if command:
            parts.append("command: " + " ".join(_quote(a) for a in command))
        if tail:
            parts.append("last lines of the log:\n" + tail.rstrip())
        if log:
            parts.append(f"full log: {log}")
        super().__init__("\n".join(parts))


class KernelError(BuildError):
    """A kernel profile cannot be satisfied: missing sources, version mismatch, vermagic mismatch."""

    exit_code = 9


class TestFailure(BuildError):
    """A VM scenario failed (the product is wrong)."""

    exit_code = 10


class HarnessError(BuildError):
    """The VM harness itself broke (QEMU did not start, console lost): not a verdict on the product."""

    exit_code = 11


class ExtractError(BuildError):
    """A distfile cannot be unpacked safely: unknown format, corrupt, or a member escaping the work tree."""

    exit_code = 12


class DiskError(BuildError):
    """The disk refused a write: no space left, a read-only file system or no permission (names the path)."""

    exit_code = 13


# errno values that mean "this file system will not take the write", whatever the phase
DISK_ERRNOS = frozenset((errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM))


def disk_error(e: OSError, doing: str, where: object = None) -> DiskError:
    """A DiskError for an OSError of DISK_ERRNOS: names the path (the error's own, else `where`: a write
    to an open file carries no name), the reason and what to do next."""
    where = e.filename or where or "?"
    advice = {errno.ENOSPC: "free some space there (or point BUILDTOOL_CACHE / --work / --packages at a "
                            "file system with room) and run the same command again",
              errno.EDQUOT: "the disk quota is used up there: free some space and run the command again",
              errno.EROFS: "that file system is mounted read-only: remount it read-write, or point "
                           "BUILDTOOL_CACHE / --work / --packages at a writable directory",
              }.get(e.errno, "check the owner and mode of that directory, or point BUILDTOOL_CACHE / --work "
                             "/ --packages at a directory you can write")
    return DiskError(f"{doing}: cannot write {where}: {e.strerror or e}.\n{advice[0].upper()}{advice[1:]}; "
                     f"finished phases are kept and the next run resumes.")


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


EXIT_CODES: list[tuple[int, str]] = [
    (0, "success"),
    (1, "unexpected internal error"),
    *[(cls.exit_code, cls.__doc__.splitlines()[0]) for cls in (
        UsageError, RecipeError, ChecksumError, FetchError, PatchError, HostToolError, PhaseError,
        KernelError, TestFailure, HarnessError, ExtractError, DiskError)],
]
