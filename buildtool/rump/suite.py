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
from ..vm.suite import EXPECT_FAIL, Outcome, read_junit, report_controls, run_pytest_group
from .kernel import ensure_rump_kernel, missing_tarballs
from .lane import CONTROLS_DIR, default_sources


def control_patches(root: Path) -> list[tuple[Path, list[str]]]:
    found = []
    for p in sorted((root / CONTROLS_DIR).glob("*.patch")):
        expected = [n.strip() for line in EXPECT_FAIL.findall(p.read_text()) for n in line.split(",")]
        if not expected:
            raise UsageError(f"{p}: a negative control must name the scenarios it breaks "
                             f"(`Expect-Fail: name`)")
        found.append((p, expected))
    return found


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
    failed = sorted(n for n, s in outcome.tests.items() if s in ("failed", "error"))
    skipped = sorted(n for n, s in outcome.tests.items() if s == "skipped")
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
        keyword = " or ".join(sorted({n.split("[", 1)[0] for n in expected}))
        outcome = _pytest(args, layout, results / f"junit-rump-control-{patch.stem}.xml", keyword,
                          env={"BUILDTOOL_RUMP_VARIANT": str(patch)})
        missing = [n for n in expected if n not in outcome.tests]
        if missing:
            raise UsageError(f"{patch}: Expect-Fail names unknown scenarios: {', '.join(missing)}")
        if any(s == "skipped" for s in outcome.tests.values()):
            raise HarnessError(f"control {patch.name}: scenarios were skipped ({outcome.junit})")
        failed = sorted(n for n, s in outcome.tests.items() if s in ("failed", "error"))
        rows.append((patch.name, expected, failed, all(n in failed for n in expected)))
    return report_controls(rows, "rump lane negative controls", "the rump lane")


def _pytest(args: argparse.Namespace, layout: Layout, junit: Path, keyword: str | None,
            env: dict[str, str] | None = None) -> Outcome:
    cmd = [sys.executable, "-m", "pytest", str(layout.root / "tests" / "rump"), "-m", "rump", "-ra",
           "-p", "no:cacheprovider", f"--junitxml={junit}", "-o", "junit_family=xunit1"]
    if keyword:
        cmd += ["-k", keyword]
    full_env = dict(os.environ, BUILDTOOL_VM_RESULTS=str(junit.parent), **(env or {}))
    return read_junit(junit, run_pytest_group(cmd, layout.root, full_env, "the rump lane", str(junit)))
