"""Longest scenarios first when the tests run in parallel (pytest-xdist): each run records how long every
test took, and the next one orders the tests by those times and hands them to the workers one at a time.

Why: with `--dist load` xdist sends each worker a batch of consecutive tests, so two long scenarios can
end up one after the other on one worker while the others go idle; the suite then takes as long as that
worker. Longest first with one test at a time is the classic LPT schedule: the wall time approaches the
total work divided by the workers, or the longest single test, whichever is larger.

The times live in ~/.cache/buildtool/test-durations.json (test id -> seconds of setup + call + teardown;
tests not run this time keep their old entry). Without it (a first run) the order is the files' own.
Every worker reads the same file before the controller rewrites it at the end, so all collect the same
order, which xdist requires. Without xdist nothing is reordered.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buildtool.fsutil import write_if_changed
from buildtool.layout import default_cache


def durations_file() -> Path:
    return default_cache() / "test-durations.json"


def read_durations(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: float(v) for k, v in data.items() if isinstance(v, int | float)}


def longest_first(items: list, durations: dict[str, float]) -> list:
    """Items in descending recorded duration; unknown ones first (they may be long), then file order."""
    order = {id(item): i for i, item in enumerate(items)}
    return sorted(items, key=lambda it: (-durations.get(it.nodeid, float("inf")), order[id(it)]))


class Recorder:
    """On the controller (or a run without xdist): sums each test's phase durations, saves them at the end."""

    def __init__(self, path: Path):
        self.path = path
        self.seconds: dict[str, float] = {}

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report) -> None:
        self.seconds[report.nodeid] = self.seconds.get(report.nodeid, 0.0) + float(report.duration or 0.0)

    @pytest.hookimpl
    def pytest_sessionfinish(self, session) -> None:
        if not self.seconds:
            return
        merged = {**read_durations(self.path), **{k: round(v, 2) for k, v in self.seconds.items()}}
        try:
            write_if_changed(self.path, json.dumps(merged, indent=1, sort_keys=True) + "\n")
        except OSError:
            pass  # a hint for the next run's order, never a reason to fail this one


def make_scheduler(config, log):
    """An xdist scheduler that sends each worker one test at a time, in collection order (which
    `longest_first` made longest-first). xdist's worker runs a test once it knows the next one, so a
    worker holds at most two: the one running and the next."""
    from xdist.scheduler import LoadScheduling

    class OneAtATime(LoadScheduling):
        def schedule(self) -> None:
            if self.collection is not None or not self._check_nodes_have_same_collection():
                return super().schedule()
            self.collection = next(iter(self.node2collection.values()))
            self.pending[:] = range(len(self.collection))
            for _ in range(2):
                for node in self.nodes:
                    self._send_tests(node, 1)
            if not self.pending:
                for node in self.nodes:
                    node.shutdown()

        def check_schedule(self, node, duration: float = 0) -> None:
            if node.shutting_down:
                return
            if not self.pending:
                node.shutdown()
                return
            while self.pending and len(self.node2pending[node]) < 2:
                self._send_tests(node, 1)

    return OneAtATime(config, log)
