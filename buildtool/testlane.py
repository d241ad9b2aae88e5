"""`buildtool test --kernel <lane>` for a test lane (netbsd-rump, netbsd-qemu): what the lane's scenarios
need is built first, here, where its progress lines are seen; then the scenarios run in a pytest
subprocess (buildtool.vm.suite.run_pytest: its own process group, the outcome recorder) and, with
--control, each negative control in a pytest run of its own.

A lane is data (TestLane): its scenario files, its JUnit name, how to build what it needs, its controls. A
control names the scenarios it must make fail (`Expect-Fail:`, `test_x[param]` or a bare `test_x` for any of
its parameters) and the environment that selects the broken variant in the lane's fixtures; it is caught
when every one of them fails (and, for a control that must crash the guest kernel, fails with the
harness's GuestCrash). Exit codes as for the VM suite: 0 green,
10 (TestFailure) a scenario failed or a control was not caught, 11 (HarnessError) the harness broke.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import HarnessError, TestFailure, UsageError
from .layout import Layout
from .outcomes import FAILED, Outcome
from .vm.suite import control_keyword, report_controls, run_pytest

GUEST_CRASH = "buildtool.vm.console.GuestCrash"  # the recorder's name of the crash watch's exception


@dataclass(frozen=True)
class Control:
    patch: Path
    expected: list[str]  # scenarios that must fail
    env: dict[str, str]  # what makes the lane's fixtures use the broken variant
    crash: bool = False  # each must fail because the guest kernel crashed (GuestCrash)


@dataclass(frozen=True)
class TestLane:
    name: str  # "rump lane": in messages
    junit: str  # results/junit-<junit>.xml, results/junit-<junit>-control-<patch>.xml
    tests: tuple[str, ...]  # scenario files or folders, relative to the repository
    logs: str  # where the lane's logs are, relative to the results folder
    build_first: Callable[[Layout, int], list[str]]  # builds what the scenarios need; the inputs missing
    controls: Callable[[Path], list[Control]]  # by repository root
    controls_dir: str  # relative to the repository, for messages
    marker: str = ""  # pytest -m
    env: dict[str, str] = field(default_factory=dict)

    __test__ = False  # not a pytest test class, whatever its name


def run_lane(lane: TestLane, args: argparse.Namespace, layout: Layout) -> int:
    results = Path(args.results).resolve()
    results.mkdir(parents=True, exist_ok=True)
    missing = lane.build_first(layout, args.jobs)
    if args.control:
        if missing:
            print(f"buildtool test: {lane.name} controls skipped: they need {' and '.join(missing)}",
                  file=sys.stderr)
            return 0
        return _run_controls(lane, args, layout, results)
    outcome = _pytest(lane, layout, results / f"junit-{lane.junit}.xml", args.keyword, args.jobs)
    print(f"buildtool test: JUnit XML {outcome.junit}; logs under {results / lane.logs}", file=sys.stderr)
    if outcome.returncode == 5:
        raise UsageError(f"no {lane.name} scenario matches -k {args.keyword!r}")
    if outcome.harness_broke:
        raise HarnessError(f"the {lane.name}'s harness broke (not a verdict on the product); "
                           f"see {outcome.junit}")
    failed, skipped = outcome.failed(), outcome.skipped()
    if outcome.returncode == 1:
        raise TestFailure(f"{len(failed)} {lane.name} scenario(s) failed: {', '.join(failed)}\n"
                          f"JUnit XML: {outcome.junit}; logs: {results / lane.logs}")
    if outcome.returncode != 0:
        raise HarnessError(f"pytest ended with exit status {outcome.returncode}; see {outcome.junit}")
    if skipped:
        print(f"buildtool test: {len(skipped)} {lane.name} scenario(s) skipped: "
              f"{outcome.messages[skipped[0]]}", file=sys.stderr)
    return 0


def _run_controls(lane: TestLane, args: argparse.Namespace, layout: Layout, results: Path) -> int:
    controls = lane.controls(layout.root)
    if not controls:
        raise UsageError(f"no negative controls in {layout.root / lane.controls_dir}")
    rows = []
    for c in controls:
        outcome = _pytest(lane, layout, results / f"junit-{lane.junit}-control-{c.patch.stem}.xml",
                          control_keyword(c.expected), args.jobs, env=c.env)
        if outcome.harness_broke:
            raise HarnessError(f"the {lane.name}'s harness broke while running control {c.patch.name}; "
                               f"see {outcome.junit}")
        unknown = [n for n in c.expected if not _matching(n, outcome.tests)]
        if unknown:
            raise UsageError(f"{c.patch}: Expect-Fail names unknown scenarios: {', '.join(unknown)}")
        if any(s == "skipped" for s in outcome.tests.values()):
            raise HarnessError(f"control {c.patch.name}: scenarios were skipped ({outcome.junit})")
        failed = outcome.failed()
        caught = all(_caught(n, c, outcome) for n in c.expected)
        rows.append((c.patch.name, c.expected, failed, caught))
    return report_controls(rows, f"{lane.name} negative controls", f"the {lane.name}")


def _matching(name: str, tests) -> list[str]:
    """The tests an `Expect-Fail:` name means: itself (`test_x[param]`), or every parameter of a bare
    `test_x`."""
    return [t for t in tests if t == name or t.split("[", 1)[0] == name]


def _caught(name: str, control: Control, outcome: Outcome) -> bool:
    """One of the tests `name` means failed (for a crash control: with a GuestCrash)."""
    return any(outcome.tests[t] in FAILED and (not control.crash or GUEST_CRASH in outcome.errors.get(t, ()))
               for t in _matching(name, outcome.tests))


def _pytest(lane: TestLane, layout: Layout, junit: Path, keyword: str | None, jobs: int,
            env: dict[str, str] | None = None) -> Outcome:
    cmd = [sys.executable, "-m", "pytest", *(str(layout.root / t) for t in lane.tests), "-ra",
           "-p", "no:cacheprovider", "--durations=0", f"--junitxml={junit}", "-o", "junit_family=xunit1"]
    cmd += ["-m", lane.marker] if lane.marker else []
    cmd += ["-k", keyword] if keyword else []
    full_env = dict(os.environ, BUILDTOOL_VM_RESULTS=str(junit.parent), BUILDTOOL_JOBS=str(jobs), **lane.env,
                    **(env or {}))
    return run_pytest(cmd, junit, layout.root, full_env, f"the {lane.name}", str(junit))
