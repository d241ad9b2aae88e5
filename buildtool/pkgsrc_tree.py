"""A real pkgsrc tree, unpacked from a tarball and bootstrapped once into the cache.

`ensure_bootstrapped(tarball, cache)` unpacks e.g. pkgsrc-2014Q1.tar.xz into
`<cache>/pkgsrc/<sha256 prefix>/pkgsrc` and bootstraps it into `.../pkg` (bmake, pkg_install, the mk files),
the way a user on Debian 12 would (the quirks are in BOOTSTRAP_ENV and MK_CONF). It holds a lock while it
works, and only a `.complete` marker written last says the tree is usable: a half-finished unpack or bootstrap
is removed and done again. Every command runs with stdin from /dev/null (nbpatch asks "File to patch:" on a
terminal and waits for ever) and under a timeout that kills its whole process group.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .distinfo import DISTFILE_ALGORITHMS
from .errors import BuildError
from .fsutil import atomic_path, file_digest, file_lock
from .runlog import capture, run

UNPACK_TIMEOUT = 900.0
BOOTSTRAP_TIMEOUT = 3600.0
CONFIG_VERSION = 7

# bmake-20140314 has duplicate definitions gcc >= 10 rejects (-fcommon); libfetch's -Werror trips gcc 12
# (NOGCCERROR); dash's echo is not BSD-compatible (SH).
BOOTSTRAP_ENV = {"CFLAGS": "-O2 -fcommon", "NOGCCERROR": "yes", "SH": "/bin/bash"}

# Appended to the bootstrap's mk.conf. A 2014 tree on Debian 12 needs the OpenSSL lines (its builtin.mk
# cannot read OpenSSL 3's version and would build openssl-1.0.1g, whose distfile is unreachable here) and
# a digest that knows BLAKE2s (see DIGEST_WRAPPER); the rest is how the tests want pkgsrc to behave:
# fail on PLIST mismatches (PKG_DEVELOPER) and never try the network.
MK_CONF = """
# --- buildtool: settings for pkgsrc-2014Q1 on Debian 12 ---
PKG_DEVELOPER=		yes
# PKG_DEVELOPER turns on the permission check, whose tool (sysutils/checkperms) needs an unreachable distfile
CHECK_PERMS=		no
FETCH_USING=		manual
PREFER_NATIVE=		openssl libpcap
USE_BUILTIN.openssl=	yes
# builtin.mk's awk looks for a hex OPENSSL_VERSION_NUMBER, which OpenSSL 3's opensslv.h no longer has
BUILTIN_PKG.openssl!=	awk '/define OPENSSL_VERSION_STR/ \\
			{{ gsub("\\"", "", $$NF); print "openssl-" $$NF }}' /usr/include/openssl/opensslv.h
_DIGEST_ALGORITHMS=	{algorithms}
TOOLS_PLATFORM.digest=	{digest}
ALLOW_VULNERABLE_PACKAGES=	yes
"""

# pkgtools/digest of 2014 has no BLAKE2s; current distinfo files use it. Python's hashlib computes it, every
# other algorithm goes to the real digest.
DIGEST_WRAPPER = """#!/bin/sh
# buildtool: digest(1) with BLAKE2s, which pkgtools/digest of 2014 lacks (data on stdin or in files).
if [ "$1" = "BLAKE2s" ]; then
	shift
	exec /usr/bin/python3 -c '
import hashlib, sys
for name in sys.argv[1:] or ["-"]:
    data = sys.stdin.buffer.read() if name == "-" else open(name, "rb").read()
    digest = hashlib.blake2s(data).hexdigest()
    print(digest if name == "-" else "BLAKE2s (%s) = %s" % (name, digest))
' "$@"
fi
exec {real} "$@"
"""


class PkgsrcError(BuildError):
    """The pkgsrc tree could not be unpacked or bootstrapped, or a pkgsrc command failed."""

    exit_code = 8


@dataclass(frozen=True)
class PkgsrcTree:
    """A bootstrapped pkgsrc tree in the cache: the tree, its prefix and the tools in it."""

    root: Path

    @property
    def pkgsrc(self) -> Path:
        return self.root / "pkgsrc"

    @property
    def prefix(self) -> Path:
        return self.root / "pkg"

    @property
    def bmake(self) -> Path:
        return self.prefix / "bin" / "bmake"

    @property
    def mk_conf(self) -> Path:
        return self.prefix / "etc" / "mk.conf"

    @property
    def pkgdb(self) -> Path:
        return self.prefix / "pkgdb"

    def tool(self, name: str) -> Path:
        """pkg_add, pkg_info, pkg_delete, pkg_admin, pkg_create."""
        return self.prefix / "sbin" / name

    @property
    def complete_marker(self) -> Path:
        return self.root / ".complete"

    @property
    def configured_marker(self) -> Path:
        """Written once `configure` finished for this CONFIG_VERSION (a changed MK_CONF bumps it)."""
        return self.root / f".configured-{CONFIG_VERSION}"

    @property
    def log(self) -> Path:
        return self.root / "bootstrap.log"


def tree_for(tarball: Path, cache: Path) -> PkgsrcTree:
    """Where the tree of `tarball` lives in the cache (keyed by the tarball's sha256)."""
    return PkgsrcTree(cache / "pkgsrc" / file_digest(tarball, "sha256")[:16])


def ensure_bootstrapped(tarball: Path, cache: Path, out=None) -> PkgsrcTree:
    """The bootstrapped tree of `tarball`, unpacking and bootstrapping it first if the cache lacks it."""
    out = out or sys.stderr
    if not tarball.is_file():
        raise PkgsrcError(f"{tarball}: pkgsrc tarball not found")
    tree = tree_for(tarball, cache)
    with tree_lock(tree):
        if tree.complete_marker.is_file():
            if not tree.configured_marker.is_file():
                configure(tree, out)
            return tree
        if tree.root.exists():
            progress(out, f"removing the unfinished tree {tree.root}")
            shutil.rmtree(tree.root)
        tree.root.mkdir(parents=True)
        t0 = time.monotonic()
        progress(out, f"unpacking {tarball.name} into {tree.root}")
        run_bounded(["tar", "-xJf", str(tarball), "-C", str(tree.root)], log=tree.log, timeout=UNPACK_TIMEOUT,
                    what=f"unpacking {tarball.name}")
        if not (tree.pkgsrc / "bootstrap" / "bootstrap").is_file():
            raise PkgsrcError(f"{tarball}: no pkgsrc/bootstrap/bootstrap in the archive; "
                              "is it a pkgsrc tree?")
        progress(out, f"bootstrapping into {tree.prefix} (3-8 min on 2 cores; log: {tree.log})")
        bootstrap(tree)
        with atomic_path(tree.complete_marker) as tmp:
            tmp.write_text(f"{tarball.name}\n")
        progress(out, f"bootstrap done in {time.monotonic() - t0:.0f}s")
        configure(tree, out)
    return tree


def tree_lock(tree: PkgsrcTree):
    """Exclusive use of one cached tree (bootstrap, and builds that install into its prefix)."""
    return file_lock(tree.root.parent / f"{tree.root.name}.lock")


def bootstrap(tree: PkgsrcTree) -> None:
    p = tree.prefix
    cmd = ["./bootstrap", "--prefix", str(p), "--varbase", str(p / "var"), "--pkgdbdir", str(tree.pkgdb),
           "--prefer-pkgsrc", "openssl", "--workdir", str(tree.root / "bootstrap-work")]
    run_bounded(cmd, cwd=tree.pkgsrc / "bootstrap", env=BOOTSTRAP_ENV, log=tree.log,
                timeout=BOOTSTRAP_TIMEOUT, what="pkgsrc bootstrap")
    shutil.rmtree(tree.root / "bootstrap-work", ignore_errors=True)


def configure(tree: PkgsrcTree, out) -> None:
    """The real digest (pkgtools/digest, built from the tree's files), the BLAKE2s wrapper around it and
    our mk.conf lines (replacing an older version of them)."""
    real = tree.prefix / "bin" / "digest"
    if not real.is_file():
        progress(out, "building pkgtools/digest (the bootstrap does not install it)")
        bmake(tree, tree.pkgsrc / "pkgtools" / "digest", "install", "clean", log=tree.log)
    wrapper = tree.prefix / "libexec" / "buildtool" / "digest"
    wrapper.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(wrapper) as tmp:
        tmp.write_text(DIGEST_WRAPPER.format(real=shlex.quote(str(real))))
        tmp.chmod(0o755)
    text = tree.mk_conf.read_text()
    mark = MK_CONF.lstrip("\n").splitlines()[0]
    if mark in text:
        text = text[: text.index(mark)].rstrip("\n") + "\n"
    with atomic_path(tree.mk_conf) as tmp:
        tmp.write_text(text + MK_CONF.format(digest=wrapper, algorithms=' '.join(DISTFILE_ALGORITHMS)))
    with atomic_path(tree.configured_marker) as tmp:
        tmp.write_text("configured\n")


def progress(out, message: str) -> None:
    print(f"==> pkgsrc: {message}", file=out, flush=True)


def run_bounded(cmd: list[str], *, log: Path, timeout: float, what: str, cwd: Path | None = None,
                env: Mapping[str, str] | None = None) -> None:
    """runlog.run (own process group, stdin /dev/null, output to `log`, progress lines, stopped with its
    group after `timeout`) with the pkgsrc quirk spelled out: nbpatch's "File to patch:" prompt then reads
    end-of-file instead of waiting for ever."""
    run(cmd, log=log, cwd=cwd, env=env, what=what, timeout=timeout)


# --- running pkgsrc ---------------------------------------------------------------------------------

BUILD_TIMEOUT = 2400.0
TOOL_TIMEOUT = 300.0


def bmake(tree: PkgsrcTree, pkgdir: Path, *args: str, log: Path, timeout: float = BUILD_TIMEOUT) -> None:
    """`bmake ARGS` in a package directory of the tree (stdin /dev/null, bounded, output to `log`)."""
    targets = " ".join(a for a in args if "=" not in a)
    run_bounded([str(tree.bmake), *args], cwd=pkgdir, log=log, timeout=timeout,
                what=f"bmake {targets} in {pkgdir.relative_to(tree.pkgsrc)}")


def show_var(tree: PkgsrcTree, pkgdir: Path, var: str, *settings: str) -> str:
    """The value of a variable as pkgsrc computes it (`bmake show-var VARNAME=...`)."""
    proc = tool(tree, str(tree.bmake), "show-var", f"VARNAME={var}", *settings, cwd=pkgdir)
    if proc.returncode != 0:
        raise PkgsrcError(f"bmake show-var VARNAME={var} in {pkgdir} failed:\n{proc.stdout}{proc.stderr}")
    return proc.stdout.strip()


def tool(tree: PkgsrcTree, program: str, *args: str, cwd: Path | None = None,
         env: Mapping[str, str] | None = None, timeout: float = TOOL_TIMEOUT) -> subprocess.CompletedProcess:
    """A pkg_* tool of the tree (by name) or any program, stdin /dev/null, bounded, output captured."""
    path = str(tree.tool(program)) if program.startswith("pkg_") else program
    full_env = dict(os.environ, LC_ALL="C")
    full_env.update(env or {})
    try:
        return capture([path, *args], cwd=cwd, env=full_env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise PkgsrcError(f"{program} {shlex.join(args)} did not finish within {timeout:.0f}s") from None


# --- pkglint ------------------------------------------------------------------------------------------

# pkglint-4.137 uses Digest::SHA1 (security/p5-Digest-SHA1, a CPAN distfile we cannot reach and Debian does
# not package) for one call, sha1_hex; Perl's core Digest::SHA has the same function.
DIGEST_SHA1_PM = """package Digest::SHA1;
# buildtool: Digest::SHA1's sha1_hex from Perl's core Digest::SHA (pkglint needs only this function).
use strict;
use Digest::SHA ();
sub sha1_hex { return Digest::SHA::sha1_hex(@_); }
1;
"""
DEWEY_DEFINES = "-DHAVE_CTYPE_H -DHAVE_STDLIB_H -DHAVE_STRING_H"  # pkgtools/p5-pkgsrc-Dewey's CPPFLAGS
PKGLINT_TIMEOUT = 600.0


@dataclass(frozen=True)
class Pkglint:
    """pkgtools/pkglint of a tree, built with the system perl: `command` runs it in a package directory."""

    root: Path

    @property
    def script(self) -> Path:
        return self.root / "bin" / "pkglint"

    @property
    def perl5lib(self) -> str:
        return ":".join(str(self.root / d) for d in ("lib/perl5", "dewey/blib/lib", "dewey/blib/arch"))

    def command(self, *args: str) -> tuple[list[str], dict[str, str]]:
        return ["/usr/bin/perl", str(self.script), *args], {"PERL5LIB": self.perl5lib}


def ensure_pkglint(tree: PkgsrcTree, out=None) -> Pkglint:
    """Build pkgtools/pkglint from the tree once, the way its Makefile does (SUBST, build.pl), with the
    system perl (pkgsrc's own perl5 would need distfiles that are unreachable here); pkgtools/p5-pkgsrc-Dewey
    (the XS module pkglint compares versions with) is built from the tree as well."""
    out = out or sys.stderr
    lint = Pkglint(tree.root / "pkglint")
    with file_lock(tree.root / ".pkglint.lock"):
        marker = lint.root / ".complete"
        if marker.is_file():
            return lint
        progress(out, f"building pkglint from {tree.pkgsrc / 'pkgtools/pkglint'}")
        if lint.root.exists():
            shutil.rmtree(lint.root)
        log = tree.root / "pkglint-build.log"
        _build_dewey(tree, lint.root / "dewey", log)
        _build_pkglint(tree, lint, log)
        with atomic_path(marker) as tmp:
            tmp.write_text("pkglint\n")
    return lint


def _build_dewey(tree: PkgsrcTree, work: Path, log: Path) -> None:
    src = tree.pkgsrc / "pkgtools" / "p5-pkgsrc-Dewey" / "files"
    shutil.copytree(src, work)
    libdir = tree.pkgsrc / "pkgtools" / "pkg_install" / "files" / "lib"
    for name in ("dewey.c", "dewey.h", "defs.h"):  # as the package's do-extract copies them
        shutil.copy(libdir / name, work / ("lib_dewey.c" if name == "dewey.c" else name))
    (work / "nbcompat.h").write_text("")
    run_bounded(["/usr/bin/perl", "Makefile.PL", f"DEFINE={DEWEY_DEFINES}"], cwd=work, log=log,
                timeout=PKGLINT_TIMEOUT, what="perl Makefile.PL of p5-pkgsrc-Dewey")
    run_bounded(["make"], cwd=work, log=log, timeout=PKGLINT_TIMEOUT, what="building p5-pkgsrc-Dewey")


def _build_pkglint(tree: PkgsrcTree, lint: Pkglint, log: Path) -> None:
    pkgdir = tree.pkgsrc / "pkgtools" / "pkglint"
    files = pkgdir / "files"
    work = lint.root / "work"
    shutil.copytree(files, work)
    version = re.search(r"^PKGNAME=\s*pkglint-(\S+)", (pkgdir / "Makefile").read_text(), re.M)
    if version is None:
        raise PkgsrcError(f"{pkgdir / 'Makefile'}: no PKGNAME=pkglint-<version> line")
    datadir = lint.root / "share" / "pkglint"
    subst = {"@PKGSRCDIR@": str(tree.pkgsrc), "@PREFIX@": str(lint.root), "@DISTVER@": version[1],
             "@MAKE@": str(tree.bmake), "@PERL@": "/usr/bin/perl", "@DATADIR@": str(datadir)}
    for name in ("build.pl", "pkglint.pl", "plist-clash.pl"):  # the Makefile's SUBST_FILES.pkglint
        text = (work / name).read_text()
        for key, value in subst.items():
            text = text.replace(key, value)
        (work / name).write_text(text)
    inlined = work / "pkglint.pl.inlined"
    with (work / "pkglint.pl").open("rb") as src, inlined.open("wb") as dst:
        proc = subprocess.run(["/usr/bin/perl", "build.pl"], cwd=work, stdin=src, stdout=dst,
                              stderr=subprocess.PIPE, timeout=PKGLINT_TIMEOUT)
    if proc.returncode != 0:
        raise PkgsrcError(f"pkglint's build.pl failed: {proc.stderr.decode(errors='replace')[-2000:]}")
    lint.script.parent.mkdir(parents=True)
    shutil.copy(inlined, lint.script)
    lint.script.chmod(0o755)
    datadir.mkdir(parents=True)
    for name in ("makevars.map", "deprecated.map"):
        shutil.copy(files / name, datadir / name)
    compat = lint.root / "lib" / "perl5" / "Digest"
    compat.mkdir(parents=True)
    (compat / "SHA1.pm").write_text(DIGEST_SHA1_PM)
