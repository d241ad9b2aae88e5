"""Fixtures of the rump lane: NetBSD's own if_ppp (a rump kernel on Linux) with and without our ppp_mppe.

The lane is built once per session (`buildtool.rump.lane.prepare`: the rump kernel from the shared
tarballs, cached under ~/.cache/buildtool/rump; our components; the driver programs). Settings come from
the environment so that `buildtool test --kernel netbsd-rump` (pytest in a subprocess) and `make test` agree:
  BUILDTOOL_RUMP_SOURCES   folder with netbsd-rump-src-2016.tar.xz and buildrump.sh-2017.tar.xz
                           (default ../shared/sources seen from the repository)
  BUILDTOOL_RUMP_VARIANT   a patch under patches/rump-mppe/broken/ to build ppp_mppe from instead (a
                           negative control: `buildtool test --kernel netbsd-rump --control`)
  BUILDTOOL_VM_RESULTS     where logs and figures go (default ./results)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rump_support import ROOT, record, results_dir, save_figures

from buildtool.layout import Layout
from buildtool.rump.driver import CorePeer, RumpPPP
from buildtool.rump.kernel import missing_tarballs
from buildtool.rump.lane import LaneBuild, default_sources, prepare


def pytest_sessionfinish(session, exitstatus) -> None:
    save_figures()


@pytest.fixture(scope="session")
def lane() -> LaneBuild:
    sources = Path(os.environ.get("BUILDTOOL_RUMP_SOURCES") or default_sources(ROOT))
    missing = missing_tarballs(sources)
    if missing:
        pytest.skip(f"the rump lane needs {' and '.join(missing)} in {sources}")
    variant = os.environ.get("BUILDTOOL_RUMP_VARIANT")
    build = prepare(Layout.default(root=ROOT), sources, variant=Path(variant) if variant else None)
    record("rump_prepare_seconds", build.seconds)
    return build


def _log(request, what: str) -> Path:
    name = request.node.name.replace("/", "_")
    return results_dir() / "logs" / f"{name}.{what}.log"


def _needs_mppe(lane: LaneBuild) -> None:
    if lane.mppe is None or lane.peer is None:
        pytest.fail(f"our MPPE sources are not in this tree: missing {', '.join(lane.missing)} "
                    f"(kmod/mppe/core from the mppe-core branch, kmod/mppe/netbsd from the netbsd branch)")


@pytest.fixture
def netbsd(lane, request):
    """A fresh rump kernel with NetBSD's if_ppp and our ppp_mppe, ppp unit on a pty pair."""
    _needs_mppe(lane)
    with RumpPPP(lane.mppe, _log(request, "rump")) as unit:
        yield unit
        assert unit.diagnostics() == [], f"the rump kernel complained: {unit.diagnostics()}"


@pytest.fixture
def netbsd_without(lane, request):
    """The same without our component: NetBSD's PPP stack alone."""
    with RumpPPP(lane.base, _log(request, "rump-base")) as unit:
        yield unit


@pytest.fixture
def core_peer(lane, request):
    _needs_mppe(lane)
    with CorePeer([str(lane.peer)], _log(request, "peer")) as peer:
        yield peer
