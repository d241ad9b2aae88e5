"""Issue 8 (reliability): each promise checked on the synthetic repository of tests/synthetic.py or on the
real code paths it names. Grouped by the item of the issue they prove."""

from __future__ import annotations

import os
import textwrap

from synthetic import bt

from buildtool.cli import main
from buildtool.vm.suite import layout_from_env

# --- item 8: `buildtool test` uses --packages and --work, and --dry-run boots nothing ----------------------

def test_test_packages_dir_missing_packages_is_an_input_error(repo, tmp_path, capsys):
    pk = tmp_path / "pk"
    assert main(["test", "--packages", str(pk), "--dry-run"]) == 11
    err = capsys.readouterr().err
    assert f"{pk}/All/hello-1.0.tgz: missing" in err and "not a verdict on the product" in err


def test_test_packages_dir_is_booted_as_is_and_dry_run_runs_nothing(repo, tmp_path, capsys):
    pk = tmp_path / "pk"
    assert bt("package", "--packages", str(pk)) == 0
    capsys.readouterr()
    assert main(["test", "--packages", str(pk), "--dry-run", "--results", str(tmp_path / "res")]) == 0
    err = capsys.readouterr().err
    assert f"{pk}/All/hello-1.0.tgz" in err and "nothing is built" in err and "nothing was run" in err
    assert not (tmp_path / "res").exists()


def test_test_dry_run_does_not_start_the_suite(repo, tmp_path, capsys):
    assert main(["test", "--dry-run", "--results", str(tmp_path / "res")]) == 0
    assert "nothing was run" in capsys.readouterr().err
    assert not (tmp_path / "res").exists()


def test_test_passes_work_and_packages_to_the_suite(repo, tmp_path, capsys):
    """A real pytest subprocess, as `buildtool test` starts it, sees the trees the command line named."""
    probe = repo / "tests" / "vm" / "test_probe.py"
    probe.parent.mkdir(parents=True)
    seen = tmp_path / "seen"
    probe.write_text(textwrap.dedent(f"""
        import os, pytest
        from buildtool.vm.suite import layout_from_env

        @pytest.mark.vm
        def test_probe():
            layout, prebuilt = layout_from_env(os.environ)
            open({str(seen)!r}, "w").write(f"{{layout.work}}\\n{{layout.packages}}\\n{{prebuilt}}\\n")
    """))
    pk, work = tmp_path / "pk", tmp_path / "w"
    assert bt("package", "--packages", str(pk)) == 0
    assert main(["test", "--packages", str(pk), "--work", str(work), "--results", str(tmp_path / "r")]) == 0
    assert seen.read_text().splitlines() == [str(work), str(pk), "True"]
    assert main(["test", "--work", str(work), "--results", str(tmp_path / "r")]) == 0
    assert seen.read_text().splitlines() == [str(work), str(repo / "packages"), "False"]


def test_layout_from_env_defaults_to_the_checkout(repo):
    layout, prebuilt = layout_from_env({})
    assert (layout.work, layout.packages, prebuilt) == (repo / "work", repo / "packages", False)
    assert os.environ.get("BUILDTOOL_VM_PREBUILT") is None


def test_test_control_with_prebuilt_packages_is_refused(repo, tmp_path, capsys):
    assert main(["test", "--control", "--packages", str(tmp_path), "--dry-run"]) == 2
    assert "--control" in capsys.readouterr().err
