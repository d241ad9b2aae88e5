"""The in-process outcome recorder (buildtool.pytest_outcomes, read by buildtool.outcomes): a real pytest
session in a subprocess, run the way `buildtool test` runs the VM and rump scenarios (vm.suite.run_pytest),
plain and under pytest-xdist."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from buildtool.outcomes import Outcome, outcomes_path, read_outcomes
from buildtool.pytest_outcomes import merge
from buildtool.vm.suite import run_pytest

SCENARIOS = '''
import pytest

from buildtool.errors import HarnessError, TestFailure


class ConsoleLost(HarnessError):
    """A subclass: still the harness, whatever its message says."""


@pytest.fixture
def breaks_on_teardown():
    yield
    raise HarnessError("QEMU went away while collecting logs")


@pytest.fixture
def cleanup_fails():
    yield
    raise RuntimeError("could not remove a scratch file")


@pytest.fixture
def setup_fails():
    raise TestFailure("the guest did not come up")


def test_passes():
    pass


def test_fails():
    assert 1 + 1 == 3, "arithmetic"


def test_harness():
    raise HarnessError("console lost")


def test_harness_subclass():
    raise ConsoleLost("TestFailure: a message that looks like the product's fault")


def test_product_message_mentions_the_harness():
    raise TestFailure("HarnessError: the peer said so")


def test_skips():
    pytest.skip("needs netbsd-rump-src-2016.tar.xz")


def test_fails_then_teardown_harness(breaks_on_teardown):
    raise TestFailure("MPPE-128 not negotiated")


def test_passes_then_teardown_error(cleanup_fails):
    pass


def test_setup_error(setup_fails):
    pass


@pytest.mark.parametrize("size", [64, 50000])
def test_ping(size):
    assert size < 1000
'''

EXPECTED = {
    "test_passes": "passed",
    "test_fails": "failed",
    "test_harness": "failed",
    "test_harness_subclass": "failed",
    "test_product_message_mentions_the_harness": "failed",
    "test_skips": "skipped",
    "test_fails_then_teardown_harness": "failed",  # the teardown error after a failure keeps the failure
    "test_passes_then_teardown_error": "error",
    "test_setup_error": "error",
    "test_ping[64]": "passed",
    "test_ping[50000]": "failed",
}


def _run(tmp_path: Path, *extra: str) -> tuple[Outcome, dict]:
    scenarios = tmp_path / "test_scenarios.py"
    scenarios.write_text(textwrap.dedent(SCENARIOS))
    junit = tmp_path / "results" / "junit.xml"
    cmd = [sys.executable, "-m", "pytest", str(scenarios), "-p", "no:cacheprovider", "-q",
           f"--junitxml={junit}", "-o", "junit_family=xunit1", *extra]
    outcome = run_pytest(cmd, junit, tmp_path, dict(os.environ), "the sample scenarios", str(junit))
    return outcome, json.loads(outcomes_path(junit).read_text())


def _check(outcome: Outcome, recorded: dict) -> None:
    assert outcome.returncode == 1
    assert outcome.tests == EXPECTED
    assert outcome.harness_broke
    assert outcome.messages["test_skips"] == "needs netbsd-rump-src-2016.tar.xz"
    assert outcome.messages["test_harness"] == "buildtool.errors.HarnessError: console lost"
    assert outcome.failed() == sorted(n for n, s in EXPECTED.items() if s in ("failed", "error"))

    by_name = {t["name"]: t for t in recorded["tests"].values()}
    assert set(by_name) == set(EXPECTED)
    harness = {n for n, t in by_name.items() if any(e["harness_error"] for e in t["exceptions"])}
    assert harness == {"test_harness", "test_harness_subclass", "test_fails_then_teardown_harness"}
    classes = {n: [(e["when"], e["class"]) for e in t["exceptions"]] for n, t in by_name.items()}
    assert classes["test_harness_subclass"] == [("call", "test_scenarios.ConsoleLost")]
    assert classes["test_product_message_mentions_the_harness"] == [("call", "buildtool.errors.TestFailure")]
    assert classes["test_fails_then_teardown_harness"] == [("call", "buildtool.errors.TestFailure"),
                                                          ("teardown", "buildtool.errors.HarnessError")]
    assert classes["test_passes_then_teardown_error"] == [("teardown", "RuntimeError")]
    assert classes["test_fails"] == [("call", "AssertionError")]
    assert classes["test_passes"] == [] and classes["test_skips"] == []


def _junit_untouched(tmp_path: Path) -> None:
    """The JUnit XML is still written for people, without our bookkeeping in it; no temp file is left."""
    root = ET.parse(tmp_path / "results" / "junit.xml").getroot()
    assert {case.get("name") for case in root.iter("testcase")} == set(EXPECTED)
    assert not [p for p in root.iter("property") if p.get("name", "").startswith("buildtool.")]
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["junit.outcomes.json", "junit.xml"]


def test_outcomes_recorded_by_exception_class(tmp_path):
    outcome, recorded = _run(tmp_path)
    _check(outcome, recorded)
    _junit_untouched(tmp_path)


def test_outcomes_recorded_under_xdist(tmp_path):
    """Under `-n 2` the reports are made on two workers; the controller alone writes the file."""
    outcome, recorded = _run(tmp_path, "-n", "2")
    _check(outcome, recorded)
    _junit_untouched(tmp_path)


def test_a_green_run_is_green_and_a_stale_file_is_not_read(tmp_path):
    scenarios = tmp_path / "test_green.py"
    scenarios.write_text("def test_one():\n    pass\n")
    junit = tmp_path / "junit.xml"
    outcomes_path(junit).write_text('{"tests": {"x::test_old": {"name": "test_old", "outcome": "failed", '
                                    '"message": "", "exceptions": [{"harness_error": true}]}}}')
    cmd = [sys.executable, "-m", "pytest", str(scenarios), "-p", "no:cacheprovider", "-q",
           f"--junitxml={junit}"]
    outcome = run_pytest(cmd, junit, tmp_path, dict(os.environ), "one green test", str(junit))
    assert (outcome.returncode, outcome.tests, outcome.harness_broke) == (0, {"test_one": "passed"}, False)


def test_pytest_dying_before_the_end_leaves_nothing_to_read(tmp_path):
    """A run that writes no file (pytest killed) is known by its exit status only, never by old results."""
    outcome = read_outcomes(tmp_path / "junit.xml", -9)
    assert (outcome.tests, outcome.harness_broke, outcome.returncode) == ({}, False, -9)


@pytest.mark.parametrize("before, now, result", [
    (None, None, None), (None, "passed", "passed"), ("passed", "error", "error"),
    ("failed", "error", "failed"), ("error", "passed", "error"), (None, "skipped", "skipped"),
])
def test_merge_keeps_the_first_failure(before, now, result):
    assert merge(before, now) == result
