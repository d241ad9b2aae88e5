"""What a guest image holds besides busybox, our packages and the guest tools: declared contents.

A role (the NAT router) or a userland (the distribution's pppd, pptpd, pptp) that needs more in the guest
declares a GuestContents; the image builder (vm/image.py) builds from the sum, and the sum is part of the
image key. Its own module so that roles (vm/topology.py) can declare contents without importing the
image builder, which imports them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GuestDeb:
    """A Debian binary package whose programs go into the guest (at the same path as in the package)."""

    package: str
    programs: tuple[str, ...] = ()
    links: tuple[tuple[str, str], ...] = ()  # (link in the guest, target)


@dataclass(frozen=True)
class GuestContents:
    """Debian packages (programs at their packaged paths; shared libraries come with the programs that
    need them) and the distribution's kernel modules (their modinfo dependencies come along)."""

    debs: tuple[GuestDeb, ...] = ()
    modules: tuple[str, ...] = ()

    def __add__(self, other: GuestContents) -> GuestContents:
        names = {d.package for d in self.debs}
        return GuestContents(self.debs + tuple(d for d in other.debs if d.package not in names),
                             self.modules + tuple(m for m in other.modules if m not in self.modules))
