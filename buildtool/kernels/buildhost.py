"""The SSH build host of the NetBSD families: `--host user@host[:port]`, the runner that reaches it, and the
probe telling a NetBSD host (native make) from a POSIX one with the cross toolchain. Used by kernels/netbsd.py
(netbsd-10) and kernels/netbsd_lkm.py (netbsd-1.4.1)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import KernelError
from ..runner import Runner, SSHRunner

_HOST = re.compile(
    r"^(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>\d+))?$")

# POSIX sh run on the build host to tell what it is: system, release, and the cross tools if any
PROBE_ARGV = ["sh", "-c", "uname -s; uname -r; command -v clang || echo -; command -v ld.lld || echo -"]
HOST_TIMEOUT = 60.0
REMOTE_BUILD_TIMEOUT = 900.0


def parse_host(value: str) -> tuple[str, str, int | None]:
    """'user@host[:port]' -> (user, host, port); KernelError otherwise."""
    m = _HOST.match(value or "")
    if not m:
        raise KernelError(f"--host {value!r}: expected user@host or user@host:port (an SSH login on a "
                          f"build host)")
    return m["user"], m["host"].strip("[]"), int(m["port"]) if m["port"] else None


@dataclass(frozen=True)
class HostInfo:
    system: str  # `uname -s`
    release: str  # `uname -r`
    kind: str  # "netbsd" (native make) or "cross" (POSIX with clang + ld.lld)


def probe_host(runner: Runner, host: str, log: Path) -> HostInfo:
    res = runner.run(PROBE_ARGV, log=log, timeout=HOST_TIMEOUT, what=f"probing the build host {host}",
                     check=False)
    words = res.stdout.split()
    if res.returncode != 0 or len(words) < 4:
        raise KernelError(f"--host {host}: the probe `{PROBE_ARGV[-1]}` failed (exit status "
                          f"{res.returncode}, output {res.stdout.strip()!r})")
    system, release, clang, lld = words[:4]
    if system == "NetBSD":
        return HostInfo(system, release, "netbsd")
    if clang != "-" and lld != "-":
        return HostInfo(system, release, "cross")
    raise KernelError(f"--host {host} is {system} {release} without clang and ld.lld: a build host is either "
                      f"NetBSD (native make) or a POSIX host with the cross toolchain (Debian: apt-get "
                      f"install clang lld)")


def ssh_runner(host: str, identity: str | None) -> SSHRunner:
    user, name, port = parse_host(host)
    return SSHRunner(user, name, port, identity=Path(identity) if identity else None)
