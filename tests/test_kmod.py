"""The kmod phase for real: resolve Debian's 6.1 kernel through apt, unpack the few members needed, build
ppp_generic.ko and ppp_mppe.ko with kbuild, and check what was compiled. Uses the real download cache
(~/.cache/buildtool/kernel/, about 224 MB of .debs the first time); the work tree is a temporary directory."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from buildtool import kmod
from buildtool import patch as patch_phase
from buildtool.distinfo import read_distinfo
from buildtool.kernels import linux
from buildtool.layout import Layout, find_root
from buildtool.recipe import load_recipe
from buildtool.state import phase_key

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> Layout:
    return Layout.default(root=find_root(Path(__file__).parent), work=tmp_path_factory.mktemp("work"))


@pytest.fixture(scope="module")
def target(layout) -> kmod.KernelTarget:
    return kmod.resolve_target("linux-6.1", layout, {}, offline=False, log=layout.work / "logs" / "kmod.log")


@pytest.fixture(scope="module")
def recipe(layout):
    return load_recipe(layout.root / "ppp-mppe")


@pytest.fixture(scope="module")
def built(layout, target, recipe) -> list[Path]:
    return build(layout, target, recipe)


def build(layout, target, recipe, **variant) -> list[Path]:
    return kmod.build_modules(target, recipe, kernel_patches(layout, recipe),
                              read_distinfo(recipe.distinfo_path), layout, jobs=2,
                              log_dir=layout.work / "logs", **variant)


def kernel_patches(layout, recipe) -> list[Path]:
    return patch_phase.split_series(recipe.patch_dir(layout.root), recipe.kernel_patches)[1]


def test_resolve_finds_one_consistent_abi(layout, target):
    assert target.release == f"{target.abi}-amd64" and target.abi.startswith("6.1.")
    assert set(target.packages) >= {f"linux-image-{target.release}", f"linux-headers-{target.release}",
                                    f"linux-headers-{target.abi}-common", "linux-kbuild-6.1",
                                    "linux-source-6.1", "linux-image-amd64"}
    assert {target.packages[f"linux-image-{target.release}"], target.packages["linux-source-6.1"],
            target.packages[f"linux-headers-{target.release}"]} == {target.package_version}
    assert target.vmlinuz.is_file()
    assert (target.modules_root / "lib/modules" / target.release / "kernel").is_dir()
    written = json.loads(kmod.manifest_path(layout, "linux-6.1").read_text())
    assert written == json.loads(json.dumps(target.manifest()))
    assert target.compiler == "gcc-12"


def test_resolve_again_gives_the_same_key_and_offline_agrees(layout, target):
    log = layout.work / "logs" / "kmod.log"
    again = kmod.resolve_target("linux-6.1", layout, {}, offline=False, log=log)
    assert again.manifest() == target.manifest()
    offline = kmod.resolve_target("linux-6.1", layout, {}, offline=True, log=log)
    assert offline == target


def test_partial_source_tree_holds_only_the_listed_members(target):
    files = sorted(str(p.relative_to(target.source_dir)) for p in target.source_dir.rglob("*") if p.is_file())
    assert files == sorted(linux.SOURCE_MEMBERS + linux.HEADER_MEMBERS)
    assert linux.makefile_version(target.source_dir / "Makefile") == target.package_version.split("-")[0]
    assert linux.header_option_length(target.source_dir / linux.PATCHED_HEADER) == 32  # pristine


def test_modules_are_built_into_the_stage_with_the_kernels_vermagic(layout, target, built):
    extra = layout.stage_prefix("ppp-mppe") / "lib/modules" / target.release / "extra"
    assert built == [extra / "ppp_generic.ko", extra / "ppp_mppe.ko"]
    stock = target.modules_root / "lib/modules" / target.release / linux.STOCK_MODULE
    stock_magic = linux.modinfo_field(stock, "vermagic")
    for ko in built:
        assert linux.modinfo_field(ko, "vermagic") == stock_magic == target.vermagic


def test_our_ppp_mppe_is_built_from_kmod_mppe_and_says_so(layout, target, built):
    ours = built[1]
    assert linux.modinfo_field(ours, "implementation").startswith("buildtool kmod/mppe")
    assert linux.modinfo_field(ours, "alias") == "ppp-compress-18"
    assert linux.modinfo_field(ours, "license") == "Dual BSD/GPL"
    assert linux.modinfo_field(ours, "depends") == "ppp_generic"
    symbols = subprocess.run(["nm", str(ours)], capture_output=True, text=True, check=True).stdout
    assert " mppe_linux_comp_alloc\n" in symbols  # the marker the VM scenarios look for in kallsyms
    assert " mppe_decompress\n" in symbols  # the portable core is linked in
    tree = layout.work / "ppp-mppe" / "kmod" / "series" / "tree"
    core = "kmod/mppe/core/mppe.c"
    assert (tree / core).read_bytes() == (layout.root / core).read_bytes()
    stock = target.modules_root / "lib/modules" / target.release / "kernel/drivers/net/ppp/ppp_mppe.ko"
    assert linux.modinfo_field(stock, "implementation") == ""  # control: Debian's has no such field


def test_the_stock_switch_builds_the_kernels_own_ppp_mppe(layout, target, recipe, built, tmp_path):
    out = build(layout, target, recipe, dest=tmp_path / "stock", mppe="stock")
    assert [p.name for p in out] == ["ppp_generic.ko", "ppp_mppe.ko"]
    assert linux.modinfo_field(out[1], "implementation") == ""
    # the kernel's ppp_mppe.c unchanged: the same srcversion as Debian's own module, unlike ours
    stock = target.modules_root / "lib/modules" / target.release / "kernel/drivers/net/ppp/ppp_mppe.ko"
    assert linux.modinfo_field(out[1], "srcversion") == linux.modinfo_field(stock, "srcversion")
    assert linux.modinfo_field(built[1], "srcversion") != linux.modinfo_field(stock, "srcversion")


def test_the_patched_header_is_the_one_compiled(layout, target, built):
    moddir = layout.work / "ppp-mppe" / "kmod" / "series" / "tree" / linux.MODULE_DIR
    tree = moddir.parents[2]
    assert linux.header_option_length(tree / linux.PATCHED_HEADER) == 64
    assert linux.option_length((moddir / "ppp_generic.i").read_text()) == 64


def test_without_the_nostdinc_override_the_kernels_header_wins(layout, target, built, tmp_path):
    """The control for the test above: the same tree with the override removed compiles 32, so the check can
    tell the two apart (and ccflags-y would not have been enough)."""
    moddir = layout.work / "ppp-mppe" / "kmod" / "series" / "tree" / linux.MODULE_DIR
    kbuild = (moddir / "Kbuild").read_text()
    copy = tmp_path / "ppp"
    copy.mkdir()
    for name in ("ppp_generic.c", "ppp_mppe.c", "ppp_mppe.h"):
        (copy / name).write_text((moddir / name).read_text())
    include = moddir.parents[2] / "include"
    (copy / "Kbuild").write_text(kbuild.replace("NOSTDINC_FLAGS +=", "ccflags-y +="))
    subprocess.run(linux.kbuild_command(target, copy, 2) + ["ppp_generic.i"], check=True, capture_output=True)
    assert f"ccflags-y += -I{include}" in (copy / "Kbuild").read_text()
    assert linux.option_length((copy / "ppp_generic.i").read_text()) == 32


def test_a_variant_with_extra_patches_goes_to_dest_and_keeps_the_stage(layout, target, recipe, built,
                                                                        tmp_path):
    revert = tmp_path / "patch-zz"
    revert.write_text("$NetBSD$\n\nTest-only negative control: put the limit back to 32.\n\n"
                      "--- include/uapi/linux/ppp-comp.h.orig\n+++ include/uapi/linux/ppp-comp.h\n"
                      "@@ -30 +30 @@\n"
                      "-#define CCP_MAX_OPTION_LENGTH\t64\n+#define CCP_MAX_OPTION_LENGTH\t32\n")
    stage_before = {p: p.read_bytes() for p in built}
    dest = tmp_path / "variant"
    out = build(layout, target, recipe, extra_patches=[revert], dest=dest)
    assert out == [dest / "ppp_generic.ko", dest / "ppp_mppe.ko"]
    variants = [d for d in (layout.work / "ppp-mppe" / "kmod").iterdir() if d.name.startswith("variant-")]
    assert len(variants) == 1
    moddir = variants[0] / "tree" / linux.MODULE_DIR
    assert linux.option_length((moddir / "ppp_generic.i").read_text()) == 32
    assert {p: p.read_bytes() for p in built} == stage_before


def test_rebuild_is_reproducible_and_keyed_by_the_patches(layout, target, recipe, built):
    before = {p.name: p.read_bytes() for p in built}
    again = build(layout, target, recipe)
    assert {p.name: p.read_bytes() for p in again} == before
    info = read_distinfo(recipe.distinfo_path)
    patches = kernel_patches(layout, recipe)
    key = phase_key("b", target=target.manifest(), patches={p.name: info.patch_sum(p.name) for p in patches})
    assert key == phase_key("b", target=target.manifest(),
                            patches={p.name: info.patch_sum(p.name) for p in patches})
    assert key != phase_key("b", target=target.manifest(), patches={})
    other = dict(target.manifest(), package_version="6.1.193-1")
    assert key != phase_key("b", target=other, patches={p.name: info.patch_sum(p.name) for p in patches})
