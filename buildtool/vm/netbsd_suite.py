"""`buildtool test --kernel netbsd-qemu`: the QEMU-booted NetBSD lane (docs/vm-netbsd.md) through
buildtool.testlane. The NetBSD kernel is built (or taken from the cache, its inputs verified against
netbsd-kernel/distinfo) here, with its progress lines; then tests/netbsd_vm's scenarios run in pytest and,
with --control, each broken variant of our NetBSD glue (patches/netbsd-vm/broken/) in a pytest run of its
own, the scenarios its `Expect-Fail:` line names having to fail (with `Expect-Crash: yes`, by a GuestCrash).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..kernels.netbsd_kernel import ensure_kernel, missing_tarballs, sources_dir
from ..layout import Layout
from ..testlane import Control, TestLane, run_lane
from .netbsd import control_patches, expected_failures, expects_crash

SCENARIOS = ("tests/netbsd_vm/test_netbsd_guest.py", "tests/netbsd_vm/test_netbsd_fixtures.py")
CONTROLS_DIR = "patches/netbsd-vm/broken"
ENV_CONTROL = "BUILDTOOL_NETBSD_CONTROL"  # read by tests/netbsd_vm/conftest.py


def _controls(root: Path) -> list[Control]:
    return [Control(p, expected_failures(p), {ENV_CONTROL: str(p)}, crash=expects_crash(p))
            for p in control_patches(root)]


def _build_first(layout: Layout, jobs: int) -> list[str]:
    """The kernel, here where its progress is seen (pytest captures its fixtures' output); the scenarios
    then find it in the cache. Without the tarballs the scenarios skip and say which."""
    sources = sources_dir(layout.root)
    missing = missing_tarballs(sources)
    if not missing:
        t0 = time.monotonic()
        kernel = ensure_kernel(sources, layout.cache, layout.root, jobs=jobs, out=sys.stderr)
        print(f"netbsd-kernel: {kernel.kernel} ({kernel.release}), ready in {time.monotonic() - t0:.1f}s "
              f"(inputs verified against netbsd-kernel/distinfo)", file=sys.stderr, flush=True)
    return [f"{sources}/{name}" for name in missing]


LANE = TestLane(name="NetBSD lane", junit="netbsd-qemu", tests=SCENARIOS, logs="console",
                build_first=_build_first, controls=_controls, controls_dir=CONTROLS_DIR)


def run_netbsd_suite(args: argparse.Namespace, layout: Layout) -> int:
    return run_lane(LANE, args, layout)
