"""buildtool.testlane, the runner of the test lanes (netbsd-rump, netbsd-qemu): a synthetic lane whose
scenarios are real pytest runs in a subprocess, as `buildtool test --kernel <lane>` runs them."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

import pytest

from buildtool import errors
from buildtool.layout import Layout
from buildtool.testlane import Control, TestLane, run_lane

SCENARIOS = '''
import os

import pytest

from buildtool.vm.console import GuestCrash


def test_traffic():
    variant = os.environ.get("LANE_VARIANT", "")
    if variant == "crash":
        raise GuestCrash("guest kernel crash: panic: mbuf already freed")
    assert variant != "wrong", "frames differ"


def test_other():
    pass


@pytest.mark.parametrize("mode", ["stateless", "stateful"])
def test_modes(mode):
    assert not (mode == "stateful" and os.environ.get("LANE_VARIANT") == "wrong"), "stateful broke"
'''


def lane(tmp_path: Path, controls: list[Control]) -> tuple[TestLane, Layout]:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "test_lane.py").write_text(textwrap.dedent(SCENARIOS))
    built = []
    test_lane = TestLane(name="demo lane", junit="demo", tests=("scenarios/test_lane.py",), logs="logs",
                         build_first=lambda layout, jobs: built.append(jobs) or [],
                         controls=lambda root: controls, controls_dir="broken")
    layout = Layout(root=tmp_path, work=tmp_path / "work", cache=tmp_path / "cache",
                    packages=tmp_path / "packages")
    return test_lane, layout


def args(tmp_path: Path, control: bool) -> argparse.Namespace:
    return argparse.Namespace(results=tmp_path / "results", jobs=1, control=control, keyword=None)


def control(tmp_path: Path, name: str, variant: str, crash: bool) -> Control:
    return Control(tmp_path / name, ["test_traffic"], {"LANE_VARIANT": variant}, crash=crash)


def test_a_green_lane_exits_0_and_writes_junit(tmp_path):
    test_lane, layout = lane(tmp_path, [])
    assert run_lane(test_lane, args(tmp_path, False), layout) == 0
    assert (tmp_path / "results" / "junit-demo.xml").is_file()


def test_a_failing_scenario_is_a_test_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("LANE_VARIANT", "wrong")
    test_lane, layout = lane(tmp_path, [])
    with pytest.raises(errors.TestFailure,
                       match=r"2 demo lane scenario\(s\) failed: test_modes\[stateful\], test_traffic"):
        run_lane(test_lane, args(tmp_path, False), layout)


def test_controls_are_caught_and_a_crash_control_must_crash(tmp_path, capsys):
    test_lane, layout = lane(tmp_path, [control(tmp_path, "patch-xa", "wrong", crash=False),
                                        control(tmp_path, "patch-xd", "crash", crash=True)])
    assert run_lane(test_lane, args(tmp_path, True), layout) == 0
    assert "all 2 demo lane negative controls caught" in capsys.readouterr().err


def test_a_crash_control_that_only_fails_is_not_caught(tmp_path, capsys):
    test_lane, layout = lane(tmp_path, [control(tmp_path, "patch-xd", "wrong", crash=True)])
    with pytest.raises(errors.TestFailure, match="not caught by the demo lane: patch-xd"):
        run_lane(test_lane, args(tmp_path, True), layout)
    assert "patch-xd: NOT CAUGHT" in capsys.readouterr().err


def test_a_bare_name_means_any_of_its_parameters(tmp_path, capsys):
    wrong = {"LANE_VARIANT": "wrong"}
    test_lane, layout = lane(tmp_path, [Control(tmp_path / "patch-xc", ["test_modes"], wrong),
                                        Control(tmp_path / "patch-xb", ["test_modes[stateless]"], wrong)])
    with pytest.raises(errors.TestFailure, match="not caught by the demo lane: patch-xb"):
        run_lane(test_lane, args(tmp_path, True), layout)
    err = capsys.readouterr().err
    assert "patch-xc: CAUGHT" in err and "patch-xb: NOT CAUGHT" in err


def test_a_control_naming_no_scenario_is_refused(tmp_path):
    test_lane, layout = lane(tmp_path, [Control(tmp_path / "patch-xz", ["test_gone"], {})])
    with pytest.raises(errors.UsageError, match="patch-xz: Expect-Fail names unknown scenarios: test_gone"):
        run_lane(test_lane, args(tmp_path, True), layout)
