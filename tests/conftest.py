"""Fixtures shared by the integration tests: one real build of everything, done once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from scheduling import Recorder, durations_file, longest_first, make_scheduler, read_durations
from synthetic import make_repo

from buildtool import pipeline
from buildtool.layout import Layout
from buildtool.recipe import load_all, select

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def built_layout() -> Layout:
    """The repository's own work tree and packages, built through `package` for the default kernel.

    The same tree `make package` uses, so a developer's earlier build is reused (the stamps make this a
    no-op when nothing changed) and the VM suite tests exactly the packages in packages/All/.
    """
    layout = Layout.default(root=ROOT)
    ctx = pipeline.Context(layout=layout, options=pipeline.Options(jobs=os.cpu_count() or 2, progress=False))
    pipeline.run(ctx, select(load_all(ROOT), []))
    return layout


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """The synthetic two-package repository of tests/synthetic.py, as the current directory."""
    return make_repo(tmp_path, monkeypatch)


def pytest_terminal_summary(terminalreporter, config):
    from kernel_fps import summary_lines

    lines = summary_lines(config)
    if lines:
        terminalreporter.section("MPPE frames per second through the kernels (benchmark, not asserted)")
        for line in lines:
            terminalreporter.write_line(line)


def pytest_configure(config):
    if not hasattr(config, "workerinput"):  # the controller, or a run without xdist
        config.pluginmanager.register(Recorder(durations_file()), "buildtool-test-durations")


def pytest_collection_modifyitems(config, items):
    if hasattr(config, "workerinput"):  # only in parallel runs: a serial run keeps the files' order
        items[:] = longest_first(items, read_durations(durations_file()))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getoption("dist") == "load":
        return make_scheduler(config, log)
    return None
