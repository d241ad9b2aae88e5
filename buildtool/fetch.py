"""The fetch phase (interface; implementation in progress)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .distinfo import DistfileSum
from .recipe import Distfile


@dataclass
class FetchOptions:
    offline: bool = False
    progress: bool | None = None  # None: a bar on a terminal, plain lines otherwise
    apt_dir: Path | None = None  # private apt configuration for the Debian mirror
    timeout: float = 30.0


def fetch_distfile(distfile: Distfile, expected: DistfileSum, distdir: Path, options: FetchOptions,
                   log: Path) -> Path:
    """Return distdir/<name>, verified against `expected`; fetch it from the mirrors in order if needed."""
    raise NotImplementedError
