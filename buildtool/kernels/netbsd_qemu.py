"""The netbsd-qemu profile: no kernel to build modules for, but a test lane (docs/vm-netbsd.md).

A NetBSD 10.99.12 kernel built from the shared sources with clang/lld (kernels/netbsd_kernel.py), booted in
QEMU with our ppp_mppe.kmod (built by the netbsd-10 profile's build against the same tree) and our test
agent as /sbin/init; no NetBSD userland. `buildtool test --kernel netbsd-qemu` builds and runs it.
"""

from __future__ import annotations

from .base import TestLaneFamily
from .netbsd_kernel import ENV_SOURCES, INPUTS, TARBALLS
from .profiles import Profile


class NetBSDQemuLane(TestLaneFamily):
    scenarios = "buildtool.vm.netbsd_suite:run_netbsd_suite"

    @classmethod
    def needs(cls, profile: Profile) -> list[str]:
        return [
            f"../shared/sources/{{{','.join(TARBALLS)}}} (or {ENV_SOURCES}=DIR), verified against "
            f"{INPUTS}/distinfo on every run (regenerate: buildtool makesum {INPUTS}; patch sums: "
            f"buildtool makepatchsum {INPUTS}); the kernel is built once into "
            f"~/.cache/buildtool/netbsd-kernel, keyed by every input's hash",
            "host programs (scripts/setup installs them): clang, lld, llvm, bmake, makefs, grub-mkrescue "
            "(grub-pc-bin, grub-common), xorriso, mtools, qemu-system-x86_64",
            "run: buildtool test --kernel netbsd-qemu [--control]",
        ]

    @classmethod
    def status(cls, profile: Profile) -> list[str]:
        return [
            "verified here: ppp_mppe.kmod (kmod/mppe/{core,netbsd}) loaded by modctl into a booted NetBSD "
            "10.99.12 kernel with DIAGNOSTIC and LOCKDEBUG: autoload by name and EBUSY, the PPPIOCSCOMPRESS "
            "table, MPPE-128 stateless and stateful traffic byte-exact through if_ppp on a pty, UDP "
            "datagrams up to 65507 bytes through the kernel's IP stack, loss/reorder/duplication/corruption "
            "and coherency-count jumps and wrap, a fuzz of 3000 malformed frames, frames of Linux's stock "
            "ppp_mppe accepted and the kernel's own frames byte-exact; five broken glue variants caught",
            "not verified: a NetBSD userland (no libc, sh, pppd or pptpd: our agent plays pppd and the peer "
            "over the console); real hardware or another architecture than amd64 under QEMU TCG",
        ]
