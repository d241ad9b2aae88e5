"""A real OpenSSH server (Debian's openssh-server) on 127.0.0.1 for tests: its own host key, one authorized
key, a non-default port, everything in a temporary folder. It stands in for a build host."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"


@dataclass
class SSHServer:
    port: int
    user: str
    identity: Path  # the client's private key
    log: Path
    proc: subprocess.Popen

    @property
    def host(self) -> str:
        return f"{self.user}@127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def missing() -> str | None:
    """Why no server can be started here, or None."""
    for prog in (SSHD, shutil.which("ssh-keygen")):
        if not prog or not os.access(prog, os.X_OK):
            return "openssh-server/ssh-keygen are not installed (apt-get install openssh-server; make setup)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(tmp: Path, timeout: float = 20.0) -> SSHServer:
    tmp.mkdir(parents=True, exist_ok=True)
    keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", ""]
    subprocess.run([*keygen, "-f", str(tmp / "host_key")], check=True, stdin=subprocess.DEVNULL, timeout=30)
    subprocess.run([*keygen, "-f", str(tmp / "client_key")], check=True, stdin=subprocess.DEVNULL, timeout=30)
    shutil.copy(tmp / "client_key.pub", tmp / "authorized_keys")
    user = getpass.getuser()
    port = _free_port()
    config = tmp / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp / 'host_key'}\n"
        f"AuthorizedKeysFile {tmp / 'authorized_keys'}\nPidFile {tmp / 'sshd.pid'}\n"
        "UsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n"
        "LogLevel VERBOSE\n")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder
    log = tmp / "sshd.log"
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return SSHServer(port, user, tmp / "client_key", log, proc)
        except OSError:
            time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"sshd did not listen on 127.0.0.1:{port} within {timeout}s: {log.read_text()}")
