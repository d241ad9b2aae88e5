"""The NetBSD kernel's inputs are verified like a recipe's: the three shared tarballs and both patch series
against netbsd-kernel/distinfo, on every run, before anything is unpacked or applied; and
`buildtool makesum/makepatchsum netbsd-kernel` regenerate it. /work/shared is never modified: tampered
tarballs are copies in a temporary folder (BUILDTOOL_NETBSD_SOURCES)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from buildtool.cli import main
from buildtool.distinfo import DISTFILE_ALGORITHMS, read_distinfo
from buildtool.errors import ChecksumError, KernelError, PatchError
from buildtool.kernels import netbsd_kernel as nk

REPO = Path(__file__).resolve().parents[1]
SOURCES = REPO.parent / "shared" / "sources"


def require_sources() -> None:
    missing = nk.missing_tarballs(SOURCES)
    if missing:
        pytest.skip(f"{', '.join(missing)} not in {SOURCES}")


def tampered_sources(tmp_path: Path, name: str) -> Path:
    """A sources folder: `name` a copy with one byte changed, the other tarballs links to the real ones."""
    require_sources()
    d = tmp_path / "sources"
    d.mkdir()
    for t in nk.TARBALLS:
        if t == name:
            data = bytearray((SOURCES / t).read_bytes())
            data[len(data) // 2] ^= 0x01
            (d / t).write_bytes(bytes(data))
        else:
            (d / t).symlink_to(SOURCES / t)
    return d


def repo_copy(tmp_path: Path) -> Path:
    """The parts of the repository the kernel's inputs are: its distinfo and both patch series."""
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "patches" / "netbsd-kernel", repo / "patches" / "netbsd-kernel")
    shutil.copytree(REPO / nk.INPUTS, repo / nk.INPUTS)
    return repo


def test_distinfo_records_every_tarball_and_every_patch_and_nothing_else():
    info = read_distinfo(nk.distinfo_path(REPO))
    assert sorted(info.distfiles) == sorted(nk.TARBALLS)
    for d in info.distfiles.values():
        assert sorted(d.hashes) == sorted(DISTFILE_ALGORITHMS) and d.size > 0
    assert sorted(info.patches) == sorted(p.name for p in nk.input_patches(REPO))
    assert {"patch-config", "patch-proplib", "patch-sha3"} <= set(info.patches)


def test_the_real_inputs_verify():
    require_sources()
    info = nk.verify_inputs(SOURCES, REPO)
    assert info.path == REPO / "netbsd-kernel" / "distinfo"


@pytest.mark.parametrize("name", [nk.BUILDRUMP_TARBALL, nk.SYS_TARBALL])
def test_a_tampered_tarball_is_refused_before_anything_is_unpacked(tmp_path, name):
    sources = tampered_sources(tmp_path, name)
    cache = tmp_path / "cache"
    with pytest.raises(KernelError) as e:
        nk.ensure_kernel(sources, cache, REPO, out=open("/dev/null", "w"))  # noqa: SIM115
    text = str(e.value)
    info = read_distinfo(nk.distinfo_path(REPO))
    assert f"refusing to build the NetBSD kernel from {sources / name}" in text
    assert "SHA512 mismatch" in text and "BLAKE2s mismatch" in text and "size mismatch" not in text
    assert f"expected {info.distfiles[name].hashes['SHA512']}" in text
    assert "buildtool makesum --force netbsd-kernel" in text
    assert not cache.exists()  # nothing unpacked, built or locked


def test_verification_comes_before_the_cache_lookup(tmp_path):
    """Even a finished cache entry under the tampered inputs' key is not used."""
    sources = tampered_sources(tmp_path, nk.BUILDRUMP_TARBALL)
    cache = tmp_path / "cache"
    entry = cache / "netbsd-kernel" / nk.kernel_key(sources, REPO, nk.KernelConfig())
    entry.mkdir(parents=True)
    (entry / "COMPLETE").write_text("{}\n")
    with pytest.raises(KernelError, match="SHA512 mismatch"):
        nk.ensure_kernel(sources, cache, REPO, out=open("/dev/null", "w"))  # noqa: SIM115
    with pytest.raises(KernelError, match="SHA512 mismatch"):
        nk.ensure_tools(sources, cache, REPO, out=open("/dev/null", "w"))  # noqa: SIM115


def test_a_tampered_patch_is_refused_naming_it_and_the_command(tmp_path):
    repo = repo_copy(tmp_path)
    patch = nk.patch_dir(repo, "common") / "patch-memmem"
    want = read_distinfo(nk.distinfo_path(repo)).patches["patch-memmem"]
    patch.write_text(patch.read_text() + " \n")
    with pytest.raises(PatchError) as e:
        nk.verify_inputs(SOURCES, repo, tarballs=())
    text = str(e.value)
    assert f"refusing to apply {patch}" in text and "SHA1 mismatch for patch patch-memmem" in text
    assert f"expected {want}" in text and "buildtool makepatchsum netbsd-kernel" in text


def test_apply_patches_checks_every_sum_before_changing_the_tree(tmp_path):
    repo = repo_copy(tmp_path)
    info = read_distinfo(nk.distinfo_path(repo))
    series = nk.input_patches(repo)
    series[-1].write_text(series[-1].read_text().replace("\n+", "\n+ ", 1))
    tree = tmp_path / "tree"
    tree.mkdir()
    with pytest.raises(PatchError, match=f"SHA1 mismatch for patch {series[-1].name}"):
        nk.apply_patches(series, tree, tmp_path / "log", info)
    assert list(tree.iterdir()) == [] and not (tmp_path / "log").exists()


def test_a_patch_distinfo_does_not_record_is_refused(tmp_path):
    repo = repo_copy(tmp_path)
    extra = nk.patch_dir(repo, "common") / "patch-zz"
    shutil.copy(nk.patch_dir(repo, "common") / "patch-memmem", extra)
    with pytest.raises(PatchError, match=r"(?s)no SHA1 entry for patch patch-zz.*makepatchsum netbsd-kernel"):
        nk.verify_inputs(SOURCES, repo, tarballs=())


def test_makepatchsum_records_the_changed_patch_and_keeps_the_tarballs(tmp_path, monkeypatch, capsys):
    repo = repo_copy(tmp_path)
    before = read_distinfo(nk.distinfo_path(repo))
    patch = nk.patch_dir(repo, "tools") / "patch-config"
    patch.write_text(patch.read_text() + " \n")
    (repo / "ppp-mppe").mkdir()
    (repo / "ppp-mppe" / "recipe.toml").write_text("")  # find_checkout's mark of a checkout
    monkeypatch.chdir(repo)
    assert main(["makepatchsum", "netbsd-kernel"]) == 0
    assert f"{nk.distinfo_path(repo)}: updated" in capsys.readouterr().out
    after = read_distinfo(nk.distinfo_path(repo))
    assert after.patches["patch-config"] != before.patches["patch-config"]
    assert {k: v for k, v in after.patches.items() if k != "patch-config"} == \
        {k: v for k, v in before.patches.items() if k != "patch-config"}
    assert after.distfiles == before.distfiles
    nk.verify_inputs(SOURCES, repo, tarballs=())


def test_makesum_refuses_a_changed_tarball_unless_forced(tmp_path, monkeypatch):
    sources = tampered_sources(tmp_path, nk.BUILDRUMP_TARBALL)
    repo = repo_copy(tmp_path)
    monkeypatch.setenv(nk.ENV_SOURCES, str(sources))
    with pytest.raises(ChecksumError, match="buildtool makesum --force netbsd-kernel"):
        nk.makesum(repo)
    assert nk.makesum(repo, force=True, out=open("/dev/null", "w"))  # noqa: SIM115
    nk.verify_inputs(sources, repo)  # the tampered copy is now what distinfo records
    with pytest.raises(KernelError, match="SHA512 mismatch"):
        nk.verify_inputs(SOURCES, repo)


def test_the_lane_command_refuses_a_tampered_tarball_with_exit_9(tmp_path, monkeypatch, capsys):
    sources = tampered_sources(tmp_path, nk.BUILDRUMP_TARBALL)
    monkeypatch.setenv(nk.ENV_SOURCES, str(sources))
    monkeypatch.setenv("BUILDTOOL_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(REPO)
    assert main(["test", "--kernel", "netbsd-qemu", "--results", str(tmp_path / "results")]) == 9
    err = capsys.readouterr().err
    assert "buildtool: error: refusing to build the NetBSD kernel from" in err and "Traceback" not in err
    assert "SHA512 mismatch" in err and not (tmp_path / "cache" / "netbsd-kernel").exists()
