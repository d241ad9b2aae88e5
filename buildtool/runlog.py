"""Running commands into per-phase logs, and timing phases for the end-of-run summary."""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import PhaseError

TAIL_LINES = 25


@dataclass
class PhaseRecord:
    package: str
    phase: str
    seconds: float
    outcome: str  # "done", "skipped", "failed", "dry-run", "checked" (timed, not counted as run), "restored"
    child_cpu: float = 0.0


@dataclass
class Summary:
    """What happened in one run: one record per (package, phase)."""

    records: list[PhaseRecord] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    written: list[Path] = field(default_factory=list)  # packages this run wrote

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
        skipped = sum(1 for r in self.records if r.outcome in ("skipped", "restored"))
        restored = sum(1 for r in self.records if r.outcome == "restored")
        failed = sum(1 for r in self.records if r.outcome == "failed")
        phases = ", ".join(f"{p} {s:.1f}s" for p, s in by_phase.items())
        text = (f"summary: {_count(done, 'phase')} run, {skipped} up to date"
                + (f" ({restored} put back from the work tree)" if restored else "")
                + f", {failed} failed in {wall:.1f}s"
                + (f" ({phases})" if phases else ""))
        if self.written:
            text += "\npackages written: " + ", ".join(str(p) for p in self.written)
        return text


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def log_tail(log: Path, lines: int = TAIL_LINES) -> str:
    try:
        text = log.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


HEARTBEAT_SECONDS = 10.0  # plain output: one progress line this often while a long step runs
BAR_SECONDS = 0.5  # terminal: the status line is redrawn this often


@contextlib.contextmanager
def heartbeat(what: str, measure=None, bar: bool | None = None, out=None) -> Iterator[None]:
    """Progress while the block runs: on a terminal (or `bar`) a status line redrawn in place, otherwise
    one line every HEARTBEAT_SECONDS. `measure()` adds what can be counted (bytes so far, the log's last
    line). A step shorter than the first tick prints nothing."""
    stream = out or sys.stderr
    live = _isatty(stream) if bar is None else bar
    stop = threading.Event()
    t0 = time.monotonic()

    def status() -> str:
        extra = ""
        with contextlib.suppress(OSError, ValueError):
            extra = measure() if measure else ""
        return f"{what}: {time.monotonic() - t0:.0f}s" + (f", {extra}" if extra else "")

    def loop() -> None:
        while not stop.wait(BAR_SECONDS if live else HEARTBEAT_SECONDS):
            if live:
                stream.write("\r" + status()[:shutil.get_terminal_size().columns - 1] + "\x1b[K")
                stream.flush()
            else:
                print(f"  ... {status()}", file=stream, flush=True)

    thread = threading.Thread(target=loop, name=f"progress: {what}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        if live:
            stream.write("\r\x1b[K")
            stream.flush()


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def log_progress(log: Path) -> str:
    """The log's size and its last line (what a long build is doing now)."""
    size = log.stat().st_size
    with log.open("rb") as f:
        f.seek(max(0, size - 4096))
        lines = [line for line in f.read().decode(errors="replace").splitlines() if line.strip()]
    last = lines[-1].strip() if lines else ""
    last = last if len(last) <= 80 else "..." + last[-77:]  # a compiler line ends with the file it builds
    return f"log {size / 1024:.0f} KiB" + (f": {last}" if last else "")


# a build command may take long (openssl, kbuild on 2 cores take minutes), never forever
DEFAULT_TIMEOUT = 3 * 3600.0
GROUP_SUFFIX = ".pgid"  # beside a log: the process group of the command writing it, while it runs
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL for a group being stopped


def run(cmd: list[str], *, log: Path, cwd: Path | None = None, env: Mapping[str, str] | None = None,
        what: str = "command", verbose: bool = False, check: bool = True,
        timeout: float = DEFAULT_TIMEOUT, progress: bool | None = None,
        on_line: Callable[[str], None] | None = None) -> int:
    """Run `cmd` with stdout and stderr appended to `log`; on failure raise PhaseError with the tail.

    `env` entries are added to the current environment (the build never inherits a stale DESTDIR etc.:
    recipes pass what they need explicitly on the command line). `verbose` echoes the output to stderr;
    `on_line` is called with each line of output (without its newline) as it arrives, e.g. to print a
    build's progress; without either, a heartbeat line says what the log is doing now.

    The command runs in its own process group, recorded in `<log>.pgid` while it runs: an interrupt
    (SIGINT, SIGTERM, a timeout) stops the whole group (make and every compiler it started), and a run
    killed with -9 leaves the file behind for the next run to find (`kill_leftover_groups`). The direct
    child also gets a parent-death signal, so make stops with us even then. The timeout holds whether
    the command prints or not (a watchdog stops the group while its output is being read).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env.setdefault("LC_ALL", "C")
    group_file = log.with_name(log.name + GROUP_SUFFIX)
    streaming = verbose or on_line is not None
    with log.open("ab") as f:
        f.write(f"\n$ (cd {cwd or os.getcwd()} && {shlex.join(cmd)})\n".encode())
        f.flush()
        try:
            proc = subprocess.Popen(cmd, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE if streaming else f, stderr=subprocess.STDOUT,
                                    start_new_session=True, preexec_fn=_die_with_parent)
        except FileNotFoundError as e:
            raise PhaseError(f"{what} failed: program not found: {e.filename}",
                             command=cmd, log=log) from None
        group_file.write_text(f"{proc.pid} {_start_time(proc.pid)} {shlex.join(cmd)}\n")
        expired = threading.Event()
        try:
            if streaming:
                rc = _stream(proc, f, timeout, expired, echo=verbose, on_line=on_line)
            else:
                with heartbeat(what, measure=lambda: log_progress(log), bar=progress):
                    rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            expired.set()
        except BaseException:
            stop_group(proc)
            print(f"interrupted: stopped {what} (process group {proc.pid}): {shlex.join(cmd)}\n"
                  f"  log: {log}", file=sys.stderr, flush=True)
            raise
        finally:
            group_file.unlink(missing_ok=True)
        if expired.is_set():
            stop_group(proc)
            f.flush()
            raise PhaseError(f"{what} did not finish within {timeout:.0f}s and was stopped", command=cmd,
                             log=log, tail=log_tail(log))
    if rc != 0 and check:
        raise PhaseError(f"{what} failed with exit status {rc}", command=cmd, log=log, tail=log_tail(log))
    return rc


def _stream(proc: subprocess.Popen, f, timeout: float, expired: threading.Event, *, echo: bool,
            on_line: Callable[[str], None] | None) -> int:
    """Copy the command's output into the log line by line (echoed to stderr, passed to `on_line`) while a
    watchdog stops its group after `timeout` seconds: a silent hang ends too."""

    def expire() -> None:
        expired.set()
        stop_group(proc)

    deadline = time.monotonic() + timeout
    watchdog = threading.Timer(timeout, expire)
    watchdog.daemon = True
    watchdog.start()
    try:
        assert proc.stdout is not None
        for chunk in proc.stdout:
            f.write(chunk)
            if echo:
                sys.stderr.buffer.write(chunk)
            if on_line is not None:
                on_line(chunk.decode(errors="replace").rstrip("\r\n"))
        return proc.wait(timeout=max(0.1, deadline - time.monotonic()))  # output closed, not yet exited
    finally:
        watchdog.cancel()


def capture(cmd: list[str], *, timeout: float, cwd: Path | None = None, env: Mapping[str, str] | None = None,
            input: str | None = None) -> subprocess.CompletedProcess:
    """Run a short command with its output captured (text), in its own process group.

    After `timeout` seconds the whole group is stopped (apt's download methods, a compiler's children) and
    subprocess.TimeoutExpired is raised carrying what it printed; an interrupt stops the group too.
    """
    proc = subprocess.Popen(cmd, cwd=cwd, env=None if env is None else dict(env), text=True,
                            stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_group(proc)
        out, err = proc.communicate()
        raise subprocess.TimeoutExpired(cmd, timeout, output=out, stderr=err) from None
    except BaseException:
        stop_group(proc)
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the process group of `proc`, then SIGKILL what is left after STOP_GRACE seconds."""
    for sig, grace in ((signal.SIGTERM, STOP_GRACE), (signal.SIGKILL, STOP_GRACE)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        if not _group_alive(proc.pid):
            break
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # members that outlived the leader


def kill_leftover_groups(work: Path, out=None) -> list[str]:
    """Kill the process groups a killed earlier run left running under `work` (call with the lock held).

    A group counts as ours only while its leader is the process recorded (same start time): a pid reused
    since is left alone. Returns one line per group killed.
    """
    killed = []
    for group_file in sorted(work.glob(f"*/logs/*{GROUP_SUFFIX}")):
        try:
            pid_text, start, command = group_file.read_text().split(" ", 2)
            pgid = int(pid_text)
        except (OSError, ValueError):
            group_file.unlink(missing_ok=True)
            continue
        if _group_alive(pgid) and (_start_time(pgid) in (start, "")):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            line = (f"killed process group {pgid} left running by an earlier, killed run: {command.strip()} "
                    f"(log: {group_file.with_suffix('')})")
            print(line, file=out or sys.stderr, flush=True)
            killed.append(line)
        group_file.unlink(missing_ok=True)
    return killed


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), '' if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


_PR_SET_PDEATHSIG = 1
try:  # loaded here, in the parent: the child between fork and exec only calls it
    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _PRCTL = None


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL us when the parent dies (Linux prctl; nothing elsewhere)."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
