"""The patch phase with real GNU patch on small trees and series written here."""

from __future__ import annotations

import difflib
import os
import subprocess
from pathlib import Path

import pytest

from buildtool.distinfo import patch_sha1, read_distinfo, write_distinfo
from buildtool.errors import ChecksumError, PatchError
from buildtool.patch import apply_series, c_locale_key, check_header, series

TIMEOUT = 30  # seconds: a patch that waited for an answer would fail the test instead of hanging it

MAKEFILE = "".join(f"line {i}\n" for i in range(1, 41))
MAIN_C = "#include <stdio.h>\n\nint main(void)\n{\n\tputs(\"hello\");\n\treturn 0;\n}\n"


# --- helpers ----------------------------------------------------------------------------------------------


def make_tree(root: Path) -> Path:
    tree = root / "work" / "pkg-1.0"
    (tree / "src").mkdir(parents=True)
    (tree / "Makefile.linux").write_text(MAKEFILE)
    (tree / "src" / "main.c").write_text(MAIN_C)
    return tree


def udiff(path: str, old: str, new: str) -> str:
    """A unified diff in pkgsrc's form (`--- path.orig` / `+++ path`)."""
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        fromfile=f"{path}.orig", tofile=path))


def write_patch(patch_dir: Path, name: str, diff: str,
                comment: str = "Explain why this change is needed.") -> Path:
    patch_dir.mkdir(parents=True, exist_ok=True)
    path = patch_dir / name
    path.write_text(f"$NetBSD$\n\n{comment}\n\n{diff}")
    return path


def write_sums(recipe_dir: Path, patches: list[Path], override: dict[str, str] | None = None):
    sums = {p.name: patch_sha1(p) for p in patches}
    sums.update(override or {})
    write_distinfo(recipe_dir / "distinfo", [], sums)
    return read_distinfo(recipe_dir / "distinfo")


def replace_line(text: str, n: int, new: str) -> str:
    lines = text.splitlines(keepends=True)
    lines[n - 1] = new
    return "".join(lines)


def tree_state(tree: Path) -> dict[str, bytes]:
    return {str(p.relative_to(tree)): p.read_bytes() for p in sorted(tree.rglob("*")) if p.is_file()}


@pytest.fixture
def setup(tmp_path):
    tree = make_tree(tmp_path)
    return tree, tmp_path / "patches" / "pkg", tmp_path / "pkg", tmp_path / "work" / "logs" / "patch.log"


# --- the series -------------------------------------------------------------------------------------------


def test_series_is_in_c_locale_order(tmp_path):
    names = ["patch-c", "patch-ba", "patch-ab", "patch-a2", "patch-aa", "patch-a10", "patch-b1", "patch-d"]
    for n in names:
        (tmp_path / n).write_text("x")
    got = [p.name for p in series(tmp_path)]
    # bytes order: digits before letters, and a10 before a2 (no "natural" number sorting)
    assert got == ["patch-a10", "patch-a2", "patch-aa", "patch-ab", "patch-b1", "patch-ba", "patch-c",
                   "patch-d"]


def test_sort_key_matches_ls_in_the_c_locale(tmp_path):
    # names series() would refuse, but the order must still be the C locale's, not a dictionary order
    names = ["patch-a", "patch-B", "patch-_x", "patch-Z", "patch-ab", "patch-Aa", "patch-0"]
    for n in names:
        (tmp_path / n).write_text("x")
    ls = subprocess.run(["ls", "-1"], cwd=tmp_path, capture_output=True, text=True, check=True,
                        timeout=TIMEOUT, env={**os.environ, "LC_ALL": "C"}).stdout.split()
    ours = [p.name for p in sorted(tmp_path.iterdir(), key=c_locale_key)]
    assert ours == ls == ["patch-0", "patch-Aa", "patch-B", "patch-Z", "patch-_x", "patch-a", "patch-ab"]


def test_series_ignores_subdirectories_and_hidden_files(tmp_path):
    (tmp_path / "patch-aa").write_text("x")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "patch-zz").write_text("x")
    (tmp_path / ".patch-aa.swp").write_text("x")
    assert [p.name for p in series(tmp_path)] == ["patch-aa"]


def test_missing_patch_dir_means_no_patches(tmp_path):
    assert series(tmp_path / "nothing-here") == []


@pytest.mark.parametrize("include,exclude,expected", [
    ("", "", ["patch-aa", "patch-ab", "patch-b1", "patch-ca", "patch-cb", "patch-d"]),
    ("patch-c*", "", ["patch-ca", "patch-cb"]),
    ("", "patch-c*", ["patch-aa", "patch-ab", "patch-b1", "patch-d"]),
    ("patch-a* patch-d", "", ["patch-aa", "patch-ab", "patch-d"]),
    ("patch-a*", "patch-ab", ["patch-aa"]),
    ("patch-C*", "", []),  # globs are case-sensitive on every host
])
def test_include_and_exclude_globs(tmp_path, include, exclude, expected):
    for n in ["patch-d", "patch-cb", "patch-ca", "patch-b1", "patch-ab", "patch-aa"]:
        (tmp_path / n).write_text("x")
    assert [p.name for p in series(tmp_path, include=include, exclude=exclude)] == expected


@pytest.mark.parametrize("leftover", ["patch-aa.orig", "patch-aa.rej", "patch-aa~"])
def test_leftovers_in_the_patch_dir_are_refused(tmp_path, leftover):
    (tmp_path / "patch-aa").write_text("x")
    (tmp_path / leftover).write_text("x")
    with pytest.raises(PatchError, match="leftover") as err:
        series(tmp_path, include="patch-zz")  # refused even when the filter would not select it
    assert leftover in str(err.value)


@pytest.mark.parametrize("bad", ["patch-AA", "patch-a_b", "patch-aa.diff", "patch-1a", "README", "patch-"])
def test_misnamed_files_are_refused(tmp_path, bad):
    (tmp_path / bad).write_text("x")
    with pytest.raises(PatchError, match="is not a patch name") as err:
        series(tmp_path)
    assert bad in str(err.value)


# --- the header -------------------------------------------------------------------------------------------

DIFF = udiff("src/main.c", MAIN_C, MAIN_C.replace("hello", "hello, world"))


@pytest.mark.parametrize("text", [
    f"$NetBSD$\n\nWhy: say hello to the world.\n\n{DIFF}",
    f"$NetBSD: patch-aa,v 1.2 2021/01/01 00:00:00 someone Exp $\n\nWhy: in pkgsrc's expanded form.\n\n{DIFF}",
])
def test_good_headers_pass(tmp_path, text):
    (tmp_path / "patch-aa").write_text(text)
    check_header(tmp_path / "patch-aa")


@pytest.mark.parametrize("text,complaint", [
    (f"Why: say hello.\n\n{DIFF}", r"must start with a `\$NetBSD\$` line"),
    (f"\n$NetBSD$\n\nWhy.\n\n{DIFF}", r"must start with a `\$NetBSD\$` line"),
    (f"$NetBSD$\n\n{DIFF}", "no comment saying why"),
    (f"$NetBSD$\n\n\n\ndiff -u src/main.c.orig src/main.c\n{DIFF}", "no comment saying why"),
    ("$NetBSD$\n\nOnly a comment, no diff.\n", "holds no unified diff"),
    ("", r"must start with a `\$NetBSD\$` line"),
])
def test_bad_headers_are_refused(tmp_path, text, complaint):
    (tmp_path / "patch-aa").write_text(text)
    with pytest.raises(PatchError, match=complaint) as err:
        check_header(tmp_path / "patch-aa")
    assert "patch-aa" in str(err.value)


# --- applying ---------------------------------------------------------------------------------------------


def test_series_applies_in_order_and_returns_the_names(setup):
    tree, pdir, recipe, log = setup
    step1 = replace_line(MAKEFILE, 5, "line 5 for linux\n")
    step2 = replace_line(step1, 5, "line 5 for linux with mppe\n")  # only applies on top of patch-aa
    patches = [
        write_patch(pdir, "patch-aa", udiff("Makefile.linux", MAKEFILE, step1)),
        write_patch(pdir, "patch-ab", udiff("src/main.c", MAIN_C, MAIN_C.replace("hello", "mppe"))),
        write_patch(pdir, "patch-ba", udiff("Makefile.linux", step1, step2)),
    ]
    info = write_sums(recipe, patches)
    applied = apply_series(series(pdir), info, tree, log, timeout=TIMEOUT)
    assert applied == ["patch-aa", "patch-ab", "patch-ba"]
    assert (tree / "Makefile.linux").read_text() == step2
    assert "mppe" in (tree / "src" / "main.c").read_text()
    assert sorted(tree_state(tree)) == ["Makefile.linux", "src/main.c"]  # no .orig or .rej left
    text = log.read_text()
    assert "--dry-run" in text and "-F0" in text
    assert text.index("patch-aa") < text.index("patch-ab") < text.index("patch-ba")


def test_no_patches_is_nothing_to_do(setup):
    tree, pdir, recipe, log = setup
    before = tree_state(tree)
    assert apply_series([], write_sums(recipe, []), tree, log) == []
    assert tree_state(tree) == before


def test_checksum_mismatch_is_refused_before_anything_changes(setup):
    tree, pdir, recipe, log = setup
    aa = write_patch(pdir, "patch-aa", udiff("Makefile.linux", MAKEFILE, replace_line(MAKEFILE, 3, "x\n")))
    ab = write_patch(pdir, "patch-ab", udiff("src/main.c", MAIN_C, MAIN_C.replace("hello", "bye")))
    info = write_sums(recipe, [aa, ab], override={"patch-ab": "0" * 40})
    before = tree_state(tree)
    with pytest.raises(ChecksumError, match="SHA1 mismatch for patch patch-ab") as err:
        apply_series([aa, ab], info, tree, log, timeout=TIMEOUT)
    assert "makepatchsum" in str(err.value)
    assert tree_state(tree) == before  # not even patch-aa, whose sum was right


def test_netbsd_id_line_is_not_part_of_the_checksum(setup):
    tree, pdir, recipe, log = setup
    aa = write_patch(pdir, "patch-aa", DIFF)
    info = write_sums(recipe, [aa])
    aa.write_text(aa.read_text().replace("$NetBSD$", "$NetBSD: patch-aa,v 1.3 2024/05/05 12:00:00 me Exp $"))
    assert apply_series([aa], info, tree, log, timeout=TIMEOUT) == ["patch-aa"]


def test_patch_missing_from_distinfo(setup):
    tree, pdir, recipe, log = setup
    aa = write_patch(pdir, "patch-aa", DIFF)
    ab = write_patch(pdir, "patch-ab", udiff("Makefile.linux", MAKEFILE, replace_line(MAKEFILE, 3, "x\n")))
    info = write_sums(recipe, [aa])
    before = tree_state(tree)
    with pytest.raises(ChecksumError, match="no SHA1 entry for patch patch-ab"):
        apply_series([aa, ab], info, tree, log, timeout=TIMEOUT)
    assert tree_state(tree) == before


def test_failing_hunk_is_named_and_its_patch_leaves_the_tree_alone(setup):
    tree, pdir, recipe, log = setup
    aa = write_patch(pdir, "patch-aa", udiff("src/main.c", MAIN_C, MAIN_C.replace("hello", "mppe")))
    # patch-ab: hunk #1 fits, hunk #2 was made against a Makefile whose line 30 differs
    other = replace_line(MAKEFILE, 30, "line 30 in some other release\n")
    wanted = replace_line(replace_line(other, 5, "five\n"), 30, "thirty\n")
    ab = write_patch(pdir, "patch-ab", udiff("Makefile.linux", other, wanted))
    info = write_sums(recipe, [aa, ab])
    with pytest.raises(PatchError) as err:
        apply_series([aa, ab], info, tree, log, timeout=TIMEOUT)
    message = str(err.value)
    second_hunk = [n for n, line in enumerate(ab.read_text().splitlines(), 1) if line.startswith("@@")][1]
    expected = f"patch-ab: hunk #2 FAILED at 27 in Makefile.linux (hunk at line {second_hunk} of patch-ab)"
    assert expected in message
    assert "hunk #1" not in message
    assert f"left as it is for inspection: {tree}" in message
    assert "applied before it: patch-aa" in message
    assert str(log) in message
    assert (tree / "Makefile.linux").read_text() == MAKEFILE  # hunk #1 was not applied either
    assert "mppe" in (tree / "src" / "main.c").read_text()  # patch-aa stays
    assert sorted(tree_state(tree)) == ["Makefile.linux", "src/main.c"]
    assert "Hunk #2 FAILED" in log.read_text()


def test_fuzz_is_refused(setup):
    tree, pdir, recipe, log = setup
    # made against a Makefile whose first context line differs: GNU patch would take it with fuzz 1
    other = replace_line(MAKEFILE, 17, "line 17, reworded\n")
    ab = write_patch(pdir, "patch-ab", udiff("Makefile.linux", other, replace_line(other, 20, "twenty\n")))
    fuzzy = subprocess.run(["patch", "-p0", "-F1", "--batch", "--dry-run", "-i", str(ab)], cwd=tree,
                           capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=TIMEOUT,
                           env={**os.environ, "LC_ALL": "C"})
    assert fuzzy.returncode == 0 and "with fuzz 1" in fuzzy.stdout, "premise: the hunk applies with fuzz"
    info = write_sums(recipe, [ab])
    with pytest.raises(PatchError, match="patch-ab: hunk #1 FAILED at 17 in Makefile.linux"):
        apply_series([ab], info, tree, log, timeout=TIMEOUT)
    assert (tree / "Makefile.linux").read_text() == MAKEFILE


def test_missing_target_file_fails_without_prompting(setup):
    tree, pdir, recipe, log = setup
    ab = write_patch(pdir, "patch-ab", udiff("pppd/nothere.c", "a\nb\nc\n", "a\nB\nc\n"))
    info = write_sums(recipe, [ab])
    with pytest.raises(PatchError) as err:
        apply_series([ab], info, tree, log, timeout=TIMEOUT)
    assert "patch-ab: can't find file to patch (patch input line 7) in pppd/nothere.c" in str(err.value)
    assert not (tree / "pppd").exists()
    text = log.read_text()
    assert "No file to patch" in text
    assert "File to patch:" not in text and "Skip this patch?" not in text  # patch never asked


def test_already_applied_patch_is_reported_as_reversed(setup):
    tree, pdir, recipe, log = setup
    aa = write_patch(pdir, "patch-aa", DIFF)
    info = write_sums(recipe, [aa])
    apply_series([aa], info, tree, log, timeout=TIMEOUT)
    patched = tree_state(tree)
    with pytest.raises(PatchError, match=r"patch-aa: reversed \(or previously applied\) in src/main.c"):
        apply_series([aa], info, tree, log, timeout=TIMEOUT)
    assert tree_state(tree) == patched


def test_header_is_checked_before_anything_changes(setup):
    tree, pdir, recipe, log = setup
    aa = write_patch(pdir, "patch-aa", DIFF)
    ab = write_patch(pdir, "patch-ab", udiff("Makefile.linux", MAKEFILE, replace_line(MAKEFILE, 3, "x\n")),
                     comment="")
    info = write_sums(recipe, [aa, ab])
    before = tree_state(tree)
    with pytest.raises(PatchError, match="patch-ab has no comment"):
        apply_series([aa, ab], info, tree, log, timeout=TIMEOUT)
    assert tree_state(tree) == before


def test_missing_tree_and_duplicate_names(setup, tmp_path):
    tree, pdir, recipe, log = setup
    aa = write_patch(pdir, "patch-aa", DIFF)
    info = write_sums(recipe, [aa])
    with pytest.raises(PatchError, match="does not exist; run `buildtool extract`"):
        apply_series([aa], info, tmp_path / "no-tree", log, timeout=TIMEOUT)
    twin = write_patch(tmp_path / "elsewhere", "patch-aa", DIFF)
    with pytest.raises(PatchError, match="patch-aa is in the series twice"):
        apply_series([aa, twin], info, tree, log, timeout=TIMEOUT)
