"""The whole driver on a small synthetic repository: real tar, real patch, real cc, real packages.

Two independent packages (hello, greet) with one patch each. Checks the promises of the state design:
no-op reruns, a changed patch rebuilding only its package, a kill -9 mid-build resuming to the same
packages, and the bad-input errors the CLI reports.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from synthetic import bt

from buildtool.cli import main


def stamp_times(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.glob("work/*/.stamps/*")}


def test_build_package_then_noop(repo, capsys):
    assert bt("package") == 0
    pkgs = {p.name: p.read_bytes() for p in (repo / "packages" / "All").iterdir()}
    assert set(pkgs) == {"hello-1.0.tgz", "greet-1.0.tgz"}
    out = subprocess.run([str(repo / "work/hello/stage/usr/pkg/bin/hello")], capture_output=True, text=True)
    assert out.stdout == "hello, patched\n"
    assert (repo / "work/hello/applied-patches").read_text() == "patch-aa\n"
    assert (repo / "work/hello/logs/build.log").exists()
    before = stamp_times(repo)
    capsys.readouterr()
    assert bt("package") == 0
    err = capsys.readouterr().err
    assert "0 phases run" in err and "10 up to date" in err
    assert stamp_times(repo) == before
    assert {p.name: p.read_bytes() for p in (repo / "packages" / "All").iterdir()} == pkgs


def test_changed_patch_rebuilds_only_that_package(repo, capsys):
    assert bt("package") == 0
    greet_pkg = (repo / "packages/All/greet-1.0.tgz").stat().st_mtime_ns
    patch = repo / "patches/hello/patch-aa"
    patch.write_text(patch.read_text().replace('"hello, patched"', '"hello, patched again"'))
    # the distinfo still has the old SHA1: refused before anything is touched
    capsys.readouterr()
    assert bt("package") == 4
    assert "SHA1 mismatch for patch patch-aa" in capsys.readouterr().err
    assert main(["makepatchsum", "hello"]) == 0
    capsys.readouterr()
    assert bt("package") == 0
    err = capsys.readouterr().err
    assert "hello: patch done" in err and "hello: build done" in err and "hello: package done" in err
    assert "greet: " not in err
    assert (repo / "packages/All/greet-1.0.tgz").stat().st_mtime_ns == greet_pkg
    out = subprocess.run([str(repo / "work/hello/stage/usr/pkg/bin/hello")], capture_output=True, text=True)
    assert out.stdout == "hello, patched again\n"


def test_changed_build_flags_rebuild_from_a_fresh_tree(repo, capsys):
    """make compares only mtimes: objects of a build with other flags must not be reused."""
    assert bt("package", "hello") == 0
    before = (repo / "packages/All/hello-1.0.tgz").read_bytes()
    recipe = repo / "hello/recipe.toml"
    recipe.write_text(recipe.read_text().replace('"CFLAGS=-g ', '"CFLAGS=-g -O2 '))
    capsys.readouterr()
    assert bt("package", "hello") == 0
    err = capsys.readouterr().err
    assert "hello: fetch" not in err
    assert "hello: extract done" in err and "hello: build done" in err
    assert (repo / "packages/All/hello-1.0.tgz").read_bytes() != before


def test_kill_mid_build_resumes_to_identical_packages(repo, tmp_path, capsys):
    marker = tmp_path / "build-started"
    env = dict(os.environ, BT_SLOW=str(marker))
    proc = subprocess.Popen([sys.executable, "-m", "buildtool", "package", "hello", "--kernel", "none",
                             "--no-progress"], cwd=repo, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, "build ended before the kill"
        assert time.monotonic() < deadline, "build step never started"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (repo / "packages/All/hello-1.0.tgz").exists()
    assert not (repo / "work/hello/.stamps/build").exists()
    capsys.readouterr()
    assert bt("package", "hello") == 0
    err = capsys.readouterr().err
    assert "hello: fetch" not in err and "hello: extract" not in err and "hello: patch" not in err
    assert "hello: build done" in err
    resumed = (repo / "packages/All/hello-1.0.tgz").read_bytes()
    # a clean run elsewhere gives the same bytes
    assert main(["package", "hello", "--kernel", "none", "--work", str(tmp_path / "w2"),
                 "--packages", str(tmp_path / "p2")]) == 0
    assert (tmp_path / "p2/All/hello-1.0.tgz").read_bytes() == resumed


def test_patch_missing_from_distinfo(repo, capsys):
    (repo / "patches/hello/patch-ab").write_text("$NetBSD$\n\nunlisted\n\n--- hello.c.orig\n+++ hello.c\n")
    assert bt("patch", "hello") == 4
    assert "no SHA1 entry for patch patch-ab" in capsys.readouterr().err


def test_patch_that_does_not_apply(repo, capsys):
    patch = repo / "patches/hello/patch-aa"
    patch.write_text(patch.read_text().replace("-\tputs(\"hello\");", "-\tputs(\"howdy\");"))
    assert main(["makepatchsum", "hello"]) == 0
    capsys.readouterr()
    assert bt("patch", "hello") == 6
    err = capsys.readouterr().err
    assert "patch-aa" in err and "hello.c" in err and "1" in err


def test_build_failure_names_command_tail_and_log(repo, capsys):
    (repo / "hello/recipe.toml").write_text(
        (repo / "hello/recipe.toml").read_text().replace('"CC=cc"', '"CC=no-such-cc"'))
    assert bt("build", "hello") == 8
    err = capsys.readouterr().err
    assert "command: make CC=no-such-cc" in err
    assert "no-such-cc" in err.split("last lines of the log:")[1]
    assert str(repo / "work/hello/logs/build.log") in err


def test_unknown_package_and_dry_run(repo, capsys):
    assert bt("build", "nosuch") == 2
    assert "unknown package 'nosuch'" in capsys.readouterr().err
    assert bt("package", "--dry-run") == 0
    err = capsys.readouterr().err
    assert "would run: hello fetch" in err
    assert not (repo / "work").exists() and not (repo / "packages").exists()


def test_missing_distfile_offline(repo, tmp_path, capsys):
    (tmp_path / "cache/distfiles/hello-1.0.tar.gz").unlink()
    assert bt("fetch", "hello", "--offline") == 5
    assert "hello-1.0.tar.gz" in capsys.readouterr().err


def test_deleted_distfile_is_fetched_again_despite_stamp(repo, tmp_path, capsys):
    assert bt("fetch", "hello") == 0
    (tmp_path / "cache/distfiles/hello-1.0.tar.gz").unlink()
    capsys.readouterr()
    # the stamp is current but the file is gone: fetch runs again (and fails here: no reachable mirror)
    assert bt("fetch", "hello") == 5
    assert "hello-1.0.tar.gz" in capsys.readouterr().err


def test_source_date_epoch_is_the_release_date(repo, monkeypatch):
    """Builds get SOURCE_DATE_EPOCH = the newest mtime in the distfile (openssl stamps it as 'built on')."""
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    assert bt("extract", "hello") == 0
    assert (repo / "work/hello/source-date-epoch").read_text() == "1000000000\n"
    from buildtool.build import BuildContext
    from buildtool.layout import Layout
    from buildtool.recipe import load_all

    layout = Layout.default(root=repo)
    assert BuildContext.for_recipe(load_all(repo)["hello"], layout).source_date_epoch == "1000000000"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1234")
    assert BuildContext.for_recipe(load_all(repo)["hello"], layout).source_date_epoch == "1234"
