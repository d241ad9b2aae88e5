"""The command runner: the same `run(argv, cwd, env, log, timeout)` here and on a loopback OpenSSH host."""

from __future__ import annotations

import os
import time

import pytest
import sshserver

from buildtool.errors import PhaseError
from buildtool.runner import LocalRunner, SSHRunner, sh_command

TRICKY = "it's a $HOME `x` \"y\""  # survives quoting only if every argument is quoted


def test_local_runs_in_cwd_with_env_and_logs(tmp_path):
    log = tmp_path / "log"
    res = LocalRunner().run(["sh", "-c", 'pwd; printf "%s\\n" "$GREETING"; cat'], cwd=tmp_path,
                            env={"GREETING": TRICKY}, log=log)
    assert res.returncode == 0 and res.where == "local"
    assert res.stdout.splitlines() == [str(tmp_path), TRICKY]  # cat read /dev/null: no hang, no output
    assert f"$ [local] (cd {tmp_path} && sh -c" in log.read_text() and TRICKY in log.read_text()


def test_local_failure_raises_with_the_tail_and_check_false_returns(tmp_path):
    log = tmp_path / "log"
    with pytest.raises(PhaseError) as e:
        LocalRunner().run(["sh", "-c", "echo broken >&2; exit 3"], log=log, what="the thing")
    assert "the thing failed with exit status 3 (local)" in str(e.value) and "broken" in e.value.tail
    assert LocalRunner().run(["false"], log=log, check=False).returncode == 1


def test_local_missing_program_is_a_clear_error(tmp_path):
    with pytest.raises(PhaseError, match="cannot run no-such-program-here"):
        LocalRunner().run(["no-such-program-here"], log=tmp_path / "log")


def test_local_timeout_kills_the_whole_process_group(tmp_path):
    pidfile = tmp_path / "child.pid"
    t0 = time.monotonic()
    with pytest.raises(PhaseError, match="timed out after 1s"):
        LocalRunner().run(["sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"], log=tmp_path / "log",
                          timeout=1)
    assert time.monotonic() - t0 < 60
    child = int(pidfile.read_text())
    for _ in range(50):  # the grandchild was killed with the group, not orphaned
        if not os.path.exists(f"/proc/{child}") or "Z" in open(f"/proc/{child}/stat").read().split()[2]:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"sleep (pid {child}) survived the timeout")


def test_sh_command_quotes_every_argument():
    line = sh_command(["printf", "%s", TRICKY], "/tmp/a b", {"K": "v w"})
    quoted = "'" + TRICKY.replace("'", "'\"'\"'") + "'"
    assert line == f"cd '/tmp/a b' && env 'K=v w' printf %s {quoted} </dev/null"


@pytest.fixture(scope="module")
def ssh(tmp_path_factory):
    why = sshserver.missing()
    if why:
        pytest.fail(why)
    server = sshserver.start(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


def test_ssh_runs_the_same_argv_with_cwd_env_and_copies_files(tmp_path, ssh):
    log = tmp_path / "log"
    with SSHRunner(ssh.user, "127.0.0.1", ssh.port, identity=ssh.identity) as runner:
        res = runner.run(["sh", "-c", 'pwd; printf "%s\\n" "$GREETING"; cat'], cwd=tmp_path,
                         env={"GREETING": TRICKY}, log=log)
        assert res.stdout.splitlines() == [str(tmp_path), TRICKY]
        assert res.where == f"{ssh.user}@127.0.0.1:{ssh.port}"
        (tmp_path / "up").write_text("payload\n")
        runner.put(tmp_path / "up", str(tmp_path / "remote"))
        runner.get(str(tmp_path / "remote"), tmp_path / "sub" / "back")
        assert (tmp_path / "sub" / "back").read_text() == "payload\n"
        with pytest.raises(PhaseError, match=r"failed with exit status 4 \(root@|failed with exit status 4"):
            runner.run(["sh", "-c", "exit 4"], log=log)
        with pytest.raises(PhaseError, match="timed out"):
            runner.run(["sleep", "30"], log=log, timeout=1)
        with pytest.raises(PhaseError, match="copying .* failed"):
            runner.get(str(tmp_path / "no-such-file"), tmp_path / "never")
        assert not (tmp_path / "never").exists() and not (tmp_path / ".never.part").exists()


def test_ssh_timeout_is_always_reported_as_a_timeout_and_kills_the_remote_group(tmp_path, ssh):
    """invoke's timer closes the channel; run() can return (exit status -1) before the timer thread ends
    and invoke raises CommandTimedOut. Either way it is a timeout, not 'exit status -1' (seen in CI), and
    the command's process group on the build host is killed, not left running."""
    with SSHRunner(ssh.user, "127.0.0.1", ssh.port, identity=ssh.identity) as runner:
        for i in range(6):
            pidfile = tmp_path / f"child{i}.pid"
            with pytest.raises(PhaseError, match=r"timed out after 1s \(killed with its children; ") as e:
                runner.run(["sh", "-c", f"sleep 300 & echo $! > {pidfile}; echo started; wait"],
                           log=tmp_path / "log", timeout=0.8)
            assert "sleep 300" in e.value.tail
            child = int(pidfile.read_text())
            for _ in range(50):
                if not _alive(child):
                    break
                time.sleep(0.1)
            assert not _alive(child), f"the remote grandchild {child} outlived the timeout"
        assert runner.run(["sh", "-c", "echo out; echo err >&2"], log=tmp_path / "log").stdout == "out\nerr\n"


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_runlog_streams_each_line_and_stops_a_silent_hang(tmp_path):
    """runlog.run with `on_line` (the NetBSD and rump kernel builds' progress): every line reaches the
    callback and the log; a command that hangs without printing is still stopped at its timeout, children
    and all (the watchdog, not the next line, ends it)."""
    from buildtool.runlog import run

    log, lines, pidfile = tmp_path / "log", [], tmp_path / "child.pid"
    assert run(["sh", "-c", "echo one; echo two >&2; printf three"], log=log, on_line=lines.append) == 0
    assert lines == ["one", "two", "three"] and log.read_text().endswith("one\ntwo\nthree")
    t0 = time.monotonic()
    with pytest.raises(PhaseError, match="silent did not finish within 1s and was stopped"):
        run(["sh", "-c", f"echo started; sleep 300 & echo $! > {pidfile}; wait"], log=log, timeout=1,
            what="silent", on_line=lines.append)
    print(f"stopped after {time.monotonic() - t0:.1f}s")
    assert lines[-1] == "started" and not (tmp_path / "log.pgid").exists()
    child = int(pidfile.read_text())
    for _ in range(50):
        if not os.path.exists(f"/proc/{child}") or "Z" in open(f"/proc/{child}/stat").read().split()[2]:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"sleep (pid {child}) survived the timeout")


def test_netbsd_run_logged_counts_compile_steps_and_links(tmp_path):
    """kernels.netbsd_kernel.run_logged on runlog.run: a progress line per 250 compiled files and per link,
    the whole output in the log (after the command line), a failure with its tail."""
    import io

    from buildtool.kernels.netbsd_kernel import run_logged

    script = ("i=0; while [ $i -lt 500 ]; do i=$((i+1)); echo \"#  compile  obj/f$i.o\"; done; "
              "echo '#     link  obj/netbsd'; echo 'cc: error' >&2; exit 2")
    out = io.StringIO()
    with pytest.raises(PhaseError, match="building the kernel failed with exit status 2") as e:
        run_logged(["sh", "-c", script], tmp_path / "log", cwd=tmp_path, timeout=60,
                   what="building the kernel", out=out, progress="netbsd-kernel")
    assert out.getvalue().splitlines() == ["netbsd-kernel: 250 steps (obj/f250.o)",
                                           "netbsd-kernel: 500 steps (obj/f500.o)",
                                           "netbsd-kernel: 501 steps (obj/netbsd)"]
    assert "cc: error" in e.value.tail and (tmp_path / "log").read_text().count("compile  obj/f") == 501
