"""The exported net/ppp-mppe and net/poptop in a real pkgsrc tree (pkgsrc-2014Q1, bootstrapped on this host).

The tree is unpacked from ../shared/sources/pkgsrc-2014Q1.tar.xz and bootstrapped once into
~/.cache/buildtool/pkgsrc/<sha256 prefix>/ (buildtool.pkgsrc_tree; 3-8 min on 2 cores, cached afterwards).
With the tree locked, the module fixture copies the repository's pkgsrc/net/* and our distfiles in and runs
`bmake package` as a user would (PKG_DEVELOPER=yes: a PLIST mismatch fails the build): ppp-mppe with the
default options, poptop (which builds and installs ppp-mppe as its dependency), then ppp-mppe again with
the kernel-module option against the cached Debian kernel of the VM. Work, packages and distfiles go to the
test's temporary directory (WRKOBJDIR, PACKAGES, DISTDIR); what poptop's dependency installed into the tree's
prefix is removed at the end. Every pkgsrc command runs with stdin from /dev/null and under a timeout.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from buildtool import kmod
from buildtool.layout import PREFIX, default_cache
from buildtool.package import PKGTOOLS_VERSION
from buildtool.pkgsrc_tree import (
    PkgsrcTree,
    bmake,
    ensure_bootstrapped,
    ensure_pkglint,
    show_var,
    tool,
    tree_lock,
)
from buildtool.recipe import load_all

REPO = Path(__file__).resolve().parent.parent
TARBALL = REPO.parent / "shared" / "sources" / "pkgsrc-2014Q1.tar.xz"
PKGS = ("ppp-mppe", "poptop")
KMOD_OPTION = "PKG_OPTIONS.ppp-mppe=ppp-mppe-kmod"

pytestmark = pytest.mark.integration


@dataclass
class Built:
    """What the module fixture built: package files and the figures the report quotes."""

    tree: PkgsrcTree
    tmp: Path
    packages: Path  # PACKAGES of the default-options builds (All/ppp-mppe-*.tgz, All/poptop-*.tgz)
    kmod_packages: Path  # PACKAGES of the kmod-on ppp-mppe build
    kmod_wrkdir: Path  # that build's WRKDIR (the .ko files before packaging)
    target: kmod.KernelTarget
    settings: list[str]
    lines: dict[str, str] = field(default_factory=dict)  # build -> "bmake package ... in Ns, size ..."

    def package(self, name: str, kmod_on: bool = False) -> Path:
        where = (self.kmod_packages if kmod_on else self.packages) / "All"
        found = sorted(where.glob(f"{name}-[0-9]*.tgz"))
        assert len(found) == 1, f"{name}: expected one package, found {found}"
        return found[0]


def say(text: str) -> None:
    print(f"pkgsrc: {text}", file=sys.stderr, flush=True)


@pytest.fixture(scope="module")
def tree() -> PkgsrcTree:
    if not TARBALL.is_file():
        pytest.skip(f"{TARBALL.name} is not in {TARBALL.parent} (the real-pkgsrc tests need that tarball)")
    t0 = time.monotonic()
    t = ensure_bootstrapped(TARBALL, default_cache())
    say(f"bootstrapped tree {t.root} ready in {time.monotonic() - t0:.1f}s")
    return t


def _remove_installed(tree: PkgsrcTree) -> None:
    """Our packages out of the tree's own prefix (poptop's dependency install; an interrupted run)."""
    for name in reversed(PKGS):
        if tool(tree, "pkg_info", "-e", name).returncode == 0:
            done = tool(tree, "pkg_delete", "-f", name)
            assert done.returncode == 0, done.stdout + done.stderr


def _timed_package(built: Built, pkgdir: Path, key: str, *settings: str) -> None:
    t0 = time.monotonic()
    bmake(built.tree, pkgdir, "package", *built.settings, *settings, log=built.tmp / f"{key}.log")
    seconds = time.monotonic() - t0
    pkg = built.package(pkgdir.name, kmod_on=any("PACKAGES=" in s for s in settings))
    built.lines[key] = (f"bmake package of {pkgdir.relative_to(built.tree.pkgsrc)} ({key}): {seconds:.0f}s, "
                        f"{pkg.name} {pkg.stat().st_size} bytes")
    say(built.lines[key])


@pytest.fixture(scope="module")
def built(tree, built_layout, tmp_path_factory) -> Built:
    """Both packages built by pkgsrc (default options), and ppp-mppe with the kernel-module option."""
    tmp = tmp_path_factory.mktemp("pkgsrc")
    distdir = tmp / "distfiles"
    distdir.mkdir()
    recipes = load_all(REPO)
    for name in PKGS:
        for d in recipes[name].distfiles:
            shutil.copy(built_layout.distdir / d.name, distdir / d.name)
    target = kmod.read_cached_manifest(built_layout, "linux-6.1")  # the VM's kernel, resolved by the build
    settings = [f"WRKOBJDIR={tmp / 'work'}", f"PACKAGES={tmp / 'packages'}", f"DISTDIR={distdir}"]
    with tree_lock(tree):
        _remove_installed(tree)
        for name in PKGS:
            dest = tree.pkgsrc / "net" / name
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(REPO / "pkgsrc" / "net" / name, dest)
        b = Built(tree=tree, tmp=tmp, packages=tmp / "packages", kmod_packages=tmp / "packages-kmod",
                  kmod_wrkdir=tmp / "work-kmod" / "net" / "ppp-mppe" / "work", target=target,
                  settings=settings)
        try:
            _timed_package(b, tree.pkgsrc / "net" / "ppp-mppe", "ppp-mppe, default options")
            _timed_package(b, tree.pkgsrc / "net" / "poptop", "poptop, default options")
            _timed_package(b, tree.pkgsrc / "net" / "ppp-mppe", "ppp-mppe, ppp-mppe-kmod", *kmod_settings(b),
                           f"WRKOBJDIR={tmp / 'work-kmod'}", f"PACKAGES={b.kmod_packages}")
            yield b
        finally:
            _remove_installed(tree)


def kmod_settings(b: Built) -> list[str]:
    """The package's documented kernel-module variables, pointed at the VM kernel in the cache."""
    t = b.target
    settings = [KMOD_OPTION, f"SYSDIR={t.source_dir}", f"KMOD_KVER={t.release}",
                f"KMOD_BUILDDIR={t.build_dir}"]
    if t.makefile is not None:  # Debian's headers Makefile includes the common one by an absolute path
        settings.append(f"KMOD_MAKE_ARGS=-f {t.makefile}")
    compiler = shutil.which(t.compiler)
    if compiler:
        settings.append(f"KMOD_CC={compiler}")
    return settings


def pkg_info_x(tree: PkgsrcTree, pkg: Path) -> dict[str, str]:
    done = tool(tree, "pkg_info", "-X", str(pkg))
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


def file_list(tree: PkgsrcTree, pkg: Path) -> list[str]:
    """`pkg_info -L` of a package file, relative to its prefix."""
    done = tool(tree, "pkg_info", "-qL", str(pkg))
    assert done.returncode == 0, done.stderr
    prefix = next(line[5:] for line in tool(tree, "pkg_info", "-qf", str(pkg)).stdout.splitlines()
                  if line.startswith("@cwd "))
    return sorted(str(Path(p).relative_to(prefix)) for p in done.stdout.split())


# --- the builds -----------------------------------------------------------------------------------------

def test_both_packages_build_with_pkg_developer(built):
    for line in built.lines.values():
        print(line)
    for name in PKGS:
        info = pkg_info_x(built.tree, built.package(name))
        print(f"pkg_info -X {built.package(name).name}: OPSYS={info['OPSYS']} PKGPATH={info['PKGPATH']}")
        assert info["OPSYS"] == "Linux"
        assert info["PKGPATH"] == f"net/{name}"
        assert info["PKGTOOLS_VERSION"] == PKGTOOLS_VERSION
    # PKG_DEVELOPER=yes was in force (else pkgsrc drops unlisted files silently instead of failing)
    assert show_var(built.tree, built.tree.pkgsrc / "net" / "ppp-mppe", "PKG_DEVELOPER") == "yes"


def test_ppp_mppe_installs_under_prefix_not_bare_destdir(built):
    """The DESTDIR-as-prefix bug: every file of the package lies under the prefix (pkg_info -L)."""
    files = file_list(built.tree, built.package("ppp-mppe"))
    assert "sbin/pppd" in files and "include/pppd/pppd.h" in files
    assert not any(f.startswith("..") for f in files)


def test_default_options_leave_the_kernel_module_out(built):
    pkgdir = built.tree.pkgsrc / "net" / "ppp-mppe"
    assert show_var(built.tree, pkgdir, "PKG_OPTIONS") == ""
    assert not any(f.startswith("lib/modules/") for f in file_list(built.tree, built.package("ppp-mppe")))


def test_kmod_option_without_kernel_sources_fails_clearly(built):
    pkgdir = built.tree.pkgsrc / "net" / "ppp-mppe"
    reason = show_var(built.tree, pkgdir, "PKG_FAIL_REASON", KMOD_OPTION, "SYSDIR=/nonexistent")
    assert "/nonexistent/drivers/net/ppp/ppp_generic.c is missing" in reason
    assert "PKG_OPTIONS.ppp-mppe=-ppp-mppe-kmod" in reason


def test_kmod_build_has_the_vm_kernels_vermagic(built):
    release = built.target.release
    files = file_list(built.tree, built.package("ppp-mppe", kmod_on=True))
    extra = f"lib/modules/{release}/extra"
    assert f"{extra}/ppp_generic.ko" in files and f"{extra}/ppp_mppe.ko" in files
    kmod = built.kmod_wrkdir / "kmod"
    for path in (kmod / "drivers" / "net" / "ppp" / "ppp_generic.ko", kmod / "mppe-linux" / "ppp_mppe.ko"):
        vermagic = modinfo(path, "vermagic")
        print(f"{path.name}: vermagic {vermagic}")
        assert vermagic == built.target.vermagic, (path.name, vermagic, built.target.vermagic)
    # pkgsrc builds our ppp_mppe (kmod/mppe), as the recipe does, not the kernel's own ppp_mppe.c
    assert modinfo(kmod / "mppe-linux" / "ppp_mppe.ko", "implementation").startswith("buildtool")


def modinfo(path, field: str) -> str:
    return subprocess.run(["modinfo", "-F", field, str(path)], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL).stdout.strip()


def test_file_lists_match_our_own_packages(built, built_layout):
    """pkgsrc's ppp-mppe (with the modules, for the same kernel) and poptop hold exactly our packages'
    files."""
    recipes = load_all(REPO)
    for name, kmod_on in (("ppp-mppe", True), ("poptop", False)):
        ours = built_layout.packages_all / f"{recipes[name].pkgname}.tgz"
        assert file_list(built.tree, built.package(name, kmod_on)) == file_list(built.tree, ours), name


# --- installing with the tree's pkg_install ------------------------------------------------------------

def install_check_delete(tree: PkgsrcTree, tmp: Path, packages: list[Path], names: list[str]) -> dict:
    """pkg_add -p into a private prefix and PKG_DBDIR, pkg_admin check, pkg_delete; every step silent."""
    dbdir, prefix = tmp / "pkgdb", tmp / "prefix"
    for d in (dbdir, prefix):
        if d.exists():
            shutil.rmtree(d)
    added = tool(tree, "pkg_add", "-K", str(dbdir), "-p", str(prefix), *map(str, packages))
    assert added.returncode == 0, added.stdout + added.stderr
    assert "warning" not in (added.stdout + added.stderr).lower(), added.stdout + added.stderr
    listed = tool(tree, "pkg_info", "-K", str(dbdir), "-e", "*").stdout
    check = tool(tree, "pkg_admin", "-K", str(dbdir), "check")
    assert check.returncode == 0, check.stdout + check.stderr
    # pkg_admin check prints a dot per package, then one line per problem (e.g. "<file> fails MD5 checksum")
    verdicts = [line.lstrip(".") for line in check.stdout.splitlines() if line.lstrip(".")]
    ok = re.compile(r"Checked \d+ files from \d+ packages\.|Done\.")
    assert all(ok.fullmatch(v) for v in verdicts), check.stdout
    assert check.stderr == "", check.stderr
    result = {"check": check.stdout.strip(), "listed": listed, "prefix": prefix}
    result["files"] = sorted(str(p.relative_to(prefix)) for p in prefix.rglob("*") if p.is_file()
                             or p.is_symlink())
    result["versions"] = {prog: version_of(prefix / "sbin" / prog) for prog in ("pppd", "pptpd")}
    deleted = tool(tree, "pkg_delete", "-K", str(dbdir), *names)
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    assert "warning" not in (deleted.stdout + deleted.stderr).lower(), deleted.stdout + deleted.stderr
    left = [p for p in prefix.rglob("*") if p.is_file() or p.is_symlink()]
    assert left == [], f"pkg_delete left files behind: {left}"
    assert tool(tree, "pkg_info", "-K", str(dbdir), "-e", "*").stdout.strip() == ""
    return result


def version_of(program: Path) -> str | None:
    """`program --version`, stdout and stderr together (None when the program is not installed)."""
    if not program.exists():
        return None
    done = subprocess.run([str(program), "--version"], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    return (done.stdout + done.stderr).strip()


def test_pkgsrc_packages_add_run_and_delete(built):
    """poptop's package pulls in ppp-mppe from the same directory; both programs run from the prefix."""
    result = install_check_delete(built.tree, built.tmp / "add", [built.package("poptop")],
                                  ["poptop", "ppp-mppe"])
    pppd, pptpd = result["versions"]["pppd"], result["versions"]["pptpd"]
    print(f"pkg_admin check: {result['check']}\npppd --version: {pppd}\npptpd --version: {pptpd}")
    assert pppd is not None and re.search(r"^pppd version 2\.4\.9$", pppd, re.M)
    assert pptpd is not None and "pptpd v1.4.0" in pptpd


def test_our_packages_under_real_pkg_install(built, built_layout):
    """Our own packages/All/*.tgz: pkg_add (no "lacks pkg_install version data"), check, delete."""
    packages = sorted(built_layout.packages_all.glob("*.tgz"))
    names = [re.sub(r"-[0-9][^-]*\.tgz$", "", p.name) for p in packages]
    result = install_check_delete(built.tree, built.tmp / "ours", packages, names)
    print(f"our packages: {len(packages)}, {len(result['files'])} files; pkg_admin check: {result['check']}")
    assert len(packages) == 3 and set(names) == {"ppp-mppe", "poptop", "pptp"}
    assert re.search(r"^pppd version 2\.4\.9$", result["versions"]["pppd"] or "", re.M)


# --- pkglint --------------------------------------------------------------------------------------------

# Warnings of pkglint-4.137 (2014) on our directories that stay, each with the reason. Matched as substrings
# of the WARN line; everything else pkglint reported was fixed in the templates or recipes.
EXPLAINED_WARNINGS: dict[str, str] = {
    "distinfo:3: Expected an SHA1 checksum": "pkgsrc moved distinfo from SHA1/RMD160 to BLAKE2s/SHA512 in "
    "2017; our distinfo is current-format (the tree verifies it with its digest plus the BLAKE2s wrapper)",
    "distinfo:4: Expected an SHA1 checksum": "the SHA512 line, as above",
    "distinfo:5: Expected an SHA1 checksum": "the Size line, as above",
    "Unknown option": "a package's own options are registered in the tree's mk/defaults/options.description "
    "when the package is imported; the exported directories do not edit the tree's mk/",
    "Found absolute pathname: /usr/src/linux": "SYSDIR's documented default: where Linux kernel sources live",
    "Found absolute pathname: /usr/src/sys": "SYSDIR's default on NetBSD, as the historic package had it",
    "Found absolute pathname: /lib/modules/${KMOD_KVER}/build": "KMOD_BUILDDIR's default: the running "
    "kernel's kbuild tree is there on every Linux distribution",
    "Manual page missing for sbin/pppoe-discovery": "ppp-2.4.9 ships no manual page for it "
    "(pppoe-discovery.8 appeared upstream later)",
    "patches/patch-ab:15: Found absolute pathname: /usr/local": "a context line of pptpd's plugins/Makefile "
    "(upstream's default prefix; the package overrides LIBDIR)",
}


def test_pkglint_finds_no_error(built):
    lint = ensure_pkglint(built.tree)
    problems = []
    for name in PKGS:
        cmd, env = lint.command("-Wall")
        done = tool(built.tree, *cmd, cwd=built.tree.pkgsrc / "net" / name, env=env)
        output = (done.stdout + done.stderr).strip()
        print(f"pkglint -Wall net/{name}:\n{output}")
        for line in output.splitlines():
            if line.startswith(("ERROR:", "WARN:")) and not any(k in line for k in EXPLAINED_WARNINGS):
                problems.append(line)
    assert problems == []


def test_pkgsrc_prefix_is_not_ours(built):
    """The packages carry the tree's LOCALBASE (the bootstrap prefix), not ours: the VM test links it."""
    cwd = next(line[5:] for line in tool(built.tree, "pkg_info", "-qf", str(built.package("poptop")))
               .stdout.splitlines() if line.startswith("@cwd "))
    assert cwd == str(built.tree.prefix) and cwd != PREFIX


# --- the VM smoke scenarios with pkgsrc's packages ------------------------------------------------------

@pytest.mark.vm
def test_vm_smoke_with_pkgsrc_built_packages(built, built_layout):
    """`buildtool test --packages DIR -k smoke` with pkgsrc's ppp-mppe (modules on) and poptop, and our
    pptp client (not a pkgsrc package): the guest runs the binaries and modules pkgsrc built."""
    recipes = load_all(REPO)
    packages = built.tmp / "vm-packages"
    (packages / "All").mkdir(parents=True)
    shutil.copy(built.package("ppp-mppe", kmod_on=True), packages / "All")
    shutil.copy(built.package("poptop"), packages / "All")
    shutil.copy(built_layout.packages_all / f"{recipes['pptp'].pkgname}.tgz", packages / "All")
    results = built.tmp / "vm-results"
    cmd = [sys.executable, "-m", "buildtool", "test", "--packages", str(packages), "-k", "smoke",
           "--results", str(results)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=3600,
                          stdin=subprocess.DEVNULL)
    from buildtool.outcomes import read_outcomes

    outcome = read_outcomes(results / "junit.xml", done.returncode)
    print(f"VM smoke with pkgsrc-built packages: {outcome.tests}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert outcome.tests and set(outcome.tests.values()) == {"passed"}, outcome.tests
    assert "test_smoke_ping_50000" in outcome.tests
