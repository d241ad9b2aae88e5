"""The compiler cache of the build phase: ccache, set up so that it can never change what is built.

ccache answers a compile from its cache only when everything that goes into the object is the same: the
compiler binary itself (`compiler_check=content`: its bytes, not its mtime), every argument, the
preprocessed source or (direct mode) the source and every header it read, and, for a compile with debug
information, the working directory. No `base_dir` is set, because rewriting absolute paths to relative
ones would change what `__FILE__` and the debug information say. So an object from the cache is the
object the compiler would write, and the packages are byte-identical with and without the cache (tests
check this).

The cache lives in ~/.cache/buildtool/ccache (content-addressed by ccache itself; bounded by MAX_SIZE).
Debian's ccache package puts a directory of compiler names that run ccache (/usr/lib/ccache) on the
system; putting it first on the build's PATH sends every `cc`/`gcc` of the packages' own Makefiles through
the cache without touching them. Without ccache, or with `--no-ccache`, the build runs the compilers
directly.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

MASQUERADE_DIR = Path("/usr/lib/ccache")  # Debian's ccache: cc, gcc, clang, ... -> ccache
MAX_SIZE = "4G"


@dataclass(frozen=True)
class CompilerCache:
    directory: Path
    masquerade: Path = MASQUERADE_DIR

    @classmethod
    def find(cls, cache_root: Path, wanted: bool) -> CompilerCache | None:
        """The cache under `cache_root` if wanted and ccache is installed (None: compile directly)."""
        if not wanted or shutil.which("ccache") is None or not (MASQUERADE_DIR / "cc").exists():
            return None
        return cls(cache_root / "ccache")

    def env(self, path: str) -> dict[str, str]:
        """Environment entries for a build step whose PATH is otherwise `path`. The settings that could
        let a hit differ from a compile are set explicitly, so a user's CCACHE_* cannot loosen them."""
        return {
            "PATH": f"{self.masquerade}:{path}",
            "CCACHE_DIR": str(self.directory),
            "CCACHE_MAXSIZE": MAX_SIZE,
            "CCACHE_COMPILERCHECK": "content",
            "CCACHE_HASHDIR": "true",
            "CCACHE_BASEDIR": "",
            "CCACHE_SLOPPINESS": "",
        }
