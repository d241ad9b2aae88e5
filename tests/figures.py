"""Benchmark figures of a test session (the VM suite, the NetBSD guest lane): printed as they are recorded
and written to a JSON file. Figures are output, never asserted."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path


def results_dir() -> Path:
    """Where console logs and figures go: BUILDTOOL_VM_RESULTS, else ./results."""
    return Path(os.environ.get("BUILDTOOL_VM_RESULTS", "results")).resolve()


@dataclass
class Figures:
    path: Path
    values: dict[str, object] = field(default_factory=dict)

    def record(self, name: str, value: object) -> None:
        self.values[name] = value
        print(f"figure: {name} = {value}", file=sys.stderr)
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.values, indent=2, sort_keys=True) + "\n")
