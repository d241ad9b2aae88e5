"""buildtool.pkgsrc_tree's bookkeeping: a half-finished bootstrap is never taken as done, a hung one is
stopped (runlog.run's process-group handling is tested in test_reliability.py). Small real tarballs whose
`bootstrap` is a shell script stand in for pkgsrc's (the real bootstrap is exercised by
tests/test_pkgsrc_real.py); what is tested here is what that test cannot provoke."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from buildtool import pkgsrc_tree
from buildtool.errors import PhaseError
from buildtool.pkgsrc_tree import PkgsrcError, ensure_bootstrapped, tree_for


def make_tarball(path: Path, bootstrap: str | None) -> Path:
    """A tar.xz with pkgsrc/README and, unless None, an executable pkgsrc/bootstrap/bootstrap."""
    with tarfile.open(path, "w:xz") as tar:
        members = {"pkgsrc/README": ("pkgsrc\n", 0o644)}
        if bootstrap is not None:
            members["pkgsrc/bootstrap/bootstrap"] = (bootstrap, 0o755)
        for name, (text, mode) in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(text.encode()), mode
            tar.addfile(info, io.BytesIO(text.encode()))
    return path


def test_not_a_pkgsrc_tarball_is_refused_and_not_marked_done(tmp_path):
    tarball = make_tarball(tmp_path / "notpkgsrc.tar.xz", bootstrap=None)
    with pytest.raises(PkgsrcError, match="no pkgsrc/bootstrap/bootstrap"):
        ensure_bootstrapped(tarball, tmp_path / "cache", out=io.StringIO())
    assert not tree_for(tarball, tmp_path / "cache").complete_marker.exists()


def test_failed_bootstrap_is_redone_from_scratch(tmp_path):
    count = tmp_path / "runs"
    script = f"#!/bin/sh\necho run >> {count}\ntouch ../half-done\nexit 1\n"
    tarball = make_tarball(tmp_path / "pkgsrc.tar.xz", bootstrap=script)
    cache = tmp_path / "cache"
    tree = tree_for(tarball, cache)
    for _ in range(2):
        with pytest.raises(PhaseError, match="pkgsrc bootstrap failed with exit status 1"):
            ensure_bootstrapped(tarball, cache, out=io.StringIO())
        assert not tree.complete_marker.exists()
    assert count.read_text().splitlines() == ["run", "run"]  # the second call did not take the first as done
    out = io.StringIO()
    with pytest.raises(PhaseError):
        ensure_bootstrapped(tarball, cache, out=out)
    assert "removing the unfinished tree" in out.getvalue()


def test_bootstrap_timeout_is_bounded(monkeypatch, tmp_path):
    monkeypatch.setattr(pkgsrc_tree, "BOOTSTRAP_TIMEOUT", 1.0)
    tarball = make_tarball(tmp_path / "pkgsrc.tar.xz", bootstrap="#!/bin/sh\nsleep 60\n")
    with pytest.raises(PhaseError, match="pkgsrc bootstrap did not finish within 1s"):
        ensure_bootstrapped(tarball, tmp_path / "cache", out=io.StringIO())
    assert not tree_for(tarball, tmp_path / "cache").complete_marker.exists()
