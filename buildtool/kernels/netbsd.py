"""NetBSD kernels: a kernel source tree (--sysdir, the historic package's SYSDIR) and a NetBSD build host
reached over SSH with fabric (--host user@host; every command sent is POSIX sh).

What is implemented: the checks of what the profile needs, with errors that say how to provide it, and a
probe of the build host (`uname -sr`). What is not: the remote module build itself. `resolve` says so
with a KernelError once everything it can check is in place, rather than pretending to have built.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from ..distinfo import Distinfo
from ..errors import KernelError
from ..kmod import KernelTarget
from ..recipe import Recipe
from . import KernelFamily, Profile

_HOST = re.compile(
    r"^(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>\d+))?$")

# POSIX sh run on the build host to identify it; prints e.g. "NetBSD 10.0"
PROBE_COMMAND = "uname -s; uname -r"


def parse_host(value: str) -> tuple[str, str, int | None]:
    """'user@host[:port]' -> (user, host, port); KernelError otherwise."""
    m = _HOST.match(value or "")
    if not m:
        raise KernelError(f"--host {value!r}: expected user@host or user@host:port (an SSH login on a NetBSD "
                          f"build host)")
    return m["user"], m["host"], int(m["port"]) if m["port"] else None


def missing_sysdir_files(profile: Profile, sysdir: Path) -> list[str]:
    return [rel for rel in profile.sysdir_checks if not (sysdir / rel).is_file()]


def release_matches(profile: Profile, uname_r: str) -> bool:
    """'10.0' matches profile version '10'; '1.4.1' matches '1.4.1' (and not '1.4.10')."""
    return uname_r == profile.version or uname_r.startswith(profile.version + ".")


class NetBSDKernel(KernelFamily):
    """A NetBSD kernel profile: a source tree plus an SSH build host."""

    @classmethod
    def needs(cls, profile: Profile) -> list[str]:
        p = profile
        checks = ", ".join(f"${{SYSDIR}}/{c}" for c in p.sysdir_checks)
        kind = ("an LKM loaded with modload (the kernel needs `options LKM`)" if p.module_kind == "lkm"
                else "a kernel module (ppp_mppe.kmod, bsd.kmodule.mk) that if_ppp autoloads for option 18")
        return [
            f"--sysdir DIR: a NetBSD {p.version} kernel source tree (e.g. {p.default_sysdir}); "
            f"checked: {checks}",
            f"--host user@host: a NetBSD {p.version} build host reached over SSH (fabric; POSIX sh commands)",
            f"builds {kind}",
            "status: the checks and the host probe are implemented; the remote build is not yet",
        ]

    def check(self) -> tuple[Path, str]:
        """The sysdir and host, validated; KernelError naming everything that is missing or wrong at once."""
        p = self.profile
        sysdir, host = self.options.get("sysdir"), self.options.get("host")
        needs, wrong = [], []
        if not sysdir:
            needs.append(f"--sysdir {p.default_sysdir} (a NetBSD {p.version} kernel source tree)")
        elif not Path(sysdir).is_dir():
            wrong.append(f"--sysdir {sysdir}: no such directory (a NetBSD {p.version} kernel source "
                         f"tree, e.g. {p.default_sysdir})")
        elif missing_sysdir_files(p, Path(sysdir)):
            wrong.append(
                f"--sysdir {sysdir} is not a NetBSD {p.version} kernel source tree: missing "
                f"{', '.join(str(Path(sysdir) / m) for m in missing_sysdir_files(p, Path(sysdir)))} (the "
                f"historic package checked ${{SYSDIR}}/lib/libkern/libkern.h; the MPPE option length lives "
                f"in sys/net/ppp-comp.h)")
        if not host:
            needs.append(f"--host user@host (a NetBSD {p.version} build host reachable over SSH)")
        else:
            try:
                parse_host(host)
            except KernelError as e:
                wrong.append(str(e))
        if needs:
            wrong.insert(0, f"{p.name} needs " + " and ".join(needs) + "; see `buildtool kernels`")
        if wrong:
            raise KernelError("\n".join(wrong))
        return Path(sysdir), host

    def probe_host(self, host: str) -> str:
        """`uname -sr` on the build host over SSH; KernelError unless it is the profile's NetBSD release."""
        import fabric  # imported here: only NetBSD profiles need it

        user, name, port = parse_host(host)
        try:
            with fabric.Connection(name, user=user, port=port, connect_timeout=20) as conn:
                result = conn.run(PROBE_COMMAND, hide=True, warn=True, in_stream=False)
        except Exception as e:  # paramiko/socket errors have no common base worth naming
            raise KernelError(f"--host {host}: cannot run `{PROBE_COMMAND}` over SSH: {e}") from None
        words = result.stdout.split()
        if result.exited != 0 or len(words) < 2 or words[0] != "NetBSD":
            raise KernelError(f"--host {host} is not a NetBSD host (`{PROBE_COMMAND}` printed "
                              f"{shlex.quote(result.stdout.strip())}, exit status {result.exited})")
        if not release_matches(self.profile, words[1]):
            raise KernelError(f"--host {host} runs NetBSD {words[1]}, the profile {self.profile.name} wants "
                              f"NetBSD {self.profile.version}")
        return words[1]

    def resolve(self, offline: bool = False) -> KernelTarget:
        sysdir, host = self.check()
        if offline:
            raise KernelError(f"{self.profile.name}: --offline cannot reach the build host {host}")
        release = self.probe_host(host)
        raise KernelError(
            f"{self.profile.name}: the sysdir {sysdir} and the build host {host} (NetBSD {release}) are in "
            f"place, but building the MPPE module on a NetBSD host is not implemented yet.\n"
            f"Build userland only with --kernel none, or use the default profile linux-6.1.")

    def build_modules(self, target: KernelTarget, recipe: Recipe, patches: list[Path], distinfo: Distinfo, *,
                      jobs: int, log_dir: Path, extra_patches: list[Path], dest: Path,
                      mppe: str | None = None) -> list[Path]:
        raise KernelError(f"{self.profile.name}: building modules on a NetBSD host is not implemented yet")
