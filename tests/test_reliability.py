"""Issue 8 (reliability): each promise checked on the synthetic repository of tests/synthetic.py or on the
real code paths it names. Grouped by the item of the issue they prove."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import pytest
from namespaces import can_mount_in_a_namespace
from synthetic import RECIPE, bt, make_tarball

from buildtool.cli import main
from buildtool.errors import ChecksumError, HarnessError

# --- item 8: `buildtool test` uses --packages and --work, and --dry-run boots nothing ----------------------

def test_test_packages_dir_missing_packages_is_an_input_error(repo, tmp_path, capsys):
    pk = tmp_path / "pk"
    assert main(["test", "--packages", str(pk), "--dry-run"]) == 11
    err = capsys.readouterr().err
    assert f"{pk}/All/hello-1.0.tgz: missing" in err and "not a verdict on the product" in err


def test_test_packages_dir_is_booted_as_is_and_dry_run_runs_nothing(repo, tmp_path, capsys):
    pk = tmp_path / "pk"
    assert bt("package", "--packages", str(pk)) == 0
    capsys.readouterr()
    assert main(["test", "--packages", str(pk), "--dry-run", "--results", str(tmp_path / "res")]) == 0
    err = capsys.readouterr().err
    assert f"{pk}/All/hello-1.0.tgz" in err and "nothing is built" in err and "nothing was run" in err
    assert not (tmp_path / "res").exists()


def test_test_dry_run_does_not_start_the_suite(repo, tmp_path, capsys):
    assert main(["test", "--dry-run", "--results", str(tmp_path / "res")]) == 0
    assert "nothing was run" in capsys.readouterr().err
    assert not (tmp_path / "res").exists()


def test_test_passes_work_and_packages_to_the_suite(repo, tmp_path, capsys):
    """A real pytest subprocess, as `buildtool test` starts it, sees the trees the command line named."""
    probe = repo / "tests" / "vm" / "test_probe.py"
    probe.parent.mkdir(parents=True)
    seen = tmp_path / "seen"
    probe.write_text(textwrap.dedent(f"""
        import os, pytest
        from buildtool.vm.suite import layout_from_env

        @pytest.mark.vm
        def test_probe():
            layout, prebuilt = layout_from_env(os.environ)
            open({str(seen)!r}, "w").write(f"{{layout.work}}\\n{{layout.packages}}\\n{{prebuilt}}\\n")
    """))
    pk, work = tmp_path / "pk", tmp_path / "w"
    assert bt("package", "--packages", str(pk)) == 0
    assert main(["test", "--packages", str(pk), "--work", str(work), "--results", str(tmp_path / "r")]) == 0
    assert seen.read_text().splitlines() == [str(work), str(pk), "True"]
    assert main(["test", "--work", str(work), "--results", str(tmp_path / "r")]) == 0
    assert seen.read_text().splitlines() == [str(work), str(repo / "packages"), "False"]


def test_layout_from_env_defaults_to_the_checkout(repo):
    from buildtool.vm.suite import layout_from_env

    layout, prebuilt = layout_from_env({})
    assert (layout.work, layout.packages, prebuilt) == (repo / "work", repo / "packages", False)
    assert os.environ.get("BUILDTOOL_VM_PREBUILT") is None


def test_test_control_with_prebuilt_packages_is_refused(repo, tmp_path, capsys):
    assert main(["test", "--control", "--packages", str(tmp_path), "--dry-run"]) == 2
    assert "--control" in capsys.readouterr().err


# --- item 1: one extraction helper, our own checks carry the load where tarfile has no data filter --------

def test_every_archive_write_goes_through_the_extraction_helper():
    """Debian 12's python3 (3.11.2) has no `filter=`: a direct extractall() elsewhere would break there."""
    root = Path(__file__).resolve().parent.parent
    offenders = [f"{p.relative_to(root)}:{n}" for d in ("buildtool", "tests", "bench")
                 for p in (root / d).rglob("*.py") if p.name not in ("extract.py", "test_reliability.py")
                 for n, line in enumerate(p.read_text().splitlines(), 1) if ".extractall(" in line]
    assert offenders == []


def _package_with(tmp_path: Path, members: list[tuple[str, bytes]]) -> Path:
    path = tmp_path / "p-1.0.tgz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o4755
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("data_filter", [False] + ([True] if hasattr(tarfile, "data_filter") else []))
def test_guest_image_unpacks_packages_through_the_checked_helper(tmp_path, monkeypatch, data_filter):
    from buildtool import extract as extract_mod
    from buildtool.vm.image import ImageInputs, _Builder

    monkeypatch.setattr(extract_mod, "HAS_DATA_FILTER", data_filter)
    good = _package_with(tmp_path, [("+CONTENTS", b"@name p-1.0\n"), ("sbin/tool", b"#!/bin/sh\n")])
    inputs = ImageInputs(release="r", vmlinuz=tmp_path / "k", modules_root=tmp_path, packages=(good,),
                         stack=False)
    builder = _Builder(inputs, tmp_path / "root", [])
    builder.install_packages()
    tool = tmp_path / "root/usr/pkg/sbin/tool"
    assert tool.read_bytes() == b"#!/bin/sh\n" and not tool.stat().st_mode & 0o4000  # setuid dropped
    evil = _package_with(tmp_path, [("../../escaped", b"x")])
    inputs = ImageInputs(release="r", vmlinuz=tmp_path / "k", modules_root=tmp_path, packages=(evil,),
                         stack=False)
    with pytest.raises(HarnessError, match=r"p-1.0.tgz.*'\.\./\.\./escaped'.*'\.\.' component"):
        _Builder(inputs, tmp_path / "root2", []).install_packages()
    assert not (tmp_path / "escaped").exists()


# --- item 2: distfiles are verified whenever they are read --------------------------------------------------

def _tamper(distfile: Path, name: str) -> None:
    """Repack the distfile with one extra line in the C source, as an attacker with cache access would."""
    make_tarball(distfile, name, name)
    with tarfile.open(distfile) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(distfile, "w:gz", format=tarfile.USTAR_FORMAT) as tar:
        for m, data in members:
            if m.name.endswith(".c"):
                data += b"/* injected */ int injected_backdoor;\n"
                m.size = len(data)
            tar.addfile(m, io.BytesIO(data))


def test_tampered_distfile_is_refused_by_fetch_offline_and_by_extract(repo, tmp_path, capsys):
    assert bt("package", "hello") == 0
    pkg = repo / "packages/All/hello-1.0.tgz"
    before = pkg.read_bytes()
    distfile = tmp_path / "cache/distfiles/hello-1.0.tar.gz"
    _tamper(distfile, "hello")
    capsys.readouterr()
    assert bt("fetch", "--offline") == 4
    err = capsys.readouterr().err
    assert f"{distfile}: BAD" in err and "BLAKE2s mismatch" in err
    # the repro: a patch edit (recorded with makepatchsum) re-extracts from the tampered file
    patch = repo / "patches/hello/patch-aa"
    patch.write_text(patch.read_text().replace('"hello, patched"', '"hello, patched again"'))
    assert main(["makepatchsum", "hello"]) == 0
    capsys.readouterr()
    assert bt("package", "hello", "--offline") == 4
    err = capsys.readouterr().err
    assert "hello-1.0.tar.gz" in err and "expected" in err
    assert pkg.read_bytes() == before
    assert not any(b"injected_backdoor" in p.read_bytes() for p in (repo / "work").rglob("*.c"))


def test_tampered_distfile_with_a_current_fetch_stamp_is_refused_at_extract(repo, tmp_path, capsys):
    """The fetch stamp is current and the file exists: extract still checks the bytes it reads."""
    assert bt("fetch", "hello") == 0
    _tamper(tmp_path / "cache/distfiles/hello-1.0.tar.gz", "hello")
    from buildtool.layout import Layout
    from buildtool.pipeline import Context, Options, PackageRun
    from buildtool.recipe import load_all

    run = PackageRun(Context(Layout.default(), Options(kernel="none")), load_all(repo)["hello"])
    with pytest.raises(ChecksumError, match=r"(?s)hello-1.0.tar.gz .*\n  expected [0-9a-f]+\n  actual  "):
        run.extract()
    assert not (repo / "work/hello/src/hello-1.0").exists()


def test_fetch_offline_names_every_missing_and_bad_distfile(repo, tmp_path, capsys):
    distdir = tmp_path / "cache/distfiles"
    assert bt("fetch", "--offline") == 0
    (distdir / "greet-1.0.tar.gz").unlink()
    _tamper(distdir / "hello-1.0.tar.gz", "hello")
    capsys.readouterr()
    assert bt("fetch", "--offline") == 4
    err = capsys.readouterr().err
    assert f"{distdir}/greet-1.0.tar.gz: missing" in err and f"{distdir}/hello-1.0.tar.gz: BAD" in err


# --- item 4: makesum refuses a changed distfile unless --force, and handles every package named -------------

def test_makesum_refuses_a_distfile_failing_the_recorded_sums(repo, tmp_path, capsys):
    distinfo = repo / "hello/distinfo"
    before = distinfo.read_text()
    _tamper(tmp_path / "cache/distfiles/hello-1.0.tar.gz", "hello")
    assert main(["makesum", "hello"]) == 4
    err = capsys.readouterr().err
    assert "hello-1.0.tar.gz" in err and "old " in err and "new " in err and "makesum --force hello" in err
    assert distinfo.read_text() == before
    assert main(["makesum", "--force", "hello"]) == 0
    err = capsys.readouterr().err
    old_blake = next(line for line in before.splitlines() if line.startswith("BLAKE2s"))
    assert old_blake.split(" = ")[1] in err and "--force: recording changed sums" in err
    assert distinfo.read_text() != before and old_blake not in distinfo.read_text()


def test_makesum_handles_every_package_named(repo, tmp_path, capsys):
    """`makesum greet hello` where hello depends on an unnamed `third` (as poptop on ppp-mppe): both named
    packages are done, the dependency is left alone."""
    (repo / "third").mkdir()
    (repo / "third/recipe.toml").write_text(RECIPE.format(name="third"))
    make_tarball(tmp_path / "cache/distfiles/third-1.0.tar.gz", "third", "third")
    (repo / "third/distinfo").write_text("$NetBSD$\n")
    toml = repo / "hello/recipe.toml"
    toml.write_text(toml.read_text().replace('license = "mit"\n', 'license = "mit"\ndepends = ["third"]\n'))
    for name in ("hello", "greet"):
        (repo / name / "distinfo").write_text("$NetBSD$\n")
    assert main(["makesum", "greet", "hello"]) == 0
    out = capsys.readouterr().out
    assert f"{repo}/hello/distinfo: updated" in out and f"{repo}/greet/distinfo: updated" in out
    for name in ("hello", "greet"):
        assert f"Size ({name}-1.0.tar.gz)" in (repo / name / "distinfo").read_text()
    assert (repo / "third/distinfo").read_text() == "$NetBSD$\n"


# --- item 8: options are checked before work starts, all at once ------------------------------------------

def _with_kernel_patches(repo: Path) -> None:
    """hello gets a kernel-side patch series, as ppp-mppe has: its build then includes kernel modules."""
    toml = repo / "hello/recipe.toml"
    toml.write_text(toml.read_text() + '\n[kmod]\nprofile_patches = "patch-c*"\n')


def test_netbsd_kernel_without_sysdir_fails_before_any_build(repo, capsys):
    _with_kernel_patches(repo)
    assert main(["build", "hello", "--kernel", "netbsd-10", "--no-progress"]) == 9
    err = capsys.readouterr().err
    assert "netbsd-10 needs --sysdir DIR (a NetBSD src/sys tree, e.g. /usr/src/sys)" in err
    assert not (repo / "work/hello").exists()


def test_wrong_sysdir_is_named_without_host(repo, tmp_path, capsys):
    _with_kernel_patches(repo)
    assert main(["package", "--kernel", "netbsd-10", "--sysdir", str(tmp_path)]) == 9
    err = capsys.readouterr().err
    assert f"--sysdir {tmp_path}: cannot read {tmp_path}/sys/param.h" in err and "NetBSD src/sys tree" in err
    assert not (repo / "work/hello").exists()


def test_options_the_kernel_does_not_use_are_refused_all_at_once(repo, tmp_path, capsys):
    assert main(["build", "--kernel", "linux-6.1", "--sysdir", str(tmp_path), "--host", "me@box"]) == 2
    err = capsys.readouterr().err
    assert "--sysdir is not used with --kernel linux-6.1" in err and "--host is not used" in err
    assert main(["build", "--kernel", "none", "--kernel-dir", str(tmp_path)]) == 2
    assert "--kernel-dir is not used with --kernel none" in capsys.readouterr().err
    assert main(["build", "--kernel", "linux-6.1", "--kernel-source", str(tmp_path / "nope.tar.xz")]) == 9
    assert f"--kernel-source {tmp_path}/nope.tar.xz: no such file" in capsys.readouterr().err
    assert not (repo / "work").exists()


# --- item 5: no orphaned children; clean takes the work-tree lock ------------------------------------------

def _start_slow_build(repo: Path, tmp_path: Path) -> subprocess.Popen:
    """`buildtool package hello` whose build step sleeps 60 s (BT_SLOW); returns once that step runs."""
    marker = tmp_path / "build-started"
    env = dict(os.environ, BT_SLOW=str(marker))
    proc = subprocess.Popen([sys.executable, "-m", "buildtool", "package", "hello", "--kernel", "none",
                             "--no-progress"], cwd=repo, env=env, stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / "build.err", "w"))
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, (tmp_path / "build.err").read_text()
        assert time.monotonic() < deadline, "build step never started"
        time.sleep(0.05)
    return proc


def _live_members(pgid: int) -> list[int]:
    """Processes (not zombies) in process group `pgid`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _build_group(repo: Path) -> int:
    return int((repo / "work/hello/logs/build.log.pgid").read_text().split()[0])


def test_kill_9_leftovers_are_killed_by_the_next_run(repo, tmp_path, capsys):
    proc = _start_slow_build(repo, tmp_path)
    pgid = _build_group(repo)
    deadline = time.monotonic() + 30
    while len(_live_members(pgid)) < 2:  # sh and the sleep it started
        assert time.monotonic() < deadline, "the build step never started its sleep"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.2)
    assert _live_members(pgid), "the sleeping build step should have outlived the killed run"
    capsys.readouterr()
    assert bt("package", "hello") == 0
    err = capsys.readouterr().err
    assert f"killed process group {pgid} left running by an earlier, killed run" in err
    assert _live_members(pgid) == []


@pytest.mark.parametrize(("sig", "rc", "said"), [(signal.SIGTERM, 143, "terminated (SIGTERM)"),
                                                  (signal.SIGINT, 130, "interrupted")])
def test_sigterm_or_sigint_stops_the_build_group_and_says_what_was_interrupted(repo, tmp_path, sig, rc, said):
    proc = _start_slow_build(repo, tmp_path)
    pgid = _build_group(repo)
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == rc
    err = (tmp_path / "build.err").read_text()
    assert f"interrupted: stopped hello build (process group {pgid}): sh -c" in err
    assert f"buildtool: {said}; the next run resumes" in err
    assert _live_members(pgid) == []
    assert not (repo / "work/hello/logs/build.log.pgid").exists()


def test_clean_waits_for_a_running_build(repo, tmp_path):
    proc = _start_slow_build(repo, tmp_path)
    clean_err = tmp_path / "clean.err"
    clean = subprocess.Popen([sys.executable, "-m", "buildtool", "clean"], cwd=repo,
                             stdout=subprocess.DEVNULL, stderr=open(clean_err, "w"))
    deadline = time.monotonic() + 30
    while "waiting for another buildtool run" not in clean_err.read_text():
        assert clean.poll() is None, f"clean did not wait: {clean_err.read_text()}"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert (repo / "work/hello/src").is_dir()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert clean.wait(timeout=60) == 0
    assert not (repo / "work/hello").exists()


# --- item 3: a package counts as up to date only if it verifies ---------------------------------------------

def test_truncated_package_is_rebuilt(repo, capsys):
    assert bt("package", "hello") == 0
    pkg = repo / "packages/All/hello-1.0.tgz"
    good = pkg.read_bytes()
    pkg.write_bytes(good[: len(good) // 2])
    capsys.readouterr()
    assert bt("package", "hello") == 0
    err = capsys.readouterr().err
    assert f"{pkg} does not verify, replacing it" in err and "hello: package restored" in err
    assert pkg.read_bytes() == good
    # without the copy kept in the work tree it is made again from the stage
    for kept in (repo / "work/hello/packages").glob("*.tgz"):
        kept.unlink()
    pkg.write_bytes(good[:100])
    capsys.readouterr()
    assert bt("package", "hello") == 0
    assert "hello: package done" in capsys.readouterr().err and pkg.read_bytes() == good


def test_test_reports_a_broken_input_package_as_an_input_error(repo, tmp_path, capsys):
    pk = tmp_path / "pk"
    assert bt("package", "--packages", str(pk)) == 0
    pkg = pk / "All/greet-1.0.tgz"
    pkg.write_bytes(pkg.read_bytes()[:100])
    capsys.readouterr()
    assert main(["test", "--packages", str(pk)]) == 11
    err = capsys.readouterr().err
    assert f"{pkg}: not a readable gzip'd tar archive" in err and "not a verdict on the product" in err


# --- item 7: a failed apt-get update is not cached as success -----------------------------------------------

def _unreachable_host_apt(tmp_path: Path):
    from buildtool.debian import HostApt

    (tmp_path / "sources.list").write_text("deb http://127.0.0.1:9/debian bookworm main\n")
    return HostApt(sourcelist=tmp_path / "sources.list", sourceparts=tmp_path / "none.d",
                   trusted=Path("/etc/apt/trusted.gpg"), trustedparts=Path("/etc/apt/trusted.gpg.d"),
                   status=Path("/var/lib/dpkg/status"))


@pytest.mark.skipif(not Path("/usr/lib/apt/apt-helper").exists(), reason="needs apt (Debian's apt package)")
def test_failed_apt_update_is_not_marked_fresh_and_says_unreachable(tmp_path):
    from buildtool.debian import AptArchive
    from buildtool.errors import FetchError

    archive = AptArchive(tmp_path / "apt", host=_unreachable_host_apt(tmp_path))
    with pytest.raises(FetchError, match="Debian's archive could not be reached") as e:
        archive.ensure_updated()
    assert "127.0.0.1" in str(e.value) and "Pin an available version" not in str(e.value)
    assert not (tmp_path / "apt/state/buildtool-updated").exists()
    # the next run tries again instead of trusting a 24-hour stamp
    with pytest.raises(FetchError, match="could not be reached"):
        AptArchive(tmp_path / "apt", host=_unreachable_host_apt(tmp_path)).ensure_updated()
    assert (tmp_path / "apt/apt.log").read_text().count("apt-get update") == 2


# --- item 6: errors, not tracebacks: malformed distinfo, read-only and full disks, bounded commands -----

def test_malformed_distinfo_size_names_file_and_line(repo, capsys):
    distinfo = repo / "hello/distinfo"
    lines = distinfo.read_text().splitlines()
    n = next(i for i, line in enumerate(lines) if line.startswith("Size"))
    lines[n] = "Size (hello-1.0.tar.gz) = 716,165 bytes"
    distinfo.write_text("\n".join(lines) + "\n")
    assert bt("fetch", "hello") == 3
    err = capsys.readouterr().err
    assert f"{distinfo}:{n + 1}: key 'Size (hello-1.0.tar.gz)'" in err and "'716,165 bytes'" in err
    assert "Traceback" not in err


needs_mounts = pytest.mark.skipif(not can_mount_in_a_namespace(),
                                  reason="needs `unshare -rm` (user and mount namespaces) to make a small or "
                                         "read-only file system without root")


def _buildtool_in_namespace(repo: Path, setup: str, *args: str) -> subprocess.CompletedProcess:
    """Run buildtool in a private mount namespace after the shell commands `setup` (mounts)."""
    cmd = " ".join([sys.executable, "-m", "buildtool", *args, "--kernel", "none", "--no-progress"])
    return subprocess.run(["unshare", "-rm", "sh", "-c", f"set -e; {setup}; exec {cmd}"], cwd=repo,
                          capture_output=True, text=True, timeout=120, env=dict(os.environ))


def _big_hello(repo: Path, tmp_path: Path) -> None:
    """hello's distfile with 2 MB of incompressible data, its sums recorded: extracting it needs room."""
    distfile = tmp_path / "cache/distfiles/hello-1.0.tar.gz"
    with tarfile.open(distfile) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(distfile, "w:gz") as tar:
        for m, data in members:
            tar.addfile(m, io.BytesIO(data))
        blob = os.urandom(2 * 1024 * 1024)
        info = tarfile.TarInfo("hello-1.0/data.bin")
        info.size = len(blob)
        tar.addfile(info, io.BytesIO(blob))
    assert main(["makesum", "--force", "hello"]) == 0


@needs_mounts
def test_full_work_tree_during_extract_is_a_disk_error_not_an_unsafe_archive(repo, tmp_path):
    _big_hello(repo, tmp_path)
    work = tmp_path / "smallwork"
    work.mkdir()
    done = _buildtool_in_namespace(repo, f"mount -t tmpfs -o size=512k tmpfs {work}", "extract", "hello",
                                   "--work", str(work))
    assert done.returncode == 13, done.stderr
    assert "No space left on device" in done.stderr and str(work) in done.stderr, done.stderr
    assert "unsafe" not in done.stderr and "Traceback" not in done.stderr


@needs_mounts
def test_full_packages_directory_is_a_disk_error(repo, tmp_path):
    pk = tmp_path / "pk"
    pk.mkdir()
    setup = (f"mount -t tmpfs -o size=64k tmpfs {pk}; mkdir {pk}/All; "
             f"dd if=/dev/zero of={pk}/fill bs=4k count=64 2>/dev/null || true")
    done = _buildtool_in_namespace(repo, setup, "package", "hello", "--packages", str(pk))
    assert done.returncode == 13, done.stderr
    assert "No space left on device" in done.stderr and f"{pk}/All" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


@needs_mounts
def test_read_only_packages_directory_is_a_disk_error(repo, tmp_path):
    pk = tmp_path / "pk"
    pk.mkdir()
    setup = f"mount -t tmpfs tmpfs {pk}; mkdir {pk}/All; mount -o remount,ro {pk}"
    done = _buildtool_in_namespace(repo, setup, "package", "hello", "--packages", str(pk))
    assert done.returncode == 13, done.stderr
    assert "Read-only file system" in done.stderr and "mounted read-only" in done.stderr
    assert "Traceback" not in done.stderr


@needs_mounts
def test_read_only_cache_with_a_bad_distfile_is_a_disk_error(repo, tmp_path):
    cache = tmp_path / "cache"
    _tamper(cache / "distfiles/hello-1.0.tar.gz", "hello")
    done = _buildtool_in_namespace(repo, f"mount --bind {cache} {cache}; mount -o remount,bind,ro {cache}",
                                   "fetch", "hello")
    assert done.returncode == 13, done.stderr
    assert "Read-only file system" in done.stderr and str(cache / "distfiles") in done.stderr
    assert "Traceback" not in done.stderr


@needs_mounts
def test_full_cache_while_downloading_is_a_disk_error(repo, tmp_path):
    import functools
    import threading
    from http.server import HTTPServer, SimpleHTTPRequestHandler

    cache = tmp_path / "cache"
    site = tmp_path / "site"
    site.mkdir()
    _big_hello(repo, tmp_path)  # 2 MB: more than the cache file system holds
    os.replace(cache / "distfiles/hello-1.0.tar.gz", site / "hello-1.0.tar.gz")
    server = HTTPServer(("127.0.0.1", 0), functools.partial(SimpleHTTPRequestHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    setup = (f"export BUILDTOOL_MASTER_SITE_OVERRIDE=http://127.0.0.1:{server.server_port}/; "
             f"mount -t tmpfs -o size=256k tmpfs {cache}; mkdir {cache}/distfiles")
    try:
        done = _buildtool_in_namespace(repo, setup, "fetch", "hello")
    finally:
        server.shutdown()
    assert done.returncode == 13, done.stderr
    assert "No space left on device" in done.stderr
    assert f"{cache}/distfiles/hello-1.0.tar.gz.part" in done.stderr
    assert "Traceback" not in done.stderr


def test_every_external_command_has_a_timeout():
    """subprocess.run/call/check_output without timeout= can hang a run forever (apt on a full disk did)."""
    import ast

    root = Path(__file__).resolve().parent.parent / "buildtool"
    missing = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "subprocess"
                    and node.func.attr in ("run", "call", "check_call", "check_output")
                    and not any(k.arg == "timeout" for k in node.keywords)):
                missing.append(f"{path.relative_to(root)}:{node.lineno}")
    assert missing == []


def test_a_command_past_its_timeout_is_stopped_with_its_whole_group(tmp_path):
    from buildtool.errors import PhaseError
    from buildtool.runlog import capture, run

    marker = f"{61 + os.getpid() % 1000 / 1000:.3f}"  # a sleep argument no other process uses
    with pytest.raises(PhaseError, match="did not finish within 1s") as e:
        run(["sh", "-c", f"echo started; sleep {marker} & sleep {marker}"], log=tmp_path / "x.log",
            what="sleeper", timeout=1)
    assert "started" in str(e.value) and not (tmp_path / "x.log.pgid").exists()
    with pytest.raises(subprocess.TimeoutExpired):
        capture(["sh", "-c", f"echo hi; sleep {marker} & sleep {marker}"], timeout=1)
    time.sleep(0.2)
    assert _sleepers(marker) == []


def _sleepers(marker: str) -> list[str]:
    found = []
    for p in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if p.read_bytes() == f"sleep\0{marker}\0".encode() and (p.parent / "stat").read_text().split(
                    ")")[-1].split()[0] != "Z":
                found.append(p.parent.name)
        except OSError:
            continue
    return found


# --- item 9: temporary files are cleaned -----------------------------------------------------------------

def test_fetch_leaves_no_part_bad_or_tmp_beside_a_verified_distfile(repo, tmp_path):
    distdir = tmp_path / "cache/distfiles"
    leftovers = [distdir / "hello-1.0.tar.gz.part", distdir / "hello-1.0.tar.gz.bad",
                 distdir / ".hello-1.0.tar.gz.x1y2.tmp"]
    for p in leftovers:
        p.write_bytes(b"left by an earlier, interrupted or failed fetch")
    assert bt("fetch", "hello") == 0
    assert [p for p in leftovers if p.exists()] == []
    assert (distdir / "hello-1.0.tar.gz").exists()


def test_corrupt_distfile_moved_aside_is_removed_once_a_good_copy_is_fetched(repo, tmp_path, monkeypatch):
    import functools
    import threading
    from http.server import HTTPServer, SimpleHTTPRequestHandler

    distdir = tmp_path / "cache/distfiles"
    site = tmp_path / "site"
    site.mkdir()
    (site / "hello-1.0.tar.gz").write_bytes((distdir / "hello-1.0.tar.gz").read_bytes())
    _tamper(distdir / "hello-1.0.tar.gz", "hello")
    server = HTTPServer(("127.0.0.1", 0), functools.partial(SimpleHTTPRequestHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("BUILDTOOL_MASTER_SITE_OVERRIDE", f"http://127.0.0.1:{server.server_port}/")
    try:
        assert bt("fetch", "hello") == 0
    finally:
        server.shutdown()
    assert sorted(p.name for p in distdir.glob("*hello*")) == ["hello-1.0.tar.gz"]


def test_package_run_removes_temporaries_a_killed_run_left_in_packages_all(repo):
    all_dir = repo / "packages/All"
    all_dir.mkdir(parents=True)
    stale = all_dir / ".hello-1.0.tgz.k9k9k9.tmp"
    stale.write_bytes(b"half a package")
    assert bt("package", "hello") == 0
    assert not stale.exists() and (all_dir / "hello-1.0.tgz").exists()
    assert sorted(p.name for p in all_dir.iterdir()) == ["hello-1.0.tgz"]


def test_image_cache_scratch_of_a_killed_build_is_removed_under_the_lock(tmp_path):
    from buildtool.vm.image import remove_stale_scratch

    vm = tmp_path / "vm"
    scratch = vm / ".0123456789abcdef01234567.x8k2"
    (scratch / "root/usr").mkdir(parents=True)
    (scratch / "root/usr/big").write_bytes(b"\0" * 4096)
    kept = vm / "0123456789abcdef01234567"
    kept.mkdir()
    (vm / ".lock").write_text("")
    assert remove_stale_scratch(vm) == [scratch]
    assert not scratch.exists() and kept.is_dir() and (vm / ".lock").exists()


# --- item 12: a run outside a checkout says which tree it uses --------------------------------------------

def test_outside_a_checkout_the_tree_used_is_named_and_clean_refuses(tmp_path):
    root = Path(__file__).resolve().parent.parent
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "BUILDTOOL_CACHE"}
    env["BUILDTOOL_CACHE"] = str(tmp_path / "cache")
    done = subprocess.run([sys.executable, "-m", "buildtool", "package", "--dry-run", "--kernel", "none"],
                          cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"{elsewhere} is not inside a buildtool checkout; using the checkout buildtool was installed " \
           f"from: {root} (work tree {root / 'work'})" in done.stderr
    clean = subprocess.run([sys.executable, "-m", "buildtool", "clean"], cwd=elsewhere, env=env,
                           capture_output=True, text=True, timeout=120)
    assert clean.returncode == 2 and "buildtool clean --work DIR" in clean.stderr


# --- item 11: progress on long steps, an honest summary, the kernels' real cost -----------------------------

def test_long_step_prints_a_progress_line_every_tick_with_the_logs_last_line(tmp_path, monkeypatch, capsys):
    from buildtool import runlog

    monkeypatch.setattr(runlog, "HEARTBEAT_SECONDS", 0.5)
    runlog.run(["sh", "-c", "echo compiling crypto/aes.c; sleep 1.8"], log=tmp_path / "b.log",
               what="openssl build", progress=False)
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("  ... openssl build: ")]
    assert len(lines) >= 2 and lines[-1].endswith("compiling crypto/aes.c")


def test_long_step_on_a_terminal_redraws_one_status_line(tmp_path, monkeypatch, capsys):
    from buildtool import runlog

    monkeypatch.setattr(runlog, "BAR_SECONDS", 0.2)
    runlog.run(["sh", "-c", "echo linking; sleep 1"], log=tmp_path / "b.log", what="openssl build",
               progress=True)
    err = capsys.readouterr().err
    assert "\ropenssl build: " in err and "\x1b[K" in err and "\n" not in err


def test_summary_counts_phases_properly_and_names_the_packages_written(repo, capsys):
    assert bt("fetch", "hello") == 0
    assert "summary: 1 phase run, 0 up to date" in capsys.readouterr().err
    assert bt("package") == 0
    err = capsys.readouterr().err
    assert f"packages written: {repo}/packages/All/greet-1.0.tgz, {repo}/packages/All/hello-1.0.tgz" in err \
        or f"packages written: {repo}/packages/All/hello-1.0.tgz, {repo}/packages/All/greet-1.0.tgz" in err
    assert bt("package") == 0
    assert "packages written" not in capsys.readouterr().err


def test_a_failed_kernel_resolution_counts_as_a_failure(repo, capsys):
    _with_kernel_patches(repo)
    assert main(["build", "hello", "--kernel", "linux-6.1", "--offline", "--no-progress"]) == 9
    err = capsys.readouterr().err
    assert "==> kernel: resolve failed" in err and "1 failed" in err.split("summary:")[1]


def test_kernels_states_the_download_and_disk_cost(capsys):
    assert main(["kernels"]) == 0
    out = capsys.readouterr().out
    assert "224 MB (214 MiB) of .debs" in out and "697 MB on disk" in out


# --- item 10: switching --kernel keeps the other profile's work -----------------------------------------

def test_switching_kernel_back_is_a_no_op_build(repo, capsys):
    """none -> linux-6.1 (its kernel unavailable here) -> none: switching costs no userland rebuild and the
    third run runs nothing. The full swap of real packages is the integration test below."""
    _with_kernel_patches(repo)
    assert main(["package", "hello", "--kernel", "none", "--no-progress"]) == 0
    pkg = repo / "packages/All/hello-1.0.tgz"
    none_pkg = pkg.read_bytes()
    stamps_before = stamp_mtimes(repo)
    capsys.readouterr()
    # the kmod phase of linux-6.1 needs Debian's kernel; its failure must not cost the userland build
    assert main(["package", "hello", "--kernel", "linux-6.1", "--offline", "--no-progress"]) == 9
    err = capsys.readouterr().err
    assert "hello: build" not in err and "hello: extract" not in err
    assert main(["package", "hello", "--kernel", "none", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "summary: 0 phases run" in err, err
    assert pkg.read_bytes() == none_pkg
    assert {k: v for k, v in stamp_mtimes(repo).items() if "@" not in k} == \
        {k: v for k, v in stamps_before.items() if "@" not in k}


def stamp_mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.glob("work/*/.stamps/*")}


@pytest.mark.integration
def test_switching_kernel_on_the_real_packages_rebuilds_nothing_the_third_time(built_layout, capsys):
    """The session's real build (linux-6.1): none, then linux-6.1, then none again. The first switch only
    packages; each later one builds nothing (the packages are put back from the work tree)."""
    args = ["--work", str(built_layout.work), "--packages", str(built_layout.packages), "--no-progress"]
    try:
        assert main(["package", "--kernel", "none", *args]) == 0
        first = capsys.readouterr().err
        assert "build done" not in first and "kmod done" not in first
        none_pkgs = {p.name: p.read_bytes() for p in built_layout.packages_all.glob("*.tgz")}
        assert main(["package", "--kernel", "linux-6.1", *args]) == 0
        assert "summary: 0 phases run" in capsys.readouterr().err
        assert main(["package", "--kernel", "none", *args]) == 0
        assert "summary: 0 phases run" in capsys.readouterr().err
        assert {p.name: p.read_bytes() for p in built_layout.packages_all.glob("*.tgz")} == none_pkgs
    finally:  # the VM suite tests the default profile's packages
        assert main(["package", "--kernel", "linux-6.1", *args]) == 0
