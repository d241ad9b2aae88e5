"""Recipe schema: every real recipe loads; bad recipes fail naming the file and the key."""

from pathlib import Path

import pytest

from buildtool.errors import RecipeError, UsageError
from buildtool.recipe import FIELDS, load_all, load_recipe, select

ROOT = Path(__file__).resolve().parent.parent

GOOD = """
[package]
name = "demo"
version = "1.0"
comment = "a demo"
description = "demo package"
homepage = "https://example.org/"
license = "mit"

[[distfile]]
name = "demo-1.0.tar.gz"
sites = ["https://example.org/dist/"]

[build]
wrksrc = "demo-1.0"
build = [["make", "-j{{ jobs }}"]]
"""


def write_recipe(tmp_path: Path, text: str, name: str = "demo") -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "recipe.toml").write_text(text)
    return d


def test_real_recipes_load_in_dependency_order():
    recipes = load_all(ROOT)
    assert {"ppp-mppe", "poptop", "openssl", "pptp"} <= set(recipes)
    order = [r.name for r in select(recipes, ["poptop"])]
    assert order == ["openssl", "ppp-mppe", "poptop"]
    for r in recipes.values():
        assert r.distfiles and all(s.endswith("/") for d in r.distfiles for s in d.sites)
        # upstream master sites first, Debian's archive as a mirror after them
        assert all(d.debian is not None for d in r.distfiles)


def test_good_recipe_defaults(tmp_path):
    r = load_recipe(write_recipe(tmp_path, GOOD))
    assert r.pkgname == "demo-1.0"
    assert r.categories == ["net"] and r.depends == [] and r.packaged is True
    assert r.build == [["make", "-j{{ jobs }}"]]


@pytest.mark.parametrize("drop", ["version", "comment", "license"])
def test_missing_required_key_names_file_and_key(tmp_path, drop):
    text = "\n".join(line for line in GOOD.splitlines() if not line.startswith(f"{drop} ="))
    d = write_recipe(tmp_path, text)
    with pytest.raises(RecipeError) as e:
        load_recipe(d)
    assert str(d / "recipe.toml") in str(e.value)
    assert f"'package.{drop}'" in str(e.value)


def test_unknown_key_names_file_and_key(tmp_path):
    d = write_recipe(tmp_path, GOOD.replace('license = "mit"', 'license = "mit"\nlicence = "typo"'))
    with pytest.raises(RecipeError, match=r"unknown key 'package.licence'") as e:
        load_recipe(d)
    assert str(d / "recipe.toml") in str(e.value)


def test_unknown_section(tmp_path):
    d = write_recipe(tmp_path, GOOD + "\n[biuld]\nx = 1\n")
    with pytest.raises(RecipeError, match=r"unknown section \[biuld\]"):
        load_recipe(d)


def test_bad_argv_type(tmp_path):
    d = write_recipe(tmp_path, GOOD.replace('build = [["make", "-j{{ jobs }}"]]', 'build = ["make all"]'))
    with pytest.raises(RecipeError, match=r"'build.build\[0\]' must be a non-empty list of strings"):
        load_recipe(d)


def test_site_must_be_a_directory_url(tmp_path):
    d = write_recipe(tmp_path, GOOD.replace("https://example.org/dist/", "https://example.org/dist"))
    with pytest.raises(RecipeError, match="ending in '/'"):
        load_recipe(d)


def test_name_must_match_directory(tmp_path):
    d = write_recipe(tmp_path, GOOD, name="other")
    with pytest.raises(RecipeError, match="directory is 'other'"):
        load_recipe(d)


def test_unknown_package_lists_known():
    with pytest.raises(UsageError, match="unknown package 'pppd'.*ppp-mppe"):
        select(load_all(ROOT), ["pppd"])


def test_schema_rows_all_have_help():
    assert all(f.help for f in FIELDS)
    keys = [(f.section, f.key) for f in FIELDS]
    assert len(keys) == len(set(keys))


def test_kmod_mppe_choice_defaults_to_ours_and_rejects_others(tmp_path):
    assert load_recipe(write_recipe(tmp_path, GOOD)).kernel_mppe == "ours"
    assert load_recipe(ROOT / "ppp-mppe").kernel_mppe == "ours"
    (tmp_path / "s").mkdir()
    (tmp_path / "b").mkdir()
    stock = write_recipe(tmp_path / "s", GOOD + '\n[kmod]\nmppe = "stock"\n')
    assert load_recipe(stock).kernel_mppe == "stock"
    bad = write_recipe(tmp_path / "b", GOOD + '\n[kmod]\nmppe = "linux"\n')
    with pytest.raises(RecipeError, match=r"key 'kmod.mppe' is 'linux'; expected one of ours, stock") as e:
        load_recipe(bad)
    assert str(bad / "recipe.toml") in str(e.value)
