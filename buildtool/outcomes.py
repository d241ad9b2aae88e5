"""What a pytest run of scenarios did, as the recorder plugin (buildtool.pytest_outcomes) wrote it.

`buildtool test` runs the VM and rump scenarios in a pytest subprocess loaded with
`-p buildtool.pytest_outcomes --buildtool-outcomes=PATH`. The plugin records, per test id, the outcome
(passed, failed, error, skipped) and the class of every exception a phase raised (qualified name, and
whether it is a HarnessError), so the tool tells "the product failed" from "the harness broke" by exception
class, never by reading message text. This module reads that file (it needs no pytest); the JUnit XML
pytest writes alongside is for people.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

PLUGIN = "buildtool.pytest_outcomes"
OPTION = "--buildtool-outcomes"
FAILED = ("failed", "error")


def pytest_args(path: Path) -> list[str]:
    """What loads the recorder into a pytest command line, writing to `path`."""
    return ["-p", PLUGIN, f"{OPTION}={path}"]


@dataclass
class Outcome:
    """What one pytest run did, per test name (`test_x[param]`): passed, failed, error or skipped, with the
    first line of the reason and the classes of the exceptions its phases raised (`errors`: qualified
    names); `harness_broke` when any phase of any test raised a HarnessError."""

    returncode: int
    junit: Path
    tests: dict[str, str] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
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
        outcome.errors.setdefault(name, []).extend(e["class"] for e in test["exceptions"])
        outcome.harness_broke |= any(e["harness_error"] for e in test["exceptions"])
    return outcome
