"""Where a command runs: `run(argv, cwd, env, log, timeout) -> RunResult`, on this machine or on a build host.

`LocalRunner` runs a program here (its own process group, stdin from /dev/null, killed with its children on
timeout). `SSHRunner` runs it on `user@host[:port]` over SSH with fabric: the command sent is one POSIX sh
line (`cd DIR && env K=V argv...`), every argument quoted, stdin closed, bounded by the same timeout; it also
copies files both ways (`put`, `get`). Both append the command and its output to `log`. A command that
cannot be started, times out, or (with check=True) exits non-zero raises PhaseError with the log's tail.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import PhaseError
from .runlog import log_tail, stop_group

DEFAULT_TIMEOUT = 600.0


@dataclass(frozen=True)
class RunResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    seconds: float
    where: str  # "local" or "user@host:port"


def _write_header(log: Path, where: str, cwd: str | None, argv: Sequence[str]) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as f:
        f.write(f"\n$ [{where}] (cd {cwd or '.'} && {shlex.join(argv)})\n".encode())


def _finish(result: RunResult, log: Path, what: str, check: bool) -> RunResult:
    with log.open("ab") as f:
        f.write(result.stdout.encode(errors="replace"))
    if check and result.returncode != 0:
        raise PhaseError(f"{what} failed with exit status {result.returncode} ({result.where})",
                         command=list(result.argv), log=log, tail=log_tail(log))
    return result


class Runner:
    """Runs argv somewhere. Subclasses implement `_run`; `run` logs and checks."""

    where = "local"

    def run(self, argv: Sequence[str], *, cwd: str | Path | None = None, env: Mapping[str, str] | None = None,
            log: Path, timeout: float = DEFAULT_TIMEOUT, what: str = "command",
            check: bool = True) -> RunResult:
        argv = tuple(str(a) for a in argv)
        _write_header(log, self.where, str(cwd) if cwd else None, argv)
        t0 = time.monotonic()
        rc, out = self._run(argv, None if cwd is None else str(cwd), dict(env or {}), timeout, log, what)
        return _finish(RunResult(argv, rc, out, time.monotonic() - t0, self.where), log, what, check)

    def _run(self, argv: tuple[str, ...], cwd: str | None, env: dict[str, str], timeout: float, log: Path,
             what: str) -> tuple[int, str]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LocalRunner(Runner):
    """This machine. `env` is added to the current environment (LC_ALL=C unless given)."""

    def _run(self, argv, cwd, env, timeout, log, what):
        full_env = {**os.environ, "LC_ALL": "C", **env}
        try:
            proc = subprocess.Popen(argv, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as e:
            raise PhaseError(f"{what} failed: cannot run {argv[0]}: {e.strerror}", command=list(argv),
                             log=log) from None
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_group(proc)
            raise PhaseError(f"{what} timed out after {timeout:.0f}s (killed with its children)",
                             command=list(argv), log=log, tail=log_tail(log)) from None
        except BaseException:
            stop_group(proc)
            raise
        return proc.returncode, out.decode(errors="replace")


PID_MARK = "buildtool-remote-pid "


def _strip_pid(stderr: str) -> tuple[int | None, str]:
    """The pid line our command prints first on stderr, and stderr without it."""
    first, _, rest = stderr.partition("\n")
    if first.startswith(PID_MARK) and first[len(PID_MARK):].isdigit():
        return int(first[len(PID_MARK):]), rest
    return None, stderr


def sh_command(argv: Sequence[str], cwd: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The POSIX sh line that runs argv in cwd with env added, stdin from /dev/null (fabric's in_stream=False
    sends nothing but never closes the channel's stdin): `cd DIR && env K=V prog args </dev/null`."""
    parts = []
    if cwd:
        parts.append(f"cd {shlex.quote(cwd)} &&")
    if env:
        parts.append("env " + " ".join(shlex.quote(f"{k}={v}") for k, v in env.items()))
    parts.append(shlex.join(argv))
    return " ".join(parts) + " </dev/null"


class SSHRunner(Runner):
    """A build host reached over SSH with fabric. `identity` is a private key file (else ssh-agent and
    ~/.ssh as OpenSSH would use them); `connect_timeout` bounds the connection, `timeout` each command."""

    def __init__(self, user: str, host: str, port: int | None = None, *, identity: Path | None = None,
                 connect_timeout: float = 20.0, transfer_timeout: float = 120.0):
        import fabric  # only SSH users need it

        kwargs: dict = {"banner_timeout": connect_timeout, "auth_timeout": connect_timeout}
        if identity is not None:
            kwargs["key_filename"] = [str(identity)]
        self.where = f"{user}@{host}:{port or 22}"
        self.transfer_timeout = transfer_timeout  # a stalled SFTP read or write fails after this long
        self.conn = fabric.Connection(host, user=user, port=port, connect_timeout=connect_timeout,
                                      connect_kwargs=kwargs)

    def _run(self, argv, cwd, env, timeout, log, what):
        # sshd starts the command in a session of its own, so the shell's pid is the group to kill on timeout
        command = f"printf '{PID_MARK}%s\\n' $$ >&2; " + sh_command(argv, cwd, {"LC_ALL": "C", **env})
        t0 = time.monotonic()
        try:
            result = self.conn.run(command, hide=True, warn=True, in_stream=False, timeout=timeout, pty=False)
        except Exception as e:  # invoke's CommandTimedOut, paramiko and socket errors share no useful base
            if type(e).__name__ == "CommandTimedOut":
                raise self._timed_out(e.result, argv, timeout, log, what) from None
            # a command that never started has no output of its own to show
            raise PhaseError(f"{what} could not run over SSH: {e} ({self.where})", command=list(argv),
                             log=log) from None
        # invoke's timer closes the channel, and its `timed_out` is only true once the timer thread has
        # finished: if run() returns first, the result is a channel closed without an exit status (-1)
        if result.exited == -1 and time.monotonic() - t0 >= timeout:
            raise self._timed_out(result, argv, timeout, log, what)
        return result.exited, result.stdout + _strip_pid(result.stderr)[1]

    def _timed_out(self, result, argv, timeout: float, log: Path, what: str) -> PhaseError:
        pid, err = _strip_pid(result.stderr)
        with log.open("ab") as f:
            f.write((result.stdout + err).encode(errors="replace"))
        killed = pid is not None and self._kill_group(pid)
        how = "killed with its children" if killed else "could not be killed on the build host"
        return PhaseError(f"{what} timed out after {timeout:.0f}s ({how}; {self.where})", command=list(argv),
                          log=log, tail=log_tail(log))

    def _kill_group(self, pid: int) -> bool:
        try:
            self.conn.run(f"kill -KILL -- -{pid} 2>/dev/null; true", hide=True, warn=True, in_stream=False,
                          timeout=30, pty=False)
            return True
        except Exception:
            return False

    def put(self, local: Path, remote: str) -> None:
        try:
            self._sftp_timeout()
            self.conn.put(str(local), remote=remote)
        except Exception as e:
            raise PhaseError(f"copying {local} to {self.where}:{remote} failed: {e}") from None

    def get(self, remote: str, local: Path) -> None:
        """Copy a remote file to `local` through a temporary name (no half-written file in place)."""
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{local.name}.part")
        try:
            self._sftp_timeout()
            self.conn.get(remote, local=str(tmp))
            os.replace(tmp, local)
        except Exception as e:
            raise PhaseError(f"copying {self.where}:{remote} to {local} failed: {e}") from None
        finally:
            if tmp.exists():
                tmp.unlink()

    def _sftp_timeout(self) -> None:
        self.conn.sftp().get_channel().settimeout(self.transfer_timeout)

    def close(self) -> None:
        self.conn.close()


def remote_path(*parts: str) -> str:
    return str(PurePosixPath(*parts))
