"""NetBSD module benchmark: prints figures, asserts nothing.

  the unpack of the shared sys tarball (cold only when the cache has none), the build of if_ppp.kmod +
  ppp_mppe.kmod with all checks, with a cold and a warm kernel-symbol cache, the module's size and symbol
  counts, and (with --ssh) the same build on a loopback OpenSSH build host started for the run.

    .venv/bin/python bench/netbsd_bench.py [--ssh]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from buildtool.kernels import get_profile
from buildtool.kernels.netbsd import NetBSDKernel, build_and_check
from buildtool.layout import Layout, default_cache
from buildtool.sourcecache import unpacked

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT.parent / "shared" / "sources"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ssh", action="store_true", help="also build on a loopback OpenSSH server")
    args = ap.parse_args()
    cache = default_cache()
    with tempfile.TemporaryDirectory(prefix="netbsd-bench.") as tmp:
        tmp = Path(tmp)
        t0 = time.monotonic()
        sys_root = unpacked(SOURCES / "netbsd-sys-10.99.12-x86.tar.xz", cache, log=tmp / "unpack.log")
        members = ["src-netbsd/common/include/*", "src-netbsd/common/lib/libc/*"]
        common = unpacked(SOURCES / "netbsd-rump-src-2016.tar.xz", cache, members, log=tmp / "unpack.log")
        print(f"trees (unpack or cache hit): {time.monotonic() - t0:.1f} s")
        options = {"sysdir": sys_root / "netbsd-src" / "sys", "common": common / "src-netbsd/common/include"}
        layout = Layout(root=ROOT, work=tmp / "work", cache=cache, packages=tmp / "packages")
        symcache = tmp / "symcache"
        runs = [("local, fresh symbol cache", {}), ("local, warm symbol cache", {})]
        server = None
        if args.ssh:
            sys.path.insert(0, str(ROOT / "tests"))
            import sshserver

            server = sshserver.start(tmp / "sshd")
            runs.append(("ssh build host", {"host": server.host, "ssh_identity": server.identity}))
        try:
            for i, (what, extra) in enumerate(runs):
                family = NetBSDKernel(get_profile("netbsd-10"), layout, {**options, **extra},
                                      tmp / "kmod.log")
                t0 = time.monotonic()
                result = build_and_check(family.resolve(), ROOT / "kmod" / "mppe", tmp / f"build{i}",
                                         symcache, tmp / "kmod.log")
                print(f"{what}: {time.monotonic() - t0:.1f} s total; {result.figures()}", flush=True)
        finally:
            if server:
                server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
