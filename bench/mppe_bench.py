"""MPPE core throughput against OpenSSL on this CPU: prints figures and ratios, asserts nothing.

Builds kmod/mppe/userspace/mppe_bench.c (the core plus libcrypto in one process, gcc -O2) and runs it
several rounds, keeping each figure's best round (the machine is shared; the best round is the least
disturbed). Figures, in MB/s of plaintext, for 1500- and 64-byte packets:

  rc4-core / rc4-openssl           raw RC4 keystream: our C against OpenSSL's assembler RC4 (the ceiling)
  mppe-compress-stateful           mppe_compress, stateful (RC4 + a key change every 256 packets)
  mppe-decompress-stateful         mppe_decompress over frames encrypted beforehand (untimed)
  mppe-(de)compress-stateless      stateless (a key change per packet: SHA-1 + 2 RC4 keyings)
  openssl-stateless-equivalent     the same per-packet work with libcrypto's SHA-1 and RC4

plus `openssl speed -evp rc4` (legacy provider) as a cross-check of the OpenSSL ceiling. Goal (issue 10):
the core within 1.5x of OpenSSL's RC4.

    .venv/bin/python bench/mppe_bench.py [--rounds 5] [--budget 0.3]
"""

from __future__ import annotations

import argparse
import re
import subprocess
from collections import defaultdict
from pathlib import Path

from buildtool import mppecore
from buildtool.errors import BuildError
from buildtool.mppecore import USERSPACE, NativeBuild

ROOT = Path(__file__).resolve().parent.parent
BENCH = NativeBuild(name="mppe-bench", std="c99", shared=False,
                    flags=("-O2", "-Wno-deprecated-declarations"),
                    extra_sources=(USERSPACE / "mppe_bench.c",), link=("-lcrypto",))


def run_rounds(binary: Path, rounds: int, budget: float) -> dict[tuple[str, int], float]:
    best: dict[tuple[str, int], float] = defaultdict(float)
    for r in range(rounds):
        out = subprocess.run([str(binary), str(budget)], capture_output=True, text=True, check=True,
                             timeout=600).stdout
        for line in out.splitlines():
            name, size, mbs = line.split()
            best[name, int(size)] = max(best[name, int(size)], float(mbs))
        print(f"round {r + 1}/{rounds} done", flush=True)
    return best


def openssl_speed(size: int) -> float | None:
    argv = ["openssl", "speed", "-provider", "legacy", "-provider", "default", "-evp", "rc4",
            "-bytes", str(size), "-seconds", "2"]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"^RC4\s+([\d.]+)k", out, re.M)
    return float(m.group(1)) / 1000 if m else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--budget", type=float, default=0.3, help="seconds per figure per round")
    args = ap.parse_args()
    binary = mppecore.build(BENCH, ROOT)
    best = run_rounds(binary, args.rounds, args.budget)
    print()
    for size in (1500, 64):
        f = {name: mbs for (name, s), mbs in best.items() if s == size}
        speed = openssl_speed(size)
        print(f"== {size}-byte packets (MB/s, best of {args.rounds} rounds)")
        for name in ("rc4-core", "rc4-openssl", "mppe-compress-stateful", "mppe-decompress-stateful",
                     "mppe-compress-stateless", "mppe-decompress-stateless", "openssl-stateless-equivalent"):
            print(f"  {name:32s} {f[name]:8.1f}")
        if speed is not None:
            print(f"  {'openssl speed -evp rc4':32s} {speed:8.1f}")
        ceiling = f["rc4-openssl"]
        print(f"  OpenSSL RC4 / core RC4:                    {ceiling / f['rc4-core']:.2f}x (goal <= 1.5x)")
        print(f"  OpenSSL RC4 / core stateful compress:      {ceiling / f['mppe-compress-stateful']:.2f}x")
        print(f"  OpenSSL RC4 / core stateful decompress:    {ceiling / f['mppe-decompress-stateful']:.2f}x")
        eq = f["openssl-stateless-equivalent"]
        print(f"  libcrypto stateless work / core stateless: {eq / f['mppe-compress-stateless']:.2f}x")
        print()


if __name__ == "__main__":
    try:
        main()
    except BuildError as e:
        raise SystemExit(f"mppe_bench: {e}") from None
