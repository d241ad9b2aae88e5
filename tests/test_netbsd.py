"""NetBSD: ppp_mppe.kmod built from the shared NetBSD-current sys tarball with clang/lld, here and on a
loopback OpenSSH build host, every check, and the negative controls that must make the checks fail.

Needs ../shared/sources/netbsd-sys-10.99.12-x86.tar.xz (sys/) and netbsd-rump-src-2016.tar.xz (its
common/include); each test that needs them skips, naming the tarball, only when it is absent.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import sshserver

from buildtool import kmod
from buildtool.elf import ELF64
from buildtool.errors import KernelError, PhaseError
from buildtool.kernels import get_profile
from buildtool.kernels.netbsd import NetBSDKernel, NetBSDLKMKernel, build_and_check
from buildtool.kernels.netbsd_checks import ModInfo, check_modinfo, read_modinfo
from buildtool.kernels.netbsd_tree import decode_version, inspect_tree, parse_kmod_makefile
from buildtool.layout import Layout
from buildtool.recipe import load_recipe
from buildtool.sourcecache import unpacked

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT.parent / "shared" / "sources"
SYS_TARBALL = SOURCES / "netbsd-sys-10.99.12-x86.tar.xz"
RUMP_TARBALL = SOURCES / "netbsd-rump-src-2016.tar.xz"
MPPE = ROOT / "kmod" / "mppe"
CACHE = Path.home() / ".cache" / "buildtool"
# common/include for the headers, common/lib/libc for the kernel's string functions (symbol derivation)
COMMON_MEMBERS = ["src-netbsd/common/include/*", "src-netbsd/common/lib/libc/*"]


# --- the tree --------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def netbsd_tree(tmp_path_factory) -> tuple[Path, Path]:
    """(sysdir, common/include) unpacked from the shared tarballs into the cache, keyed by sha256."""
    for tarball in (SYS_TARBALL, RUMP_TARBALL):
        if not tarball.is_file():
            pytest.skip(f"{tarball} is absent (NetBSD sources for the module build)")
    log = tmp_path_factory.mktemp("unpack") / "unpack.log"
    sys_root = unpacked(SYS_TARBALL, CACHE, log=log)
    common_root = unpacked(RUMP_TARBALL, CACHE, COMMON_MEMBERS, log=log)
    return sys_root / "netbsd-src" / "sys", common_root / "src-netbsd" / "common" / "include"


def layout_for(tmp_path: Path) -> Layout:
    return Layout(root=ROOT, work=tmp_path / "work", cache=CACHE, packages=tmp_path / "packages")


def target(tmp_path: Path, tree: tuple[Path, Path], **options) -> kmod.KernelTarget:
    sysdir, common = tree
    family = NetBSDKernel(get_profile("netbsd-10"), layout_for(tmp_path),
                          {"sysdir": sysdir, "common": common, **options}, tmp_path / "kmod.log")
    return family.resolve()


def build(tmp_path: Path, tgt: kmod.KernelTarget, glue: Path | None = None):
    return build_and_check(tgt, MPPE, tmp_path / "build", CACHE, tmp_path / "kmod.log", module_sources=glue)


def glue_copy(tmp_path: Path, edit) -> Path:
    """kmod/mppe/netbsd copied and changed by `edit(text) -> text` (applied to ppp_mppe.c)."""
    dest = tmp_path / "glue"
    shutil.copytree(MPPE / "netbsd", dest)
    source = dest / "ppp_mppe.c"
    changed = edit(source.read_text())
    assert changed != source.read_text(), "the negative control did not change the glue"
    source.write_text(changed)
    return dest


# --- without the tarballs --------------------------------------------------------------------------------
def test_version_numbers_decode_as_netbsd_writes_them():
    assert decode_version(1099001200) == "10.99.12"
    assert decode_version(1000000000) == "10.0"
    assert decode_version(903000000) == "9.3"
    assert decode_version(104010000) == "1.4.1"


REGISTRY = "int\tppp_register_compressor(struct compressor *, size_t);\n"


def fake_tree(tmp_path: Path, *, registry: bool = True, module_h: bool = True) -> Path:
    sysdir = tmp_path / "src" / "sys"
    files = {"sys/param.h": "#define\t__NetBSD_Version__\t702000000\t/* NetBSD 7.2 */\n",
             "modules/xldscripts/kmodule": "", "modules/Makefile.inc": "", "net/if_ppp.c": "",
             "net/ppp-comp.h": "",
             "net/if_ppp.h": REGISTRY if registry else ""}
    if module_h:
        files["sys/module.h"] = "#define\tMODULE(class, name, required)\n"
    for rel, text in files.items():
        (sysdir / rel).parent.mkdir(parents=True, exist_ok=True)
        (sysdir / rel).write_text(text)
    (tmp_path / "src" / "common" / "include" / "prop").mkdir(parents=True)
    return sysdir


def test_tree_version_and_common_beside_sys(tmp_path):
    tree = inspect_tree(fake_tree(tmp_path))
    assert tree.release == "7.2" and tree.common == tmp_path / "src" / "common" / "include"


def test_tree_without_the_compressor_registry_is_refused_naming_it(tmp_path):
    with pytest.raises(KernelError, match="declares no ppp_register_compressor.*NetBSD 7"):
        inspect_tree(fake_tree(tmp_path, registry=False))


def test_tree_without_the_module_framework_is_refused_naming_it(tmp_path):
    with pytest.raises(KernelError, match=r"(?s)lacks sys/module.h.*module framework.*netbsd-1.4.1"):
        inspect_tree(fake_tree(tmp_path, module_h=False))


def test_tree_without_param_h_is_not_netbsd(tmp_path):
    with pytest.raises(KernelError, match="param.h"):
        inspect_tree(tmp_path)


def test_our_makefile_is_what_the_cross_build_compiles(tmp_path):
    moddir = tmp_path / "modules" / "ppp_mppe"
    moddir.mkdir(parents=True)
    shutil.copy(MPPE / "netbsd" / "Makefile", moddir)
    (tmp_path / "modules" / "Makefile.inc").write_text("CPPFLAGS+=\t-DDIAGNOSTIC\n")
    variables = {"S": "../../sys", ".CURDIR": "."}
    spec = parse_kmod_makefile(moddir / "Makefile", variables)  # no sys/modules/if_ppp: NetBSD 7
    assert spec.cppflags == ["-DDIAGNOSTIC", "-I.", "-I./core", "-DPPP_MPPE_IF_PPP_BUILTIN"]
    assert spec.paths == ["./core"]
    (tmp_path / "sys" / "modules" / "if_ppp").mkdir(parents=True)
    (tmp_path / "sys" / "modules" / "if_ppp" / "Makefile").write_text("KMOD=\tif_ppp\n")
    assert parse_kmod_makefile(moddir / "Makefile", variables).cppflags == ["-DDIAGNOSTIC", "-I.", "-I./core"]
    assert spec.kmod == "ppp_mppe"
    assert spec.srcs[0] == "ppp_mppe.c"
    core = {p.name for p in (MPPE / "core").glob("*.c")}
    assert set(spec.srcs[1:]) == core, "the Makefile's SRCS must list every core source"


# --- the build and its checks ----------------------------------------------------------------------------
def test_netbsd10_module_builds_and_passes_every_check(tmp_path, netbsd_tree):
    result = build(tmp_path, target(tmp_path, netbsd_tree))
    print(result.figures())
    elf = ELF64(result.kmod)
    assert (elf.type, elf.machine) == (1, 62)
    info = read_modinfo(elf)
    assert (info.name, info.required) == ("ppp_mppe", "if_ppp")
    assert read_modinfo(ELF64(result.if_ppp)).name == "if_ppp"
    report = result.report
    assert not report.missing
    assert {"ppp_register_compressor", "ppp_unregister_compressor"} <= set(report.from_required)
    assert report.from_kernel["kmem_alloc"] == "sys/kern/subr_kmem.c"
    assert report.from_kernel["m_gethdr"] == "sys/kern/uipc_mbuf.c"
    assert set(report.undefined) == set(report.from_required) | set(report.from_kernel)
    # no floating point: the object has no SSE/x87 instruction at all
    disasm = subprocess.run(["llvm-objdump", "-d", "--no-show-raw-insn", str(result.kmod)],
                            capture_output=True, text=True, timeout=60, check=True).stdout
    insns = [ln.split(":", 1)[1].split() for ln in disasm.splitlines() if re.match(r"^\s+[0-9a-f]+:\s", ln)]
    assert len(insns) > 500
    fp = [i for i in insns if i and (re.match(r"f[a-z]", i[0]) or re.search(r"%(xmm|ymm|st)", " ".join(i)))]
    assert not fp


def test_netbsd7_tree_with_if_ppp_in_the_kernel_builds_a_module_requiring_nothing(tmp_path):
    """The 2016 tree of the rump tarball (7.99.34): if_ppp is no module there, so ppp_mppe requires none,
    and ppp_register_compressor comes from the kernel (net/if_ppp.c); common/include is found beside sys/."""
    if not RUMP_TARBALL.is_file():
        pytest.skip(f"{RUMP_TARBALL} is absent (a NetBSD 7 tree)")
    src = unpacked(RUMP_TARBALL, CACHE, log=tmp_path / "unpack.log") / "src-netbsd"
    family = NetBSDKernel(get_profile("netbsd-10"), layout_for(tmp_path), {"sysdir": src / "sys"},
                          tmp_path / "kmod.log")
    tgt = family.resolve()
    assert tgt.release == "7.99.34" and tgt.packages["common"] == str(src / "common" / "include")
    result = build(tmp_path, tgt)
    print(result.figures())
    assert result.if_ppp is None
    assert read_modinfo(ELF64(result.kmod)) == ModInfo("ppp_mppe", None)
    assert result.report.from_kernel["ppp_register_compressor"] == "sys/net/if_ppp.c"


def tree_state(root: Path) -> set[tuple[str, int, int]]:
    """Every entry under `root` with its modification time and size (what a write would change)."""
    state = set()
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            st = os.lstat(os.path.join(folder, name))
            state.add((os.path.join(folder, name), st.st_mtime_ns, st.st_size))
    return state


def test_kmod_phase_installs_the_module_into_the_stage(tmp_path, netbsd_tree, capsys):
    """The path `buildtool build --kernel netbsd-10` takes after the userland: resolve, build, install;
    it says which NetBSD version it found and never writes into the user's sysdir."""
    sysdir, common = netbsd_tree
    before = tree_state(sysdir)
    lay = layout_for(tmp_path)
    tgt = kmod.resolve_target("netbsd-10", lay, {"sysdir": sysdir, "common": common}, offline=False,
                              log=tmp_path / "kmod.log")
    assert tgt.release == "10.99.12"
    from buildtool.recipe import load_all

    recipe = load_all(ROOT)["ppp-mppe"]
    out = kmod.build_modules(tgt, recipe, [], None, lay, jobs=2, log_dir=tmp_path)
    assert out == [lay.stage_prefix("ppp-mppe") / "lib/modules/10.99.12/ppp_mppe/ppp_mppe.kmod"]
    check_modinfo(out[0], "ppp_mppe", "if_ppp")
    assert f"NetBSD 10.99.12 (sysdir {sysdir}): ppp_mppe.kmod: built locally" in capsys.readouterr().out
    assert tree_state(sysdir) == before, "the build changed files under the user's sysdir"


def overlay_tree(tmp_path: Path, sysdir: Path, rel: str, edit) -> Path:
    """A sys tree of links to `sysdir` in which `rel` is an edited copy (the real tree stays untouched)."""
    other = tmp_path / "src" / "sys"
    src, dst = sysdir, other
    for part in Path(rel).parts:
        dst.mkdir(parents=True)
        for entry in src.iterdir():
            if entry.name != part:
                (dst / entry.name).symlink_to(entry)
        src, dst = src / part, dst / part
    text = src.read_text()
    assert edit(text) != text, "the negative control did not change the header"
    dst.write_text(edit(text))
    return other


# --- negative controls: each must make a check fail -----------------------------------------------------
def test_control_glue_calling_a_nonexistent_kernel_function_fails_the_symbol_check(tmp_path, netbsd_tree):
    glue = glue_copy(tmp_path, lambda s: s + (
        "\nvoid ppp_mppe_no_such_kernel_function(void);\nvoid ppp_mppe_control(void);\n"
        "void\nppp_mppe_control(void)\n{\n\n\tppp_mppe_no_such_kernel_function();\n}\n"))
    with pytest.raises(KernelError) as e:
        build(tmp_path, target(tmp_path, netbsd_tree), glue)
    msg = str(e.value)
    assert "ppp_mppe_no_such_kernel_function: no source in the tree defines it" in msg
    assert "kmem_alloc" not in msg  # only the bad symbol is named


def test_control_wrong_module_name_fails_the_modinfo_check(tmp_path, netbsd_tree):
    glue = glue_copy(tmp_path, lambda s: s.replace("MODULE(MODULE_CLASS_MISC, ppp_mppe,",
                                                   "MODULE(MODULE_CLASS_MISC, ppp_mppf,")
                     .replace("ppp_mppe_modcmd(", "ppp_mppf_modcmd("))
    with pytest.raises(KernelError, match="modinfo names the module 'ppp_mppf', expected 'ppp_mppe'"):
        build(tmp_path, target(tmp_path, netbsd_tree), glue)


def test_control_struct_compressor_of_another_size_fails_the_compile_time_assert(tmp_path, netbsd_tree):
    """A tree whose struct compressor has one more member (a copy of net/ppp-comp.h over the real tree's
    files, linked): the CTASSERT on its size must stop the build."""
    sysdir, common = netbsd_tree
    other = overlay_tree(tmp_path, sysdir, "net/ppp-comp.h", lambda h: h.replace(
        "\tunsigned int\t\tcomp_refcnt;\n", "\tunsigned int\t\tcomp_refcnt;\n\tvoid\t*comp_spare;\n"))
    with pytest.raises(PhaseError) as e:
        build(tmp_path, target(tmp_path, (other, common)))
    assert "ppp_mppe.c" in e.value.tail and "sizeof(struct compressor) == PM_FN(16)" in e.value.tail


def test_control_option_length_too_small_fails_the_compile_time_assert(tmp_path, netbsd_tree):
    """The 1.4-era limit of 32 is enough for our 22 bytes; a tree with 16 must be refused at compile time."""
    sysdir, common = netbsd_tree
    other = overlay_tree(tmp_path, sysdir, "net/ppp-comp.h", lambda h: h.replace(
        "CCP_MAX_OPTION_LENGTH\t64", "CCP_MAX_OPTION_LENGTH\t16"))
    with pytest.raises(PhaseError) as e:
        build(tmp_path, target(tmp_path, (other, common)))
    assert "CCP_MAX_OPTION_LENGTH >= MPPE_OPTLEN" in e.value.tail


# --- over SSH --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ssh_host(tmp_path_factory):
    why = sshserver.missing()
    if why:
        pytest.fail(why)  # setup installs openssh-server: a missing one is a broken machine, not a skip
    server = sshserver.start(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


def test_netbsd10_module_builds_on_an_ssh_build_host(tmp_path, netbsd_tree, ssh_host):
    tgt = target(tmp_path, netbsd_tree, host=ssh_host.host, ssh_identity=ssh_host.identity)
    assert tgt.packages["host_kind"] == "cross"
    result = build(tmp_path, tgt)
    print(result.figures())
    assert result.where.startswith(f"on {ssh_host.host}")
    check_modinfo(result.kmod, "ppp_mppe", "if_ppp")
    assert not result.report.missing
    log = (tmp_path / "kmod.log").read_text()
    assert f"[{ssh_host.user}@127.0.0.1:{ssh_host.port}] (cd /tmp/buildtool-netbsd." in log
    assert "Accepted publickey" in ssh_host.log.read_text()


def test_netbsd141_refuses_a_host_that_is_not_netbsd_141(tmp_path, ssh_host):
    family = NetBSDLKMKernel(get_profile("netbsd-1.4.1"), layout_for(tmp_path),
                             {"sysdir": "/usr/src/sys", "host": ssh_host.host,
                              "ssh_identity": ssh_host.identity},
                             tmp_path / "kmod.log")
    with pytest.raises(KernelError, match=r"runs Linux .*builds only on NetBSD 1.4.1"):
        family.resolve()


def test_wrong_key_is_a_clear_error(tmp_path, netbsd_tree, ssh_host):
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True,
                   timeout=30, stdin=subprocess.DEVNULL)
    where = f"{ssh_host.user}@127.0.0.1:{ssh_host.port}"
    with pytest.raises(PhaseError, match=rf"could not run over SSH.*{where}"):
        target(tmp_path, netbsd_tree, host=ssh_host.host, ssh_identity=stranger)


# --- netbsd-1.4.1: what can be checked without a 1.4.1 host ---------------------------------------------
MODEL = ROOT / "tests" / "netbsd14-model" / "include"
C89 = ["gcc", "-std=c89", "-pedantic", "-Werror", "-Wall", "-Wextra", "-ffreestanding", "-nostdinc",
       "-D_KERNEL", "-D_LKM", "-I", str(MODEL)]


def c89_compile(tmp_path: Path, glue: Path) -> list[subprocess.CompletedProcess]:
    sources = [glue / "mppe_lkm.c", *sorted((MPPE / "core").glob("*.c"))]
    return [subprocess.run([*C89, "-I", str(glue), "-I", str(MPPE / "core"), "-c", str(src), "-o",
                            str(tmp_path / f"{src.stem}.o")], capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL) for src in sources]


def test_lkm_glue_and_core_are_c89_against_the_141_model(tmp_path):
    results = c89_compile(tmp_path, MPPE / "netbsd14")
    assert [r.stderr for r in results if r.returncode] == []
    assert len(results) == 1 + len(list((MPPE / "core").glob("*.c")))


def test_control_a_c99_construct_in_the_lkm_glue_fails_the_c89_check(tmp_path):
    glue = tmp_path / "glue"
    shutil.copytree(MPPE / "netbsd14", glue)
    src = glue / "mppe_lkm.c"
    src.write_text(src.read_text().replace("\tint i;\n\n\t(void)lkmtp;\n\t(void)cmd;\n\tfor (i = 0;",
                                           "\t(void)lkmtp;\n\t(void)cmd;\n\tfor (int i = 0;", 1))
    results = c89_compile(tmp_path, glue)
    assert results[0].returncode != 0
    assert "only allowed in C99" in results[0].stderr


def test_profile_patch_raises_the_option_length_and_is_not_applied_twice(tmp_path):
    net = tmp_path / "sys" / "net"
    net.mkdir(parents=True)
    shutil.copy(MODEL / "net" / "ppp-comp.h", net / "ppp-comp.h")
    patch = MPPE / "netbsd14" / "patch-net_ppp-comp.h"
    cmd = ["patch", "-p0", "-l", "-N", "-b", "-d", str(tmp_path / "sys"), "-i", str(patch)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    text = (net / "ppp-comp.h").read_text()
    assert "#define CCP_MAX_OPTION_LENGTH\t64" in text and "\t32" not in text
    assert "CCP_MAX_OPTION_LENGTH\t32" in (net / "ppp-comp.h.orig").read_text()
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert again.returncode != 0 and (net / "ppp-comp.h").read_text() == text


def test_lkm_bundle_holds_the_glue_the_makefile_and_the_core(tmp_path):
    import tarfile

    from buildtool.kernels.netbsd_lkm import PATCH, pack_lkm

    pack_lkm(MPPE, tmp_path / "lkm.tar.gz")
    with tarfile.open(tmp_path / "lkm.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"lkm/Makefile", "lkm/mppe_lkm.c", "lkm/mppe_os.h", f"lkm/{PATCH}", "lkm/core/mppe.h"} <= names
    makefile = (MPPE / "netbsd14" / "Makefile").read_text()
    assert "SRCS=\tmppe_lkm.c " + " ".join(sorted(p.name for p in (MPPE / "core").glob("*.c"))) in makefile


# --- packaging -------------------------------------------------------------------------------------------
def test_build_info_says_netbsd_for_the_package_with_the_module_only():
    from buildtool.package import default_build_info
    from buildtool.recipe import load_all

    recipes = load_all(ROOT)
    ppp = default_build_info(recipes["ppp-mppe"], "netbsd-10", environ={})
    assert (ppp["OPSYS"], ppp["OS_VERSION"], ppp["KERNEL_PROFILE"]) == ("NetBSD", "10", "netbsd-10")
    poptop = default_build_info(recipes["poptop"], "netbsd-10", environ={})
    assert poptop["OPSYS"] == "Linux"  # userland only: the system it was built for
    assert default_build_info(recipes["ppp-mppe"], "linux-6.1", environ={})["OS_VERSION"] == "6.1"


def test_netbsd_plist_lists_the_installed_module(tmp_path):
    from buildtool.plist import plist_sources, read_plists

    tgt = kmod.KernelTarget(profile="netbsd-10", release="10.99.12", abi="", package_version="",
                            vmlinuz=Path("/dev/null"), modules_root=Path("/dev/null"), build_dir=tmp_path,
                            source_dir=tmp_path, vermagic="")
    stage = tmp_path / "stage"
    recipe = load_recipe(ROOT / "ppp-mppe")
    installed = kmod.install_dir(tgt, recipe, stage, layout_for(tmp_path)) / "ppp_mppe.kmod"
    plist_vars = kmod.plist_vars(tgt, recipe)
    paths = read_plists(plist_sources(ROOT / "ppp-mppe", "NetBSD"), plist_vars, {"kmod": True})
    assert str(installed.relative_to(stage)) in paths
    assert not [p for p in paths if p.endswith(".ko")]


def test_kernel_symbol_derivation_finds_what_the_trees_own_if_ppp_needs(tmp_path, netbsd_tree):
    """The method, tried on a module NetBSD itself ships: every symbol if_ppp.kmod leaves undefined is
    derived from the tree's kernel sources, except the known limits: assembler files that need assym.h
    values, and slcompress's functions, which if_ppp takes from the module it requires."""
    from buildtool.kernels.netbsd_symbols import SymbolDeriver

    result = build(tmp_path, target(tmp_path, netbsd_tree))
    tree = inspect_tree(*netbsd_tree)
    derived = SymbolDeriver(tree, tmp_path / "symbols", CACHE, tmp_path / "kmod.log").derive(
        ELF64(result.if_ppp).undefined())
    print(f"if_ppp.kmod: {len(derived.defined)} of {len(derived.defined) + len(derived.tried)} undefined "
          f"symbols derived from {len(derived.objects)} kernel sources")
    assert set(derived.tried) == {"mutex_enter", "mutex_exit", "x86_curlwp", "sl_compress_init",
                                  "sl_compress_setup", "sl_compress_tcp", "sl_uncompress_tcp",
                                  "sl_uncompress_tcp_core"}
    assert derived.defined["if_attach"] == "sys/net/if.c" and derived.defined["ttwakeup"] == "sys/kern/tty.c"
