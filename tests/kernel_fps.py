"""Frames per second through the kernels' ppp units, per lane, kept in the pytest session (config.stash) so
the session's summary can print NetBSD's figure as a ratio to Linux's from the same run. Printed, never
asserted. Both lanes time the same thing inside the guest: BENCH_FRAMES frames of BENCH_SIZE payload bytes
written to the kernel (plaintexts on the unit for it to encrypt, ciphertext frames on the wire for it to
decrypt) in batches of 16, the other side read back."""

from __future__ import annotations

import pytest

BENCH_FRAMES = 2000
BENCH_SIZE = 8  # + 2 protocol bytes: 10-byte PPP frames
FPS = pytest.StashKey[dict]()


def record_fps(config, lane: str, mode: str, direction: str, fps: float) -> None:
    config.stash.setdefault(FPS, {})[(lane, mode, direction)] = fps


def summary_lines(config) -> list[str]:
    got = config.stash.get(FPS, {})
    lines = []
    for mode in ("stateless", "stateful"):
        for direction in ("encrypt", "decrypt"):
            nb, lx = got.get(("netbsd", mode, direction)), got.get(("linux", mode, direction))
            if nb is None and lx is None:
                continue
            ratio = f"{nb / lx:.2f}" if nb and lx else "n/a (both lanes must run in the session)"
            lines.append(f"{mode:9} kernel {direction}s: netbsd {nb or 0:.0f}/s, linux {lx or 0:.0f}/s, "
                         f"netbsd/linux {ratio}")
    return lines
