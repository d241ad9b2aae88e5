"""What a pytest run of scenarios did, recorded in-process: a pytest plugin and the reader of its file.

`buildtool test` runs the VM and rump scenarios in a pytest subprocess loaded with `-p buildtool.outcomes
--buildtool-outcomes=PATH`. The plugin records, per test id, the outcome (passed, failed, error, skipped)
and the class of every exception a phase raised (qualified name, and whether it is a HarnessError), so the
tool tells "the product failed" from "the harness broke" by exception class, never by reading message text.

Under pytest-xdist the reports are made on the workers and logged on the controller: the worker side
(`pytest_runtest_makereport`) puts the exception into the report's user_properties, which travel with the
report; the controller side (`pytest_runtest_logreport`, `pytest_sessionfinish`) collects them and writes
the file once (temp + rename). The JUnit XML pytest writes alongside is left as it is: people read it.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .errors import HarnessError

OPTION = "--buildtool-outcomes"
PROPERTY = "buildtool.exception"  # (qualified class name, is a HarnessError, first line of the message)
FAILED = ("failed", "error")


# --- the plugin -----------------------------------------------------------------------------------------

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
        write_atomically(self.path, json.dumps({"exitstatus": int(exitstatus), "tests": self.tests},
                                               indent=1, sort_keys=True) + "\n")


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


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


# --- the reader ----------------------------------------------------------------------------------------

@dataclass
class Outcome:
    """What one pytest run did, per test name (`test_x[param]`): passed, failed, error or skipped, with the
    first line of the reason; `harness_broke` when any phase of any test raised a HarnessError."""

    returncode: int
    junit: Path
    tests: dict[str, str] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    harness_broke: bool = False

    def failed(self) -> list[str]:
        return sorted(n for n, s in self.tests.items() if s in FAILED)

    def skipped(self) -> list[str]:
        return sorted(n for n, s in self.tests.items() if s == "skipped")


def outcomes_path(junit: Path) -> Path:
    """Where the plugin writes the outcomes of the run whose JUnit XML is `junit` (next to it)."""
    return junit.with_name(junit.stem + ".outcomes.json")


def read_outcomes(junit: Path, returncode: int) -> Outcome:
    """The outcomes the plugin wrote for the run whose JUnit XML is `junit`. No file (pytest died before
    its session ended) means nothing is known: the caller goes by `returncode`."""
    outcome = Outcome(returncode=returncode, junit=junit)
    path = outcomes_path(junit)
    if not path.exists():
        return outcome
    for test in json.loads(path.read_text())["tests"].values():
        name = test["name"]
        if outcome.tests.get(name) not in FAILED:  # two ids with one name: a failure of either counts
            outcome.tests[name] = test["outcome"] or "passed"
            outcome.messages[name] = test["message"]
        outcome.harness_broke |= any(e["harness_error"] for e in test["exceptions"])
    return outcome
