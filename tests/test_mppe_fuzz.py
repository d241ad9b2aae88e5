"""Fuzzing the core's receive path with libFuzzer + ASan + UBSan (Debian's clang-14), bounded.

Marked integration: about two minutes. bench/mppe_fuzz.py runs it longer and prints the figures. Each
check has a negative control: the same harness over a core built with MPPE_NEGATIVE_CONTROL_SHORT_FRAMES
(the decompressor's length check removed) must be reported, or a green run would prove nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from buildtool import mppecore

ROOT = Path(__file__).resolve().parent.parent
BROKEN = ("MPPE_NEGATIVE_CONTROL_SHORT_FRAMES",)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("clang") is None, reason="clang not installed (make setup installs it)"),
]


def test_libfuzzer_bounded_run_finds_nothing(tmp_path):
    binary = mppecore.build(mppecore.fuzzer_build(), ROOT)
    run = mppecore.run_fuzzer(binary, tmp_path / "corpus", tmp_path / "artifacts",
                              runs=1_000_000, max_total_time=60)
    print(f"libFuzzer: {run.execs} execs, {run.execs_per_s} exec/s, cov {run.coverage}, ft {run.features}, "
          f"{run.seconds:.0f} s")
    assert not run.found_bug, run.report()
    assert run.execs > 1000 and run.coverage > 50
    assert not list((tmp_path / "artifacts").iterdir())


def test_libfuzzer_catches_a_broken_core(tmp_path):
    binary = mppecore.build(mppecore.fuzzer_build(BROKEN), ROOT)
    run = mppecore.run_fuzzer(binary, tmp_path / "corpus", tmp_path / "artifacts",
                              runs=1_000_000, max_total_time=60)
    assert run.found_bug, "libFuzzer did not catch a decompressor without its length check"
    assert "AddressSanitizer" in run.output or "runtime error" in run.output, run.output[-2000:]
    assert list((tmp_path / "artifacts").glob("crash-*"))


def test_every_length_0_to_65535_once():
    res = mppecore.run_sweep(mppecore.build(mppecore.sweep_build(), ROOT))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "sweep: lengths 0..65535 done" in res.stdout


def test_length_sweep_catches_a_broken_core():
    res = mppecore.run_sweep(mppecore.build(mppecore.sweep_build(BROKEN), ROOT), last=64)
    assert res.returncode != 0
    assert "AddressSanitizer: heap-buffer-overflow" in res.stderr, res.stderr[-3000:]
