"""Fixtures of the QEMU-booted NetBSD lane: a NetBSD kernel built from ../shared/sources, our ppp_mppe.kmod
and our test agent on its root file system, one booted guest for the session (rebooted when dirty).

Settings from the environment (as the Linux VM suite):
  BUILDTOOL_VM_RESULTS        where console logs and figures go (default ./results)
  BUILDTOOL_NETBSD_CONTROL    a patch of patches/netbsd-vm/broken/ applied to a copy of kmod/mppe/netbsd:
                              the module under test is that broken variant (negative controls)
  BUILDTOOL_JOBS              make jobs for the kernel build (default 2)
  BUILDTOOL_NETBSD_SOURCES    where the kernel's tarballs are (default ../shared/sources)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from figures import Figures, results_dir

from buildtool.kernels.netbsd_kernel import TARBALLS, ensure_kernel, missing_tarballs, sources_dir
from buildtool.vm.guest import Guest

REPO = Path(__file__).resolve().parents[2]
SOURCES = sources_dir(REPO)  # $BUILDTOOL_NETBSD_SOURCES or ../shared/sources


def _results() -> Path:
    return results_dir()


_FIGURES = Figures(_results() / "figures-netbsd.json")


@pytest.fixture(scope="session")
def nb_figures() -> Figures:
    return _FIGURES


def require_sources() -> None:
    missing = missing_tarballs(SOURCES)
    if missing:
        pytest.skip(f"{', '.join(missing)} not in {SOURCES} (the NetBSD kernel is built from "
                    f"{', '.join(TARBALLS)})")


@pytest.fixture(scope="session")
def netbsd_kernel(nb_figures):
    require_sources()
    from buildtool.layout import default_cache

    cache = default_cache()
    t0 = time.monotonic()
    kernel = ensure_kernel(SOURCES, cache, REPO, jobs=int(os.environ.get("BUILDTOOL_JOBS") or 2),
                           out=sys.stderr)
    seconds = time.monotonic() - t0
    m = kernel.marker
    nb_figures.record("netbsd_kernel_build_recorded_s",
                      {"tools": m.get("tools_seconds"), "kernel": m.get("kernel_seconds")})
    nb_figures.record("netbsd_kernel_ensure_this_run_s", round(seconds, 1))
    return kernel


@pytest.fixture(scope="session")
def netbsd_media(netbsd_kernel, nb_figures, tmp_path_factory):
    from buildtool.layout import default_cache
    from buildtool.vm import netbsd as nb

    work = _results() / "netbsd-work"
    work.mkdir(parents=True, exist_ok=True)
    log = work / "build.log"
    glue = None
    control = os.environ.get("BUILDTOOL_NETBSD_CONTROL")
    if control:
        glue = nb.broken_glue(REPO, Path(control), work / "broken-glue", log)
    t0 = time.monotonic()
    agent = nb.build_agent(REPO, netbsd_kernel, work / "init", log)
    kmod = nb.build_module(REPO, netbsd_kernel, work / "kmod", default_cache(), log, glue=glue)
    media = nb.build_boot_iso(netbsd_kernel, agent, kmod, work / "media", log)
    nb_figures.record("netbsd_agent_module_iso_s", round(time.monotonic() - t0, 1))
    return media


@pytest.fixture(scope="session")
def nbvm(netbsd_media, netbsd_kernel, nb_figures):
    from buildtool.vm.netbsd import NetBSDGuest
    from buildtool.vm.qemu import QemuTcg

    variant = Path(os.environ.get("BUILDTOOL_NETBSD_CONTROL") or "ours").name
    guest = Guest("netbsd", NetBSDGuest(), QemuTcg(), netbsd_media.iso, netbsd_media.iso,
                  _results() / "console" / f"netbsd-{variant}", release=netbsd_kernel.release, memory_mb=256,
                  watchdog_seconds=1800, boot_timeout=180)
    seconds = guest.boot()
    nb_figures.record("netbsd_boot_to_agent_ready_s", round(seconds, 2))
    yield guest
    guest.shutdown()


@pytest.fixture(autouse=True)
def _netbsd_health(request, nb_figures):
    """Before each scenario: reboot the guest if an earlier one left it dirty (a dirty guest refuses
    commands). After it: the console since the last command holds no crash pattern and the agent answers;
    the scenario's time is a figure."""
    if "nbvm" in request.fixturenames:
        guest = request.getfixturevalue("nbvm")
        if guest.dirty:
            guest.reboot()
    t0 = time.monotonic()
    yield
    if "nbvm" in request.fixturenames:
        guest = request.getfixturevalue("nbvm")
        try:
            guest.check_health()
        finally:
            nb_figures.record(f"netbsd_scenario_s[{request.node.name}]", round(time.monotonic() - t0, 2))
