"""The compiler cache: a build answered from ccache makes byte-identical packages (real cc, real ccache)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from synthetic import bt

from buildtool.ccache import CompilerCache
from buildtool.cli import main


def packages(root) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "packages" / "All").glob("*.tgz"))}


def hits(cache_dir) -> int:
    out = subprocess.run(["ccache", "--print-stats"], env={**os.environ, "CCACHE_DIR": str(cache_dir)},
                         capture_output=True, text=True, timeout=60).stdout
    counts = dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)
    return int(counts.get("direct_cache_hit", 0)) + int(counts.get("preprocessed_cache_hit", 0))


def test_cache_hits_make_the_same_packages_as_no_cache(repo):
    if shutil.which("ccache") is None:
        pytest.fail("ccache is not installed; `make setup` installs it (Debian package ccache)")
    cache_dir = CompilerCache.find(repo.parent / "cache", True).directory
    assert bt("package", "--no-ccache") == 0
    direct = packages(repo)
    assert not cache_dir.exists()  # --no-ccache: nothing went through the cache
    for _ in range(2):  # the first run fills the cache, the second is answered from it
        assert main(["clean"]) == 0
        assert bt("package") == 0
        assert packages(repo) == direct
    assert hits(cache_dir) >= 2, "the second build compiled instead of using the cache"
