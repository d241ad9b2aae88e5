"""`buildtool test --kernel netbsd-rump`: the rump lane's scenarios (tests/rump, pytest in a subprocess)
and, with --control, its negative controls (buildtool.testlane runs both).

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

from ..layout import Layout
from ..testlane import Control, TestLane, run_lane
from ..vm.suite import expected_failures
from .kernel import ensure_rump_kernel, missing_tarballs
from .lane import CONTROLS_DIR, default_sources


def control_patches(root: Path) -> list[tuple[Path, list[str]]]:
    return [(p, expected_failures(p)) for p in sorted((root / CONTROLS_DIR).glob("*.patch"))]


def _controls(root: Path) -> list[Control]:
    return [Control(p, expected, {"BUILDTOOL_RUMP_VARIANT": str(p)}) for p, expected in control_patches(root)]


def _build_first(layout: Layout, jobs: int) -> list[str]:
    """Build the rump kernel here, where its progress lines are seen (pytest would capture them); the
    scenarios then find it in the cache. Without the tarballs the scenarios skip and say which."""
    sources = Path(os.environ.get("BUILDTOOL_RUMP_SOURCES") or default_sources(layout.root))
    missing = missing_tarballs(sources)
    if not missing:
        ensure_rump_kernel(sources, layout.cache, jobs=jobs, out=sys.stderr)
    return [f"{sources}/{name}" for name in missing]


LANE = TestLane(name="rump lane", junit="rump", tests=("tests/rump",), marker="rump", logs="rump/logs",
                build_first=_build_first, controls=_controls, controls_dir=CONTROLS_DIR)


def run_rump_suite(args: argparse.Namespace, layout: Layout) -> int:
    return run_lane(LANE, args, layout)
