"""Third-party source tarballs unpacked once into the cache, keyed by the tarball's sha256.

`unpacked(tarball, cache, members)` returns `<cache>/sources/<sha256[:24]>[-<members key>]/`, unpacking
it the first time under a lock into a temporary folder that is renamed into place when tar has finished:
a killed unpack leaves no half tree that a later run would take for complete. Nothing is unpacked into the
repository or into a user's tree.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .fsutil import file_digest, file_lock, text_digest
from .runner import LocalRunner

UNPACK_TIMEOUT = 900.0


def unpacked(tarball: Path, cache: Path, members: Sequence[str] = (), *, log: Path) -> Path:
    """The unpacked tree of `tarball` (only `members`, tar patterns, when given)."""
    key = file_digest(tarball, "sha256")[:24]
    if members:
        key += "-" + text_digest("\n".join(members))[:8]
    dest = cache / "sources" / key
    if dest.is_dir():
        return dest
    with file_lock(cache / "sources" / f"{key}.lock"):
        if dest.is_dir():
            return dest
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=dest.parent))
        try:
            argv = ["tar", "-xf", str(tarball), "-C", str(tmp)]
            if members:
                argv += ["--wildcards", *members]
            LocalRunner().run(argv, log=log, timeout=UNPACK_TIMEOUT, what=f"unpacking {tarball.name}")
            tmp.rename(dest)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
    return dest
