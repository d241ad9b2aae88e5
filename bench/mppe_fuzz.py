"""Longer libFuzzer run over the MPPE core's receive path: prints figures, asserts nothing.

The bounded run in tests/test_mppe_fuzz.py takes 60 s; this one runs --seconds (default 600) with the
corpus kept in ~/.cache/buildtool/mppe-core/fuzz-corpus/<harness key> so coverage grows across runs,
then the every-length sweep (0..65535). Crash files, if any, go to a temporary directory named in the
output. Exit status 1 if libFuzzer or the sweep reported a bug.

    .venv/bin/python bench/mppe_fuzz.py [--seconds 600]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from buildtool import mppecore
from buildtool.errors import BuildError
from buildtool.layout import default_cache

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--runs", type=int, default=100_000_000)
    args = ap.parse_args()
    spec = mppecore.fuzzer_build()
    binary = mppecore.build(spec, ROOT)
    corpus = default_cache() / "mppe-core" / "fuzz-corpus" / mppecore.build_key(ROOT, spec)
    before = len(list(corpus.glob("*"))) if corpus.exists() else 0
    artifacts = Path(tempfile.mkdtemp(prefix="mppe-fuzz-artifacts-"))
    print(f"libFuzzer: {args.seconds} s, corpus {corpus} ({before} inputs), artifacts {artifacts}",
          flush=True)
    run = mppecore.run_fuzzer(binary, corpus, artifacts, runs=args.runs, max_total_time=args.seconds)
    print(f"  execs            {run.execs}")
    print(f"  execs/s          {run.execs_per_s}")
    print(f"  coverage (edges) {run.coverage}")
    print(f"  features         {run.features}")
    print(f"  corpus           {before} -> {len(list(corpus.glob('*')))} inputs")
    print(f"  wall time        {run.seconds:.0f} s")
    print(f"  verdict          {'BUG FOUND' if run.found_bug else 'no crash, leak or UB report'}")
    if run.found_bug:
        print(run.report())
    sweep = mppecore.build(mppecore.sweep_build(), ROOT)
    t0 = time.monotonic()
    res = mppecore.run_sweep(sweep)
    print(f"sweep of every length 0..65535: {time.monotonic() - t0:.0f} s, "
          f"{'clean' if res.returncode == 0 else 'BUG FOUND'}")
    if res.returncode != 0:
        print(res.stderr[-3000:])
    return 1 if run.found_bug or res.returncode != 0 else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BuildError as e:
        sys.exit(f"mppe_fuzz: {e}")
