"""A guest's console: the VMM process (pexpect on a pty, with a watchdog) and the framed command channel
over it, composed by Console.

VmProcess owns the process: it spawns the VMM, logs everything it prints, holds the global watchdog (a
timer that kills the process at the deadline, whoever is reading), and reports its exit. A Channel owns
the conversation: expect with the crash watch, the framing of commands and their exit status. ShellChannel
frames commands for a POSIX shell; a guest without a shell supplies its own Channel (vm/netbsd.py).

Framing (anita's trick, see docs/vm.md): the shell's prompt is set to an unguessable token, sent in two
quoted halves so that the echo of the command that sets it can never match it; each command is sent
base64-encoded (no quoting or line-length trouble) and followed by an exit-status sentinel that carries
the same token and a sequence number. Echo is turned off once the prompt is set, so what is read between
the command and its sentinel is the command's output (with any kernel messages that arrived meanwhile).

Every read also watches for the guest OS's crash patterns. A match raises GuestCrash (a TestFailure: the
product broke the kernel); QEMU dying without one, or the console going silent past the watchdog, raises
HarnessError.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pexpect

from ..errors import HarnessError, TestFailure

CHUNK = 512  # base64 characters per line sent to the guest's tty (its line buffer holds 4095)
PENDING_SECONDS = 0.05  # scan_pending: how long to read what the guest printed since the last command
CRASH_TAIL_SECONDS = 3.0  # after a crash pattern, how long to keep reading so the trace is in the log


class GuestCrash(TestFailure):
    """The guest kernel reported an oops, BUG, panic, lockup or warning."""


class CommandTimeout(TestFailure):
    """A command did not finish within its timeout (the guest may be hung)."""


@dataclass
class CommandResult:
    status: int
    output: str


class VmProcess:
    """One VMM process on a pty: started by pexpect, its output appended to `log_path`, killed by the
    watchdog at `deadline` (a time.monotonic() value) if it still runs then."""

    def __init__(self, argv: list[str], log_path: Path, deadline: float):
        self.argv = argv
        self.log_path = log_path
        self.deadline = deadline
        self.watchdog_fired = False
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("a", encoding="utf-8", errors="replace")
        self._log.write(f"### {' '.join(argv)}\n")
        self._log.flush()
        try:
            self.child = pexpect.spawn(argv[0], argv[1:], encoding="utf-8", codec_errors="replace",
                                       timeout=None, maxread=65536, searchwindowsize=None, echo=False)
        except pexpect.ExceptionPexpect as e:
            self._log.close()
            raise HarnessError(f"cannot start {argv[0]}: {e}") from None
        # pexpect sleeps `delaybeforesend` (50 ms) before every send, a guard for programs that turn echo
        # off after printing a password prompt; our shell has echo off before the first framed command,
        # and with ~400 sends per suite the guard alone cost some 20 s
        self.child.delaybeforesend = None
        self.child.logfile_read = self._log
        self._watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), self._expire)
        self._watchdog.daemon = True
        self._watchdog.start()

    def _expire(self) -> None:
        """The watchdog: the process outlived its deadline; kill it (the reader then sees its exit)."""
        if self.alive():
            self.watchdog_fired = True
            self.kill()

    def alive(self) -> bool:
        return self.child.isalive()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        try:
            os.kill(self.child.pid, sig)
        except ProcessLookupError:
            pass

    def send(self, text: str) -> None:
        self.child.send(text)

    def wait_exit(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the process to end; whether it did."""
        try:
            self.child.expect(pexpect.EOF, timeout=timeout)
        except pexpect.TIMEOUT:
            return False
        self.child.wait()
        return True

    def exit_status(self) -> int | None:
        """None while it runs; its exit status, or minus the signal that ended it."""
        if self.child.isalive():
            return None
        self.child.wait()
        return self.child.exitstatus if self.child.exitstatus is not None else -(self.child.signalstatus or 0)

    def text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        self._watchdog.cancel()
        if self.child.isalive():
            self.child.terminate(force=True)
        self.child.close(force=True)
        self._log.flush()
        self._log.close()


class Channel:
    """The command channel over a VmProcess's console: expect with the crash watch. Subclasses frame
    the commands (`set_prompt`, `run`, `interrupt`)."""

    def __init__(self, process: VmProcess, crash_patterns: tuple[str, ...]):
        self.process = process
        self.child = process.child
        self.log_path = process.log_path
        self.crash_re = re.compile("|".join(f"(?:{p})" for p in crash_patterns))
        token = secrets.token_hex(8)
        self._halves = (f"bt{token[:8]}", f"{token[8:]}")
        self.prompt = "".join(self._halves) + "# "
        self._seq = 0

    # --- reading ----------------------------------------------------------------------------------
    def _remaining(self, timeout: float) -> tuple[float, bool]:
        """The time to wait, and whether it is the watchdog (not the command's timeout) that limits it."""
        left = self.process.deadline - time.monotonic()
        if left <= 0:
            raise HarnessError(f"the global watchdog expired; console log: {self.log_path}")
        return (timeout, False) if timeout < left else (left, True)

    def expect(self, pattern: str | re.Pattern, timeout: float, what: str) -> re.Match:
        """Wait for `pattern`, failing on a crash pattern, on QEMU's exit and on the timeout."""
        wait, watchdog = self._remaining(timeout)
        patterns = [pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern)),
                    self.crash_re, pexpect.EOF, pexpect.TIMEOUT]
        i = self.child.expect(patterns, timeout=wait)
        if i == 0:
            return self.child.match
        if i == 1:
            line = self._crash_line()
            self._drain(CRASH_TAIL_SECONDS)
            raise GuestCrash(f"guest kernel crash while {what}: {line}\nconsole log: {self.log_path}")
        if i == 2:
            crash = self.crash_re.search(self.process.text())
            if crash:  # e.g. a panic whose message arrived together with QEMU's exit
                raise GuestCrash(f"guest kernel crash while {what}: {crash.group(0)}\n"
                                 f"console log: {self.log_path}")
            if self.process.watchdog_fired:
                raise HarnessError(f"the global watchdog expired while {what} and killed QEMU; "
                                   f"console log: {self.log_path}")
            raise HarnessError(f"QEMU exited while {what} (exit status {self.process.exit_status()})\n"
                               f"console log: {self.log_path}")
        if watchdog:
            raise HarnessError(f"the global watchdog expired while {what}; console log: {self.log_path}")
        raise CommandTimeout(f"timed out after {timeout:.0f}s while {what}\nconsole log: {self.log_path}")

    def _crash_line(self) -> str:
        before = self.child.before or ""
        start = before.rfind("\n") + 1
        after = self.child.buffer or ""
        end = after.find("\n")
        return (before[start:] + self.child.after + (after if end < 0 else after[:end])).strip()

    def _drain(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                self.child.read_nonblocking(65536, timeout=max(0.05, end - time.monotonic()))
            except (pexpect.TIMEOUT, pexpect.EOF):
                if not self.child.isalive():
                    break

    def scan_pending(self) -> None:
        """Read whatever arrived since the last command; raise GuestCrash if it holds a crash pattern.

        Only a short read: the health command that follows (Guest.check_health) runs through expect(),
        which watches for the crash patterns too, so a message arriving later is still seen.
        """
        self._drain(PENDING_SECONDS)
        pending = self.child.buffer or ""
        m = self.crash_re.search(pending)
        if m:
            self._drain(CRASH_TAIL_SECONDS)
            raise GuestCrash(f"guest kernel crash between commands: {m.group(0)}\n"
                             f"console log: {self.log_path}")
        self.child.buffer = ""

    def wait_ready(self, marker: str, timeout: float) -> None:
        self.expect(marker, timeout, "booting")

    def send_raw(self, text: str) -> None:
        self.process.send(text)

    # --- framing (per channel kind) ------------------------------------------------------------------
    def set_prompt(self, timeout: float = 30) -> None:
        raise NotImplementedError

    def run(self, cmd: str, timeout: float) -> CommandResult:
        raise NotImplementedError

    def interrupt(self) -> None:
        """Stop a command that ran past its timeout (best effort: the guest is marked dirty anyway)."""


class ShellChannel(Channel):
    """Commands for a POSIX shell on the console: unguessable prompt, base64-framed commands, a sentinel
    carrying the exit status."""

    def set_prompt(self, timeout: float = 30) -> None:
        """Turn echo off and set the unguessable prompt (two quoted halves: the echo cannot match)."""
        a, b = self._halves
        self.child.send(f"stty -echo; PS1='{a}''{b}# '\n")
        self.expect(self.prompt, timeout, "setting the prompt")

    def run(self, cmd: str, timeout: float) -> CommandResult:
        """Run `cmd` with /bin/sh in the guest; return its exit status and output."""
        self._seq += 1
        seq = self._seq
        encoded = base64.b64encode(cmd.encode()).decode()
        chunks = [encoded[i:i + CHUNK] for i in range(0, len(encoded), CHUNK)] or [""]
        for i, chunk in enumerate(chunks):
            op = ">" if i == 0 else ">>"
            if i < len(chunks) - 1:
                self.child.send(f"echo {chunk} {op} /tmp/.bt-cmd.b64\n")
                self.expect(self.prompt, 30, "sending a command")
        a, b = self._halves
        op = ">" if len(chunks) == 1 else ">>"
        self.child.send(f"echo {chunks[-1]} {op} /tmp/.bt-cmd.b64; "
                        "base64 -d /tmp/.bt-cmd.b64 > /tmp/.bt-cmd; "
                        f"sh /tmp/.bt-cmd </dev/null; echo \"{a}\"\"{b}-{seq}=$?\"\n")
        sentinel = re.compile(re.escape(a + b) + f"-{seq}=(\\d+)\r*\n")
        try:
            m = self.expect(sentinel, timeout, f"running: {_short(cmd)}")
        except CommandTimeout:
            self.interrupt()
            raise
        output = (self.child.before or "").replace("\r", "")
        status = int(m.group(1))
        self.expect(self.prompt, 30, "waiting for the prompt")
        return CommandResult(status, output)

    def interrupt(self) -> None:
        """Send ^C and give the shell a moment to come back (best effort: the guest is marked dirty)."""
        try:
            self.child.sendintr()
            self.child.expect([re.escape(self.prompt), pexpect.EOF, pexpect.TIMEOUT], timeout=5)
        except (OSError, pexpect.ExceptionPexpect):
            pass


class Console:
    """A VMM process and the channel over its console: what Guest drives."""

    def __init__(self, argv: list[str], log_path: Path, crash_patterns: tuple[str, ...], deadline: float,
                 channel: type[Channel] = ShellChannel):
        self.process = VmProcess(argv, log_path, deadline)
        self.channel = channel(self.process, crash_patterns)
        self.log_path = log_path

    # the channel
    def wait_ready(self, marker: str, timeout: float) -> None:
        self.channel.wait_ready(marker, timeout)

    def set_prompt(self, timeout: float = 30) -> None:
        self.channel.set_prompt(timeout)

    def run(self, cmd: str, timeout: float) -> CommandResult:
        return self.channel.run(cmd, timeout)

    def scan_pending(self) -> None:
        self.channel.scan_pending()

    def send_raw(self, text: str) -> None:
        self.channel.send_raw(text)

    # the process
    def alive(self) -> bool:
        return self.process.alive()

    def wait_exit(self, timeout: float) -> bool:
        return self.process.wait_exit(timeout)

    def exit_status(self) -> int | None:
        return self.process.exit_status()

    def text(self) -> str:
        return self.process.text()

    def close(self) -> None:
        self.process.close()


def _short(cmd: str, n: int = 100) -> str:
    cmd = " ".join(cmd.split())
    return cmd if len(cmd) <= n else cmd[:n - 3] + "..."
