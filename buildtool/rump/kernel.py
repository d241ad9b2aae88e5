"""Build NetBSD's rump kernel once, from the shared 2016 sources, into a cache keyed by the inputs' hashes.

Inputs: `netbsd-rump-src-2016.tar.xz` (src-netbsd) and `buildrump.sh-2017.tar.xz`, plus the build flags
below. The key is the sha256 of those; the result lives in `~/.cache/buildtool/rump/<key>/`:

    src-netbsd/  buildrump.sh/   the unpacked tarballs (left in place: our components build against them)
    obj/         obj/tooldir/    buildrump.sh's objects and tools (rumpmake)
    rump/                        the installed rump kernel: include/ and lib/
    build.log                    everything the build printed
    COMPLETE                     JSON written last (atomically): inputs, flags and timings

A run that finds COMPLETE uses the tree as it is (seconds); one that does not, and holds the lock, removes
whatever a killed run left and builds from scratch. A second buildtool waiting on the same key blocks on
the lock and then finds COMPLETE.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import KernelError
from ..extract import extract
from ..fsutil import file_digest, file_lock, text_digest, write_if_changed
from ..runlog import run

RUMP_SRC_TARBALL = "netbsd-rump-src-2016.tar.xz"
BUILDRUMP_TARBALL = "buildrump.sh-2017.tar.xz"
TARBALLS = (RUMP_SRC_TARBALL, BUILDRUMP_TARBALL)

# gcc >= 10 rejects the 2016 tools' duplicate tentative definitions (-fcommon), and gcc 12's new warnings
# trip -Werror in the 2016 tree (NOGCCERROR). DIAGNOSTIC stays on: buildrump.sh builds it unless -r.
HOST_CFLAGS = "-O2 -fcommon"
BUILD_FLAGS = ("-F", "CFLAGS=-fcommon", "-V", "NOGCCERROR=yes")
LAYOUT_VERSION = "1"  # bump when the tree layout or the command below changes

BUILD_TIMEOUT = 3 * 3600  # seconds; the measured build is 10 min idle, a loaded machine is slower
UNPACK_NOTE = "unpacking"


@dataclass(frozen=True)
class RumpKernel:
    """A finished rump kernel build in the cache."""

    root: Path

    @property
    def src(self) -> Path:
        return self.root / "src-netbsd"

    @property
    def obj(self) -> Path:
        return self.root / "obj"

    @property
    def tooldir(self) -> Path:
        return self.obj / "tooldir"

    @property
    def rumpmake(self) -> Path:
        return self.tooldir / "rumpmake"

    @property
    def dest(self) -> Path:
        return self.root / "rump"

    @property
    def include(self) -> Path:
        return self.dest / "include"

    @property
    def lib(self) -> Path:
        return self.dest / "lib"

    def marker(self) -> dict:
        return json.loads((self.root / "COMPLETE").read_text())


def missing_tarballs(sources: Path) -> list[str]:
    return [name for name in TARBALLS if not (sources / name).is_file()]


def cache_key(sources: Path) -> str:
    parts = [f"{name}:{file_digest(sources / name, 'sha256')}" for name in TARBALLS]
    parts += [f"HOST_CFLAGS={HOST_CFLAGS}", *BUILD_FLAGS, f"layout={LAYOUT_VERSION}"]
    return text_digest("\n".join(parts))[:24]


def ensure_rump_kernel(sources: Path, cache: Path, *, jobs: int = 2, out=None) -> RumpKernel:
    """The cached rump kernel for these sources, building it first if no finished build is there."""
    out = out or sys.stderr
    missing = missing_tarballs(sources)
    if missing:
        raise KernelError(f"{sources}: missing {', '.join(missing)} (the rump lane builds NetBSD's rump "
                          f"kernel from them); put the shared tarballs there or pass --rump-sources DIR")
    key = cache_key(sources)
    kernel = RumpKernel(cache / "rump" / key)
    if (kernel.root / "COMPLETE").is_file():
        return kernel
    lock = kernel.root.with_suffix(".lock")
    with file_lock(lock, waiting=f"rump: waiting for another run building the rump kernel ({lock})", out=out):
        if (kernel.root / "COMPLETE").is_file():
            print(f"rump: another run finished the build in {kernel.root}", file=out, flush=True)
            return kernel
        _build(kernel, sources, jobs, out)
    return kernel


def _build(kernel: RumpKernel, sources: Path, jobs: int, out) -> None:
    if kernel.root.exists():
        print(f"rump: removing the unfinished build in {kernel.root}", file=out, flush=True)
        shutil.rmtree(kernel.root)
    kernel.root.mkdir(parents=True)
    t0 = time.monotonic()
    print(f"rump: {UNPACK_NOTE} {RUMP_SRC_TARBALL} and {BUILDRUMP_TARBALL} into {kernel.root}", file=out,
          flush=True)
    for name in TARBALLS:
        extract(sources / name, kernel.root)
    unpacked = time.monotonic()
    log = kernel.root / "build.log"
    cmd = ["nice", "-n", "10", str(kernel.root / "buildrump.sh" / "buildrump.sh"),
           "-s", str(kernel.src), "-o", str(kernel.obj), "-T", str(kernel.tooldir), "-d", str(kernel.dest),
           "-j", str(jobs), *BUILD_FLAGS, "tools", "build", "install"]
    print(f"rump: building the rump kernel (about 10 min on 2 idle cores; log {log})", file=out, flush=True)
    _run_with_progress(cmd, log, {"HOST_CFLAGS": HOST_CFLAGS}, kernel.root, out)
    done = time.monotonic()
    marker = {"tarballs": {n: file_digest(sources / n, "sha256") for n in TARBALLS},
              "host_cflags": HOST_CFLAGS, "flags": list(BUILD_FLAGS), "jobs": jobs,
              "unpack_seconds": round(unpacked - t0, 1), "build_seconds": round(done - unpacked, 1),
              "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_if_changed(kernel.root / "COMPLETE", json.dumps(marker, indent=2) + "\n")
    print(f"rump: rump kernel built in {done - t0:.0f}s (unpack {unpacked - t0:.0f}s, build "
          f"{done - unpacked:.0f}s)", file=out, flush=True)


def _is_compile(line: str) -> bool:
    """A compiler run in the build's output: quiet tools lines ("#   compile") or a full command line."""
    return (line.startswith("#") and "compile" in line) or (" -c " in line and line.endswith(".o"))


def _run_with_progress(cmd: list[str], log: Path, env: dict[str, str], cwd: Path, out,
                       timeout: float = BUILD_TIMEOUT) -> None:
    """Run the build into `log` (runlog.run: its own process group, stopped after `timeout` whether it prints
    or not), echoing buildrump.sh's '>>' stage lines and a count of compiled files."""
    compiled = 0

    def show(text: str) -> None:
        nonlocal compiled
        if text.startswith(">> "):
            print(f"rump: {text[3:]}", file=out, flush=True)
        elif _is_compile(text):
            compiled += 1
            if compiled % 250 == 0:
                print(f"rump: {compiled} files compiled", file=out, flush=True)

    run(cmd, log=log, cwd=cwd, env={"LC_ALL": "C", **env}, what="rump kernel build", timeout=timeout,
        on_line=show)
