"""The fetch phase: get each distfile into the distfile cache, verified, from the first mirror that has it.

Mirrors are tried in order: the sites of $BUILDTOOL_MASTER_SITE_OVERRIDE (like pkgsrc's MASTER_SITE_OVERRIDE),
the recipe's master sites, then Debian's source archive. Each mirror is verified on its own: a mirror serving
a wrong file is noted and the next one is tried. An HTTP download goes to `<name>.part` (resumed with a Range
request on the next attempt) and is renamed to `<name>` only after its checksum holds, so the final name never
holds a bad file, even after `kill -9`.
"""

from __future__ import annotations

import errno
import http.client
import os
import re
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import requests
import urllib3

from .debian import AptArchive
from .distinfo import DistfileSum, Distinfo, read_distinfo, verify_distfile
from .errors import DISK_ERRNOS, ChecksumError, FetchError, disk_error
from .fsutil import atomic_path, file_digest
from .recipe import Distfile, Recipe

OVERRIDE_ENV = "BUILDTOOL_MASTER_SITE_OVERRIDE"
CONNECT_TIMEOUT = 5.0  # seconds; an unreachable site must not hold up the next mirror
CHUNK = 16 * 1024  # also bounds what a dropped connection loses of the last read
PLAIN_STEP_MIN_SIZE = 4 * 1024 * 1024  # plain output prints a line per 10% only for files this big


@dataclass
class FetchOptions:
    offline: bool = False
    progress: bool | None = None  # None: a bar on a terminal, plain lines otherwise
    apt_dir: Path | None = None  # private apt configuration for the Debian mirror
    timeout: float = 30.0  # read timeout per request (the connect timeout is CONNECT_TIMEOUT at most)


@dataclass
class Mirror:
    """One place a distfile may come from: an HTTP(S)/FTP URL, or a file of a Debian source package."""

    label: str
    url: str = ""
    debian: object | None = None  # recipe.DebianMirror


class MirrorFailed(Exception):
    """This mirror did not deliver a good file; the reason is one line, the details are in the log."""


def mirrors(distfile: Distfile, environ: dict[str, str] | None = None) -> list[Mirror]:
    """The mirrors of a distfile, in the order they are tried."""
    env = os.environ if environ is None else environ
    sites = env.get(OVERRIDE_ENV, "").split() + list(distfile.sites)
    found = []
    for site in sites:
        url = site if site.endswith("/") else site + "/"
        url += distfile.name
        if all(m.url != url for m in found):
            found.append(Mirror(label=url, url=url))
    if distfile.debian is not None:
        d = distfile.debian
        found.append(Mirror(label=f"Debian archive ({d.source} {d.version}: {d.file})", debian=d))
    return found


def fetch_distfile(distfile: Distfile, expected: DistfileSum, distdir: Path, options: FetchOptions,
                   log: Path) -> Path:
    """Return distdir/<name>, verified against `expected`; fetch it from the mirrors in order if needed."""
    dest = distdir / distfile.name
    if dest.exists():
        try:
            verify_distfile(dest, expected)
            return _tidy(dest, log)
        except ChecksumError as e:
            bad = dest.with_name(dest.name + ".bad")
            os.replace(dest, bad)
            _log(log, f"cached distfile failed verification, moved to {bad}:\n{e}")
            if options.offline:
                raise ChecksumError(f"refusing the cached distfile, which does not match distinfo:\n{e}\n"
                                    f"It was moved aside to {bad}; --offline "
                                    f"forbids fetching a good copy: run without --offline, or place one at "
                                    f"{dest} by hand.") from None
            _note(f"cached {dest} is corrupt, moved aside to {bad.name} and fetched again:\n{e}")
    if options.offline:
        raise FetchError(f"{distfile.name} is not in the distfile cache and --offline forbids downloading.\n"
                         f"Place the file at {dest} by hand, or run without --offline.")
    return _tidy(_from_mirrors(distfile, dest, expected, options, log), log)


def _tidy(dest: Path, log: Path) -> Path:
    """With a verified `dest` in place, what was kept beside it for a retry or a look is no longer needed:
    a partial download (`.part`, e.g. from a mirror that failed before another one delivered), the corrupt
    copy moved aside (`.bad`) and temporaries of a killed download."""
    leftovers = [dest.with_name(dest.name + suffix) for suffix in (".part", ".bad")]
    leftovers += dest.parent.glob(f".{dest.name}.*.tmp")
    for path in leftovers:
        if path.exists():
            path.unlink()
            _log(log, f"removed {path}: {dest.name} is in place and verified")
    return dest


def cache_problems(recipe: Recipe, info: Distinfo, distdir: Path) -> list[str]:
    """What is wrong with a recipe's distfiles in the cache: one line per file missing or failing distinfo."""
    problems = []
    for d in recipe.distfiles:
        path = distdir / d.name
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        try:
            verify_distfile(path, info.distfile(d.name))
        except ChecksumError as e:
            problems.append(f"{path}: BAD: {_indent(str(e))}")
    return problems


def check_cache_offline(recipes: list[Recipe], distdir: Path) -> None:
    """`fetch --offline`: check every cached distfile against distinfo; name every one missing or bad."""
    problems = [p for r in recipes for p in cache_problems(r, read_distinfo(r.distinfo_path), distdir)]
    if not problems:
        return
    listing = "\n".join(f"  - {p}" for p in problems)
    cls = ChecksumError if any(": BAD: " in p for p in problems) else FetchError
    raise cls(f"the distfile cache does not hold verified copies of every distfile:\n{listing}\n"
              f"Run `buildtool fetch` without --offline to replace them (a bad file is moved aside to "
              f"<name>.bad), or place good copies there by hand.")


def fetch_unverified(distfile: Distfile, distdir: Path, options: FetchOptions, log: Path) -> Path:
    """Return distdir/<name> as the first mirror delivers it, unchecked (for `buildtool makesum`)."""
    dest = distdir / distfile.name
    if dest.exists():
        return dest
    if options.offline:
        raise FetchError(f"{distfile.name} is not in the distfile cache and --offline forbids downloading.\n"
                         f"Place the file at {dest} by hand, or run without --offline.")
    return _from_mirrors(distfile, dest, None, options, log)


def _from_mirrors(distfile: Distfile, dest: Path, expected: DistfileSum | None, options: FetchOptions,
                  log: Path) -> Path:
    _remove_stale_temporaries(dest)
    tried = mirrors(distfile)
    failures: list[tuple[str, str]] = []
    for mirror in tried:
        _log(log, f"--- {distfile.name}: trying {mirror.label}")
        try:
            if mirror.debian is not None:
                _from_debian(mirror, dest, expected, options, log)
            else:
                _from_url(mirror.url, dest, expected, options, log)
            _log(log, f"{distfile.name}: got it from {mirror.label}")
            return dest
        except MirrorFailed as e:
            reason = str(e)
        except FetchError as e:  # the Debian mirror explains itself (e.g. which versions exist)
            reason = str(e)
        failures.append((mirror.label, reason))
        _note(f"{distfile.name}: {mirror.label}: {_indent(reason or 'failed')}")
        _log(log, f"{mirror.label} failed: {reason}")
    listing = "\n".join(f"  - {label}: {_indent(reason)}" for label, reason in failures) or "  (no mirrors)"
    raise FetchError(f"could not fetch {distfile.name}; every mirror failed:\n{listing}\n"
                     f"Place a good copy at {dest} by hand (it is checked against distinfo), "
                     f"or set {OVERRIDE_ENV} to a site that has it. Details: {log}")


def _remove_stale_temporaries(dest: Path) -> None:
    """Drop temporaries a killed Debian download left beside `dest` (atomic_path's `.<name>.*.tmp`)."""
    for stale in dest.parent.glob(f".{dest.name}.*.tmp"):
        stale.unlink(missing_ok=True)


# --- HTTP ------------------------------------------------------------------------------------------

def _from_url(url: str, dest: Path, expected: DistfileSum | None, options: FetchOptions, log: Path) -> None:
    """Download `url` through `<dest>.part`, verify it and rename it to `dest`; MirrorFailed otherwise."""
    part = dest.with_name(dest.name + ".part")
    resumed = _download(url, part, expected, options, log)
    if expected is not None:
        try:
            _check(part, expected)
        except MirrorFailed as e:
            if not resumed:
                raise
            # the old .part may have come from another mirror or an older file: one clean try from this one
            _log(log, f"resumed download did not verify, fetching {url} again from the start:\n{e}")
            _download(url, part, expected, options, log)
            _check(part, expected)
    os.replace(part, dest)


def _check(path: Path, expected: DistfileSum) -> None:
    """Verify a downloaded file; a bad one is deleted and MirrorFailed names expected and actual values."""
    try:
        verify_distfile(path, expected)
    except ChecksumError as e:
        detail = str(e)
        if detail.startswith("size mismatch"):
            alg = sorted(expected.hashes)[0]
            got = file_digest(path, alg.lower())  # distinfo's names lower-cased are hashlib's
            detail += f"\n  expected {alg} {expected.hashes[alg]}\n  actual   {alg} {got}"
        path.unlink(missing_ok=True)
        raise MirrorFailed(f"wrong file: {detail}") from None


def _download(url: str, part: Path, expected: DistfileSum | None, options: FetchOptions, log: Path) -> bool:
    """Fill `part` with the whole of `url`, resuming if it exists; return True if it resumed."""
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    if expected is not None and have > expected.size:
        part.unlink()
        have = 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    timeout = (min(CONNECT_TIMEOUT, options.timeout), options.timeout)
    try:
        with requests.get(url, headers=headers, stream=True, timeout=timeout, allow_redirects=True) as resp:
            _log(log, f"GET {url} {headers or ''} -> {resp.status_code} {resp.reason} "
                      f"(Content-Length {resp.headers.get('Content-Length')}, "
                      f"Content-Range {resp.headers.get('Content-Range')})")
            if resp.status_code == 416 and have:
                return _range_not_satisfiable(part, have, expected, log)
            if resp.status_code == 206 and have:
                start = _content_range_start(resp.headers.get("Content-Range", ""))
                if start != have:
                    raise MirrorFailed(f"asked for bytes {have}- but got Content-Range "
                                       f"{resp.headers.get('Content-Range')!r}")
                mode, done, resumed = "ab", have, True
            elif resp.status_code == 200:
                if have:
                    _log(log, f"server ignored the Range request: restarting {part.name} from 0")
                mode, done, resumed = "wb", 0, False
            else:
                raise MirrorFailed(f"HTTP {resp.status_code} {resp.reason}")
            length = resp.headers.get("Content-Length")
            if length and length.isdigit():
                total: int | None = done + int(length)
            else:
                total = expected.size if expected else None
            _receive(resp, part, mode, done, total, expected, options)
            return resumed
    except requests.RequestException as e:
        kept = part.stat().st_size if part.exists() else 0
        _log(log, f"{url}: {e!r}; {part.name} holds {kept} bytes")
        raise MirrorFailed(_short_reason(e) + (f" ({kept} bytes kept in {part.name} for resuming)"
                                               if kept else "")) from None


def _receive(resp: requests.Response, part: Path, mode: str, done: int, total: int | None,
             expected: DistfileSum | None, options: FetchOptions) -> None:
    progress = Progress(part.name.removesuffix(".part"), total, done, _want_bar(options.progress))
    try:
        with part.open(mode) as f:
            for chunk in resp.iter_content(CHUNK):
                f.write(chunk)
                done += len(chunk)
                if expected is not None and done > expected.size:
                    f.close()
                    part.unlink()
                    raise MirrorFailed(f"wrong file: more than the expected {expected.size} bytes")
                progress.update(done)
    except OSError as e:
        progress.finish(failed=True)
        if e.errno in DISK_ERRNOS:
            raise disk_error(e, f"downloading {part.name}", where=part) from None
        raise
    except BaseException:
        progress.finish(failed=True)
        raise
    progress.finish(failed=total is not None and done < total)
    if total is not None and done < total:
        raise MirrorFailed(f"connection closed after {done} of {total} bytes "
                           f"({done} bytes kept in {part.name} for resuming)")


def _range_not_satisfiable(part: Path, have: int, expected: DistfileSum | None, log: Path) -> bool:
    """416: the .part is as long as the file or longer; keep it only if it may be the whole file."""
    if expected is not None and have == expected.size:
        return True  # verified by the caller; a bad one is removed and fetched again
    part.unlink()
    _log(log, f"HTTP 416 with {have} bytes in {part.name}: removed it")
    raise MirrorFailed(f"HTTP 416 for a resume at byte {have}; removed {part.name}, the next try starts over")


def _content_range_start(value: str) -> int | None:
    m = re.match(r"bytes (\d+)-", value)
    return int(m.group(1)) if m else None


# what a failure is called, by the class of an exception in requests' chain (requests wraps urllib3's errors,
# which wrap the socket's), not by message text
_REASONS: tuple[tuple[tuple[type[BaseException], ...], str], ...] = (
    ((socket.gaierror, urllib3.exceptions.NameResolutionError), "host name does not resolve"),
    ((ConnectionRefusedError,), "connection refused"),
    ((http.client.IncompleteRead, http.client.RemoteDisconnected, ConnectionResetError,
      urllib3.exceptions.ProtocolError, requests.exceptions.ChunkedEncodingError),
     "connection dropped mid-transfer"),
    ((urllib3.exceptions.ConnectTimeoutError, requests.ConnectTimeout), "connect timed out"),
    ((urllib3.exceptions.ReadTimeoutError, requests.Timeout), "read timed out"),
)


def _short_reason(e: requests.RequestException) -> str:
    for cause in reversed(list(_causes(e))):  # the innermost (the socket's own error) says most
        if isinstance(cause, OSError) and cause.errno == errno.ENETUNREACH:
            return "network unreachable"
        if isinstance(cause, urllib3.exceptions.NewConnectionError):
            continue  # a ConnectTimeoutError by class, whatever stopped the connection
        for types, reason in _REASONS:
            if isinstance(cause, types):
                return reason
    text = str(e)
    return f"{type(e).__name__}: {text.splitlines()[0][:200] if text else ''}"


def _causes(e: BaseException | None):
    """`e` and what it wraps, outermost first: requests wraps urllib3's errors (as its first argument),
    urllib3 the socket's (as `reason`, a cause or a context)."""
    for _ in range(20):  # a chain is a few links long; never loop on a cycle
        if e is None:
            return
        yield e
        first = e.args[0] if e.args and isinstance(e.args[0], BaseException) else None
        e = e.__cause__ or getattr(e, "reason", None) or first or e.__context__


# --- Debian's archive ---------------------------------------------------------------------------

def _from_debian(mirror: Mirror, dest: Path, expected: DistfileSum | None, options: FetchOptions,
                 log: Path) -> None:
    """Fetch the Debian file into a temporary name, verify it against OUR distinfo, rename it to `dest`."""
    d = mirror.debian
    archive = AptArchive(options.apt_dir or _default_apt_dir(), log=log)
    archive.ensure_updated()
    _note(f"fetching {dest.name} from Debian's archive ({d.source} {d.version}: {d.file})")
    t0 = time.monotonic()
    with atomic_path(dest) as tmp:
        archive.download_source_file(d.source, d.version, d.file, tmp)
        if expected is not None:
            _check(tmp, expected)
        size = tmp.stat().st_size
    _note(f"fetched {dest.name}: {_size(size)} in {time.monotonic() - t0:.1f}s")


def _default_apt_dir() -> Path:
    from .layout import default_cache

    return default_cache() / "apt"


# --- output -------------------------------------------------------------------------------------

def _want_bar(progress: bool | None) -> bool:
    if progress is None:
        return sys.stderr.isatty()
    return progress


class Progress:
    """A one-line bar on a terminal; otherwise a start line, an end line and (big files) one per 10%."""

    def __init__(self, name: str, total: int | None, start: int, bar: bool, out: TextIO | None = None):
        self.name, self.total, self.start, self.bar = name, total, start, bar
        self.out = out or sys.stderr
        self.t0 = time.monotonic()
        self.done = start
        self.next_step = 1
        self.last_draw = 0.0
        what = f"{_size(total)}" if total else "size unknown"
        resume = f", resuming at {_size(start)}" if start else ""
        if not bar:
            self._line(f"fetching {name} ({what}{resume})")

    def update(self, done: int) -> None:
        self.done = done
        if self.bar:
            now = time.monotonic()
            if now - self.last_draw >= 0.1:
                self.last_draw = now
                self._draw()
        elif self.total and self.total >= PLAIN_STEP_MIN_SIZE:
            while self.next_step < 10 and done * 10 >= self.total * self.next_step:
                self._line(f"  {self.name}: {self.next_step * 10}% ({_size(done)})")
                self.next_step += 1

    def finish(self, failed: bool = False) -> None:
        secs = max(time.monotonic() - self.t0, 1e-6)
        rate = (self.done - self.start) / secs
        if self.bar:
            self._draw()
            self.out.write("\n")
            self.out.flush()
        else:
            state = "stopped" if failed else "fetched"
            self._line(f"{state} {self.name}: {_size(self.done)} in {secs:.1f}s ({_size(rate)}/s)")

    def _draw(self) -> None:
        secs = max(time.monotonic() - self.t0, 1e-6)
        rate = (self.done - self.start) / secs
        if self.total:
            frac = min(self.done / self.total, 1.0)
            filled = int(frac * 30)
            bar = "#" * filled + "-" * (30 - filled)
            text = f"{self.name} [{bar}] {frac:4.0%} {_size(self.done)}/{_size(self.total)} {_size(rate)}/s"
        else:
            text = f"{self.name} {_size(self.done)} {_size(rate)}/s"
        self.out.write("\r" + text + "\x1b[K")
        self.out.flush()

    def _line(self, text: str) -> None:
        print(text, file=self.out, flush=True)


def _size(n: float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _log(log: Path, text: str) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as f:
        f.write(text.rstrip("\n") + "\n")


def _indent(text: str) -> str:
    return text.replace("\n", "\n    ")
