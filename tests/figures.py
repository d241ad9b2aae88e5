"""Benchmark figures of a test session (the VM suite, the NetBSD guest lane): printed as they are recorded
and written to a JSON file. Figures are output, never asserted."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from buildtool.fsutil import write_if_changed


def worker() -> str:
    """The pytest-xdist worker this process is ("gw0", ...), or "" when pytest runs without workers."""
    return os.environ.get("PYTEST_XDIST_WORKER", "")


def results_dir() -> Path:
    """Where console logs and figures go: BUILDTOOL_VM_RESULTS, else ./results."""
    return Path(os.environ.get("BUILDTOOL_VM_RESULTS", "results")).resolve()


@dataclass
class Figures:
    """Figures of one pytest process. Under pytest-xdist each worker writes its own part (`NAME.gw0.json`
    beside `path`) and the controller merges the parts into `path` at the end (`merge_parts`)."""

    path: Path
    values: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if worker():
            self.path = self.path.with_name(f"{self.path.stem}.{worker()}{self.path.suffix}")

    def record(self, name: str, value: object) -> None:
        self.values[name] = value
        print(f"figure: {name} = {value}", file=sys.stderr)
        self.save()

    def save(self) -> None:
        write_if_changed(self.path, _json(self.values))


def merge_parts(path: Path, since: float) -> dict[str, object]:
    """Merge the workers' parts written since `since` (time.time()) into `path`, remove every part, and
    return the figures. A figure that several workers recorded with different values (each its own
    guest's boot time, say) becomes {worker: value}."""
    merged: dict[str, dict[str, object]] = {}
    parts = sorted(path.parent.glob(f"{path.stem}.gw*{path.suffix}"))
    for part in parts:
        if part.stat().st_mtime < since:
            continue  # left by an earlier session
        name = part.name[len(path.stem) + 1:-len(path.suffix)]
        for key, value in json.loads(part.read_text()).items():
            merged.setdefault(key, {})[name] = value
    values: dict[str, object] = {}
    for key, by_worker in merged.items():
        distinct = {json.dumps(v, sort_keys=True) for v in by_worker.values()}
        values[key] = next(iter(by_worker.values())) if len(distinct) == 1 else by_worker
    if parts:
        write_if_changed(path, _json(values))
        for part in parts:
            part.unlink()
    return values


def _json(values: dict[str, object]) -> str:
    return json.dumps(values, indent=2, sort_keys=True, default=str) + "\n"
