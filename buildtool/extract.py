"""The extract phase (interface; implementation in progress)."""

from __future__ import annotations

from pathlib import Path


def extract(archive: Path, dest: Path) -> None:
    """Extract a .tar.gz/.tar.xz/.tar.bz2 into dest, refusing members that would land outside it."""
    raise NotImplementedError
