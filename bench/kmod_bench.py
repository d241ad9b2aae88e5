"""Kernel-module benchmark: prints figures, asserts nothing.

  resolve + fetch + unpack of the linux-6.1 profile (cold: an empty kernel cache; warm: everything cached),
  the partial source extraction alone (its time and bytes against the whole source tarball), and the module
  build time (ppp_generic.ko + ppp_mppe.ko, kbuild -jN, plus the preprocessing check).

"Cold" starts from an empty kernel cache but reuses the .debs already downloaded (hard links) unless
--download is given, which fetches the ~220 MB again. --full-extract also times unpacking the whole source
tarball (1.3 GB written). The private apt lists are shared with the real cache.

    .venv/bin/python bench/kmod_bench.py [-j N] [--download] [--full-extract]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from buildtool import kmod
from buildtool import patch as patch_phase
from buildtool.distinfo import read_distinfo
from buildtool.kernels import linux
from buildtool.layout import Layout, default_cache
from buildtool.recipe import load_recipe

ROOT = Path(__file__).resolve().parent.parent
PROFILE = "linux-6.1"


def timed(what: str, fn):
    t0 = time.monotonic()
    result = fn()
    print(f"{what}: {time.monotonic() - t0:.1f} s", flush=True)
    return result


def prepare_cold_cache(real: Path, cold: Path, download: bool) -> None:
    (cold / "kernel").mkdir(parents=True)
    os.symlink(real / "apt", cold / "apt")
    if download:
        return
    for debdir in (real / "kernel").glob("*/debs"):
        dest = cold / "kernel" / debdir.parent.name / "debs"
        dest.mkdir(parents=True)
        for deb in debdir.glob("*.deb"):
            os.link(deb, dest / deb.name)


def source_deb(target: kmod.KernelTarget, cache: Path) -> Path:
    return next((cache / "kernel" / target.package_version / "debs").glob("linux-source-*.deb"))


def whole_tarball_bytes(deb: Path, series: str) -> tuple[int, int]:
    """(files, bytes of regular files) in the source tarball inside the .deb, from a listing."""
    inner = f"./usr/src/linux-source-{series}.tar.xz"
    cmd = (f"dpkg-deb --fsys-tarfile {deb} | tar -xOf - {inner} | xz -dc -T2 | tar -tvf -")
    out = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, check=True).stdout
    sizes = [int(line.split()[2]) for line in out.splitlines() if line.startswith("-")]
    return len(sizes), sum(sizes)


def full_extract_seconds(deb: Path, series: str, tmp: Path) -> float:
    inner = f"./usr/src/linux-source-{series}.tar.xz"
    dest = tmp / "full"
    dest.mkdir()
    t0 = time.monotonic()
    subprocess.run(["sh", "-c", f"dpkg-deb --fsys-tarfile {deb} | tar -xOf - {inner} | xz -dc -T2 | "
                                f"tar -xf - -C {dest}"], check=True)
    seconds = time.monotonic() - t0
    shutil.rmtree(dest)
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--download", action="store_true", help="cold run downloads the .debs again")
    ap.add_argument("--full-extract", action="store_true", help="also time a full source extraction")
    args = ap.parse_args()
    real_cache = default_cache()
    with tempfile.TemporaryDirectory(prefix="kmod-bench.") as tmpdir:
        tmp = Path(tmpdir)
        prepare_cold_cache(real_cache, tmp / "cache", args.download)
        layout = Layout.default(root=ROOT, work=tmp / "work", cache=tmp / "cache")
        log = layout.work / "logs" / "kmod.log"
        how = "downloading" if args.download else "debs reused"
        print(f"profile {PROFILE}; cold cache in {tmp / 'cache'} ({how})")
        target = timed("resolve + fetch + unpack, cold",
                       lambda: kmod.resolve_target(PROFILE, layout, {}, offline=False, log=log))
        print(f"  kernel {target.release} ({target.package_version}), vermagic '{target.vermagic}'")
        timed("resolve, warm (apt queries, nothing unpacked)",
              lambda: kmod.resolve_target(PROFILE, layout, {}, offline=False, log=log))
        timed("resolve, warm --offline",
              lambda: kmod.resolve_target(PROFILE, layout, {}, offline=True, log=log))

        deb = source_deb(target, layout.cache)
        members = timed("partial source extraction alone (4 members, from the .deb)",
                        lambda: linux.extract_source_members(deb, linux.SOURCE_MEMBERS, tmp / "partial", log,
                                                             series="6.1", jobs=args.jobs))
        files, total = whole_tarball_bytes(deb, "6.1")
        print(f"  bytes written: {members.bytes_written} in {len(members.members)} files, versus {total} in "
              f"{files} files for a full extract ({100 * members.bytes_written / total:.4f} %)")
        if args.full_extract:
            print(f"full source extraction: {full_extract_seconds(deb, '6.1', tmp):.1f} s")

        recipe = load_recipe(ROOT / "ppp-mppe")
        patches = patch_phase.series(recipe.patch_dir(ROOT), include=recipe.kernel_patches)
        info = read_distinfo(recipe.distinfo_path)
        for run in ("first", "second"):
            timed(f"module build ({run}: copy, patch, kbuild -j{args.jobs}, .i check, vermagic, install)",
                  lambda: kmod.build_modules(target, recipe, patches, info, layout, jobs=args.jobs,
                                             log_dir=layout.work / "logs"))


if __name__ == "__main__":
    main()
