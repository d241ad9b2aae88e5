"""The netbsd-rump profile: no kernel to build modules for, but a test lane.

NetBSD's own kernel PPP code (if_ppp, ppp_tty, mbufs, the module framework) built as a rump kernel, Linux
user-space libraries, from the shared 2016 rump sources, with our ppp_mppe compiled into it from the same
sources as the .kmod (buildtool/rump/). `buildtool test --kernel netbsd-rump` builds and runs it.
"""

from __future__ import annotations

from .base import TestLaneFamily
from .profiles import Profile


class RumpLane(TestLaneFamily):
    scenarios = "buildtool.rump.suite:run_rump_suite"

    @classmethod
    def needs(cls, profile: Profile) -> list[str]:
        return [
            "../shared/sources/netbsd-rump-src-2016.tar.xz and buildrump.sh-2017.tar.xz (or "
            "BUILDTOOL_RUMP_SOURCES=DIR); the rump kernel is built once into ~/.cache/buildtool/rump",
            "run: buildtool test --kernel netbsd-rump [--control]",
        ]

    @classmethod
    def status(cls, profile: Profile) -> list[str]:
        return [
            "verified here: ppp_mppe from kmod/mppe/{core,netbsd} running inside NetBSD's own if_ppp (the "
            "2016 rump sources): the PPPIOCSCOMPRESS table, register twice / unload in use, frames both ways "
            "with our core and the Python reference, loss/reorder/corruption recovery, a 50000-byte "
            "datagram, a fuzz with DIAGNOSTIC on and mbuf counts",
            "not verified: a NetBSD userland (pppd, pptpd) on a booted NetBSD; NetBSD-current's if_ppp (the "
            "rump sources are of 2016; its compressor interface is the same); frames captured from the Linux "
            "kernel modules in the VM (two user-space implementations stand for the Linux side)",
        ]
