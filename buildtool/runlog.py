"""Running commands into per-phase logs, and timing phases for the end-of-run summary."""

from __future__ import annotations

import contextlib
import os
import resource
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import PhaseError

TAIL_LINES = 25


@dataclass
class PhaseRecord:
    package: str
    phase: str
    seconds: float
    outcome: str  # "done", "skipped", "failed", "dry-run"
    child_cpu: float = 0.0


@dataclass
class Summary:
    """What happened in one run: one record per (package, phase)."""

    records: list[PhaseRecord] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    @contextlib.contextmanager
    def phase(self, package: str, phase: str, out=None) -> Iterator[PhaseRecord]:
        """Time one phase; the body may set record.outcome (default 'done')."""
        rec = PhaseRecord(package, phase, 0.0, "done")
        t0 = time.monotonic()
        cpu0 = _children_cpu()
        try:
            yield rec
        except BaseException:
            rec.outcome = "failed"
            raise
        finally:
            rec.seconds = time.monotonic() - t0
            rec.child_cpu = _children_cpu() - cpu0
            self.records.append(rec)
            if rec.outcome != "skipped":
                print(f"==> {package}: {phase} {rec.outcome} in {rec.seconds:.1f}s", file=out or sys.stderr,
                      flush=True)

    def render(self) -> str:
        wall = time.monotonic() - self.started
        by_phase: dict[str, float] = {}
        for r in self.records:
            by_phase[r.phase] = by_phase.get(r.phase, 0.0) + r.seconds
        done = sum(1 for r in self.records if r.outcome == "done")
        skipped = sum(1 for r in self.records if r.outcome == "skipped")
        failed = sum(1 for r in self.records if r.outcome == "failed")
        phases = ", ".join(f"{p} {s:.1f}s" for p, s in by_phase.items())
        return (f"summary: {done} phases run, {skipped} up to date, {failed} failed in {wall:.1f}s"
                + (f" ({phases})" if phases else ""))


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def log_tail(log: Path, lines: int = TAIL_LINES) -> str:
    try:
        text = log.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def run(cmd: list[str], *, log: Path, cwd: Path | None = None, env: Mapping[str, str] | None = None,
        what: str = "command", verbose: bool = False, check: bool = True) -> int:
    """Run `cmd` with stdout and stderr appended to `log`; on failure raise PhaseError with the tail.

    `env` entries are added to the current environment (the build never inherits a stale DESTDIR etc.:
    recipes pass what they need explicitly on the command line).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env.setdefault("LC_ALL", "C")
    with log.open("ab") as f:
        f.write(f"\n$ (cd {cwd or os.getcwd()} && {shlex.join(cmd)})\n".encode())
        f.flush()
        try:
            if verbose:
                proc = subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
                assert proc.stdout is not None
                for chunk in proc.stdout:
                    f.write(chunk)
                    sys.stderr.buffer.write(chunk)
                rc = proc.wait()
            else:
                rc = subprocess.call(cmd, cwd=cwd, env=full_env, stdout=f, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        except FileNotFoundError as e:
            raise PhaseError(f"{what} failed: program not found: {e.filename}",
                             command=cmd, log=log) from None
    if rc != 0 and check:
        raise PhaseError(f"{what} failed with exit status {rc}", command=cmd, log=log, tail=log_tail(log))
    return rc
