"""netbsd-1.4.1: the MPPE LKM built on a NetBSD 1.4.1 host over SSH (the only place it can be built).

The LKM's folder (kmod/mppe/netbsd14: glue, Makefile for bsd.kmod.mk, the profile's patch) and the
portable core are copied to a temporary folder on the host. If the host's ${SYSDIR}/net/ppp-comp.h still
says `CCP_MAX_OPTION_LENGTH 32`, the profile's patch raises it to 64 there (patch -b keeps the original as
ppp-comp.h.orig) and KERNEL_MESSAGE is shown: the kernel must be rebuilt. Then `make` builds mppe.o, which
is copied back. None of this can run here (no NetBSD 1.4.1 system); the C89 check of the glue can.
"""

from __future__ import annotations

import shlex
import sys
import tarfile
from pathlib import Path

from ..errors import KernelError
from ..fsutil import atomic_path
from ..layout import Layout
from ..recipe import Recipe
from .base import KernelTarget
from .buildhost import HOST_TIMEOUT, ssh_runner

LKM_DIR = "netbsd14"
PATCH = "patch-net_ppp-comp.h"
OPTION_32 = r"^#define[[:space:]]+CCP_MAX_OPTION_LENGTH[[:space:]]+32([^0-9]|$)"
BUILD_TIMEOUT = 900.0

# The 1999 package's own wording is not available here; this says what it said: rebuild the kernel.
KERNEL_MESSAGE = """\
===========================================================================
{header} has been changed: CCP_MAX_OPTION_LENGTH 32 -> 64
(the original is kept as {header}.orig).

The running kernel still truncates CCP options at 32 bytes. Rebuild and
install the kernel from {sysdir} (config, make depend && make, with
`options LKM`), reboot, then load the module:

	modload -e mppe_lkmentry -o mppe {lkm}
===========================================================================
"""


def pack_lkm(mppe_sources: Path, dest: Path) -> None:
    """lkm/ = kmod/mppe/netbsd14/* + lkm/core/ = kmod/mppe/core/*, as a gzip tar."""
    with atomic_path(dest) as tmp, tarfile.open(tmp, "w:gz") as tar:
        for folder, arc in ((mppe_sources / LKM_DIR, "lkm"), (mppe_sources / "core", "lkm/core")):
            for path in sorted(folder.iterdir()):
                if path.is_file():
                    tar.add(path, arcname=f"{arc}/{path.name}", recursive=False)


def build_lkm(target: KernelTarget, layout: Layout, recipe: Recipe, log: Path, dest: Path) -> list[Path]:
    sysdir, host = target.packages["sysdir"], target.packages["host"]
    work = layout.pkg_work(recipe.name) / "kmod" / target.profile
    bundle = work / "lkm.tar.gz"
    pack_lkm(layout.root / "kmod" / "mppe", bundle)
    header = f"{sysdir}/net/ppp-comp.h"
    with ssh_runner(host, target.packages.get("ssh_identity") or None) as runner:
        remote = runner.run(["mktemp", "-d", "/tmp/buildtool-lkm.XXXXXX"], log=log, timeout=HOST_TIMEOUT,
                            what="making a build folder on the host").stdout.strip().splitlines()[-1]
        lkm = f"{remote}/lkm"
        try:
            runner.put(bundle, f"{remote}/lkm.tar.gz")
            runner.run(["sh", "-c", "gzip -dc lkm.tar.gz | tar -xf -"], cwd=remote, log=log,
                       timeout=HOST_TIMEOUT, what="unpacking the LKM sources on the host")
            old = runner.run(["grep", "-E", OPTION_32, header], log=log, timeout=HOST_TIMEOUT, check=False,
                             what=f"reading {header}")
            if old.returncode == 0:
                runner.run(["sh", "-c", f"patch -p0 -l -N -b -d {shlex.quote(sysdir)} < "
                            f"{shlex.quote(lkm + '/' + PATCH)}"], log=log, timeout=HOST_TIMEOUT,
                           what=f"raising CCP_MAX_OPTION_LENGTH in {host}:{header}")
                message = KERNEL_MESSAGE.format(header=header, sysdir=sysdir, lkm="mppe.o")
                print(message, file=sys.stderr)
                with log.open("a") as f:
                    f.write(message)
            runner.run(["make", f"S={sysdir}", f"SYSDIR={sysdir}"], cwd=lkm, log=log, timeout=BUILD_TIMEOUT,
                       what="building the LKM on the host (bsd.kmod.mk)")
            built = work / "mppe.o"
            runner.get(f"{lkm}/mppe.o", built)
        finally:
            runner.run(["rm", "-rf", remote], log=log, timeout=HOST_TIMEOUT, what="removing the build folder",
                       check=False)
    if built.stat().st_size == 0:
        raise KernelError(f"{host}: make produced an empty mppe.o; see {log}")
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / "mppe.o"
    with atomic_path(out) as tmp:
        tmp.write_bytes(built.read_bytes())
    return [out]
