"""`buildtool test --kernel netbsd-rump`: the rump lane's scenarios (tests/rump, pytest in a subprocess)
and, with --control, its negative controls.

A negative control is a patch in patches/rump-mppe/broken/ applied to a copy of kmod/mppe (never shipped,
never in the tree the .kmod is built from); the scenarios its header names (`Expect-Fail: test_name[param]`)
run with ppp_mppe built from that copy and must all fail. Exit codes as for the VM suite: 0 green,
10 a scenario failed or a control was not caught, 11 the harness broke.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import HarnessError, TestFailure, UsageError
from ..layout import Layout
from ..outcomes import Outcome
from ..vm.suite import control_keyword, expected_failures, report_controls, run_pytest
from .kernel import ensure_rump_kernel, missing_tarballs
from .lane import CONTROLS_DIR, default_sources


def control_patches(root: Path) -> list[tuple[Path, list[str]]]:
    return [(p, expected_failures(p)) for p in sorted((root / CONTROLS_DIR).glob("*.patch"))]


def run_rump_suite(args: argparse.Namespace, layout: Layout) -> int:
    results = Path(args.results).resolve()
    results.mkdir(parents=True, exist_ok=True)
    missing = _build_first(layout, args.jobs)
    if args.control:
        if missing:
            print(f"buildtool test: rump lane controls skipped: they need {' and '.join(missing)}",
                  file=sys.stderr)
            return 0
        return _run_controls(args, layout, results)
    outcome = _pytest(args, layout, results / "junit-rump.xml", args.keyword)
    if outcome.returncode == 5:
        raise UsageError(f"no rump scenario matches -k {args.keyword!r}")
    if outcome.harness_broke:
        raise HarnessError(f"the rump lane's harness broke (not a verdict on the product); "
                           f"see {outcome.junit}")
    failed, skipped = outcome.failed(), outcome.skipped()
    if outcome.returncode == 1:
        raise TestFailure(f"{len(failed)} rump scenario(s) failed: {', '.join(failed)}\n"
                          f"JUnit XML: {outcome.junit}; logs: {results / 'rump' / 'logs'}")
    if outcome.returncode != 0:
        raise HarnessError(f"pytest ended with exit status {outcome.returncode}; see {outcome.junit}")
    if skipped:
        print(f"buildtool test: {len(skipped)} rump scenario(s) skipped: {outcome.messages[skipped[0]]}",
              file=sys.stderr)
    return 0


def _build_first(layout: Layout, jobs: int) -> list[str]:
    """Build the rump kernel here, where its progress lines are seen (pytest would capture them); the
    scenarios then find it in the cache. Without the tarballs the scenarios skip and say which."""
    sources = Path(os.environ.get("BUILDTOOL_RUMP_SOURCES") or default_sources(layout.root))
    missing = missing_tarballs(sources)
    if not missing:
        ensure_rump_kernel(sources, layout.cache, jobs=jobs, out=sys.stderr)
    return [f"{sources}/{name}" for name in missing]


def _run_controls(args: argparse.Namespace, layout: Layout, results: Path) -> int:
    controls = control_patches(layout.root)
    if not controls:
        raise UsageError(f"no negative controls in {layout.root / CONTROLS_DIR}")
    rows = []
    for patch, expected in controls:
        outcome = _pytest(args, layout, results / f"junit-rump-control-{patch.stem}.xml",
                          control_keyword(expected), env={"BUILDTOOL_RUMP_VARIANT": str(patch)})
        if outcome.harness_broke:
            raise HarnessError(f"the rump lane's harness broke while running control {patch.name}; "
                               f"see {outcome.junit}")
        missing = [n for n in expected if n not in outcome.tests]
        if missing:
            raise UsageError(f"{patch}: Expect-Fail names unknown scenarios: {', '.join(missing)}")
        if any(s == "skipped" for s in outcome.tests.values()):
            raise HarnessError(f"control {patch.name}: scenarios were skipped ({outcome.junit})")
        failed = outcome.failed()
        rows.append((patch.name, expected, failed, all(n in failed for n in expected)))
    return report_controls(rows, "rump lane negative controls", "the rump lane")


def _pytest(args: argparse.Namespace, layout: Layout, junit: Path, keyword: str | None,
            env: dict[str, str] | None = None) -> Outcome:
    cmd = [sys.executable, "-m", "pytest", str(layout.root / "tests" / "rump"), "-m", "rump", "-ra",
           "-p", "no:cacheprovider", f"--junitxml={junit}", "-o", "junit_family=xunit1"]
    if keyword:
        cmd += ["-k", keyword]
    full_env = dict(os.environ, BUILDTOOL_VM_RESULTS=str(junit.parent), **(env or {}))
    return run_pytest(cmd, junit, layout.root, full_env, "the rump lane", str(junit))
