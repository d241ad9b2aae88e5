"""Small file-system helpers shared by every phase: atomic writes and hashing."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """Yield a temporary path beside `dest`; rename it over `dest` only if the block succeeds."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.chmod(0o666 & ~_umask())  # mkstemp makes 0600; the result gets an ordinary file's mode
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def file_lock(path: Path, *, waiting: str = "", out=None) -> Iterator[None]:
    """Hold an exclusive flock(2) on `path` (created, with its folder, if missing) for the block; the one
    lock helper of the cache and the work trees. With `waiting`, a lock another process holds first prints
    that line to `out` (default: stderr), so a second run says why it stands still."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                print(waiting, file=out or sys.stderr, flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_if_changed(dest: Path, data: str | bytes, mode: int | None = None) -> bool:
    """Write `data` (text or bytes) to `dest` atomically unless it already holds exactly that; return True
    if written."""
    raw = data.encode() if isinstance(data, str) else data
    if dest.is_file() and dest.read_bytes() == raw:
        return False
    with atomic_path(dest) as tmp:
        tmp.write_bytes(raw)
        if mode is not None:
            tmp.chmod(mode)
    return True


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file's bytes (algorithm as hashlib names it)."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, algorithm).hexdigest()


def text_digest(data: bytes | str, algorithm: str = "sha256") -> str:
    if isinstance(data, str):
        data = data.encode()
    return hashlib.new(algorithm, data).hexdigest()
