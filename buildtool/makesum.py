"""`buildtool makesum` / `makepatchsum`: regenerate a distinfo (a recipe's, or the NetBSD kernel's inputs',
netbsd-kernel/distinfo) from the files themselves."""

from __future__ import annotations

import sys
from pathlib import Path

from . import fetch as fetch_phase
from . import patch as patch_phase
from .distinfo import DistfileSum, distfile_sum, patch_sha1, read_distinfo, write_distinfo
from .errors import ChecksumError
from .layout import Layout
from .recipe import Recipe


def _current(distinfo: Path) -> tuple[list[DistfileSum], dict[str, str]]:
    if distinfo.exists():
        info = read_distinfo(distinfo)
        return list(info.distfiles.values()), dict(info.patches)
    return [], {}


def makepatchsum(recipe: Recipe, layout: Layout) -> bool:
    return write_patch_sums(recipe.distinfo_path, patch_phase.series(recipe.patch_dir(layout.root)))


def write_patch_sums(distinfo: Path, patches: list[Path]) -> bool:
    """The SHA1 lines of `patches` in `distinfo`, its distfile lines kept."""
    distfiles, _ = _current(distinfo)
    return write_distinfo(distinfo, distfiles, {p.name: patch_sha1(p) for p in patches})


def makesum(recipe: Recipe, layout: Layout, options, force: bool = False, out=None) -> bool:
    """Fetch each distfile without checking (as pkgsrc's makesum does) and record its sums."""
    files = [(d.name, fetch_phase.fetch_unverified(
        d, layout.distdir, fetch_phase.FetchOptions(offline=options.offline, progress=options.progress,
                                                    apt_dir=layout.cache / "apt"),
        log=layout.logs(recipe.name) / "fetch.log")) for d in recipe.distfiles]
    return write_sums(recipe.distinfo_path, recipe.name, files,
                      patch_phase.series(recipe.patch_dir(layout.root)), force=force, out=out)


def write_sums(distinfo: Path, name: str, files: list[tuple[str, Path]], patches: list[Path], *,
               force: bool = False, out=None) -> bool:
    """Record the sums of `files` ((distfile name, path)) and `patches` in `distinfo` (`name`: what
    `buildtool makesum` calls it).

    A distfile distinfo already has sums for must still match them: a changed file of the same name is a
    re-rolled upstream tarball or a tampered cache, and is recorded only with `force` (old and new printed).
    """
    old = {d.name: d for d in _current(distinfo)[0]}
    sums = []
    for distname, path in files:
        new = distfile_sum(path, distname)
        if distname in old and _differs(old[distname], new):
            change = _describe_change(old[distname], new)
            if not force:
                raise ChecksumError(
                    f"{path} does not match the sums {distinfo} records for {distname}:\n{change}\n"
                    f"Refusing to record it: a changed file under the same name is a re-rolled upstream "
                    f"tarball or a tampered cache. Check where it came from; to record it anyway run: "
                    f"buildtool makesum --force {name}")
            print(f"{distinfo}: --force: recording changed sums for {distname}:\n{change}",
                  file=out or sys.stderr)
        sums.append(new)
    return write_distinfo(distinfo, sums, {p.name: patch_sha1(p) for p in patches})


def _differs(old: DistfileSum, new: DistfileSum) -> bool:
    return old.size != new.size or any(new.hashes.get(alg, want) != want for alg, want in old.hashes.items())


def _describe_change(old: DistfileSum, new: DistfileSum) -> str:
    lines = [f"  Size: old {old.size} bytes, new {new.size} bytes"]
    for alg in sorted(set(old.hashes) | set(new.hashes)):
        lines.append(f"  {alg}:\n    old {old.hashes.get(alg, '(none)')}\n"
                     f"    new {new.hashes.get(alg, '(none)')}")
    return "\n".join(lines)
