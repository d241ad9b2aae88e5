"""Shared by the rump lane's tests: where results go, and the figures the lane reports."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from buildtool.fsutil import write_if_changed

ROOT = Path(__file__).resolve().parents[2]
FIGURES: dict[str, object] = {}


def results_dir() -> Path:
    """results/rump for the lane; a negative control's run (BUILDTOOL_RUMP_VARIANT names its patch) has
    results/rump/control-<patch> of its own, so that its figures and logs never replace the lane's."""
    base = Path(os.environ.get("BUILDTOOL_VM_RESULTS", ROOT / "results")).resolve() / "rump"
    variant = os.environ.get("BUILDTOOL_RUMP_VARIANT")
    return base / f"control-{Path(variant).stem}" if variant else base


def record(name: str, value: object) -> None:
    """A figure of the lane (printed, and saved to results/rump/figures.json at the end)."""
    FIGURES[name] = value
    print(f"figure: {name} = {value}", file=sys.stderr)


def save_figures() -> None:
    if FIGURES:
        path = results_dir() / "figures.json"
        old = json.loads(path.read_text()) if path.exists() else {}
        write_if_changed(path, json.dumps({**old, **FIGURES}, indent=2, sort_keys=True, default=str) + "\n")
