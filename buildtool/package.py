"""The package phase (interface; implementation in progress)."""

from __future__ import annotations

from pathlib import Path

from .recipe import Recipe


def default_build_info(recipe: Recipe, kernel: str) -> dict[str, str]:
    raise NotImplementedError


def make_package(recipe: Recipe, stage_prefix: Path, outdir: Path, plist_vars: dict[str, str],
                 plist_options: dict[str, bool], build_info: dict[str, str]) -> Path:
    """Write outdir/<pkgname>.tgz (pkgsrc binary package) from the files PLIST lists under stage_prefix."""
    raise NotImplementedError
