"""VM benchmark: run the scenario suite once and print its figures (nothing here is asserted).

    .venv/bin/python bench/vm_bench.py [-k EXPR] [--results DIR]

Prints boot-to-ready time, the time of each scenario, the whole suite's wall time (the goal is 60 s or
less under TCG on a 2-core machine), the tunnel's iperf3 throughput against the plain veth in the same
guest, and the other figures the scenarios record (results/figures.json). Under TCG the absolute numbers
depend on the host's load: compare figures of one run with each other, not across machines.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", dest="keyword", help="pytest -k expression (default: every VM scenario)")
    ap.add_argument("--results", type=Path, default=ROOT / "results" / "bench")
    args = ap.parse_args()
    cmd = [sys.executable, "-m", "buildtool", "test", "--results", str(args.results)]
    if args.keyword:
        cmd += ["-k", args.keyword]
    t0 = time.monotonic()
    rc = subprocess.call(cmd, cwd=ROOT)
    wall = time.monotonic() - t0
    print("\n== VM benchmark (figures, not asserted) ==")
    junit = args.results / "junit.xml"
    if junit.exists():
        root = ET.parse(junit).getroot()
        cases = [(c.get("name"), float(c.get("time") or 0)) for c in root.iter("testcase")]
        for name, seconds in sorted(cases, key=lambda c: -c[1]):
            print(f"scenario {name}: {seconds:.1f} s")
        print(f"scenarios total: {sum(s for _, s in cases):.1f} s over {len(cases)} scenarios")
    figures = args.results / "figures.json"
    if figures.exists():
        values = json.loads(figures.read_text())
        for key in sorted(values):
            print(f"{key}: {values[key]}")
        tunnel, veth = values.get("iperf3_tunnel_mbit_s"), values.get("iperf3_veth_mbit_s")
        if tunnel and veth:
            print(f"iperf3 tunnel/veth: {tunnel:.1f} / {veth:.1f} Mbit/s ({100 * tunnel / veth:.2f} %)")
    print(f"buildtool test wall time: {wall:.1f} s (goal <= 60 s under TCG); exit status {rc}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
