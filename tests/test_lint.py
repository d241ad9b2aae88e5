"""Linters run as tests: ruff over the Python code, and the shell scripts parsed as POSIX sh."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _ruff() -> str:
    beside = Path(sys.executable).with_name("ruff")
    return str(beside) if beside.exists() else (shutil.which("ruff") or "ruff")


def test_ruff_clean():
    out = subprocess.run([_ruff(), "check", "--output-format", "concise", "buildtool", "tests", "bench"],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_setup_script_is_posix_sh():
    # dash is Debian's /bin/sh; -n parses without running
    out = subprocess.run(["sh", "-n", str(ROOT / "scripts" / "setup")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_readme_exit_code_table_matches_the_error_classes():
    import re

    from buildtool.errors import EXIT_CODES

    readme = (ROOT / "README.md").read_text()
    documented = {int(n) for n in re.findall(r"^\| (\d+) \|", readme, re.M)}
    assert documented == {code for code, _ in EXIT_CODES}
