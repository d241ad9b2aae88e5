"""pkgsrc package directories: the export, pkglint-style checks, bmake syntax, and the repository's copy."""

from __future__ import annotations

import filecmp
import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from buildtool import extract as extract_phase
from buildtool import pkglint
from buildtool.distinfo import distfile_sum, patch_sha1, read_distinfo, write_distinfo
from buildtool.errors import RecipeError
from buildtool.layout import Layout
from buildtool.pkgsrc_export import export, exported_recipes, patch_split, render_package
from buildtool.plist import parse_plist
from buildtool.recipe import load_all

REPO = Path(__file__).resolve().parent.parent

RECIPE = """[package]
name = "{name}"
version = "1.0"
comment = "Test package {name}"
homepage = "https://example.org/{name}/"
license = "modified-bsd"
description = "A test package.\\n"
message = "{message}"
depends = {depends}

[[distfile]]
name = "{dist}-1.0.tar.gz"
sites = ["https://example.org/pub/", "https://mirror.example.org/pub/"]

[build]
wrksrc = "{dist}-1.0"

[kmod]
profile_patches = "patch-c*"

[pkgsrc]
configure = "gnu"
configure_args = ["--with-foo"]
use_tools = ["gmake"]
buildlink3 = {buildlink3}
plist_subst = {{ KVER = "${{KMOD_KVER}}" }}
{extra}
"""

KMOD = """examples = { dir = "share/examples/a", files = ["etc/a.conf", "etc/a-secrets"] }

[[pkgsrc.options]]
name = "a-kmod"
default = true
default_opsys = ["Linux"]
help = "Kernel module."
plist = "kmod"

[pkgsrc.kmod]
option = "a-kmod"
sysdir = { Linux = "/usr/src/linux", NetBSD = "/usr/src/sys" }
check = { Linux = "include/ppp.h", NetBSD = "lib/libkern/libkern.h" }
unavailable = { NetBSD = "The NetBSD module is not available yet." }
copy = ["include/ppp.h"]
build = { Linux = ["${ECHO} built"] }
install = { Linux = ["${ECHO} installed"] }
vars = { Linux = { KMOD_KVER = "6.1.0" } }
"""

PATCH = """$NetBSD$

Why this patch exists.

--- {target}.orig
+++ {target}
@@ -1 +1 @@
-old
+new
"""


def write_repo(root: Path, a_message: str = "Load the module.") -> Path:
    """A repository with two products (a, b; b uses a's buildlink3.mk) and a deps/ recipe."""
    specs = {
        "a": dict(dist="adist", message=a_message, depends='["z"]', buildlink3='["security/openssl"]',
                  extra=KMOD),
        "b": dict(dist="b", message="", depends='["a"]', buildlink3='["net/a"]',
                  extra='configure_args_opsys = { Linux = ["--enable-relay"] }'),
        "deps/z": dict(dist="z", message="", depends="[]", buildlink3="[]", extra=""),
    }
    for rel, s in specs.items():
        name = rel.split("/")[-1]
        d = root / rel
        d.mkdir(parents=True)
        (d / "recipe.toml").write_text(RECIPE.format(name=name, **s))
        dist = f"{s['dist']}-1.0.tar.gz"
        (d / "distinfo").write_text(f"$NetBSD$\n\nBLAKE2s ({dist}) = 11\nSHA512 ({dist}) = 22\n"
                                    f"Size ({dist}) = 3 bytes\n")
        (d / "PLIST").write_text("@comment $NetBSD$\nsbin/zz\nbin/aa\n${PLIST.kmod}lib/modules/${KVER}/m.ko\n"
                                 "share/examples/a/a.conf\nshare/examples/a/a-secrets\n"
                                 if name == "a" else "@comment $NetBSD$\nsbin/b\n")
        patches = root / "patches" / name
        patches.mkdir(parents=True)
        (patches / "patch-ab").write_text(PATCH.format(target="src/two.c"))
        (patches / "patch-aa").write_text(PATCH.format(target="src/one.c"))
    (root / "a" / "PLIST.Linux").write_text("@comment $NetBSD$\nsbin/relay\n")
    (root / "patches" / "a" / "patch-ca").write_text(PATCH.format(target="include/ppp.h"))
    (root / "patches").mkdir(exist_ok=True)
    return root


@pytest.fixture
def repo(tmp_path):
    return write_repo(tmp_path / "repo")


def run_export(root: Path, dest: Path) -> list[Path]:
    return export(load_all(root), Layout.default(root=root, cache=root / "cache"), dest)


def test_export_layout_and_contents(repo, tmp_path):
    dest = tmp_path / "pkgsrc"
    written = run_export(repo, dest)
    a, b = dest / "net" / "a", dest / "net" / "b"
    assert sorted(p.relative_to(dest).as_posix() for p in written) == sorted([
        "net/a/DESCR", "net/a/MESSAGE", "net/a/Makefile", "net/a/PLIST", "net/a/PLIST.Linux",
        "net/a/distinfo",
        "net/a/buildlink3.mk", "net/a/options.mk", "net/a/patches/patch-aa", "net/a/patches/patch-ab",
        "net/a/files/kmod/patch-ca", "net/b/DESCR", "net/b/Makefile", "net/b/PLIST", "net/b/distinfo",
        "net/b/patches/patch-aa", "net/b/patches/patch-ab"])
    assert not (dest / "net" / "z").exists()  # deps/ are not products
    assert (a / "Makefile").read_text().startswith(
        "# $NetBSD$\n\n"
        "DISTNAME=\tadist-1.0\n"
        "PKGNAME=\t${DISTNAME:S/^adist-/a-/}\n"
        "CATEGORIES=\tnet\n"
        "MASTER_SITES=\thttps://example.org/pub/ \\\n\t\thttps://mirror.example.org/pub/\n"
        "\n"
        "MAINTAINER=\tpkgsrc-users@NetBSD.org\n"
        "HOMEPAGE=\thttps://example.org/a/\n"
        "COMMENT=\tTest package a\n"
        "LICENSE=\tmodified-bsd\n"
        "\n"
        "GNU_CONFIGURE=\tyes\n")
    makefile = (a / "Makefile").read_text()
    assert '.include "options.mk"' in makefile
    assert makefile.endswith(
        '.include "../../security/openssl/buildlink3.mk"\n.include "../../mk/bsd.pkg.mk"\n')
    assert "PKGNAME" not in (b / "Makefile").read_text()  # DISTNAME b-1.0 is already the package name
    assert '.include "../../net/a/buildlink3.mk"' in (b / "Makefile").read_text()
    assert (a / "PLIST").read_text() == (
        "@comment $NetBSD$\nbin/aa\n${PLIST.kmod}lib/modules/${KVER}/m.ko\nsbin/zz\n"
        "share/examples/a/a-secrets\nshare/examples/a/a.conf\n")
    assert "INSTALLATION_DIRS+=\tshare/examples/a\n" in makefile
    assert ("\npost-install:\n"
            "\t${INSTALL_DATA} ${WRKSRC}/etc/a.conf ${DESTDIR}${PREFIX}/share/examples/a\n"
            "\t${INSTALL_DATA} -m 600 ${WRKSRC}/etc/a-secrets ${DESTDIR}${PREFIX}/share/examples/a\n"
            ) in makefile
    assert ('.if ${OPSYS} == "Linux"\nCONFIGURE_ARGS+=\t--enable-relay\n.endif\n'
            in (b / "Makefile").read_text())
    assert (a / "MESSAGE").read_text().splitlines()[:4] == ["=" * 75, "$NetBSD$", "", "Load the module."]
    assert (a / "distinfo").read_text() == (
        "$NetBSD$\n\nBLAKE2s (adist-1.0.tar.gz) = 11\nSHA512 (adist-1.0.tar.gz) = 22\n"
        "Size (adist-1.0.tar.gz) = 3 bytes\n"
        f"SHA1 (patch-aa) = {patch_sha1(a / 'patches' / 'patch-aa')}\n"
        f"SHA1 (patch-ab) = {patch_sha1(a / 'patches' / 'patch-ab')}\n")
    options = (a / "options.mk").read_text()
    assert '.if ${OPSYS} == "Linux"\nPKG_SUGGESTED_OPTIONS+=\ta-kmod\n.endif\n' in options
    assert "PKG_SUGGESTED_OPTIONS=" not in options and "PLIST.kmod=\tyes" in options
    assert "KMOD_PATCHES=\t${FILESDIR}/kmod/patch-ca" in options
    for pkgdir in (a, b):
        assert pkglint.lint(pkgdir) == []


def test_export_is_idempotent_and_removes_stale_files(repo, tmp_path):
    dest = tmp_path / "pkgsrc"
    run_export(repo, dest)
    stale = dest / "net" / "a" / "patches" / "patch-zz"
    stale.write_text("left over from an older export")
    before = (dest / "net" / "a" / "Makefile").stat().st_mtime_ns
    run_export(repo, dest)
    assert not stale.exists()
    assert (dest / "net" / "a" / "Makefile").stat().st_mtime_ns == before  # unchanged files are not rewritten


def test_message_dropped_when_recipe_has_none(tmp_path):
    root = write_repo(tmp_path / "repo", a_message="")
    run_export(root, tmp_path / "out")
    assert not (tmp_path / "out" / "net" / "a" / "MESSAGE").exists()


def test_bad_recipe_leaves_destination_untouched(repo, tmp_path):
    dest = tmp_path / "pkgsrc"
    run_export(repo, dest)
    snapshot = {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    (repo / "b" / "PLIST").write_text("@comment $NetBSD$\nsbin/${NOPE}\n")
    with pytest.raises(RecipeError, match=r"\$\{NOPE\} needs a value in \[pkgsrc\] plist_subst"):
        run_export(repo, dest)
    assert {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()} == snapshot


@pytest.mark.parametrize("edit, message", [
    ("""[[pkgsrc.options]]\nname = "x"\ndefault = true\n""", "needs key"),
    ("""[[pkgsrc.options]]\nname = "x"\ndefault = "yes"\nhelp = "h"\n""", "must be a bool"),
    ("""[[pkgsrc.options]]\nname = "x"\ndefault = true\nhelp = "h"\ncolour = 1\n""", "unknown key"),
])
def test_bad_options_are_named(repo, tmp_path, edit, message):
    toml = repo / "b" / "recipe.toml"
    toml.write_text(toml.read_text() + edit)
    with pytest.raises(RecipeError, match=message):
        run_export(repo, tmp_path / "out")


def test_examples_must_be_listed_in_a_plist(repo, tmp_path):
    plist = repo / "a" / "PLIST"
    plist.write_text(plist.read_text().replace("share/examples/a/a.conf\n", ""))
    with pytest.raises(RecipeError, match=r"installs share/examples/a/a.conf, which no PLIST lists"):
        run_export(repo, tmp_path / "out")


def test_kmod_opsys_needs_a_build_or_an_unavailable_message(repo, tmp_path):
    toml = repo / "a" / "recipe.toml"
    unavailable = 'unavailable = { NetBSD = "The NetBSD module is not available yet." }'
    toml.write_text(toml.read_text().replace(unavailable, ""))
    with pytest.raises(RecipeError, match=r"for NetBSD, either build and install commands or an 'unavail"):
        run_export(repo, tmp_path / "out")


def write_distfile(path: Path, wrksrc: str, files: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name in files:
            data = b"old\n"
            info = tarfile.TarInfo(f"{wrksrc}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def record_sums(distinfo: Path, distfile: Path) -> None:
    """What `buildtool makesum` does: the distfile's real size and hashes into distinfo (patches kept)."""
    info = read_distinfo(distinfo)
    info.distfiles[distfile.name] = distfile_sum(distfile)
    write_distinfo(distinfo, list(info.distfiles.values()), info.patches)


def test_export_refuses_a_patch_whose_target_is_not_in_the_distfile(repo, tmp_path):
    """pkgsrc's patch stage waits forever on patch's prompt for a missing target: the export refuses it."""
    distdir = repo / "cache" / "distfiles"
    write_distfile(distdir / "adist-1.0.tar.gz", "adist-1.0", ["src/one.c", "src/two.c", "include/ppp.h"])
    write_distfile(distdir / "b-1.0.tar.gz", "b-1.0", ["src/one.c", "src/two.c"])
    for pkgdir, dist in (("a", "adist-1.0.tar.gz"), ("b", "b-1.0.tar.gz")):
        record_sums(repo / pkgdir / "distinfo", distdir / dist)
    run_export(repo, tmp_path / "ok")  # every target exists: accepted
    (repo / "patches" / "b" / "patch-ac").write_text(PATCH.format(target="src/gone.c"))
    with pytest.raises(RecipeError, match=r"patch-ac: target src/gone.c is not in the distfile's WRKSRC"):
        run_export(repo, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # the same check over a distfile and patches, as the integration test runs it on the real ones
    files = pkglint.distfile_files(distdir / "b-1.0.tar.gz", "b-1.0")
    assert files == {"src/one.c", "src/two.c"}
    assert pkglint.patch_target_problems([repo / "patches" / "b" / "patch-aa"], files) == []
    assert len(pkglint.patch_target_problems(sorted((repo / "patches" / "b").glob("patch-*")), files)) == 1


def test_kernel_patches_need_a_kmod_part(repo, tmp_path):
    (repo / "patches" / "b" / "patch-ca").write_text(PATCH.format(target="x.h"))
    with pytest.raises(RecipeError, match=r"patch-ca need a \[pkgsrc.kmod\] table"):
        run_export(repo, tmp_path / "out")


# --- the pkglint-style checks must catch what they claim to -------------------------------------------

@pytest.fixture
def exported(repo, tmp_path):
    run_export(repo, tmp_path / "pkgsrc")
    return tmp_path / "pkgsrc" / "net" / "a"


def test_lint_catches_undocumented_patch(exported):
    (exported / "patches" / "patch-aa").write_text(PATCH.replace("Why this patch exists.\n\n", "").format(
        target="src/one.c"))
    assert any("needs a comment" in p for p in pkglint.lint(exported))


def test_lint_catches_patch_without_header(exported):
    headless = PATCH.format(target="src/two.c").replace("$NetBSD$\n\n", "")
    (exported / "patches" / "patch-ab").write_text(headless)
    problems = pkglint.lint(exported)
    assert any("must start with '$NetBSD$'" in p for p in problems)


def test_lint_catches_stale_distinfo(exported):
    patch = exported / "patches" / "patch-aa"
    patch.write_text(patch.read_text().replace("+new", "+newer"))
    assert any("SHA1 of patch-aa does not match" in p for p in pkglint.lint(exported))
    patch.unlink()
    assert any("patch-aa, which is not in patches/" in p for p in pkglint.lint(exported))


def test_lint_catches_unsorted_plist_and_header(exported):
    (exported / "PLIST").write_text("sbin/zz\nbin/aa\n")
    problems = pkglint.lint(exported)
    assert any("PLIST: entries are not sorted" in p for p in problems)
    assert any("PLIST: the first line must be '@comment $NetBSD$'" in p for p in problems)


def test_lint_catches_unsorted_per_os_plist(exported):
    (exported / "PLIST.Linux").write_text("@comment $NetBSD$\nsbin/zz2\nsbin/relay\n")
    assert any("PLIST.Linux: entries are not sorted" in p for p in pkglint.lint(exported))


def test_lint_catches_example_not_installed(exported):
    makefile = exported / "Makefile"
    text = makefile.read_text()
    line = "\t${INSTALL_DATA} ${WRKSRC}/etc/a.conf ${DESTDIR}${PREFIX}/share/examples/a\n"
    makefile.write_text(text.replace(line, ""))
    assert [p for p in pkglint.lint(exported) if "install" in p] == [
        f"{exported}: the PLIST lists share/examples/a/a.conf, which no install line of the Makefile "
        "installs"]
    makefile.write_text(text.replace("etc/a.conf ${DESTDIR}${PREFIX}/share/examples/a",
                                     "etc/a.conf etc/a.sample ${DESTDIR}${PREFIX}/share/examples/a"))
    assert [p for p in pkglint.lint(exported) if "install" in p] == [
        f"{exported}: the Makefile installs share/examples/a/a.sample, which no PLIST lists"]
    makefile.write_text(text.replace("${DESTDIR}${PREFIX}/share/examples/a\n", "/etc/a\n", 1))
    problems = pkglint.lint(exported)
    assert any("needs sources and a destination under ${DESTDIR}${PREFIX}/" in p for p in problems)


def test_install_lines_single_source_to_file_or_directory(exported):
    (exported / "extra.mk").write_text("# $NetBSD$\n\nx:\n"
                                       "\t${RUN} ${INSTALL_PROGRAM} -m 755 ${WRKSRC}/x "
                                       "${DESTDIR}${PREFIX}/sbin/x\n"
                                       "\t${INSTALL_MAN} ${WRKSRC}/x.8 ${DESTDIR}${PREFIX}/man/man8\n")
    installed, problems = pkglint.installed_by_makefile(exported)
    assert problems == []
    assert {"sbin/x", "man/man8/x.8", "share/examples/a/a.conf", "share/examples/a/a-secrets"} <= installed


def test_lint_catches_duplicate_between_plists(exported):
    (exported / "PLIST.NetBSD").write_text("@comment $NetBSD$\nbin/aa\n")
    assert any("bin/aa is also listed in PLIST" in p for p in pkglint.lint(exported))


@pytest.mark.parametrize("old, new, message", [
    # CATEGORIES after MASTER_SITES
    ("CATEGORIES=\tnet\nMASTER_SITES=\thttps://example.org/pub/ \\\n\t\thttps://mirror.example.org/pub/\n",
     "MASTER_SITES=\thttps://example.org/pub/ \\\n\t\thttps://mirror.example.org/pub/\nCATEGORIES=\tnet\n",
     "CATEGORIES are out of order"),
    # PKGNAME before DISTNAME
    ("DISTNAME=\tadist-1.0\nPKGNAME=\t${DISTNAME:S/^adist-/a-/}\n",
     "PKGNAME=\t${DISTNAME:S/^adist-/a-/}\nDISTNAME=\tadist-1.0\n", "PKGNAME, DISTNAME, CATEGORIES"),
    # COMMENT before HOMEPAGE
    ("HOMEPAGE=\thttps://example.org/a/\nCOMMENT=\tTest package a\n",
     "COMMENT=\tTest package a\nHOMEPAGE=\thttps://example.org/a/\n",
     "COMMENT, HOMEPAGE, LICENSE are out of order"),
    # MAINTAINER... not separated from DISTNAME... by a blank line
    ("pub/\n\nMAINTAINER=", "pub/\nMAINTAINER=", "must come in the paragraph after DISTNAME"),
    # LICENSE split from its paragraph
    ("COMMENT=\tTest package a\nLICENSE=", "COMMENT=\tTest package a\n\nLICENSE=", "must form one paragraph"),
])
def test_lint_catches_makefile_order(exported, old, new, message):
    makefile = exported / "Makefile"
    text = makefile.read_text()
    assert old in text
    makefile.write_text(text.replace(old, new))
    problems = pkglint.lint(exported)
    assert any(message in p for p in problems), problems


@pytest.mark.parametrize("idiom", pkglint.TOO_NEW)
@pytest.mark.parametrize("where", ["Makefile", "options.mk"])
def test_lint_catches_new_idioms(exported, idiom, where):
    path = exported / where
    path.write_text(path.read_text().replace("\n.include", f"\n{idiom}+=\tyes\n.include", 1))
    assert [p for p in pkglint.lint(exported) if "too new" in p] == [
        f"{path}: uses {idiom}, too new for older pkgsrc trees"]


def test_lint_catches_makefile_without_bsd_pkg_mk(exported):
    makefile = exported / "Makefile"
    makefile.write_text(makefile.read_text().replace('.include "../../mk/bsd.pkg.mk"\n', ""))
    assert any("bsd.pkg.mk" in p for p in pkglint.lint(exported))


def test_lint_catches_missing_files(exported):
    (exported / "DESCR").unlink()
    (exported / "options.mk").unlink()
    problems = pkglint.lint(exported)
    assert any("DESCR is missing" in p for p in problems)
    assert any("options.mk, which is missing" in p for p in problems)


# --- bmake: a syntax check against stub pkgsrc infrastructure (not a pkgsrc build) ---------------------

STUB_PREFS = "OPSYS?=\tLinux\n"
STUB_OPTIONS = "OPSYS?=\tLinux\nPKG_OPTIONS=\t${PKG_SUGGESTED_OPTIONS}\n"
STUB_PKG = "PKGNAME?=\t${DISTNAME}\nall:\n\t@true\n"


def stub_tree(pkgsrc: Path, pkgdirs: list[Path]) -> None:
    """Minimal ../../mk files and empty buildlink3.mk for every dependency the Makefiles name."""
    (pkgsrc / "mk").mkdir(parents=True, exist_ok=True)
    # bmake's own sys.mk (Debian's mk-files) includes any ./options.mk a second time: use an empty one
    (pkgsrc / "mk" / "sys").mkdir(exist_ok=True)
    (pkgsrc / "mk" / "sys" / "sys.mk").write_text("")
    (pkgsrc / "mk" / "bsd.prefs.mk").write_text(STUB_PREFS)
    (pkgsrc / "mk" / "bsd.options.mk").write_text(STUB_OPTIONS)
    (pkgsrc / "mk" / "bsd.pkg.mk").write_text(STUB_PKG)
    for pkgdir in pkgdirs:
        for mk in [pkgdir / "Makefile", *pkgdir.glob("*.mk")]:
            for line in mk.read_text().splitlines():
                if line.startswith('.include "../../') and "/mk/" not in line:
                    target = pkgdir / line.split('"')[1]
                    if not target.exists():
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_text("")


def bmake_var(pkgdir: Path, var: str, *args: str) -> str:
    assert shutil.which("bmake"), "bmake is missing: apt-get install bmake (scripts/setup installs it)"
    sysmk = pkgdir.parent.parent / "mk" / "sys"
    done = subprocess.run(["bmake", "-m", str(sysmk), "-C", str(pkgdir), *args, "-V", f"${{{var}}}"],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr, done.stderr
    return done.stdout.strip()


def test_bmake_parses_the_export_and_checks_sysdir(repo, tmp_path):
    pkgsrc = tmp_path / "pkgsrc"
    run_export(repo, pkgsrc)
    a, b = pkgsrc / "net" / "a", pkgsrc / "net" / "b"
    stub_tree(pkgsrc, [a, b])
    assert bmake_var(a, "PKGNAME") == "a-1.0"
    assert bmake_var(b, "PKGNAME") == "b-1.0"
    reason = bmake_var(a, "PKG_FAIL_REASON", "SYSDIR=/nonexistent")
    assert "the kernel sources in SYSDIR (/nonexistent)" in reason
    sysdir = tmp_path / "linux"
    (sysdir / "include").mkdir(parents=True)
    (sysdir / "include" / "ppp.h").write_text("")
    assert bmake_var(a, "PKG_FAIL_REASON", f"SYSDIR={sysdir}") == ""
    assert bmake_var(a, "PKG_FAIL_REASON", "PKG_OPTIONS=", "SYSDIR=/nonexistent") == ""
    assert "not supported on SunOS" in bmake_var(a, "PKG_FAIL_REASON", "OPSYS=SunOS", "PKG_OPTIONS=a-kmod")
    # NetBSD: the option is off by default, so the userland builds; switched on, it fails clearly
    assert bmake_var(a, "PKG_OPTIONS", "OPSYS=NetBSD") == ""
    assert bmake_var(a, "PKG_FAIL_REASON", "OPSYS=NetBSD") == ""
    assert bmake_var(a, "PKG_OPTIONS") == "a-kmod"
    reason = bmake_var(a, "PKG_FAIL_REASON", "OPSYS=NetBSD", "PKG_OPTIONS=a-kmod", "SYSDIR=/nonexistent")
    assert "/nonexistent/lib/libkern/libkern.h is missing" in reason
    assert "The NetBSD module is not available yet." in reason
    netbsd_src = tmp_path / "netbsd-sys"
    (netbsd_src / "lib" / "libkern").mkdir(parents=True)
    (netbsd_src / "lib" / "libkern" / "libkern.h").write_text("")
    reason = bmake_var(a, "PKG_FAIL_REASON", "OPSYS=NetBSD", "PKG_OPTIONS=a-kmod", f"SYSDIR={netbsd_src}")
    assert "not available yet" in reason and "is missing" not in reason
    # per-OPSYS CONFIGURE_ARGS
    assert bmake_var(b, "CONFIGURE_ARGS") == "--with-foo --enable-relay"
    assert bmake_var(b, "CONFIGURE_ARGS", "OPSYS=NetBSD") == "--with-foo"


# --- the repository's own pkgsrc/ ---------------------------------------------------------------------

def test_bmake_parses_the_repository_pkgsrc_for_netbsd(tmp_path):
    """The NetBSD branches of the repository's Makefiles, which the real pkgsrc build on Linux
    (tests/test_pkgsrc_real.py) never takes: parsed with OPSYS=NetBSD against the stub infrastructure."""
    pkgsrc = tmp_path / "pkgsrc"
    shutil.copytree(REPO / "pkgsrc", pkgsrc)
    ppp, poptop = pkgsrc / "net" / "ppp-mppe", pkgsrc / "net" / "poptop"
    stub_tree(pkgsrc, [ppp, poptop])
    assert bmake_var(ppp, "PKG_OPTIONS", "OPSYS=NetBSD") == ""
    assert bmake_var(ppp, "PKG_FAIL_REASON", "OPSYS=NetBSD") == ""
    reason = bmake_var(ppp, "PKG_FAIL_REASON", "OPSYS=NetBSD", "PKG_OPTIONS=ppp-mppe-kmod", "SYSDIR=/none")
    assert "/none/modules/xldscripts/kmodule is missing" in reason
    assert "not available" not in reason  # NetBSD builds our ppp_mppe module from SYSDIR now
    netbsd_src = tmp_path / "netbsd-sys"
    (netbsd_src / "modules" / "xldscripts").mkdir(parents=True)
    (netbsd_src / "modules" / "xldscripts" / "kmodule").write_text("")
    assert bmake_var(ppp, "PKG_FAIL_REASON", "OPSYS=NetBSD", "PKG_OPTIONS=ppp-mppe-kmod",
                     f"SYSDIR={netbsd_src}") == ""
    assert bmake_var(ppp, "KMOD_KVER", "OPSYS=NetBSD", "OS_VERSION=10.1", "PKG_OPTIONS=ppp-mppe-kmod",
                     f"SYSDIR={netbsd_src}") == "10.1"
    assert (pkgsrc / "net/ppp-mppe/files/kmod-src/ppp_mppe/Makefile").read_text() == \
        (REPO / "kmod/mppe/netbsd/Makefile").read_text()
    assert "--enable-bcrelay" not in bmake_var(poptop, "CONFIGURE_ARGS", "OPSYS=NetBSD").split()


def repo_layout() -> Layout:
    return Layout.default(root=REPO)


def test_repository_pkgsrc_matches_a_fresh_export(tmp_path):
    fresh = tmp_path / "pkgsrc"
    export(load_all(REPO), repo_layout(), fresh)
    kept = REPO / "pkgsrc"
    differences = []
    for path in sorted({*(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file()),
                        *(p.relative_to(kept) for p in kept.rglob("*") if p.is_file())}):
        if not (kept / path).is_file():
            differences.append(f"only in a fresh export: {path}")
        elif not (fresh / path).is_file():
            differences.append(f"only in pkgsrc/: {path}")
        elif not filecmp.cmp(kept / path, fresh / path, shallow=False):
            diff = subprocess.run(["diff", "-u", str(kept / path), str(fresh / path)], capture_output=True,
                                  text=True, stdin=subprocess.DEVNULL, timeout=60).stdout
            differences.append(f"differs: {path}\n{diff}")
    assert not differences, ("pkgsrc/ is out of date; run `buildtool pkgsrc export`:\n"
                             + "\n".join(differences))


def test_repository_pkgsrc_passes_lint():
    products = exported_recipes(load_all(REPO), repo_layout())
    assert {r.name for r in products} == {"ppp-mppe", "poptop"}
    problems = [p for r in products for p in pkglint.lint(REPO / "pkgsrc" / "net" / r.name)]
    assert problems == []


def test_repository_patches_follow_the_series_meaning():
    """patch-a* OS/toolchain, b* MPPE, c* kernel module, d* misc: only those series exist; c* only as kmod."""
    for recipe in exported_recipes(load_all(REPO), repo_layout()):
        source, kernel = patch_split(recipe, REPO)
        assert all(p.name[6] in "abd" for p in source), [p.name for p in source]
        assert all(p.name[6] == "c" for p in kernel), [p.name for p in kernel]


def test_repository_plist_vars_are_substituted():
    for recipe in exported_recipes(load_all(REPO), repo_layout()):
        render_package(recipe, exported_recipes(load_all(REPO), repo_layout()), REPO)  # raises on a bad var


@pytest.mark.integration
def test_repository_patches_apply_with_p0_and_no_fuzz(tmp_path):
    """Every exported patch targets a file that exists in the distfile and applies with -p0, no fuzz.

    (pkgsrc's patch stage waits on a prompt forever when a target is missing; this refuses such a patch.)
    """
    layout = repo_layout()
    for recipe in exported_recipes(load_all(REPO), layout):
        distfile = layout.distdir / recipe.distfiles[0].name
        if not distfile.exists():
            from buildtool import fetch

            info = read_distinfo(recipe.distinfo_path)
            fetch.fetch_distfile(recipe.distfiles[0], info.distfile(distfile.name), layout.distdir,
                                 fetch.FetchOptions(offline=False, progress=False,
                                                    apt_dir=layout.cache / "apt"),
                                 log=tmp_path / "fetch.log")
        work = tmp_path / recipe.name
        extract_phase.extract(distfile, work)
        wrksrc = work / recipe.wrksrc
        patches = sorted((REPO / "pkgsrc" / "net" / recipe.name / "patches").glob("patch-*"))
        assert pkglint.patch_target_problems(patches, pkglint.distfile_files(distfile, recipe.wrksrc)) == []
        for patch in patches:
            done = subprocess.run(["patch", "-p0", "-F0", "--batch", "--forward", "-i", str(patch)],
                                  cwd=wrksrc, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                  timeout=60)
            assert done.returncode == 0, f"{patch.name} does not apply:\n{done.stdout}{done.stderr}"


@pytest.mark.integration
def test_repository_plist_entries_are_installed(built_layout):
    """Every PLIST entry of the Linux package is produced by an install step: the Makefile's install lines
    (their sources exist in the distfile) or upstream's `make install`, established from our real stage
    (work/<pkg>/stage, which the same upstream targets filled). The examples match the stage's too."""
    layout = built_layout
    checked = 0
    for recipe in exported_recipes(load_all(REPO), layout):
        stage = layout.stage_prefix(recipe.name)
        distfile = layout.distdir / recipe.distfiles[0].name
        assert stage.is_dir() and distfile.is_file(), f"{recipe.name}: the session build left no stage"
        pkgdir = REPO / "pkgsrc" / "net" / recipe.name
        installed, problems = pkglint.installed_by_makefile(pkgdir)
        assert problems == []
        sources = pkglint.distfile_files(distfile, recipe.wrksrc)
        for where, srcs, _ in pkglint.install_lines(pkgdir):
            for src in srcs:
                if src.startswith("${WRKSRC}/"):
                    assert src.removeprefix("${WRKSRC}/") in sources, f"{recipe.name} {where}: {src} missing"
        entries = [e for name in ("PLIST", "PLIST.Linux") if (pkgdir / name).is_file()
                   for e in pkglint.plist_paths(pkgdir / name) if not e.startswith("${PLIST.")]
        for entry in entries:
            assert entry in installed or (stage / entry).is_file(), f"{recipe.name}: nothing installs {entry}"
        staged_examples = {p.relative_to(stage).as_posix() for p in (stage / "share" / "examples").rglob("*")
                           if p.is_file()}
        assert staged_examples == {p for p in installed if p.startswith("share/examples/")}
        checked += 1
    assert checked == 2


def test_repository_plist_matches_recipe_plist():
    """The exported PLISTs list exactly the recipe's entries (the files the package phase checks)."""
    for recipe in exported_recipes(load_all(REPO), repo_layout()):
        pkgdir = REPO / "pkgsrc" / "net" / recipe.name
        for source in sorted(recipe.dir.glob("PLIST*")):
            want = sorted(e.raw for e in parse_plist(source))
            assert sorted(pkglint.plist_paths(pkgdir / source.name)) == want


def test_kernel_patch_target_must_be_copied_from_sysdir(repo, tmp_path):
    (repo / "patches" / "a" / "patch-cb").write_text(PATCH.format(target="drivers/other.c"))
    with pytest.raises(RecipeError, match=r"patch-cb patches drivers/other.c, which is not in 'pkgsrc.kmod"):
        run_export(repo, tmp_path / "out")


def test_export_splits_the_series_as_the_build_does(repo, tmp_path):
    """A profile_patches list of several globs (issue 15): the build applies every patch any glob matches to
    the kernel tree, so the export must ship each of them under files/kmod/, none under patches/."""
    from buildtool.pipeline import Context, Options, PackageRun

    toml = repo / "a" / "recipe.toml"
    toml.write_text(toml.read_text().replace('profile_patches = "patch-c*"',
                                             'profile_patches = "patch-c* patch-e*"'))
    (repo / "patches" / "a" / "patch-ea").write_text(PATCH.format(target="include/ppp.h"))
    recipe = load_all(repo)["a"]
    layout = Layout.default(root=repo, cache=repo / "cache")
    run = PackageRun(Context(layout=layout, options=Options()), recipe)
    tree, kernel = patch_split(recipe, repo)
    assert [p.name for p in tree] == [p.name for p in run.source_patches()] == ["patch-aa", "patch-ab"]
    assert [p.name for p in kernel] == ["patch-ca", "patch-ea"]
    written = {p.relative_to(tmp_path / "out").as_posix() for p in run_export(repo, tmp_path / "out")}
    assert {"net/a/files/kmod/patch-ca", "net/a/files/kmod/patch-ea"} <= written
    assert "net/a/patches/patch-ea" not in written


@pytest.mark.parametrize("suffix", [".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2", ".zip",
                                    ".tar"])
def test_export_takes_the_distfiles_the_build_extracts(suffix):
    """One list of archive suffixes (issue 15): a distfile the build extracts is exported with its
    EXTRACT_SUFX, and one the build cannot extract is refused by the export too (no package that pkgsrc
    would build and we never tested)."""
    from buildtool.errors import ExtractError
    from buildtool.pkgsrc_export import split_distname

    name = f"pkg-1.0{suffix}"
    try:
        extract_phase.open_mode(Path(name))
        extracts = True
    except ExtractError:
        extracts = False
    try:
        distname, _ = split_distname(name)
        exports = True
    except RecipeError:
        exports = False
    assert extracts == exports, f"{name}: the build {'extracts' if extracts else 'refuses'} it, " \
                                f"the export {'takes' if exports else 'refuses'} it"
    if exports:
        assert distname == "pkg-1.0"
