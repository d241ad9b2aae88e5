"""`buildtool test`: run the VM scenarios (pytest, in a subprocess) and, with --control, the controls.

The scenarios live in tests/vm/ and run under pytest both ways (`make test` and `buildtool test`); this
module only chooses what to run, passes the settings through the environment (see tests/vm/conftest.py),
and turns pytest's verdict into the tool's exit codes: 0 all green, 10 (TestFailure) a scenario failed or
a negative control was not caught, 11 (HarnessError) the harness broke or an input package is missing.

What the guests run: by default the build is brought up to date first (work tree `--work`, packages in
./packages/All); with `--packages DIR` the packages already in DIR/All (e.g. built by pkgsrc) are booted as
they are and nothing is built. `--dry-run` prints what would run and boots nothing.

Negative controls: each patch in patches/ppp-mppe/broken/ (never shipped, never in distinfo) is built into
a variant of our modules, and the scenarios its header names (`Expect-Fail: test_name[param]`) run against
it. A control is caught when every one of them fails; one that passes means the suite cannot see that
class of bug, which is itself a failure.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import HarnessError, TestFailure, UsageError
from ..layout import Layout
from ..outcomes import Outcome, outcomes_path, pytest_args, read_outcomes
from ..runlog import stop_group

# A TCG guest running a scenario keeps its vCPU about half busy (the rest is waiting on timers, the
# network and the console), so two guest sessions per core keep the cores busy; more only adds contention.
GUESTS_PER_CPU = 2
MAX_GUESTS = 4
SUITE_TIMEOUT = 4 * 3600.0  # seconds for one pytest run of the VM scenarios (minutes, normally)
EXPECT_FAIL = re.compile(r"^Expect-Fail:\s*(.+)$", re.M)


def default_guests() -> int:
    """How many guest sessions `buildtool test` runs at once unless --guests says."""
    return max(1, min(MAX_GUESTS, GUESTS_PER_CPU * (os.cpu_count() or 1)))


def xdist_args(guests: int) -> list[str]:
    """pytest's arguments for `guests` sessions at once: pytest-xdist workers, one test at a time each
    (each worker boots the guests its scenarios need; guests are not shared between workers)."""
    return [] if guests <= 1 else ["-n", str(guests), "--dist", "load", "--max-worker-restart", "0"]


# how `buildtool test` tells the pytest subprocess (tests/vm/conftest.py) which trees to use
ENV_WORK = "BUILDTOOL_WORK"
ENV_PACKAGES = "BUILDTOOL_PACKAGES"
ENV_PREBUILT = "BUILDTOOL_VM_PREBUILT"  # 1: boot the packages as they are, build nothing


def layout_from_env(environ: Mapping[str, str]) -> tuple[Layout, bool]:
    """The layout the VM fixtures use and whether its packages are prebuilt (not to be built first)."""
    work, packages = environ.get(ENV_WORK), environ.get(ENV_PACKAGES)
    layout = Layout.default(work=Path(work) if work else None, packages=Path(packages) if packages else None)
    return layout, environ.get(ENV_PREBUILT) == "1"


def guest_packages(layout: Layout, recipes) -> list[Path]:
    """The package files the guest image is made of, one per packaged recipe, in packages/All."""
    return [layout.packages_all / f"{r.pkgname}.tgz" for r in recipes if r.packaged]


def check_prebuilt(layout: Layout, recipes) -> list[Path]:
    """The prebuilt packages of `--packages DIR`; HarnessError naming each one missing or broken."""
    from ..package import verify_package

    wanted = guest_packages(layout, recipes)
    problems = [f"{p}: missing" for p in wanted if not p.is_file()]
    for p in wanted:
        if p.is_file():
            problems += verify_package(p)
    if problems:
        raise HarnessError(f"--packages {layout.packages}: the input packages are not usable (nothing was "
                           f"booted; not a verdict on the product):\n  " + "\n  ".join(problems) +
                           f"\nBuild them (`buildtool package --packages {layout.packages}` or pkgsrc's "
                           f"`make package`) and run again.")
    return wanted


@dataclass
class GuestBuild:
    """What every guest set-up starts from: the recipes, their packages and the resolved kernel target."""

    recipes: list
    packages: list[Path]
    target: object  # kmod.KernelTarget

    def image_inputs(self, **more):
        """The guest image's inputs (vm.image.ImageInputs) for this kernel and these packages; `more` sets
        its other fields (our_modules, variant, contents, ...)."""
        from .image import ImageInputs

        t = self.target
        more.setdefault("module_names", self.our_module_names())
        return ImageInputs(release=t.release, vmlinuz=t.vmlinuz, modules_root=t.modules_root,
                           packages=tuple(self.packages), **more)

    def our_module_names(self) -> tuple[str, ...]:
        """The kernel modules the recipes build for this kernel ([kmod] modules of the recipe that has
        kernel modules: ppp-mppe)."""
        from .. import kmod

        return tuple(name for r in self.recipes if r.kernel_patches
                     for name in kmod.modules_of(self.target, r))


def prepare_guest_build(layout: Layout, kernel: str, *, jobs: int, offline: bool,
                        prebuilt: bool = False) -> GuestBuild:
    """The one VM pipeline set-up (VM fixtures, negative controls, benchmarks): bring the build up to date
    through `package` (with `prebuilt`: check the packages of --packages instead and build nothing), then
    resolve the kernel target."""
    from .. import kmod, pipeline
    from ..recipe import load_all, select

    recipes = select(load_all(layout.root), [])
    ctx = pipeline.Context(layout=layout, options=pipeline.Options(
        jobs=jobs, offline=offline, kernel=kernel, through="package", progress=False))
    if prebuilt:
        packages = check_prebuilt(layout, recipes)
    else:
        pipeline.run(ctx, recipes)
        packages = guest_packages(layout, recipes)
    target = ctx.kernel_target or kmod.resolve_target(kernel, layout, {}, offline=offline,
                                                      log=layout.work / "kernel" / "resolve.log")
    return GuestBuild(recipes, packages, target)


def run_suite(args: argparse.Namespace, layout: Layout) -> int:
    from ..recipe import load_all, select

    prebuilt = args.packages_dir is not None
    if prebuilt and args.control:
        raise UsageError("--control builds its own module variants from the work tree; it cannot test "
                         "the prebuilt packages of --packages (drop one of the two options)")
    recipes = select(load_all(layout.root), [])
    packages = check_prebuilt(layout, recipes) if prebuilt else guest_packages(layout, recipes)
    results = Path(args.results).resolve()
    if args.dry_run:
        how = ("as they are (nothing is built)" if prebuilt
               else f"after bringing the build in {layout.work} up to date")
        print(f"buildtool test --dry-run: would boot guests with kernel {args.kernel} and the packages "
              f"{', '.join(str(p) for p in packages)} {how}, run "
              f"{'the negative controls' if args.control else 'the VM scenarios'}"
              f"{f' matching -k {args.keyword!r}' if args.keyword else ''} and write results to {results}; "
              f"nothing was run", file=sys.stderr)
        return 0
    results.mkdir(parents=True, exist_ok=True)
    if args.control:
        return _run_controls(args, layout, results)
    outcome = _pytest(args, layout, results, results / "junit.xml", keyword=args.keyword,
                      env={ENV_PREBUILT: "1"} if prebuilt else None)
    print(f"buildtool test: JUnit XML {outcome.junit}; console logs under {results / 'console'}",
          file=sys.stderr)
    if outcome.returncode == 5:
        raise UsageError(f"no VM scenario matches -k {args.keyword!r}")
    if outcome.harness_broke:
        raise HarnessError("the VM harness broke (not a verdict on the product); see " + str(outcome.junit))
    if outcome.returncode == 1:
        failed = outcome.failed()
        raise TestFailure(f"{len(failed)} VM scenario(s) failed: {', '.join(failed)}\n"
                          f"JUnit XML: {outcome.junit}; console logs: {results / 'console'}")
    if outcome.returncode != 0:
        raise HarnessError(f"pytest ended with exit status {outcome.returncode}; see {outcome.junit}")
    return 0


def control_patches(layout: Layout) -> list[tuple[Path, list[str]]]:
    """The negative-control patches and the scenarios each must make fail."""
    from ..patch import series

    return [(p, expected_failures(p)) for p in series(layout.root / "patches" / "ppp-mppe" / "broken")]


def expected_failures(patch: Path) -> list[str]:
    """The scenarios a control patch names in its `Expect-Fail:` lines (comma-separated, several lines
    add up); UsageError when it names none."""
    expected = [n.strip() for line in EXPECT_FAIL.findall(patch.read_text()) for n in line.split(",")]
    expected = [n for n in expected if n]
    if not expected:
        raise UsageError(f"{patch}: a negative control must name the scenarios it breaks "
                         f"(`Expect-Fail: name`)")
    return expected


def control_keyword(expected: list[str]) -> str:
    """The `-k` expression that selects every scenario of `expected` (all its parameters)."""
    return " or ".join(sorted({n.split("[", 1)[0] for n in expected}))


def _run_controls(args: argparse.Namespace, layout: Layout, results: Path) -> int:
    from .. import kmod
    from ..distinfo import read_distinfo
    from ..patch import split_series

    controls = control_patches(layout)
    if not controls:
        raise UsageError(f"no negative controls in {layout.root / 'patches/ppp-mppe/broken'}")
    build = prepare_guest_build(layout, args.kernel, jobs=args.jobs, offline=args.offline)
    target = build.target
    recipe = next(r for r in build.recipes if r.name == "ppp-mppe")
    distinfo = read_distinfo(recipe.distinfo_path)
    kpatches = split_series(recipe.patch_dir(layout.root), recipe.kernel_patches)[1]
    rows = []
    for patch, expected in controls:
        dest = layout.pkg_work(recipe.name) / "controls" / patch.name
        kmod.build_modules(target, recipe, kpatches, distinfo, layout, jobs=args.jobs,
                           log_dir=layout.logs(recipe.name), extra_patches=(patch,), dest=dest)
        outcome = _pytest(args, layout, results, results / f"junit-control-{patch.name}.xml",
                          keyword=control_keyword(expected),
                          env={"BUILDTOOL_VM_MODULES": str(dest), "BUILDTOOL_VM_VARIANT": patch.name})
        if outcome.harness_broke:
            raise HarnessError(f"the VM harness broke while running control {patch.name}; "
                               f"see {outcome.junit}")
        failed = outcome.failed()
        missing = [n for n in expected if n not in outcome.tests]
        if missing:
            raise UsageError(f"{patch}: Expect-Fail names unknown scenarios: {', '.join(missing)}")
        caught = all(n in failed for n in expected)
        rows.append((patch.name, expected, failed, caught))
    return report_controls(rows, "negative controls", "the suite")


def report_controls(rows: list[tuple[str, list[str], list[str], bool]], label: str, by: str) -> int:
    """Print each control's verdict (name, expected, failed, caught); TestFailure if one was missed."""
    print(f"\n{label} (each must make its scenarios fail):", file=sys.stderr)
    for name, expected, failed, caught in rows:
        print(f"  {name}: {'CAUGHT' if caught else 'NOT CAUGHT'}; expected to fail: {', '.join(expected)}; "
              f"failed: {', '.join(failed) or 'nothing'}", file=sys.stderr)
    missed = [r[0] for r in rows if not r[3]]
    if missed:
        raise TestFailure(f"negative control(s) not caught by {by}: {', '.join(missed)}")
    print(f"all {len(rows)} {label} caught", file=sys.stderr)
    return 0


def _pytest(args: argparse.Namespace, layout: Layout, results: Path, junit: Path, keyword: str | None,
            env: dict[str, str] | None = None) -> Outcome:
    cmd = [sys.executable, "-m", "pytest", str(layout.root / "tests" / "vm"), "-m", "vm", "-ra",
           "-p", "no:cacheprovider", "--durations=0", f"--junitxml={junit}", "-o", "junit_family=xunit1",
           "-o", "junit_logging=system-err"]
    if keyword:
        cmd += ["-k", keyword]
    cmd += xdist_args(args.guests or default_guests())
    full_env = dict(os.environ, BUILDTOOL_KERNEL=args.kernel, BUILDTOOL_VM_RESULTS=str(results),
                    BUILDTOOL_JOBS=str(args.jobs), BUILDTOOL_OFFLINE="1" if args.offline else "0",
                    **{ENV_WORK: str(layout.work.resolve()), ENV_PACKAGES: str(layout.packages.resolve())})
    full_env.pop(ENV_PREBUILT, None)
    full_env.update(env or {})
    return run_pytest(cmd, junit, layout.root, full_env, "the VM suite",
                      f"{junit} and the console logs under {results}")


def run_pytest(cmd: list[str], junit: Path, cwd: Path, env: dict[str, str], what: str, see: str) -> Outcome:
    """Run pytest (`cmd`, writing its JUnit XML to `junit`) with the outcome recorder loaded; what it did.

    The recorder's file is removed first, so a run that dies before writing it is never read as the
    previous run's verdict."""
    path = outcomes_path(junit)
    path.unlink(missing_ok=True)
    cmd = [*cmd, *pytest_args(path)]
    return read_outcomes(junit, run_pytest_group(cmd, cwd, env, what, see))


def run_pytest_group(cmd: list[str], cwd: Path, env: dict[str, str], what: str, see: str) -> int:
    """One pytest run in a process group of its own, bounded by SUITE_TIMEOUT; its exit status.

    On a timeout or an interruption the whole group (guests, rump programs) is stopped, never orphaned.
    """
    print(f"buildtool test: {' '.join(cmd)}", file=sys.stderr, flush=True)
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, start_new_session=True)
    try:
        return proc.wait(timeout=SUITE_TIMEOUT)
    except subprocess.TimeoutExpired:
        stop_group(proc)
        raise HarnessError(f"{what} did not finish within {SUITE_TIMEOUT:.0f}s and was stopped (QEMU "
                           f"guests included); see {see}") from None
    except BaseException:
        stop_group(proc)  # the guests go down with the suite: nothing left running
        raise
