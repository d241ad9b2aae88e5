"""Whether this machine lets an unprivileged process have its own user and mount namespaces (a chroot, such
as the fresh-machine root, does not): the tests that mount file systems without root depend on it."""

from __future__ import annotations

import subprocess


def can_mount_in_a_namespace() -> bool:
    try:
        return subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs tmpfs /mnt"], timeout=30,
                              stdin=subprocess.DEVNULL, capture_output=True).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
