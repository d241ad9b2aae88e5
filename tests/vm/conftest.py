"""Fixtures of the VM scenarios: one booted guest for the whole session, rebooted (before the next scenario,
by `_guest_health`) when a scenario dirties it.

The `vm` fixture (the contract other tests code against): a session-scoped Guest with
`run(cmd, timeout=60, check=True) -> CommandResult(status, output)`, `release` and `console_log`. Before it
boots, the build is brought up to date (the pipeline through `package` for every recipe with the kernel
profile; a no-op when everything is current), then the guest image is built or taken from the cache.

Settings come from the environment so that `buildtool test` (which runs pytest in a subprocess) and a plain
`pytest` agree:
  BUILDTOOL_KERNEL       kernel profile (default linux-6.1)
  BUILDTOOL_OFFLINE      1: never download
  BUILDTOOL_VM_RESULTS   where console logs and figures go (default ./results)
  BUILDTOOL_VM_MODULES   a directory of ppp_generic.ko/ppp_mppe.ko to test instead of ours (the negative
                         controls of `buildtool test --control`)
  BUILDTOOL_VM_VARIANT   the name of that module set (for the logs)
  BUILDTOOL_JOBS         make jobs for the build (default: number of CPUs)
  BUILDTOOL_WORK, BUILDTOOL_PACKAGES  the work tree and package directory (`buildtool test --work/--packages`)
  BUILDTOOL_VM_PREBUILT  1: boot the packages in BUILDTOOL_PACKAGES as they are (e.g. pkgsrc-built); build
                         nothing
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from figures import Figures, merge_parts, results_dir, worker

from buildtool.layout import Layout
from buildtool.vm.contents import GuestContents
from buildtool.vm.guest import Guest, LinuxGuest
from buildtool.vm.image import BASE_CONTENTS, Image, build_image
from buildtool.vm.nat import ROUTER_CONTENTS, NatLab
from buildtool.vm.qemu import QemuTcg, SocketNic
from buildtool.vm.suite import GuestBuild, layout_from_env, prepare_guest_build
from buildtool.vm.topology import DEBIAN, SingleGuest, TwoGuests, two_guests_network

_STARTED = time.monotonic()
_STARTED_AT = time.time()


def _results() -> Path:
    return results_dir()


def _figures_file() -> str:
    """figures.json for the suite; a negative control's run has its own file, so that `make test`'s
    control runs after the suite do not replace the suite's figures."""
    variant = os.environ.get("BUILDTOOL_VM_VARIANT", "ours")
    return "figures.json" if variant == "ours" else f"figures-control-{variant}.json"


_FIGURES = Figures(_results() / _figures_file())


@pytest.fixture(scope="session")
def figures() -> Figures:
    return _FIGURES


# what the suite's image holds besides busybox, our packages and the tools (the NAT router's too)
SUITE_CONTENTS = BASE_CONTENTS + ROUTER_CONTENTS


@pytest.fixture(scope="session")
def guest_build() -> tuple[Layout, GuestBuild]:
    """Bring the build up to date and resolve the kernel (once per session, for every image)."""
    layout, prebuilt = layout_from_env(os.environ)
    t0 = time.monotonic()
    build = prepare_guest_build(layout, os.environ.get("BUILDTOOL_KERNEL", "linux-6.1"),
                                offline=os.environ.get("BUILDTOOL_OFFLINE") == "1",
                                jobs=int(os.environ.get("BUILDTOOL_JOBS") or os.cpu_count() or 2),
                                prebuilt=prebuilt)
    _FIGURES.record("build_check_seconds", round(time.monotonic() - t0, 2))
    return layout, build


def _image(guest_build: tuple[Layout, GuestBuild], contents: GuestContents, figure: str) -> Image:
    """Build (or reuse) a guest image of the session's build with `contents`."""
    layout, build = guest_build
    modules = os.environ.get("BUILDTOOL_VM_MODULES")
    inputs = build.image_inputs(our_modules=Path(modules) if modules else None,
                                variant=os.environ.get("BUILDTOOL_VM_VARIANT", "ours"), contents=contents)
    t0 = time.monotonic()
    image = build_image(inputs, layout, offline=os.environ.get("BUILDTOOL_OFFLINE") == "1")
    _FIGURES.record(figure, round(time.monotonic() - t0, 2))
    return image


@pytest.fixture(scope="session")
def vm_image(guest_build) -> Image:
    """The suite's guest image (built, or taken from the cache)."""
    return _image(guest_build, SUITE_CONTENTS, "image_seconds")


@pytest.fixture(scope="session")
def userland_image(guest_build) -> Image:
    """The suite's image plus Debian's own pppd, pptpd and pptp (topology.DEBIAN): only the scenarios of
    the distribution's userland boot it, so the suite's image stays as it is."""
    return _image(guest_build, SUITE_CONTENTS + DEBIAN.contents, "userland_image_seconds")


class GuestFactory:
    """Makes guests from the session's image and shuts them all down at the end."""

    def __init__(self, image: Image, log_dir: Path):
        self.image = image
        self.log_dir = log_dir
        self.guests: list[Guest] = []

    def make(self, name: str, nics: tuple[SocketNic, ...] = ()) -> Guest:
        g = Guest(name=name, os=LinuxGuest(), vmm=QemuTcg(), kernel=self.image.kernel,
                  initrd=self.image.initrd, log_dir=self.log_dir, release=self.image.release, nics=nics,
                  our_modules=self.image.our_modules)
        self.guests.append(g)
        return g

    def close(self) -> None:
        for g in self.guests:
            g.shutdown()


@pytest.fixture(scope="session")
def vm_factory(vm_image: Image):
    variant = os.environ.get("BUILDTOOL_VM_VARIANT", "ours")
    # under pytest-xdist each worker boots guests of its own: their console logs go to a folder per worker
    factory = GuestFactory(vm_image, _results() / "console" / variant / worker())
    yield factory
    factory.close()


@pytest.fixture(scope="session")
def vm(vm_factory: GuestFactory) -> Guest:
    """The session's guest (booted here; a guest a scenario left dirty is rebooted before the next one)."""
    g = vm_factory.make("guest")
    g.boot()
    _FIGURES.record("boot_to_ready_seconds", round(g.boot_seconds[-1], 2))
    return g


@pytest.fixture(scope="session")
def userland_vm(userland_image: Image) -> Guest:
    """A guest of the userland image (booted here; rebooted like `vm` when a scenario left it dirty)."""
    factory = GuestFactory(userland_image, _results() / "console" / os.environ.get("BUILDTOOL_VM_VARIANT",
                                                                                  "ours") / worker())
    g = factory.make("userland")
    try:
        g.boot()
        _FIGURES.record("userland_boot_to_ready_seconds", round(g.boot_seconds[-1], 2))
        yield g
    finally:
        factory.close()


@pytest.fixture(scope="session")
def _tunnel_topology(vm: Guest) -> SingleGuest:
    return SingleGuest(vm)


@pytest.fixture
def tunnel(_tunnel_topology: SingleGuest) -> SingleGuest:
    """The single-guest topology, set up (again, after a reboot) with pptpd serving in `server`."""
    return _tunnel_topology.ensure()


@pytest.fixture(scope="session")
def two_guests(vm_factory: GuestFactory) -> TwoGuests:
    port = 20000 + os.getpid() % 20000
    network = two_guests_network()
    server = vm_factory.make("server", network.socket_nics("server", port))
    client = vm_factory.make("client", network.socket_nics("client", port))
    return TwoGuests(server, client)


@pytest.fixture(scope="session")
def nat_lab(vm_factory: GuestFactory) -> NatLab:
    """A guest of its own for the NAT layouts (router, server and clients in namespaces)."""
    return NatLab(vm_factory.make("nat"))


def _guests_used(request) -> list[Guest]:
    guests = []
    for name in ("vm", "userland_vm", "two_guests", "nat_lab"):
        if name in request.fixturenames:
            obj = request.getfixturevalue(name)
            guests += obj.guests() if hasattr(obj, "guests") else [obj]
    return guests


@pytest.fixture(autouse=True)
def _guest_health(request):
    """Before every scenario that uses a guest: reboot a guest an earlier one left dirty (here, at set-up:
    a dirty guest refuses commands, it never reboots in the middle of a scenario). After it: no crash
    pattern since, no bad taint (else: an error)."""
    used = _guests_used(request)
    for g in used:
        if g.dirty:
            g.reboot()
    yield
    for g in used:
        g.check_health()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the console log's path (and its last lines, on failure) to each scenario's report."""
    outcome = yield
    report = outcome.get_result()
    funcargs = getattr(item, "funcargs", {})
    guest = (funcargs.get("vm") or funcargs.get("userland_vm")
             or (funcargs["nat_lab"].guest if "nat_lab" in funcargs else None))
    if guest is None or report.when == "setup" and report.passed:
        return
    log = guest.console_log
    if ("console_log", str(log)) not in item.user_properties:
        item.user_properties.append(("console_log", str(log)))
    if report.failed and log.exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-60:])
        report.sections.append(("console log", f"{log}\n{tail}"))


def pytest_terminal_summary(terminalreporter):
    """Runs in the controlling process only: with workers, their figures are merged first."""
    values = {**merge_parts(_FIGURES.path, since=_STARTED_AT), **_FIGURES.values}
    if not values:
        return
    _FIGURES.values = values
    _FIGURES.record("session_wall_seconds", round(time.monotonic() - _STARTED, 1))
    terminalreporter.section("VM figures (benchmark output, not asserted)")
    for k, v in sorted(_FIGURES.values.items()):
        terminalreporter.write_line(f"{k}: {v}")
