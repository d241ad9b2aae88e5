"""Phase stamps: one file per finished phase holding the hash of that phase's inputs.

A phase's key is a hash over the previous phase's key and the phase's own inputs, so a changed input
reruns that phase and every later one of the same package, and nothing else.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .fsutil import write_if_changed


def phase_key(previous: str, **inputs: object) -> str:
    blob = json.dumps({"previous": previous, **inputs}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class Stamps:
    """The stamps of one package (work/<package>/.stamps/<phase>)."""

    def __init__(self, directory: Path):
        self.directory = directory

    def _path(self, phase: str) -> Path:
        return self.directory / phase

    def is_current(self, phase: str, key: str) -> bool:
        p = self._path(phase)
        return p.exists() and p.read_text().strip() == key

    def mark_done(self, phase: str, key: str) -> None:
        write_if_changed(self._path(phase), key + "\n")

    def clear(self, phase: str) -> None:
        self._path(phase).unlink(missing_ok=True)
