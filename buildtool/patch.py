"""The patch phase (interface; implementation in progress)."""

from __future__ import annotations

from pathlib import Path

from .distinfo import Distinfo


def series(patch_dir: Path, include: str = "", exclude: str = "") -> list[Path]:
    """The patch-* files of patch_dir in C-locale order; `include`/`exclude` are fnmatch globs on names."""
    raise NotImplementedError


def apply_series(patches: list[Path], info: Distinfo, tree: Path, log: Path) -> list[str]:
    """Verify each patch's SHA1 against distinfo, apply it with no fuzz; return the names applied."""
    raise NotImplementedError
