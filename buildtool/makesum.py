"""`buildtool makesum` / `makepatchsum`: regenerate a recipe's distinfo from the files themselves."""

from __future__ import annotations

import sys

from . import fetch as fetch_phase
from . import patch as patch_phase
from .distinfo import DistfileSum, distfile_sum, patch_sha1, read_distinfo, write_distinfo
from .errors import ChecksumError
from .layout import Layout
from .recipe import Recipe


def _current(recipe: Recipe) -> tuple[list[DistfileSum], dict[str, str]]:
    if recipe.distinfo_path.exists():
        info = read_distinfo(recipe.distinfo_path)
        return list(info.distfiles.values()), dict(info.patches)
    return [], {}


def makepatchsum(recipe: Recipe, layout: Layout) -> bool:
    distfiles, _ = _current(recipe)
    patches = {p.name: patch_sha1(p) for p in patch_phase.series(recipe.patch_dir(layout.root))}
    return write_distinfo(recipe.distinfo_path, distfiles, patches)


def makesum(recipe: Recipe, layout: Layout, options, force: bool = False, out=None) -> bool:
    """Fetch each distfile without checking (as pkgsrc's makesum does) and record its sums.

    A distfile distinfo already has sums for must still match them: a changed file of the same name is a
    re-rolled upstream tarball or a tampered cache, and is recorded only with `force` (old and new printed).
    """
    old = {d.name: d for d in _current(recipe)[0]}
    sums = []
    for d in recipe.distfiles:
        path = fetch_phase.fetch_unverified(
            d, layout.distdir, fetch_phase.FetchOptions(offline=options.offline, progress=options.progress,
                                                        apt_dir=layout.cache / "apt"),
            log=layout.logs(recipe.name) / "fetch.log")
        new = distfile_sum(path, d.name)
        if d.name in old and _differs(old[d.name], new):
            change = _describe_change(old[d.name], new)
            if not force:
                raise ChecksumError(
                    f"{path} does not match the sums {recipe.distinfo_path} records for {d.name}:\n{change}\n"
                    f"Refusing to record it: a changed file under the same name is a re-rolled upstream "
                    f"tarball or a tampered cache. Check where it came from; to record it anyway run: "
                    f"buildtool makesum --force {recipe.name}")
            print(f"{recipe.distinfo_path}: --force: recording changed sums for {d.name}:\n{change}",
                  file=out or sys.stderr)
        sums.append(new)
    patches = {p.name: patch_sha1(p) for p in patch_phase.series(recipe.patch_dir(layout.root))}
    return write_distinfo(recipe.distinfo_path, sums, patches)


def _differs(old: DistfileSum, new: DistfileSum) -> bool:
    return old.size != new.size or any(new.hashes.get(alg, want) != want for alg, want in old.hashes.items())


def _describe_change(old: DistfileSum, new: DistfileSum) -> str:
    lines = [f"  Size: old {old.size} bytes, new {new.size} bytes"]
    for alg in sorted(set(old.hashes) | set(new.hashes)):
        lines.append(f"  {alg}:\n    old {old.hashes.get(alg, '(none)')}\n"
                     f"    new {new.hashes.get(alg, '(none)')}")
    return "\n".join(lines)
