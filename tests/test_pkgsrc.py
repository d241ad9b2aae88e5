"""pkgsrc package directories: the export, pkglint-style checks, bmake syntax, and the repository's copy."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from buildtool import pkglint
from buildtool.distinfo import patch_sha1, read_distinfo
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

KMOD = """
[[pkgsrc.options]]
name = "a-kmod"
default = true
help = "Kernel module."
plist = "kmod"

[pkgsrc.kmod]
option = "a-kmod"
sysdir = { Linux = "/usr/src/linux" }
check = { Linux = "include/ppp.h" }
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
        "b": dict(dist="b", message="", depends='["a"]', buildlink3='["net/a"]', extra=""),
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
        "@comment $NetBSD$\nbin/aa\n${PLIST.kmod}lib/modules/${KVER}/m.ko\nsbin/zz\n")
    assert (a / "MESSAGE").read_text().splitlines()[:4] == ["=" * 75, "$NetBSD$", "", "Load the module."]
    assert (a / "distinfo").read_text() == (
        "$NetBSD$\n\nBLAKE2s (adist-1.0.tar.gz) = 11\nSHA512 (adist-1.0.tar.gz) = 22\n"
        "Size (adist-1.0.tar.gz) = 3 bytes\n"
        f"SHA1 (patch-aa) = {patch_sha1(a / 'patches' / 'patch-aa')}\n"
        f"SHA1 (patch-ab) = {patch_sha1(a / 'patches' / 'patch-ab')}\n")
    options = (a / "options.mk").read_text()
    assert "PKG_SUGGESTED_OPTIONS=\ta-kmod\n" in options and "PLIST.kmod=\tyes" in options
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


def test_lint_catches_duplicate_between_plists(exported):
    (exported / "PLIST.NetBSD").write_text("@comment $NetBSD$\nbin/aa\n")
    assert any("bin/aa is also listed in PLIST" in p for p in pkglint.lint(exported))


def test_lint_catches_makefile_order_and_new_idioms(exported):
    makefile = exported / "Makefile"
    text = makefile.read_text()
    makefile.write_text(text.replace("CATEGORIES=\tnet\n", "").replace(
        "LICENSE=\tmodified-bsd\n", "LICENSE=\tmodified-bsd\nCATEGORIES=\tnet\nUSE_CC_FEATURES=\tc99\n"))
    problems = pkglint.lint(exported)
    assert any("out of order" in p or "one paragraph" in p for p in problems)
    assert any("USE_CC_FEATURES" in p for p in problems)
    makefile.write_text(text.replace('.include "../../mk/bsd.pkg.mk"\n', ""))
    assert any("bsd.pkg.mk" in p for p in pkglint.lint(exported))


def test_lint_catches_missing_files(exported):
    (exported / "DESCR").unlink()
    (exported / "options.mk").unlink()
    problems = pkglint.lint(exported)
    assert any("DESCR is missing" in p for p in problems)
    assert any("options.mk, which is missing" in p for p in problems)


# --- bmake: a syntax check against stub pkgsrc infrastructure (not a pkgsrc build) ---------------------

STUB_OPTIONS = "OPSYS?=\tLinux\nPKG_OPTIONS=\t${PKG_SUGGESTED_OPTIONS}\n"
STUB_PKG = "PKGNAME?=\t${DISTNAME}\nall:\n\t@true\n"


def stub_tree(pkgsrc: Path, pkgdirs: list[Path]) -> None:
    """Minimal ../../mk files and empty buildlink3.mk for every dependency the Makefiles name."""
    (pkgsrc / "mk").mkdir(parents=True, exist_ok=True)
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
    done = subprocess.run(["bmake", "-C", str(pkgdir), *args, "-V", f"${{{var}}}"], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
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
    assert "not supported on NetBSD" in bmake_var(a, "PKG_FAIL_REASON", "OPSYS=NetBSD")
    assert bmake_var(a, "PKG_FAIL_REASON", "PKG_SUGGESTED_OPTIONS=", "SYSDIR=/nonexistent") == ""


# --- the repository's own pkgsrc/ ---------------------------------------------------------------------

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
                                  text=True).stdout
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
        with tarfile.open(distfile) as tar:
            tar.extractall(work, filter="data")
        wrksrc = work / recipe.wrksrc
        for patch in sorted((REPO / "pkgsrc" / "net" / recipe.name / "patches").glob("patch-*")):
            targets = [line[4:].split("\t")[0] for line in patch.read_text().splitlines()
                       if line.startswith("+++ ")]
            for target in targets:
                assert (wrksrc / target).is_file(), f"{patch.name}: target {target} does not exist in WRKSRC"
            done = subprocess.run(["patch", "-p0", "-F0", "--batch", "--forward", "-i", str(patch)],
                                  cwd=wrksrc, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            assert done.returncode == 0, f"{patch.name} does not apply:\n{done.stdout}{done.stderr}"


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
