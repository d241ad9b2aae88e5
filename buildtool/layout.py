"""Where things live: the repository (recipes, patches), the work tree, the caches, the package output."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PREFIX = "/usr/pkg"  # pkgsrc's default LOCALBASE; packages are relative to it (@cwd)


def default_cache() -> Path:
    base = os.environ.get("BUILDTOOL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "buildtool")
    return Path(base)


def find_checkout(start: Path | None = None) -> Path | None:
    """The checkout holding `start` (default: the current directory): the nearest directory above it with
    patches/ and a */recipe.toml; None outside every checkout."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "patches").is_dir() and next(d.glob("*/recipe.toml"), None) is not None:
            return d
    return None


def installed_checkout() -> Path:
    """The checkout this buildtool was installed from (an editable install: `make setup`)."""
    return Path(__file__).resolve().parent.parent


def find_root(start: Path | None = None) -> Path:
    """The repository root: the checkout holding `start`, else the one buildtool was installed from."""
    return find_checkout(start) or installed_checkout()


@dataclass(frozen=True)
class Layout:
    root: Path
    work: Path
    cache: Path
    packages: Path

    @classmethod
    def default(cls, root: Path | None = None, work: Path | None = None, cache: Path | None = None,
                packages: Path | None = None) -> Layout:
        root = root or find_root()
        return cls(root=root, work=work or root / "work", cache=cache or default_cache(),
                   packages=packages or root / "packages")

    @property
    def distdir(self) -> Path:
        return self.cache / "distfiles"

    @property
    def packages_all(self) -> Path:
        return self.packages / "All"

    def pkg_work(self, name: str) -> Path:
        return self.work / name

    def logs(self, name: str) -> Path:
        return self.pkg_work(name) / "logs"

    def stamps(self, name: str) -> Path:
        return self.pkg_work(name) / ".stamps"

    def srcdir(self, name: str) -> Path:
        """Where a package's distfiles are extracted (WRKDIR)."""
        return self.pkg_work(name) / "src"

    def source_date_file(self, name: str) -> Path:
        """SOURCE_DATE_EPOCH of a package's builds: its sources' newest mtime, recorded at extract."""
        return self.pkg_work(name) / "source-date-epoch"

    def stage(self, name: str) -> Path:
        """DESTDIR of a package's install step; files land under stage + PREFIX."""
        return self.pkg_work(name) / "stage"

    def stage_prefix(self, name: str) -> Path:
        return self.stage(name) / PREFIX.lstrip("/")

    def prefix_map_flags(self) -> str:
        """Compiler flags that write the work tree and the cache under fixed names into debug info and
        __FILE__, so packages built from the same inputs are byte-identical wherever the tree lives."""
        return (f"-ffile-prefix-map={self.work.resolve()}=/buildtool/work "
                f"-ffile-prefix-map={self.cache.resolve()}=/buildtool/cache")
