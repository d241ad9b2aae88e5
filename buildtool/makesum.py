"""`buildtool makesum` / `makepatchsum`: regenerate a recipe's distinfo from the files themselves."""

from __future__ import annotations

from . import fetch as fetch_phase
from . import patch as patch_phase
from .distinfo import DistfileSum, distfile_sum, patch_sha1, read_distinfo, write_distinfo
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


def makesum(recipe: Recipe, layout: Layout, options) -> bool:
    """Fetch each distfile without checking (as pkgsrc's makesum does) and record its sums."""
    _, patches = _current(recipe)
    sums = []
    for d in recipe.distfiles:
        path = fetch_phase.fetch_unverified(
            d, layout.distdir, fetch_phase.FetchOptions(offline=options.offline, progress=options.progress,
                                                        apt_dir=layout.cache / "apt"),
            log=layout.logs(recipe.name) / "fetch.log")
        sums.append(distfile_sum(path, d.name))
    patches = {p.name: patch_sha1(p) for p in patch_phase.series(recipe.patch_dir(layout.root))}
    return write_distinfo(recipe.distinfo_path, sums, patches)
