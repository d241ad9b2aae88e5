"""The four userland packages built for real (openssl, ppp-mppe, poptop, pptp), checked on the results.

They use the session's one real build (tests/conftest.py: the repository's work tree through `package`
with the default kernel profile, the same tree `make package` and the VM suite use): the static OpenSSL
build dominates it (about two minutes on two cores), everything else takes seconds.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from buildtool import kmod
from buildtool.layout import PREFIX, Layout
from buildtool.plist import plist_sources, read_plists
from buildtool.recipe import load_all, load_recipe

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("openssl", "ppp-mppe", "poptop", "pptp")
PPPD_VERSION = "2.4.9"


@pytest.fixture(scope="module")
def built(built_layout: Layout) -> Layout:
    return built_layout


def _kernel_plist_vars(layout: Layout) -> dict[str, str]:
    log = layout.logs("ppp-mppe") / "kmod.log"
    target = kmod.resolve_target("linux-6.1", layout, {}, offline=True, log=log)
    return kmod.plist_vars(target, load_recipe(layout.root / "ppp-mppe"))


def _pppd(layout: Layout) -> Path:
    return layout.stage_prefix("ppp-mppe") / "sbin" / "pppd"


def _plugin(layout: Layout) -> Path:
    return layout.stage_prefix("poptop") / "lib" / "pptpd" / "pptpd-logwtmp.so"


def _load_plugin(pppd: Path, plugin: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(pppd), "plugin", str(plugin), "--version"], capture_output=True, text=True,
                          timeout=30)


def test_pppd_version(built: Layout) -> None:
    out = subprocess.run([str(_pppd(built)), "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    assert (out.stdout + out.stderr).strip() == f"pppd version {PPPD_VERSION}"


def test_pppd_links_our_static_openssl(built: Layout) -> None:
    pppd = _pppd(built)
    libs = subprocess.run(["ldd", str(pppd)], capture_output=True, text=True, check=True).stdout
    assert "libcrypto" not in libs and "libssl" not in libs, libs
    assert b"OpenSSL 3.0.20 " in pppd.read_bytes()


def test_pppd_has_its_own_md5_sha1_renamed(built: Layout) -> None:
    symbols = subprocess.run(["nm", str(_pppd(built))], capture_output=True, text=True, check=True).stdout
    for name in ("pppd_MD5_Init", "pppd_SHA1_Init"):
        assert f" T {name}\n" in symbols


def test_plugin_loads_into_staged_pppd(built: Layout) -> None:
    out = _load_plugin(_pppd(built), _plugin(built))
    assert out.returncode == 0, out.stderr
    assert "is for pppd version" not in out.stderr
    assert f"Plugin {_plugin(built)} loaded." in out.stdout + out.stderr


def test_plugin_for_another_pppd_version_is_refused(built: Layout, tmp_path: Path) -> None:
    """Negative control of the check above: the same plugin built against headers claiming 2.4.8."""
    include = tmp_path / "include"
    shutil.copytree(built.stage_prefix("ppp-mppe") / "include", include)
    patchlevel = include / "pppd" / "patchlevel.h"
    text = patchlevel.read_text()
    assert f'"{PPPD_VERSION}"' in text
    patchlevel.write_text(text.replace(f'"{PPPD_VERSION}"', '"2.4.8"'))
    source = built.srcdir("poptop") / "pptpd-1.4.0" / "plugins" / "pptpd-logwtmp.c"
    fake = tmp_path / "pptpd-logwtmp.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", f"-I{include}", "-o", str(fake), str(source), "-lutil"],
                   check=True)
    out = _load_plugin(_pppd(built), fake)
    assert out.returncode != 0
    assert f"is for pppd version 2.4.8, this is {PPPD_VERSION}" in out.stderr


def test_compiled_in_pppd_paths(built: Layout) -> None:
    config = (built.srcdir("pptp") / "pptp-1.10.0" / "config.h").read_text()
    assert f'#define PPPD_BINARY "{PREFIX}/sbin/pppd"' in config.splitlines()
    pptpctrl = built.stage_prefix("poptop") / "sbin" / "pptpctrl"
    assert f"{PREFIX}/sbin/pppd\0".encode() in pptpctrl.read_bytes()


@pytest.mark.parametrize("name", ["ppp-mppe", "poptop", "pptp"])
def test_stage_matches_plist(built: Layout, name: str) -> None:
    recipe = load_all(ROOT)[name]
    kernel = recipe.kernel_patches != ""
    variables = {**recipe.plist_vars, **(_kernel_plist_vars(built) if kernel else {})}
    sources = plist_sources(recipe.dir, "Linux")
    listed = read_plists(sources, variables, {"kmod": kernel})
    for source in sources:  # each sorted; PLIST.Linux follows PLIST
        one = read_plists([source], variables, {"kmod": kernel})
        assert one == sorted(one), f"{source.name} must be sorted"
    stage = built.stage_prefix(name)
    staged = sorted(str(p.relative_to(stage)) for p in stage.rglob("*") if p.is_file() or p.is_symlink())
    assert staged == sorted(listed)


@pytest.mark.parametrize("name", PACKAGES)
def test_nothing_staged_outside_prefix(built: Layout, name: str) -> None:
    stage = built.stage(name)
    first, second = PREFIX.strip("/").split("/")
    assert [p.name for p in stage.iterdir()] == [first]
    assert [p.name for p in (stage / first).iterdir()] == [second]


def test_secrets_examples_are_root_only(built: Layout) -> None:
    recipe = load_all(ROOT)["ppp-mppe"]
    for secrets in ("chap-secrets", "pap-secrets"):
        assert recipe.plist_modes[f"share/examples/ppp/{secrets}"] == "0600"
    with tarfile.open(built.packages_all / f"{recipe.pkgname}.tgz") as tar:
        member = tar.getmember("share/examples/ppp/chap-secrets")
        assert member.mode & 0o7777 == 0o600
