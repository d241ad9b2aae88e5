"""Build benchmark: prints figures, asserts nothing.

  cold build time per phase and in total; the driver's own CPU time and the children's CPU time against the
  wall time (driver overhead); a no-op rerun; a rerun after touching one patch (only that package rebuilds).

Runs on a copy of the repository in a temporary directory (the distfile cache is shared, so "cold" means a
cold work tree, not a cold download), with --kernel none unless BENCH_KERNEL names a profile.

    .venv/bin/python bench/build_bench.py [-j N]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from buildtool import pipeline
from buildtool.layout import Layout
from buildtool.makesum import makepatchsum
from buildtool.recipe import load_all, select

ROOT = Path(__file__).resolve().parent.parent


def self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def one_run(layout: Layout, jobs: int, kernel: str, label: str) -> pipeline.Context:
    ctx = pipeline.Context(layout=layout, options=pipeline.Options(jobs=jobs, kernel=kernel),
                           out=open(os.devnull, "w"))
    t0, s0, c0 = time.monotonic(), self_cpu(), children_cpu()
    pipeline.run(ctx, select(load_all(layout.root), []))
    wall, own, kids = time.monotonic() - t0, self_cpu() - s0, children_cpu() - c0
    ran = [r for r in ctx.summary.records if r.outcome == "done"]
    print(f"\n== {label}: wall {wall:.2f}s, driver CPU {own:.2f}s ({100 * own / wall:.1f}% of wall), "
          f"children CPU {kids:.1f}s; phases run: {len(ran)}")
    for r in ran:
        print(f"   {r.package:10s} {r.phase:8s} {r.seconds:7.2f}s")
    return ctx


def copy_repo(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("work", "packages", "results", ".venv", ".git", "__pycache__")
    shutil.copytree(ROOT, dest, ignore=ignore)
    return dest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    kernel = os.environ.get("BENCH_KERNEL", "none")
    with tempfile.TemporaryDirectory(prefix="buildtool-bench-") as tmp:
        root = copy_repo(Path(tmp) / "repo")
        layout = Layout.default(root=root)
        cold = one_run(layout, args.jobs, kernel, "cold build")
        total = sum(r.seconds for r in cold.summary.records)
        by_phase: dict[str, float] = {}
        for r in cold.summary.records:
            by_phase[r.phase] = by_phase.get(r.phase, 0.0) + r.seconds
        phases = ", ".join(f"{p} {s:.1f}s" for p, s in by_phase.items())
        print(f"   per phase: {phases}; total {total:.1f}s")
        one_run(layout, args.jobs, kernel, "no-op rerun")
        patch = sorted((root / "patches" / "poptop").glob("patch-*"))[0]
        text = patch.read_text().split("\n")
        text.insert(2, "(benchmark: header touched)")
        patch.write_text("\n".join(text))
        makepatchsum(load_all(root)["poptop"], layout)
        touched = one_run(layout, args.jobs, kernel, f"after touching {patch.name} of poptop")
        rebuilt = sorted({r.package for r in touched.summary.records if r.outcome == "done"})
        print(f"   packages that reran a phase: {', '.join(rebuilt) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
