"""Debian's archive as a mirror, reached through a private apt configuration.

A fresh Debian host lists only binary entries (`Types: deb`), so `apt-get source` finds nothing. Rather than
edit the host's apt configuration, we keep our own under the tool's cache (`<cache>/apt`): a sources file
generated from the host's sources with `deb-src` added, its own lists and archives, the host's keyrings and
dpkg status. Every apt command here runs with APT_CONFIG pointing at it.

Only single files are fetched (`apt-helper download-file` with the archive's SHA256): the archive sometimes
404s a source package's .dsc while its tarball is there, so `apt-get source` as a whole is not used.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import FetchError, HostToolError
from .fsutil import atomic_path, file_digest, file_lock, write_if_changed
from .runlog import capture, heartbeat
from .templating import template_env

APT_HELPER = "/usr/lib/apt/apt-helper"
APT_TIMEOUT = 300.0  # seconds for one apt command; downloads of big files get DOWNLOAD_TIMEOUT
DOWNLOAD_TIMEOUT = 3600.0

_TEMPLATES = template_env("apt")

# apt reads only these names in sources.list.d (see sources.list(5)); anything else (*.disabled, *.save,
# editor backups) is ignored, and so do we.
_SOURCE_PART_NAME = re.compile(r"^[A-Za-z0-9_.-]+\.(list|sources)$")

# one-line `[opt=value ...]` option names and their deb822 field names (sources.list(5))
_ONE_LINE_OPTIONS = {
    "arch": "Architectures", "lang": "Languages", "target": "Targets", "pdiffs": "PDiffs",
    "by-hash": "By-Hash", "allow-insecure": "Allow-Insecure", "allow-weak": "Allow-Weak",
    "allow-downgrade-to-insecure": "Allow-Downgrade-To-Insecure", "trusted": "Trusted",
    "signed-by": "Signed-By", "check-valid-until": "Check-Valid-Until", "valid-until-min": "Valid-Until-Min",
    "valid-until-max": "Valid-Until-Max", "check-date": "Check-Date", "date-max-future": "Date-Max-Future",
    "inrelease-path": "InRelease-Path", "snapshot": "Snapshot",
}
_STRUCTURAL_FIELDS = {"types", "uris", "suites", "components", "enabled"}


@dataclass
class SourceFile:
    """One file of a Debian source package as the archive lists it."""

    name: str
    url: str
    size: int
    sha256: str


@dataclass
class SourceEntry:
    """One repository entry, types aside (we always want both deb and deb-src)."""

    uris: list[str]
    suites: list[str]
    components: list[str]
    options: list[tuple[str, str]] = field(default_factory=list)

    def key(self) -> tuple:
        return (tuple(self.uris), tuple(self.suites), tuple(self.components), tuple(self.options))


@dataclass
class HostApt:
    """Where the host's apt keeps what we reuse (as `apt-config` reports it)."""

    sourcelist: Path = Path("/etc/apt/sources.list")
    sourceparts: Path = Path("/etc/apt/sources.list.d")
    trusted: Path = Path("/etc/apt/trusted.gpg")
    trustedparts: Path = Path("/etc/apt/trusted.gpg.d")
    status: Path = Path("/var/lib/dpkg/status")
    carried: list[tuple[str, str]] = field(default_factory=list)  # proxy settings passed on

    @classmethod
    def detect(cls) -> HostApt:
        host = cls()
        if shutil.which("apt-config") is None:
            return host
        env = {k: v for k, v in os.environ.items() if k != "APT_CONFIG"}
        out = subprocess.run(
            ["apt-config", "shell", "SL", "Dir::Etc::sourcelist/f", "SP", "Dir::Etc::sourceparts/d",
             "TG", "Dir::Etc::trusted/f", "TP", "Dir::Etc::trustedparts/d", "ST", "Dir::State::status/f"],
            capture_output=True, text=True, env=env, timeout=60).stdout
        values = {}
        for line in out.splitlines():
            name, _, value = line.partition("=")
            parts = shlex.split(value)
            values[name] = parts[0] if parts else ""
        for attr, name in (("sourcelist", "SL"), ("sourceparts", "SP"), ("trusted", "TG"),
                           ("trustedparts", "TP"), ("status", "ST")):
            if values.get(name):
                setattr(host, attr, Path(values[name]))
        dump = subprocess.run(["apt-config", "dump", "--format", "%f=%v%n", "Acquire"],
                              capture_output=True, text=True, env=env, timeout=60).stdout
        host.carried = carried_settings(dump)
        return host


def carried_settings(dump: str) -> list[tuple[str, str]]:
    """The host's proxy settings (from `apt-config dump --format '%f=%v%n'`), which the archive needs too."""
    carried = []
    for line in dump.splitlines():
        key, sep, value = line.partition("=")
        if sep and value and re.fullmatch(r"Acquire::[a-z]+::Proxy(::[^=]+)?", key):
            carried.append((key, value))
    return carried


# --- reading the host's sources ------------------------------------------------------------------

def parse_deb822(text: str, origin: str = "<sources>") -> list[SourceEntry]:
    """Entries of a deb822 `.sources` file; stanzas with `Enabled: no` are left out."""
    entries = []
    for stanza in _deb822_stanzas(text):
        fields = {k.lower(): (k, v) for k, v in stanza}
        if fields.get("enabled", ("", "yes"))[1].strip().lower() == "no":
            continue
        if "uris" not in fields or "suites" not in fields:
            raise FetchError(f"{origin}: a stanza has no URIs or Suites field; "
                             f"cannot derive apt sources from it")
        options = [(k, v) for k, v in stanza if k.lower() not in _STRUCTURAL_FIELDS]
        entries.append(SourceEntry(
            uris=fields["uris"][1].split(), suites=fields["suites"][1].split(),
            components=fields.get("components", ("", ""))[1].split(), options=options))
    return entries


def _deb822_stanzas(text: str) -> Iterator[list[tuple[str, str]]]:
    stanza: list[tuple[str, str]] = []
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if stanza:
                yield stanza
            stanza = []
        elif raw[0] in " \t" and stanza:
            key, value = stanza[-1]
            stanza[-1] = (key, f"{value}\n {raw.strip()}" if key.lower() == "signed-by" else
                          f"{value} {raw.strip()}".strip())
        else:
            key, _, value = raw.partition(":")
            stanza.append((key.strip(), value.strip()))
    if stanza:
        yield stanza


def parse_one_line(text: str, origin: str = "<sources.list>") -> list[SourceEntry]:
    """Entries of a one-line-style `sources.list`; `deb` and `deb-src` lines for the same repo merge."""
    entries = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        kind, _, rest = line.partition(" ")
        if kind not in ("deb", "deb-src"):
            raise FetchError(f"{origin}:{lineno}: not a sources.list line: {raw!r}")
        options: list[tuple[str, str]] = []
        rest = rest.strip()
        if rest.startswith("["):
            opts, close, rest = rest[1:].partition("]")
            if not close:
                raise FetchError(f"{origin}:{lineno}: unclosed '[' in: {raw!r}")
            for opt in opts.split():
                name, _, value = opt.partition("=")
                field_name = _ONE_LINE_OPTIONS.get(name.rstrip("+-"))
                if field_name is None:
                    raise FetchError(f"{origin}:{lineno}: unknown option {name!r} in: {raw!r}")
                options.append((field_name, value.replace(",", " ")))
        words = rest.split()
        if len(words) < 2:
            raise FetchError(f"{origin}:{lineno}: needs a URI and a suite: {raw!r}")
        entries.append(SourceEntry(uris=[words[0]], suites=[words[1]], components=words[2:], options=options))
    return entries


def host_entries(host: HostApt) -> list[SourceEntry]:
    """Every enabled entry of the host's apt sources, without duplicates, in the order apt reads them."""
    found: list[SourceEntry] = []
    if host.sourcelist.is_file():
        found += parse_one_line(host.sourcelist.read_text(), str(host.sourcelist))
    if host.sourceparts.is_dir():
        for part in sorted(host.sourceparts.iterdir()):
            if not _SOURCE_PART_NAME.match(part.name) or not part.is_file():
                continue
            if part.suffix == ".sources":
                found += parse_deb822(part.read_text(), str(part))
            else:
                found += parse_one_line(part.read_text(), str(part))
    unique: dict[tuple, SourceEntry] = {}
    for entry in found:
        unique.setdefault(entry.key(), entry)
    return list(unique.values())


def render_sources(entries: list[SourceEntry]) -> str:
    return _TEMPLATES.get_template("sources.j2").render(entries=entries)


# --- the private archive -----------------------------------------------------------------------------

_PRINT_URI = re.compile(r"^'(?P<url>[^']+)' (?P<name>\S+) (?P<size>\d+) (?P<hash>\S+)")


class AptArchive:
    """Debian's archive through a private apt configuration rooted at `root` (normally <cache>/apt)."""

    def __init__(self, root: Path, log: Path | None = None, host: HostApt | None = None):
        self.root = root
        self.log = log or root / "apt.log"
        self._host = host
        self._configured = False

    # configuration -----------------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.root / "apt.conf"

    @property
    def sources_file(self) -> Path:
        return self.root / "sources.list.d" / "buildtool.sources"

    @property
    def _updated_stamp(self) -> Path:
        return self.root / "state" / "buildtool-updated"

    def configure(self) -> bool:
        """Write the private configuration; return True if the list of sources changed."""
        if not Path(APT_HELPER).exists() or shutil.which("apt-get") is None:
            raise HostToolError("Debian's archive needs apt (apt-get, apt-cache, /usr/lib/apt/apt-helper)\n"
                                "install with: apt-get install apt")
        host = self._host or HostApt.detect()
        entries = host_entries(host)
        if not entries:
            raise FetchError(f"the host's apt configuration ({host.sourcelist}, {host.sourceparts}) lists no "
                             f"repositories, so Debian's archive cannot be used as a mirror.\n"
                             f"Add a Debian repository to the host's apt sources, or place the file by hand.")
        for d in ("sources.list.d", "apt.conf.d", "state/lists/partial", "cache/archives/partial"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        conf = _TEMPLATES.get_template("apt.conf.j2").render(
            sourceparts=self.root / "sources.list.d", parts=self.root / "apt.conf.d",
            state=self.root / "state", status=host.status, cache=self.root / "cache",
            trusted=host.trusted, trustedparts=host.trustedparts,
            sandbox_user=pwd.getpwuid(os.getuid()).pw_name, carried=host.carried)
        write_if_changed(self.config_file, conf)
        self._configured = True
        return write_if_changed(self.sources_file, render_sources(entries))

    def ensure_updated(self, max_age_hours: float = 24.0) -> None:
        """Run the private `apt-get update` when the lists are missing, stale or the sources changed."""
        with self._lock():
            changed = self.configure()
            stamp = self._updated_stamp
            fresh = stamp.exists() and time.time() - stamp.stat().st_mtime < max_age_hours * 3600
            if fresh and not changed:
                return
            proc = self._apt(["apt-get", "update", "-q"], what="updating the private apt lists", check=False)
            failed = [line for line in (proc.stdout + proc.stderr).splitlines()
                      if line.startswith(("Err:", "E:", "W: Failed to fetch", "W: Some index files failed"))]
            if proc.returncode == 0 and not failed:
                stamp.touch()  # only a complete update counts as fresh
                return
            # not marked fresh: the next run tries again, whatever the lists hold now
            stamp.unlink(missing_ok=True)
            detail = "\n".join(failed[-6:]) or _apt_errors(proc)
            if not self.has_lists():
                raise FetchError(
                    f"Debian's archive could not be reached: `apt-get update` failed (exit status "
                    f"{proc.returncode}) and there are no package lists to fall back on:\n{detail}\n"
                    f"Check the network (or the proxy in the host's apt configuration) and run again; "
                    f"nothing was marked up to date. Or place the file by hand. Full log: {self.log}")
            print(f"warning: `apt-get update` could not reach every source; using the package lists of an "
                  f"earlier update (tried again next run):\n{detail}", file=sys.stderr, flush=True)

    def has_lists(self) -> bool:
        """Whether an earlier update left any package or source lists to answer from."""
        lists = self.root / "state" / "lists"
        return any(p.stat().st_size > 0 for p in lists.glob("*_Sources*")) or any(
            p.stat().st_size > 0 for p in lists.glob("*_Packages*"))

    # source packages --------------------------------------------------------------------------
    def source_versions(self, source: str) -> list[str]:
        """Versions of source package `source` the archive offers (newest first, as apt sorts them)."""
        self._ensure_configured()
        proc = self._query(["apt-cache", "showsrc", "--only-source", source])
        versions: list[str] = []
        package = None
        for line in proc.stdout.splitlines():
            if line.startswith("Package: "):
                package = line.split(":", 1)[1].strip()
            elif line.startswith("Version: ") and package == source:
                version = line.split(":", 1)[1].strip()
                if version not in versions:
                    versions.append(version)
        return versions

    def source_files(self, source: str, version: str) -> list[SourceFile]:
        """The files of source package `source` at `version` (URL, size, SHA256), without downloading."""
        self._ensure_configured()
        proc = self._query(["apt-get", "source", "--print-uris", "-q", f"{source}={version}"])
        files = [f for f in (_parse_print_uri(line) for line in proc.stdout.splitlines()) if f]
        if proc.returncode != 0 or not files:
            available = self.source_versions(source)
            if not available:
                raise FetchError(
                    f"Debian's package lists know no source package {source} at all: the archive could "
                    f"not be reached when the lists were updated, or the host's sources carry no Debian "
                    f"release with it.\n{_apt_errors(proc)}\nCheck the network and run again, or place the "
                    f"file by hand. Full log: {self.log}")
            if version not in available:
                raise FetchError(
                    f"Debian source package {source} version {version} is not in the archive "
                    f"(available: {', '.join(available) or 'none'}).\n"
                    f"Pin an available version in the recipe's distfile.debian, or place the file by hand.")
            raise FetchError(f"apt-get source --print-uris {source}={version} failed:\n"
                             f"{_apt_errors(proc)}\nfull log: {self.log}")
        return files

    def download_source_file(self, source: str, version: str, filename: str, dest: Path) -> Path:
        """Download one file of a source package to `dest`, checked against the archive's SHA256."""
        files = {f.name: f for f in self.source_files(source, version)}
        if filename not in files:
            raise FetchError(f"Debian source package {source} {version} has no file {filename} "
                             f"(it has: {', '.join(sorted(files))})")
        wanted = files[filename]
        with atomic_path(dest) as tmp:  # renamed to dest only if the block succeeds
            self._apt([APT_HELPER, "download-file", wanted.url, str(tmp), f"SHA256:{wanted.sha256}"],
                      what=f"downloading {filename} from Debian's archive", timeout=DOWNLOAD_TIMEOUT,
                      progress=lambda: f"{_tree_size(tmp.parent, tmp.name) / 1e6:.1f} of "
                                       f"{wanted.size / 1e6:.1f} MB")
            if file_digest(tmp, "sha256") != wanted.sha256:  # apt-helper checks too; this guards the rename
                raise FetchError(f"{filename} from {wanted.url} does not match the archive's SHA256")
        return dest

    # binary packages --------------------------------------------------------------------------
    def candidate_version(self, package: str) -> str | None:
        """The version `apt-get install package` would pick, or None if the archive has none."""
        self._ensure_configured()
        proc = self._query(["apt-cache", "policy", package])
        for line in proc.stdout.splitlines():
            key, _, value = line.strip().partition(":")
            if key == "Candidate":
                value = value.strip()
                return None if value in ("", "(none)") else value
        return None

    def depends(self, package: str, version: str | None = None) -> list[str]:
        """Names in the binary package's Depends (the first of each set of alternatives)."""
        self._ensure_configured()
        version = version or self.candidate_version(package)
        if version is None:
            raise FetchError(f"no version of binary package {package} in the archive")
        proc = self._query(["apt-cache", "show", f"{package}={version}"])
        if proc.returncode != 0:
            raise FetchError(f"binary package {package} version {version} is not in the archive "
                             f"(candidate: {self.candidate_version(package) or 'none'})\n{_apt_errors(proc)}")
        fields = dict(next(_deb822_stanzas(proc.stdout), []))  # first record; a version may repeat
        return parse_depends(fields.get("Depends", ""))

    def download_binary(self, package: str, version: str | None, dest_dir: Path) -> Path:
        """Download a .deb into `dest_dir` (reused if already there and intact); return its path."""
        self._ensure_configured()
        version = version or self.candidate_version(package)
        if version is None:
            raise FetchError(f"no version of binary package {package} in the archive")
        spec = f"{package}={version}"
        proc = self._query(["apt-get", "download", "--print-uris", "-q", spec])
        uris = [f for f in (_parse_print_uri(line) for line in proc.stdout.splitlines()) if f]
        if proc.returncode != 0 or len(uris) != 1:
            raise FetchError(f"binary package {spec} cannot be downloaded (candidate: "
                             f"{self.candidate_version(package) or 'none'})\n{_apt_errors(proc)}")
        deb = uris[0]
        dest = dest_dir / deb.name
        if dest.exists() and dest.stat().st_size == deb.size and (
                not deb.sha256 or self._sha256(dest) == deb.sha256):
            return dest
        dest_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".apt-download.", dir=dest_dir) as tmp:
            self._apt(["apt-get", "download", "-q", spec], cwd=Path(tmp), what=f"downloading {spec}",
                      timeout=DOWNLOAD_TIMEOUT,
                      progress=lambda: f"{_tree_size(Path(tmp)) / 1e6:.0f} of {deb.size / 1e6:.0f} MB")
            got = Path(tmp) / deb.name
            if not got.exists():
                raise FetchError(f"apt-get download {spec} did not produce {deb.name}; see {self.log}")
            os.replace(got, dest)
        return dest

    # answers that only change with the lists ----------------------------------------------------
    @property
    def _memo_file(self) -> Path:
        return self.root / "state" / "buildtool-memo.json"

    def _lists_fingerprint(self) -> str:
        """Changes whenever `apt-get update` ran or the sources changed: what every answer depends on."""
        parts = [p.stat().st_mtime_ns if p.exists() else 0 for p in (self._updated_stamp, self.sources_file)]
        return ":".join(map(str, parts))

    def _memo(self) -> dict:
        try:
            memo = json.loads(self._memo_file.read_text())
        except (FileNotFoundError, ValueError):
            memo = {}
        if memo.get("fingerprint") != self._lists_fingerprint():
            memo = {"fingerprint": self._lists_fingerprint(), "queries": {}, "sha256": {}}
        return memo

    def _save_memo(self, memo: dict) -> None:
        write_if_changed(self._memo_file, json.dumps(memo, sort_keys=True))

    def _query(self, cmd: list[str]) -> subprocess.CompletedProcess:
        """A read-only apt query, answered from the memo while the lists are unchanged."""
        memo = self._memo()
        key = shlex.join(cmd)
        if key in memo["queries"]:
            rc, out, err = memo["queries"][key]
            return subprocess.CompletedProcess(cmd, rc, out, err)
        proc = self._apt(cmd, check=False)
        memo["queries"][key] = [proc.returncode, proc.stdout, proc.stderr]
        self._save_memo(memo)
        return proc

    def _sha256(self, path: Path) -> str:
        """SHA256 of a downloaded file, remembered by size and mtime (the kernel .debs are 220 MB)."""
        memo = self._memo()
        st = path.stat()
        key = f"{path}:{st.st_size}:{st.st_mtime_ns}"
        if key not in memo["sha256"]:
            memo["sha256"][key] = file_digest(path, "sha256")
            self._save_memo(memo)
        return memo["sha256"][key]

    # running apt ------------------------------------------------------------------------------
    def _ensure_configured(self) -> None:
        if not self._configured:
            self.ensure_updated()

    def _lock(self):
        return file_lock(self.root / ".lock")

    def _apt(self, cmd: list[str], *, cwd: Path | None = None, check: bool = True,
             what: str = "", timeout: float = APT_TIMEOUT, progress=None) -> subprocess.CompletedProcess:
        """Run an apt command under the private configuration; its output goes to the log, not the screen.
        A command that does not finish within `timeout` seconds is stopped (a full disk can make apt wait
        forever) and reported with what it printed."""
        env = dict(os.environ, APT_CONFIG=str(self.config_file), LC_ALL="C")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        try:
            # a download (the kernel's .debs are 214 MB) reports progress while it runs
            with heartbeat(what, measure=progress) if progress else contextlib.nullcontext():
                proc = capture(cmd, cwd=cwd, env=env, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            printed = (e.stderr or "") + (e.output or "")
            with self.log.open("a") as f:
                f.write(f"\n$ APT_CONFIG={self.config_file} {shlex.join(cmd)}\n{printed}"
                        f"[stopped after {timeout:.0f}s]\n")
            tail = "\n".join(printed.strip().splitlines()[-10:]) or "(no output)"
            raise FetchError(f"{what or cmd[0]} did not finish within {timeout:.0f}s and was stopped (a full "
                             f"disk under {self.root} or an unreachable archive can make apt wait forever).\n"
                             f"its last output:\n{tail}\ncommand: APT_CONFIG={self.config_file} "
                             f"{shlex.join(cmd)}\nfull log: {self.log}") from None
        with self.log.open("a") as f:
            f.write(f"\n$ APT_CONFIG={self.config_file} {shlex.join(cmd)}\n{proc.stdout}{proc.stderr}"
                    f"[exit status {proc.returncode}]\n")
        if check and proc.returncode != 0:
            raise FetchError(f"{what or cmd[0]} failed (exit status {proc.returncode}):\n"
                             f"{_apt_errors(proc)}\n"
                             f"command: APT_CONFIG={self.config_file} {shlex.join(cmd)}\n"
                             f"full log: {self.log}")
        return proc


def _tree_size(directory: Path, prefix: str = "") -> int:
    """Bytes in the files under `directory` whose names start with `prefix` (a download in progress)."""
    return sum(p.stat().st_size for p in directory.rglob(f"{prefix}*") if p.is_file())


def parse_depends(value: str) -> list[str]:
    """`a (>= 1), b | c, d:any` -> ['a', 'b', 'd']."""
    names = []
    for group in value.split(","):
        first = group.split("|")[0].strip()
        if first:
            names.append(re.split(r"[\s(:\[]", first, maxsplit=1)[0])
    return names


def _parse_print_uri(line: str) -> SourceFile | None:
    m = _PRINT_URI.match(line.strip())
    if not m:
        return None
    alg, _, value = m["hash"].partition(":")
    return SourceFile(name=m["name"], url=m["url"], size=int(m["size"]),
                      sha256=value.lower() if alg.upper() == "SHA256" else "")


def _apt_errors(proc: subprocess.CompletedProcess) -> str:
    output = (proc.stderr + proc.stdout).splitlines()
    lines = [line for line in output if line.startswith(("E:", "W:", "Err"))]
    return "\n".join(lines[-10:]) or (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
