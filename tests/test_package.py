"""The package phase: pkgsrc binary packages from a fake stage (fast; the real tar lists one)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from buildtool.errors import RecipeError, UsageError
from buildtool.package import default_build_info, make_package, pkgdeps, source_date_epoch, verify_package
from buildtool.plist import read_plist
from buildtool.recipe import Recipe

KO = "lib/modules/6.1.0-56-amd64/ppp_mppe.ko"
PLIST = """@comment $NetBSD$
sbin/pppd
etc/ppp/chap-secrets
lib/pppd/${PPPVER}/minconn.so
lib/pppd/current
@comment this line is ignored
${PLIST.kmod}lib/modules/${KVER}/ppp_mppe.ko
"""


def make_recipe(recipe_dir: Path, **over) -> Recipe:
    recipe_dir.mkdir(parents=True, exist_ok=True)
    fields = dict(name="ppp-mppe", version="2.4.9", comment="PPP daemon with MPPE",
                  description="pppd with MPPE.\n", homepage="https://ppp.samba.org/", license="modified-bsd",
                  dir=recipe_dir, categories=["net"], plist_vars={"PPPVER": "2.4.9"})
    fields.update(over)
    return Recipe(**fields)


def make_stage(root: Path, kmod: bool = True) -> Path:
    prefix = root / "stage" / "usr" / "pkg"
    (prefix / "sbin").mkdir(parents=True)
    (prefix / "sbin" / "pppd").write_bytes(b"\x7fELF pppd binary")
    (prefix / "sbin" / "pppd").chmod(0o775)  # a group-writable umask must not leak into the package
    (prefix / "etc" / "ppp").mkdir(parents=True)
    (prefix / "etc" / "ppp" / "chap-secrets").write_text("# client server secret IP\n")
    (prefix / "etc" / "ppp" / "chap-secrets").chmod(0o644)
    (prefix / "lib" / "pppd" / "2.4.9").mkdir(parents=True)
    (prefix / "lib" / "pppd" / "2.4.9" / "minconn.so").write_bytes(b"plugin")
    (prefix / "lib" / "pppd" / "current").symlink_to("2.4.9")
    if kmod:
        (prefix / "lib" / "modules" / "6.1.0-56-amd64").mkdir(parents=True)
        (prefix / "lib" / "modules" / "6.1.0-56-amd64" / "ppp_mppe.ko").write_bytes(b"module")
    return prefix


@pytest.fixture
def setup(tmp_path):
    recipe = make_recipe(tmp_path / "recipe")
    recipe.plist_path.write_text(PLIST)
    stage = make_stage(tmp_path)
    return recipe, stage, tmp_path / "packages" / "All"


def build(recipe, stage, outdir, **kw):
    info = default_build_info(recipe, "linux-6.1", environ={"SOURCE_DATE_EPOCH": "1700000000"})
    return make_package(recipe, stage, outdir, {**recipe.plist_vars, "KVER": "6.1.0-56-amd64"},
                        kw.pop("options", {"kmod": True}), info, epoch=1700000000, **kw)


def members(path: Path) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(path, "r:gz") as tar:
        out = {}
        for m in tar.getmembers():
            f = tar.extractfile(m) if m.isfile() else None
            out[m.name] = (m, f.read() if f else b"")
        return out


def test_package_contents_and_order(setup):
    recipe, stage, outdir = setup
    path = build(recipe, stage, outdir, pkgdeps=["openssl>=3.0.20"])
    assert path == outdir / "ppp-mppe-2.4.9.tgz"
    with tarfile.open(path, "r:gz") as tar:
        names = tar.getnames()
    assert names == ["+CONTENTS", "+COMMENT", "+DESC", "+BUILD_INFO", "+SIZE_PKG",
                     "sbin/pppd", "etc/ppp/chap-secrets", "lib/pppd/2.4.9/minconn.so", "lib/pppd/current",
                     "lib/modules/6.1.0-56-amd64/ppp_mppe.ko"]
    got = members(path)
    md5 = {n: hashlib.md5(data).hexdigest() for n, (_, data) in got.items()}
    assert got["+CONTENTS"][1].decode() == (
        "@name ppp-mppe-2.4.9\n"
        "@comment PKG_FORMAT_REVISION:1.1\n"
        "@pkgdep openssl>=3.0.20\n"
        "@cwd /usr/pkg\n"
        f"sbin/pppd\n@comment MD5:{md5['sbin/pppd']}\n"
        f"@mode 0600\netc/ppp/chap-secrets\n@comment MD5:{md5['etc/ppp/chap-secrets']}\n@mode\n"
        f"lib/pppd/2.4.9/minconn.so\n@comment MD5:{md5['lib/pppd/2.4.9/minconn.so']}\n"
        "lib/pppd/current\n@comment Symlink:2.4.9\n"  # as pkg_create: no MD5 line for a symlink
        f"{KO}\n@comment MD5:{md5[KO]}\n"
        "@ignore\n+BUILD_INFO\n@ignore\n+SIZE_PKG\n")
    assert got["+COMMENT"][1] == b"PPP daemon with MPPE\n"
    assert got["+DESC"][1] == b"pppd with MPPE.\n\nHomepage:\nhttps://ppp.samba.org/\n"
    # as pkgsrc counts it (lstat sizes): the symlink lib/pppd/current -> 2.4.9 adds 5
    size = sum(len(d) for n, (m, d) in got.items() if not n.startswith("+") and m.isfile()) + len("2.4.9")
    assert got["+SIZE_PKG"][1] == f"{size}\n".encode()
    info = dict(line.split("=", 1) for line in got["+BUILD_INFO"][1].decode().splitlines())
    assert info["OPSYS"] == "Linux" and info["PKGPATH"] == "net/ppp-mppe" and info["LOCALBASE"] == "/usr/pkg"
    assert info["PKGTOOLS_VERSION"] == "20091115"
    assert info["BUILD_DATE"] == "2023-11-14 22:13:20 +0000"
    assert info["KERNEL_PROFILE"] == "linux-6.1" and info["OS_VERSION"] == "6.1"
    assert verify_package(path) == []


def test_modes_owners_and_mtimes(setup):
    recipe, stage, outdir = setup
    got = members(build(recipe, stage, outdir))
    assert got["etc/ppp/chap-secrets"][0].mode == 0o600
    assert got["sbin/pppd"][0].mode == 0o755
    assert got["lib/pppd/current"][0].issym() and got["lib/pppd/current"][0].linkname == "2.4.9"
    for m, _ in got.values():
        assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "root", "wheel", 1700000000)


def test_plist_modes_override_and_unknown_key(setup):
    recipe, stage, outdir = setup
    recipe.plist_modes = {"sbin/pppd": "4555"}
    got = members(build(recipe, stage, outdir))
    assert got["sbin/pppd"][0].mode == 0o4555
    assert "@mode 4555\nsbin/pppd\n" in got["+CONTENTS"][1].decode()
    recipe.plist_modes = {"sbin/pppdd": "0600"}
    with pytest.raises(RecipeError, match="sbin/pppdd"):
        build(recipe, stage, outdir)


def test_display_only_with_message(setup):
    recipe, stage, outdir = setup
    recipe.message = "Load ppp_mppe before starting pppd.\n"
    got = members(build(recipe, stage, outdir))
    assert "Load ppp_mppe before starting pppd." in got["+DISPLAY"][1].decode()
    with tarfile.open(outdir / "ppp-mppe-2.4.9.tgz", "r:gz") as tar:
        assert tar.getnames().index("+DISPLAY") == 3


def test_plist_option_off_drops_lines(setup, tmp_path):
    recipe, _, outdir = setup
    stage = make_stage(tmp_path / "nokmod", kmod=False)
    with tarfile.open(build(recipe, stage, outdir, options={"kmod": False}), "r:gz") as tar:
        assert not any("ppp_mppe" in n for n in tar.getnames())


def test_read_plist_variables_and_options(tmp_path):
    plist = tmp_path / "PLIST"
    plist.write_text(PLIST)
    paths = read_plist(plist, {"PPPVER": "2.4.9", "KVER": "6.1"}, {"kmod": True})
    assert paths[-1] == "lib/modules/6.1/ppp_mppe.ko"
    assert len(read_plist(plist, {"PPPVER": "2.4.9"}, {"kmod": False})) == 4
    with pytest.raises(RecipeError, match=r"PLIST:4: unknown PLIST variable \$\{PPPVER\}"):
        read_plist(plist, {}, {"kmod": False})
    with pytest.raises(RecipeError, match=r"unknown PLIST option \$\{PLIST.kmod\}"):
        read_plist(plist, {"PPPVER": "x"}, {})
    plist.write_text("@comment $NetBSD$\n/usr/pkg/sbin/pppd\n")
    with pytest.raises(RecipeError, match="relative to PREFIX"):
        read_plist(plist, {}, {})


def test_per_os_plist_is_added(setup):
    recipe, stage, outdir = setup
    (stage / "sbin" / "bcrelay").write_bytes(b"relay")
    with pytest.raises(RecipeError, match="sbin/bcrelay"):
        build(recipe, stage, outdir)
    (recipe.dir / "PLIST.Linux").write_text("@comment $NetBSD$\nsbin/bcrelay\n")
    with tarfile.open(build(recipe, stage, outdir), "r:gz") as tar:
        assert tar.getnames()[-1] == "sbin/bcrelay"


def test_missing_files_are_listed(setup):
    recipe, stage, outdir = setup
    (stage / "sbin" / "pppd").unlink()
    (stage / "lib" / "pppd" / "2.4.9" / "minconn.so").unlink()
    with pytest.raises(RecipeError) as e:
        build(recipe, stage, outdir)
    assert "2 file(s) listed but not installed" in str(e.value)
    assert "sbin/pppd" in str(e.value) and "lib/pppd/2.4.9/minconn.so" in str(e.value)
    assert not outdir.exists() or list(outdir.iterdir()) == []


def test_extra_files_are_listed(setup):
    recipe, stage, outdir = setup
    (stage / "share" / "man").mkdir(parents=True)
    (stage / "share" / "man" / "pppd.8").write_text("man")
    (stage / "sbin" / "chat").write_text("chat")
    with pytest.raises(RecipeError) as e:
        build(recipe, stage, outdir)
    assert "2 installed file(s) missing from" in str(e.value)
    assert "sbin/chat" in str(e.value) and "share/man/pppd.8" in str(e.value)


def test_reproducible_across_builds_and_touches(setup, tmp_path):
    recipe, stage, outdir = setup
    first = build(recipe, stage, outdir).read_bytes()
    for p in stage.rglob("*"):
        if p.is_file() and not p.is_symlink():
            os.utime(p, (1, 1))
    (stage / "etc" / "ppp" / "chap-secrets").chmod(0o664)
    second = build(recipe, stage, outdir).read_bytes()
    assert first == second
    # the gzip header carries the fixed mtime and no file name (FLG.FNAME unset)
    assert first[3] & 0x08 == 0
    assert int.from_bytes(first[4:8], "little") == 1700000000


def test_no_temp_file_left_after_failure(setup, monkeypatch):
    recipe, stage, outdir = setup
    outdir.mkdir(parents=True)
    (outdir / "ppp-mppe-2.4.9.tgz").write_bytes(b"previous good package")
    import buildtool.package as pkg

    def explode(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(pkg.tarfile.TarFile, "addfile", explode)
    with pytest.raises(OSError, match="disk full"):
        build(recipe, stage, outdir)
    assert sorted(p.name for p in outdir.iterdir()) == ["ppp-mppe-2.4.9.tgz"]
    assert (outdir / "ppp-mppe-2.4.9.tgz").read_bytes() == b"previous good package"


def rewrite(src: Path, dest: Path, change) -> None:
    """Copy a package member by member, letting `change(name, data)` alter or drop (None) a member."""
    buf = io.BytesIO()
    with tarfile.open(src, "r:gz") as tin, \
            tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tout:
        for m in tin.getmembers():
            data = tin.extractfile(m).read() if m.isfile() else b""
            data = change(m.name, data)
            if data is None:
                continue
            m.size = len(data) if m.isfile() else 0
            tout.addfile(m, io.BytesIO(data) if m.isfile() else None)
    dest.write_bytes(gzip.compress(buf.getvalue()))


def test_verify_package_finds_corruption(setup, tmp_path):
    recipe, stage, outdir = setup
    good = build(recipe, stage, outdir)
    bad = tmp_path / "bad.tgz"
    dropped = ("+DESC", "lib/pppd/2.4.9/minconn.so")
    rewrite(good, bad, lambda n, d: b"tampered" if n == "sbin/pppd" else (None if n in dropped else d))
    problems = verify_package(bad)
    assert any("+DESC is missing" in p for p in problems)
    assert any("sbin/pppd: MD5 does not match" in p for p in problems)
    assert any("minconn.so is listed in +CONTENTS but not in the archive" in p for p in problems)
    assert any("+SIZE_PKG says" in p for p in problems)
    truncated = tmp_path / "truncated.tgz"
    truncated.write_bytes(good.read_bytes()[:200])
    assert verify_package(truncated) and "not a readable" in verify_package(truncated)[0]


def test_real_tar_lists_the_package(setup):
    recipe, stage, outdir = setup
    out = subprocess.run(["tar", "-tvzf", str(build(recipe, stage, outdir))], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0].split()[-1] == "+CONTENTS"
    secrets = next(line for line in out if line.endswith("etc/ppp/chap-secrets"))
    assert secrets.startswith("-rw------- root/wheel")
    assert any(line.endswith("lib/pppd/current -> 2.4.9") for line in out)


def test_pkgdeps_only_for_packaged_dependencies(tmp_path):
    ppp = make_recipe(tmp_path / "ppp-mppe", depends=["openssl"])
    ssl = make_recipe(tmp_path / "openssl", name="openssl", version="3.0.20", packaged=False)
    poptop = make_recipe(tmp_path / "poptop", name="poptop", version="1.4.0", depends=["ppp-mppe"])
    recipes = {r.name: r for r in (ppp, ssl, poptop)}
    assert pkgdeps(ppp, recipes) == []
    assert pkgdeps(poptop, recipes) == ["ppp-mppe>=2.4.9"]
    with pytest.raises(RecipeError, match="'nope'"):
        pkgdeps(make_recipe(tmp_path / "x", depends=["nope"]), recipes)


def test_source_date_epoch():
    assert source_date_epoch({}) == 0
    assert source_date_epoch({"SOURCE_DATE_EPOCH": "42"}) == 42
    with pytest.raises(UsageError, match="SOURCE_DATE_EPOCH"):
        source_date_epoch({"SOURCE_DATE_EPOCH": "yesterday"})
