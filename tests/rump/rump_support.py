"""Shared by the rump lane's tests: where results go, and the figures the lane reports."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIGURES: dict[str, object] = {}


def results_dir() -> Path:
    return Path(os.environ.get("BUILDTOOL_VM_RESULTS", ROOT / "results")).resolve() / "rump"


def record(name: str, value: object) -> None:
    """A figure of the lane (printed, and saved to results/rump/figures.json at the end)."""
    FIGURES[name] = value
    print(f"figure: {name} = {value}", file=sys.stderr)


def save_figures() -> None:
    if FIGURES:
        path = results_dir() / "figures.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        old = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**old, **FIGURES}, indent=2, sort_keys=True, default=str) + "\n")
