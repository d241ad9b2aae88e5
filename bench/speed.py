"""Speed benchmark: today's code against a baseline revision, back to back in one run (figures, no asserts).

    .venv/bin/python bench/speed.py [--baseline REV] [--parts build,vm,scaling] [--guests N]

The baseline (default a407398, the revision the speed issue measured: serial VM runner, full OpenSSL
build) is cloned into ~/.cache/buildtool/bench/<rev> with its own venv and packages (set up once, not
timed). Then, one after the other on this machine:

  build    cold userland build (`buildtool package --kernel none` into an empty work tree): baseline, then
           this checkout; then this checkout's no-op rerun and its rerun after one patch changed.
  vm       the baseline's whole VM suite (`buildtool test`) and the same scenarios here (the test files the
           baseline has), serially (--guests 1) and in parallel (--guests N).
  scaling  this checkout's suite by number of scenarios (1, 4, all) at --guests 1 and N.

Each figure is printed with its ratio to the baseline's where there is one. Absolute times on a shared
2-core TCG machine vary from run to run; ratios from one run are what to compare.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from buildtool.layout import default_cache  # noqa: E402
from buildtool.vm.suite import default_guests  # noqa: E402

TIMEOUT = 3600
# the scenario files the baseline has: the same scenarios, run by each runner
BASELINE_FILES = ("test_tunnel", "test_harness", "test_ccp_probe", "test_two_guests")
ONE = "test_smoke_connect_mppe128"
FOUR = "smoke"


def sh(argv: list[str], cwd: Path, log: Path, env: dict | None = None) -> tuple[int, float]:
    """Run argv (output to log), bounded; (exit status, wall seconds)."""
    t0 = time.monotonic()
    with log.open("ab") as f:
        f.write(f"\n$ (cd {cwd} && {' '.join(argv)})\n".encode())
        f.flush()
        try:
            rc = subprocess.run(argv, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **(env or {})}, timeout=TIMEOUT).returncode
        except subprocess.TimeoutExpired:
            rc = -1
    return rc, time.monotonic() - t0


def baseline_checkout(rev: str, log: Path) -> Path:
    dest = default_cache() / "bench" / rev
    if not (dest / ".venv" / "bin" / "buildtool").exists():
        shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        for argv in (["git", "clone", "-q", str(ROOT), str(dest)],
                     ["git", "-C", str(dest), "checkout", "-q", rev], ["./scripts/setup"]):
            rc, _ = sh(argv, dest if argv[0] != "git" else ROOT, log)
            if rc != 0:
                sys.exit(f"bench: setting up the baseline {rev} failed; see {log}")
    return dest


class Table:
    def __init__(self):
        self.rows: list[tuple[str, float, float | None, str]] = []

    def add(self, what: str, seconds: float, base: float | None = None, note: str = "") -> None:
        self.rows.append((what, seconds, base, note))
        ratio = f"  ({seconds / base:.2f}x of baseline {base:.1f} s)" if base else ""
        print(f"bench: {what}: {seconds:.1f} s{ratio}{'  ' + note if note else ''}", flush=True)

    def show(self) -> None:
        print("\n== speed benchmark (figures, not asserted) ==")
        for what, seconds, base, note in self.rows:
            ratio = f"{seconds / base:.2f}x" if base else ""
            print(f"{what:58s} {seconds:8.1f} s  {ratio:>6s}  {note}")


def cold_build(checkout: Path, tmp: Path, log: Path, jobs: int, *extra: str) -> tuple[int, float]:
    """`buildtool package --kernel none` of `checkout` into the work tree and packages under `tmp`."""
    return sh([str(checkout / ".venv/bin/buildtool"), "package", "--kernel", "none", f"-j{jobs}",
               "--no-progress", "--work", str(tmp / "work"), "--packages", str(tmp / "packages"), *extra],
              checkout, log)


def part_build(base: Path, table: Table, log: Path, jobs: int) -> None:
    ccache = default_cache() / "ccache"
    with tempfile.TemporaryDirectory(prefix="bench-build-") as t:
        rc, b = cold_build(base, Path(t) / "base", log, jobs)
        table.add("cold userland build, baseline", b, note=f"exit {rc}")
        rc, n = cold_build(ROOT, Path(t) / "nocache", log, jobs, "--no-ccache")
        table.add("cold build, this checkout, --no-ccache", n, b, f"exit {rc}")
        saved = ccache.with_name("ccache.bench-saved")
        if ccache.exists():
            ccache.rename(saved)
        try:
            rc, fill = cold_build(ROOT, Path(t) / "fill", log, jobs)
            table.add("cold build, this checkout, empty compiler cache", fill, b, f"exit {rc}")
        finally:
            shutil.rmtree(saved, ignore_errors=True)  # the cache just filled holds the same objects
        rc, warm = cold_build(ROOT, Path(t) / "new", log, jobs)
        table.add("cold work tree, this checkout, compiler cache warm", warm, b, f"exit {rc}")
        same = all((Path(t) / "new/packages/All" / p.name).read_bytes() == p.read_bytes()
                   for p in (Path(t) / "nocache/packages/All").glob("*.tgz"))
        print(f"bench: packages with and without the compiler cache byte-identical: {same}", flush=True)
        rc, noop = cold_build(ROOT, Path(t) / "new", log, jobs)
        table.add("no-op rerun, this checkout", noop, note=f"exit {rc}")
        # one patch changed: a copy of the checkout with a touched poptop patch, same work tree
        copy = Path(t) / "repo"
        shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns("work", "packages", "results", ".git",
                                                                    "__pycache__", ".venv"))
        patch = sorted((copy / "patches" / "poptop").glob("patch-*"))[0]
        lines = patch.read_text().split("\n")
        patch.write_text("\n".join([*lines[:2], "(benchmark: header touched)", *lines[2:]]))
        python = str(ROOT / ".venv/bin/python")
        sh([python, "-m", "buildtool", "makepatchsum", "poptop"], copy, log)
        rc, one = sh([python, "-m", "buildtool", "package", "--kernel", "none", f"-j{jobs}", "--no-progress",
                      "--work", str(Path(t) / "new/work"), "--packages", str(Path(t) / "new/packages")],
                     copy, log)
        table.add(f"rerun after changing {patch.name} of poptop", one, note=f"exit {rc}")


def vm_run(checkout: Path, results: Path, log: Path, keyword: str | None,
           guests: int | None) -> tuple[int, float, int]:
    argv = [str(checkout / ".venv/bin/buildtool"), "test", "--results", str(results)]
    if keyword:
        argv += ["-k", keyword]
    if guests is not None:
        argv += ["--guests", str(guests)]
    rc, seconds = sh(argv, checkout, log)
    junit = results / "junit.xml"
    cases = len(list(ET.parse(junit).getroot().iter("testcase"))) if junit.exists() else 0
    return rc, seconds, cases


def part_vm(base: Path, table: Table, log: Path, guests: int, tmp: Path) -> None:
    # not timed: each checkout's packages and guest image, brought up to date by one short scenario
    for checkout in (base, ROOT):
        sh([str(checkout / ".venv/bin/buildtool"), "package", "--no-progress"], checkout, log)
        vm_run(checkout, tmp / "warm-up", log, "test_harness_exit_status_and_output", None)
    rc, b, n = vm_run(base, tmp / "vm-base", log, None, None)
    table.add(f"VM suite, baseline runner ({n} scenarios)", b, note=f"exit {rc}")
    same = " or ".join(BASELINE_FILES)
    for g in (1, guests):
        rc, s, n = vm_run(ROOT, tmp / f"vm-same-{g}", log, same, g)
        table.add(f"same scenarios, this runner, --guests {g} ({n} scenarios)", s, b, f"exit {rc}")


def part_scaling(table: Table, log: Path, guests: int, tmp: Path) -> None:
    for label, keyword in (("1 scenario", ONE), ("4 scenarios (smoke)", FOUR), ("all scenarios", None)):
        for g in (1, guests):
            rc, s, n = vm_run(ROOT, tmp / f"vm-scale-{g}-{n_or(keyword)}", log, keyword, g)
            table.add(f"{label}, --guests {g} ({n} ran)", s, note=f"exit {rc}")


def n_or(keyword: str | None) -> str:
    return keyword or "all"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="a407398")
    ap.add_argument("--parts", default="build,vm,scaling")
    ap.add_argument("--guests", type=int, default=default_guests())
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    out = ROOT / "results" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    log = out / "speed.log"
    print(f"bench: log {log}", flush=True)
    base = baseline_checkout(args.baseline, log)
    table = Table()
    with tempfile.TemporaryDirectory(prefix="bench-speed-") as t:
        if "build" in parts:
            part_build(base, table, log, args.jobs)
        if "vm" in parts:
            part_vm(base, table, log, args.guests, Path(t))
        if "scaling" in parts:
            part_scaling(table, log, args.guests, Path(t))
    table.show()
    return 0


if __name__ == "__main__":
    sys.exit(main())
