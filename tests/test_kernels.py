"""Kernel profiles: the table, the errors, and the pure helpers of the Linux family (no network, no build)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from buildtool import kmod
from buildtool.errors import KernelError, RecipeError, UsageError
from buildtool.kernels import (
    PROFILES,
    describe_profiles,
    get_profile,
    get_profile_class,
    linux,
    profile_names,
)
from buildtool.kernels.linux import LinuxKernel
from buildtool.kernels.netbsd import NetBSDKernel, NetBSDLKMKernel, parse_host, release_matches
from buildtool.layout import Layout
from buildtool.recipe import load_all, load_recipe

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(root=tmp_path / "repo", work=tmp_path / "work", cache=tmp_path / "cache",
                  packages=tmp_path / "packages")


def test_profile_table_names_are_unique_and_linux_61_is_there():
    names = profile_names()
    assert len(names) == len(set(names))
    assert {"linux-6.1", "netbsd-1.4.1", "netbsd-10"} <= set(names)
    assert get_profile("linux-6.1").source.flavour == "amd64"
    assert get_profile("netbsd-rump").source is None  # a test lane: no kernel to build against


def test_module_names_come_from_the_recipe_by_family(tmp_path):
    ppp = load_recipe(ROOT / "ppp-mppe")
    assert ppp.modules_for("linux") == ("ppp_generic", "ppp_mppe")
    assert ppp.modules_for("netbsd") == ("ppp_mppe",) and ppp.modules_for("netbsd-lkm") == ("mppe",)
    poptop = load_recipe(ROOT / "poptop")
    with pytest.raises(RecipeError, match=r"poptop/recipe.toml: key 'kmod.modules' names no modules for "
                                          r"the kernel family 'linux' \(it has: none\)"):
        poptop.modules_for("linux")


def test_a_module_list_that_is_not_a_list_of_names_is_refused(tmp_path):
    d = tmp_path / "ppp-mppe"
    shutil.copytree(ROOT / "ppp-mppe", d)
    text = (d / "recipe.toml").read_text()
    (d / "recipe.toml").write_text(text.replace('netbsd = ["ppp_mppe"]', 'netbsd = "ppp_mppe"'))
    with pytest.raises(RecipeError, match=r"key 'kmod.modules.netbsd' must be a non-empty list"):
        load_recipe(d)


def test_every_family_class_implements_the_family_interface():
    from buildtool.kernels import KernelFamily, _families

    for name, cls in _families().items():
        assert issubclass(cls, KernelFamily) and not cls.__abstractmethods__, name
    with pytest.raises(TypeError, match="abstract"):
        type("Half", (KernelFamily,), {"needs": classmethod(lambda cls, p: [])})(None, None, {}, None)


def test_each_profile_has_a_family_class():
    assert get_profile_class("linux-6.1") is LinuxKernel
    assert get_profile_class("netbsd-1.4.1") is NetBSDLKMKernel
    assert get_profile_class("netbsd-10") is NetBSDKernel


def test_buildtool_test_runs_the_family_s_scenarios():
    from buildtool.kernels import scenario_runner
    from buildtool.rump.suite import run_rump_suite
    from buildtool.vm.netbsd_suite import run_netbsd_suite
    from buildtool.vm.suite import run_suite

    assert scenario_runner("netbsd-rump") is run_rump_suite
    assert scenario_runner("netbsd-qemu") is run_netbsd_suite
    assert scenario_runner("linux-6.1") is run_suite and scenario_runner("none") is run_suite
    for p in PROFILES:  # every family names a runner that exists
        assert callable(scenario_runner(p.name)), p.name


@pytest.mark.parametrize("name", ["netbsd-rump", "netbsd-qemu"])
def test_a_test_lane_is_not_a_kernel_to_build_modules_for(layout, name):
    lane = get_profile_class(name)(get_profile(name), layout, {}, layout.work / "kmod.log")
    assert get_profile(name).source is None
    with pytest.raises(KernelError, match=f"{name} is a test lane.*buildtool test --kernel {name}"):
        lane.resolve()


def test_unknown_profile_lists_the_known_ones():
    with pytest.raises(UsageError) as e:
        get_profile_class("linux-5.10")
    for name in profile_names():
        assert name in str(e.value)
    assert "'none'" in str(e.value)


def test_cli_rejects_unknown_profile_with_exit_2(capsys):
    from buildtool.cli import main

    assert main(["build", "--kernel", "freebsd-14", "ppp-mppe"]) == 2
    assert "netbsd-1.4.1" in capsys.readouterr().err


def test_describe_lists_every_profile_and_what_it_needs():
    text = describe_profiles(load_all(ROOT).values())
    for p in PROFILES:
        assert f"{p.name}: {p.summary}" in text
    assert "  modules: ppp_generic.ko, ppp_mppe.ko (ppp-mppe)\n" in text
    assert "  modules: mppe.o (ppp-mppe)\n" in text
    assert "linux-headers-<abi>-common" in text and "linux-kbuild-6.1" in text and "linux-source-6.1" in text
    assert "--kernel-dir" in text and "--kernel-source" in text
    assert "--sysdir" in text and "--host user@host" in text
    for block in text.split("\n\n"):
        if block.startswith("netbsd-"):  # each NetBSD profile says what is verified and what is not
            assert "verified here:" in block and "not verified:" in block


# --- NetBSD: the checks and their errors ------------------------------------------------------------------
def netbsd(layout: Layout, name: str = "netbsd-1.4.1", **options) -> NetBSDKernel:
    return get_profile_class(name)(get_profile(name), layout, options, layout.work / "kmod.log")


def test_netbsd_141_needs_sysdir_and_host(layout):
    with pytest.raises(KernelError) as e:
        netbsd(layout).resolve()
    msg = str(e.value)
    assert "netbsd-1.4.1 needs --sysdir /usr/src/sys (the kernel source tree on the NetBSD 1.4.1 host)" in msg
    assert "--host user@host" in msg


def test_netbsd_141_needs_host_even_with_sysdir(layout, tmp_path):
    with pytest.raises(KernelError) as e:
        netbsd(layout, sysdir=tmp_path).resolve()
    assert "--host user@host" in str(e.value) and "--sysdir" not in str(e.value).split("needs")[1]


def test_netbsd_10_needs_sysdir(layout):
    with pytest.raises(KernelError, match="netbsd-10 needs --sysdir DIR"):
        netbsd(layout, "netbsd-10").resolve()


def test_netbsd_10_early_check_names_a_wrong_sysdir_and_a_bad_host(layout, tmp_path):
    """What check_options runs before any work: the tree and --host's form, each named."""
    from buildtool.kernels import check_options

    with pytest.raises(KernelError) as e:
        check_options("netbsd-10", {"sysdir": tmp_path, "host": "box"}, layout, building=True)
    assert f"--sysdir {tmp_path}: cannot read {tmp_path}/sys/param.h" in str(e.value)
    assert "--host 'box': expected user@host" in str(e.value)


def test_netbsd_141_sysdir_is_a_path_on_the_host_and_not_checked_here(layout):
    from buildtool.kernels import check_options

    check_options("netbsd-1.4.1", {"sysdir": "/usr/src/sys", "host": "me@box"}, layout, building=True)
    with pytest.raises(KernelError, match="--host user@host"):
        check_options("netbsd-1.4.1", {"sysdir": "/usr/src/sys"}, layout, building=True)


def test_netbsd_offline_cannot_reach_a_host(layout):
    with pytest.raises(KernelError, match="--offline cannot reach the build host me@box"):
        netbsd(layout, sysdir="/usr/src/sys", host="me@box").resolve(offline=True)


def test_netbsd_host_syntax():
    assert parse_host("me@box") == ("me", "box", None)
    assert parse_host("me@box.example:2222") == ("me", "box.example", 2222)
    assert parse_host("me@[::1]:22") == ("me", "::1", 22)
    for bad in ("box", "me@", "me@box; rm -rf /", ""):
        with pytest.raises(KernelError, match="user@host"):
            parse_host(bad)
    assert release_matches(get_profile("netbsd-10"), "10.0")
    assert release_matches(get_profile("netbsd-1.4.1"), "1.4.1")
    assert not release_matches(get_profile("netbsd-1.4.1"), "1.4.10")


# --- Linux helpers -----------------------------------------------------------------------------------------
def test_abi_comes_from_the_meta_package_dependency():
    p = get_profile("linux-6.1")
    assert linux.abi_from_depends(p, ["linux-image-6.1.0-56-amd64"]) == "6.1.0-56"
    with pytest.raises(KernelError, match="no longer carries a 6.1 kernel"):
        linux.abi_from_depends(p, ["linux-image-6.12.0-1-amd64"])
    pkgs = linux.debian_packages(p, "6.1.0-56")
    assert pkgs.by_role() == {
        "image": "linux-image-6.1.0-56-amd64", "headers": "linux-headers-6.1.0-56-amd64",
        "common": "linux-headers-6.1.0-56-common", "kbuild": "linux-kbuild-6.1", "source": "linux-source-6.1"}


def test_version_mismatch_names_both_versions():
    headers_manifest = {"packages": {"linux-image-6.1.0-56-amd64": "6.1.192-2",
                                     "linux-headers-6.1.0-56-amd64": "6.1.192-2"}}
    source_manifest = {"packages": {"linux-source-6.1": "6.1.193-1"}}
    versions = {**headers_manifest["packages"], **source_manifest["packages"]}
    with pytest.raises(KernelError) as e:
        linux.check_versions(("linux-image-6.1.0-56-amd64", "6.1.192-2"), versions)
    msg = str(e.value)
    assert "linux-source-6.1 is 6.1.193-1, but linux-image-6.1.0-56-amd64 is 6.1.192-2" in msg
    assert "linux-headers" not in msg  # only the one that is off is named
    linux.check_versions(("a", "1"), {"a": "1", "b": "1"})  # agreeing versions pass


def test_partial_extraction_member_list():
    assert linux.SOURCE_MEMBERS == ("Makefile", "drivers/net/ppp/ppp_generic.c", "drivers/net/ppp/ppp_mppe.c",
                                    "drivers/net/ppp/ppp_mppe.h")
    assert linux.HEADER_MEMBERS == ("include/uapi/linux/ppp-comp.h",)
    assert linux.PATCHED_HEADER in linux.HEADER_MEMBERS


def test_partial_extraction_from_a_tarball_writes_only_the_members(tmp_path):
    import tarfile

    src = tmp_path / "linux-source-6.1"
    for rel in (*linux.SOURCE_MEMBERS, "drivers/net/ppp/Makefile", "fs/big.c"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(f"/* {rel} */\n" * 10)
    tarball = tmp_path / "linux-source-6.1.tar.xz"
    with tarfile.open(tarball, "w:xz") as tf:
        tf.add(src, arcname="linux-source-6.1")
    dest = tmp_path / "out"
    got = linux.extract_source_members(tarball, linux.SOURCE_MEMBERS, dest, tmp_path / "log", series="6.1")
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert files == sorted(linux.SOURCE_MEMBERS)
    assert got.bytes_written == sum((src / m).stat().st_size for m in linux.SOURCE_MEMBERS)


def test_partial_extraction_names_a_missing_member(tmp_path):
    import tarfile

    src = tmp_path / "linux-6.1"
    (src / "Makefile").parent.mkdir(parents=True)
    (src / "Makefile").write_text("VERSION = 6\n")
    tarball = tmp_path / "linux.tar.gz"
    with tarfile.open(tarball, "w:gz") as tf:
        tf.add(src, arcname="linux-6.1")
    with pytest.raises(KernelError):
        linux.extract_source_members(tarball, linux.SOURCE_MEMBERS, tmp_path / "out", tmp_path / "log",
                                     series="6.1")


def test_compiler_and_makefile_parsing(tmp_path):
    config = tmp_path / ".config"
    config.write_text('CONFIG_CC_VERSION_TEXT="gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0"\nCONFIG_PPP=m\n')
    text = linux.config_value(config, "CONFIG_CC_VERSION_TEXT")
    assert linux.compiler_program(text) == "gcc-12"
    with pytest.raises(KernelError, match="CONFIG_NOPE is not set"):
        linux.config_value(config, "CONFIG_NOPE")
    top = tmp_path / "Makefile"
    top.write_text("# SPDX\nVERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 192\nEXTRAVERSION =\n")
    assert linux.makefile_version(top) == "6.1.192"


def test_debian_stub_makefile_is_relocated_under_the_unpack_root(tmp_path):
    root = tmp_path / "headers"
    amd64 = root / "usr/src/linux-headers-6.1.0-56-amd64"
    common = root / "usr/src/linux-headers-6.1.0-56-common"
    amd64.mkdir(parents=True)
    common.mkdir(parents=True)
    (amd64 / "Makefile").write_text("include /usr/src/linux-headers-6.1.0-56-common/Makefile\n")
    (common / "Makefile").write_text("VERSION = 6\n")
    assert linux.included_makefile(amd64, root) == common / "Makefile"
    (amd64 / ".kernelvariables").write_text("override ARCH = x86\noverride KERNELRELEASE = 6.1.0-56-amd64\n")
    assert linux.tree_release(amd64) == "6.1.0-56-amd64"
    (common / "Makefile").unlink()
    with pytest.raises(KernelError, match="linux-headers-<abi>-common"):
        linux.included_makefile(amd64, root)


def test_option_length_is_read_from_preprocessed_source(tmp_path):
    assert linux.option_length("int x;\n unsigned char ccp_option[64];\n") == 64
    with pytest.raises(KernelError):
        linux.option_length("nothing here")
    header = tmp_path / "ppp-comp.h"
    header.write_text("#define CCP_MAX_OPTION_LENGTH\t64\n")
    assert linux.header_option_length(header) == 64


def test_kbuild_template_puts_the_patched_include_dir_in_nostdinc_flags(tmp_path):
    target = fake_target(tmp_path)
    text = linux.render_kbuild(target, tmp_path / "tree" / "include", ["ppp_generic", "ppp_mppe"])
    assert f"NOSTDINC_FLAGS += -I{tmp_path / 'tree' / 'include'}\n" in text
    assert "obj-m += ppp_generic.o\nobj-m += ppp_mppe.o\n" in text
    assert "ccflags-y +=" not in text
    cmd = linux.kbuild_command(target, tmp_path / "m", 2)
    assert "KERNELRELEASE=6.1.0-56-amd64" in cmd and "CC=gcc-12" in cmd and "-j2" in cmd
    assert cmd[cmd.index("-f") + 1] == str(target.makefile)


def test_our_mppe_kbuild_links_every_source_of_core_and_glue(tmp_path):
    ours = tmp_path / "kmod" / "mppe"
    for rel in ("core/mppe.c", "core/rc4.c", "core/mppe.h", "linux/mppe_linux.c", "linux/mppe_os.h"):
        (ours / rel).parent.mkdir(parents=True, exist_ok=True)
        (ours / rel).write_text("")
    text = linux.render_mppe_kbuild(fake_target(tmp_path), ours)
    assert "obj-m += ppp_mppe.o\n" in text
    assert "ppp_mppe-y := core/mppe.o core/rc4.o linux/mppe_linux.o\n" in text
    assert "ccflags-y += -I$(src)/linux -I$(src)/core" in text  # the glue's mppe_os.h is the one found
    generic_only = linux.render_kbuild(fake_target(tmp_path), tmp_path / "include", ["ppp_generic"])
    assert "obj-m += ppp_generic.o" in generic_only and "ppp_mppe" not in generic_only


def test_copying_our_mppe_without_the_core_says_what_is_missing(tmp_path):
    src = tmp_path / "kmod" / "mppe"
    (src / "linux").mkdir(parents=True)
    (src / "linux" / "mppe_linux.c").write_text("")
    with pytest.raises(KernelError, match=r"core has no C sources.*\[kmod\] mppe = \"stock\""):
        linux.copy_our_mppe(src, tmp_path / "tree" / "kmod" / "mppe")


def test_our_mppe_digest_covers_core_and_glue_sources():
    digest = linux.our_mppe_digest(Path(__file__).resolve().parent.parent)
    assert {"core/mppe.h", "core/mppe.c", "linux/mppe_linux.c", "linux/mppe_os.h"} <= set(digest)
    assert not any(k.startswith("userspace/") for k in digest)


def fake_target(tmp_path: Path, **changes) -> kmod.KernelTarget:
    values = dict(
        profile="linux-6.1", release="6.1.0-56-amd64", abi="6.1.0-56", package_version="6.1.192-2",
        vmlinuz=tmp_path / "vmlinuz", modules_root=tmp_path / "image", build_dir=tmp_path / "build",
        source_dir=tmp_path / "source", vermagic="6.1.0-56-amd64 SMP preempt mod_unload modversions",
        packages={"linux-image-6.1.0-56-amd64": "6.1.192-2"}, compiler="gcc-12",
        compiler_version="gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0", makefile=tmp_path / "common/Makefile")
    values.update(changes)
    return kmod.KernelTarget(**values)


def test_target_manifest_round_trips_and_gives_plist_vars(tmp_path):
    import json

    t = fake_target(tmp_path)
    data = json.loads(json.dumps(t.manifest()))
    assert kmod.KernelTarget.from_manifest(data) == t
    assert kmod.KernelTarget.from_manifest({**data, "modules": ["ppp_mppe"]}) == t  # an older manifest
    assert t.plist_vars(("ppp_generic",))["KMOD_RELEASE"] == "6.1.0-56-amd64"


def test_offline_without_a_resolved_manifest_is_a_clear_error(layout):
    with pytest.raises(KernelError) as e:
        kmod.resolve_target("linux-6.1", layout, {}, offline=True, log=layout.work / "kmod.log")
    assert "--offline" in str(e.value) and "without --offline" in str(e.value)


def test_offline_uses_the_last_resolved_manifest(layout, tmp_path):
    t = fake_target(tmp_path)
    for p in (t.vmlinuz, t.modules_root, t.build_dir, t.source_dir):
        p.mkdir(parents=True)
    kmod.write_manifest(t, layout)
    assert kmod.manifest_path(layout, "linux-6.1").exists()
    got = kmod.resolve_target("linux-6.1", layout, {}, offline=True, log=layout.work / "kmod.log")
    assert got == t
    t.source_dir.rmdir()
    with pytest.raises(KernelError, match="no longer complete"):
        kmod.resolve_target("linux-6.1", layout, {}, offline=True, log=layout.work / "kmod.log")


def test_missing_compiler_names_the_package(tmp_path):
    from buildtool.errors import HostToolError

    with pytest.raises(HostToolError, match="apt-get install gcc-99"):
        linux.check_compiler(fake_target(tmp_path, compiler="gcc-99"))


def test_no_apt_names_the_packages_and_the_local_options(layout, monkeypatch):
    from buildtool.errors import HostToolError

    def no_apt(self, *a, **k):
        raise HostToolError("Debian's archive needs apt")

    monkeypatch.setattr("buildtool.debian.AptArchive.ensure_updated", no_apt)
    with pytest.raises(KernelError) as e:
        kmod.resolve_target("linux-6.1", layout, {}, offline=False, log=layout.work / "kmod.log")
    msg = str(e.value)
    for needed in ("linux-image-amd64", "linux-headers-<abi>-amd64", "linux-headers-<abi>-common",
                   "linux-kbuild-6.1", "linux-source-6.1", "--kernel-dir", "--kernel-source", "--offline"):
        assert needed in msg


def test_vermagic_mismatch_names_both_strings(tmp_path, monkeypatch):
    monkeypatch.setattr(linux, "modinfo_field", lambda module, name: "6.1.0-55-amd64 SMP mod_unload")
    with pytest.raises(KernelError) as e:
        linux.check_vermagic(tmp_path / "ppp_generic.ko", fake_target(tmp_path))
    assert "'6.1.0-55-amd64 SMP mod_unload'" in str(e.value)
    assert "'6.1.0-56-amd64 SMP preempt mod_unload modversions'" in str(e.value)


def test_a_reader_that_stops_early_gets_no_traceback():
    import subprocess
    import sys

    # `buildtool kernels | head -1`: the reader is gone before buildtool writes (stdout's read end closed)
    proc = subprocess.run(
        ["sh", "-c", f"'{sys.executable}' -m buildtool.cli kernels | (exec 0<&-; true); echo rc=$?"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
