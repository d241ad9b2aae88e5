"""The pytest plugin that records what each test did: `-p buildtool.pytest_outcomes
--buildtool-outcomes=PATH` (buildtool.outcomes reads the file).

Under pytest-xdist the reports are made on the workers and logged on the controller: the worker side
(`pytest_runtest_makereport`) puts the exception of a failed phase into the report's user_properties, which
travel with the report; the controller side (`pytest_runtest_logreport`, `pytest_sessionfinish`) collects
them, takes them out of the report again (the JUnit XML stays as it was) and writes the file once (temp +
rename). Without xdist both sides run in the one process.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .errors import HarnessError
from .fsutil import write_if_changed
from .outcomes import FAILED, OPTION

PROPERTY = "buildtool.exception"  # (qualified class name, is a HarnessError, first line of the message)


def pytest_addoption(parser) -> None:
    parser.addoption(OPTION, metavar="PATH", default=None,
                     help="write each test's outcome and exception class to PATH (JSON; buildtool test)")


def pytest_configure(config) -> None:
    path = config.getoption(OPTION)
    if path and not hasattr(config, "workerinput"):  # xdist workers report to the controller instead
        config.pluginmanager.register(Recorder(Path(path)), "buildtool-outcomes-recorder")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Worker side: name the exception of a failed phase in the report's user_properties."""
    report = (yield).get_result()
    if call.excinfo is not None and report.failed:
        t = call.excinfo.type
        text = str(call.excinfo.value).strip().splitlines()
        report.user_properties.append((PROPERTY, (qualified_name(t), issubclass(t, HarnessError),
                                                  text[0] if text else "")))


def qualified_name(t: type) -> str:
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


class Recorder:
    """Controller side: one entry per test id, written to `path` at the end of the session."""

    def __init__(self, path: Path):
        self.path = path
        self.tests: dict[str, dict] = {}

    @pytest.hookimpl(tryfirst=True)  # before junitxml, which would copy our property into the XML
    def pytest_runtest_logreport(self, report) -> None:
        mine = [tuple(v) for k, v in report.user_properties if k == PROPERTY]
        report.user_properties[:] = [p for p in report.user_properties if p[0] != PROPERTY]
        entry = self.tests.setdefault(report.nodeid, {"name": report.nodeid.rsplit("::", 1)[-1],
                                                      "outcome": None, "message": "", "exceptions": []})
        for cls, harness, message in mine:
            entry["exceptions"].append({"when": report.when, "class": cls, "harness_error": harness,
                                        "message": message})
        entry["outcome"] = merge(entry["outcome"], phase_outcome(report))
        if not entry["message"] and entry["outcome"] != "passed":
            entry["message"] = _message(report, mine)

    def pytest_sessionfinish(self, session, exitstatus) -> None:
        write_if_changed(self.path, json.dumps({"exitstatus": int(exitstatus), "tests": self.tests},
                                               indent=1, sort_keys=True) + "\n")  # temp + rename


def phase_outcome(report) -> str | None:
    """What one phase says about the test: None when it says nothing (a passed setup or teardown)."""
    if report.failed:
        return "failed" if report.when == "call" else "error"
    if report.skipped:
        return "skipped"
    return "passed" if report.when == "call" else None


def merge(before: str | None, now: str | None) -> str | None:
    """The test's outcome so far: a failure or error stays (a teardown error after a failure keeps the
    failure); otherwise the later phase's word wins."""
    if before in FAILED or now is None:
        return before
    return now


def _message(report, mine: list[tuple]) -> str:
    """The first line of why: "module.Class: text" for a failure, the reason for a skip."""
    if mine:
        return f"{mine[0][0]}: {mine[0][2]}"
    if report.skipped and isinstance(report.longrepr, tuple | list) and len(report.longrepr) == 3:
        return str(report.longrepr[2]).removeprefix("Skipped: ")  # (file, line, reason)
    return ""
