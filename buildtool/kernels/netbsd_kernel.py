"""A NetBSD kernel built from source into the cache, for the QEMU-booted NetBSD lane (docs/vm-netbsd.md).

Inputs (all hashed into the cache key): the shared tarballs `netbsd-sys-10.99.12-x86.tar.xz` (the `sys`
tree), `netbsd-rump-src-2016.tar.xz` (config(1), `common/` and `share/mk` of 2016) and
`buildrump.sh-2017.tar.xz` (builds the host tools), our patch series `patches/netbsd-kernel/tools`
(config(1) reading the 2025 tree) and `patches/netbsd-kernel/common` (a compatibility layer over the 2016
`common/` and `share/mk` for the 2025 `sys`), the kernel config template
`templates/netbsd-kernel/BUILDTOOL.j2` and its values, the make flags, and the versions of clang, ld.lld
and bmake. The tarballs and both patch series are recorded in `netbsd-kernel/distinfo` (pkgsrc's format, as a
recipe's: Size, BLAKE2s and SHA512 of each tarball, SHA1 of each patch) and verified against it on every run,
before anything is unpacked or applied; `buildtool makesum netbsd-kernel` / `makepatchsum netbsd-kernel`
regenerate it. Two cache entries:

    ~/.cache/buildtool/netbsd-kernel/tools-<key>/   buildrump.sh's host tools with our config(1): bin/nbconfig
    ~/.cache/buildtool/netbsd-kernel/<key>/         netbsd (the kernel), src/{sys,common,share/mk} (the tree
                                                    the modules build against), build.log, COMPLETE (JSON)

Each is built in a temporary folder and renamed into place once complete, under a lock; a killed build
leaves nothing a later run would take for finished. Every command runs under `nice -n 10`, with stdin from
/dev/null and a timeout, its output in the entry's build.log; progress lines go to `out`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import hosttools
from ..distinfo import Distinfo, read_distinfo, verify_distfile, verify_patch
from ..errors import ChecksumError, KernelError, PatchError, PhaseError
from ..fsutil import atomic_path, file_digest, file_lock, text_digest
from ..patch import check_header, run_patch, series
from ..runlog import run
from ..sourcecache import unpacked
from ..templating import render, template_env
from .netbsd_tree import tree_version

SYS_TARBALL = "netbsd-sys-10.99.12-x86.tar.xz"
RUMP_TARBALL = "netbsd-rump-src-2016.tar.xz"
BUILDRUMP_TARBALL = "buildrump.sh-2017.tar.xz"
TARBALLS = (SYS_TARBALL, RUMP_TARBALL, BUILDRUMP_TARBALL)
INPUTS = "netbsd-kernel"  # <repo>/netbsd-kernel/distinfo; the name `buildtool makesum` takes
ENV_SOURCES = "BUILDTOOL_NETBSD_SOURCES"  # where the tarballs are, instead of ../shared/sources
LAYOUT_VERSION = "1"  # bump when the entries' layout or the commands below change

TARGET = "x86_64-unknown-netbsd"
# gcc >= 10 rejects the 2016 tools' duplicate tentative definitions; gcc 12's warnings trip -Werror there
TOOLS_HOST_CFLAGS = "-O2 -fcommon"
TOOLS_FLAGS = ("-F", "CFLAGS=-fcommon", "-V", "NOGCCERROR=yes")
MAKE_VARS = (
    "MACHINE=amd64", "MACHINE_ARCH=x86_64", "MACHINE_CPU=x86_64", "USETOOLS=no", "HAVE_LLVM=yes",
    "MKLLVM=yes", "MKGCC=no", "ACTIVE_CC=clang", f"CC=clang --target={TARGET}", "LD=ld.lld",
    "OBJCOPY=llvm-objcopy", "NM=llvm-nm", "SIZE=llvm-size", "STRIP=llvm-strip", "AR=llvm-ar",
    "RANLIB=llvm-ranlib", "TOOL_AWK=awk", "NOGCCERROR=yes", "MKCTF=no", "OBJCOPYLIBFLAGS=-X",
)
TOOLS_TIMEOUT = 3600.0
CONFIG_TIMEOUT = 300.0
KERNEL_TIMEOUT = 3600.0
COPY_TIMEOUT = 600.0
MD_ROOT_MARKER = b"|This is the root ramdisk!\n"  # md_root.c's initial contents of md_root_image[]


@dataclass(frozen=True)
class KernelConfig:
    """What the config template renders from (docs/vm-netbsd.md explains each choice)."""

    name: str = "BUILDTOOL"
    md_root_sectors: int = 8192  # 4 MiB root file system, written into md_root_image after the build
    options: tuple[str, ...] = (
        "MODULAR", "MODULAR_DEFAULT_AUTOLOAD", "DIAGNOSTIC", "LOCKDEBUG", "DDB", "DDB_ONPANIC=0", "INET",
        "MPBIOS",
    )


@dataclass(frozen=True)
class BuiltKernel:
    root: Path  # the cache entry
    kernel: Path
    sysdir: Path
    common: Path  # common/include
    release: str  # '10.99.12'
    version_number: int
    md_root_sectors: int
    marker: dict = field(default_factory=dict)

    @property
    def module_dir(self) -> str:
        """Where the module loader looks for <name>/<name>.kmod (kern.module.path)."""
        return f"stand/amd64/{self.release}/modules"


def missing_tarballs(sources: Path) -> list[str]:
    return [name for name in TARBALLS if not (sources / name).is_file()]


def sources_dir(repo: Path) -> Path:
    """Where the tarballs are: $BUILDTOOL_NETBSD_SOURCES, else `../shared/sources` seen from the repo."""
    return Path(os.environ.get(ENV_SOURCES) or repo.parent / "shared" / "sources").resolve()


def patch_dir(repo: Path, part: str) -> Path:
    return repo / "patches" / "netbsd-kernel" / part


def distinfo_path(repo: Path) -> Path:
    return repo / INPUTS / "distinfo"


def input_patches(repo: Path) -> list[Path]:
    """Both series, tools first: the patches distinfo records (by name, so a name must not be in both)."""
    tools, common = series(patch_dir(repo, "tools")), series(patch_dir(repo, "common"))
    twice = sorted({p.name for p in tools} & {p.name for p in common})
    if twice:
        raise PatchError(f"{', '.join(twice)}: in both {patch_dir(repo, 'tools')} and "
                         f"{patch_dir(repo, 'common')}; {distinfo_path(repo)} records patches by name: "
                         f"rename one")
    return [*tools, *common]


# --- verifying the inputs against netbsd-kernel/distinfo ---------------------------------------------------
def verify_tarball(path: Path, info: Distinfo) -> None:
    """KernelError naming the file, each wrong size or hash (expected and actual) and the next command."""
    try:
        verify_distfile(path, info.distfile(path.name))
    except ChecksumError as e:
        force = "--force " if path.name in info.distfiles else ""
        raise KernelError(
            f"refusing to build the NetBSD kernel from {path}: {e}\n"
            f"Put back the tarball {info.path} records (in {path.parent}, or name another folder with "
            f"{ENV_SOURCES}=DIR); if this one is intended, record it: buildtool makesum {force}{INPUTS}") \
            from None


def verify_input_patch(path: Path, info: Distinfo) -> None:
    """PatchError naming the patch, the expected and actual SHA1 and the command that records it."""
    try:
        verify_patch(path, info)
    except ChecksumError as e:
        raise PatchError(f"refusing to apply {path} to the NetBSD kernel's sources: {e}") from None


def verify_inputs(sources: Path, repo: Path, tarballs: Sequence[str] = TARBALLS) -> Distinfo:
    """Every tarball in `tarballs` and every patch of both series against netbsd-kernel/distinfo."""
    info = read_distinfo(distinfo_path(repo))
    for name in tarballs:
        verify_tarball(sources / name, info)
    for p in input_patches(repo):
        verify_input_patch(p, info)
    return info


def tool_versions() -> str:
    """First line of each toolchain program's version: a compiler update changes the kernel."""
    lines = []
    for program in ("clang", "ld.lld"):
        if shutil.which(program) is None:
            raise KernelError(f"cannot run `{program} --version` (not found); the NetBSD kernel is built "
                              f"with Debian's clang and lld: apt-get install clang lld llvm "
                              f"(scripts/setup does)")
        lines.append(hosttools.version_line(program, timeout=30) or "?")
    return "\n".join(lines)


def _digests(paths: Sequence[Path]) -> list[str]:
    return [f"{p.name}:{file_digest(p, 'sha256')}" for p in paths]


def tools_key(sources: Path, repo: Path) -> str:
    parts = _digests([sources / RUMP_TARBALL, sources / BUILDRUMP_TARBALL])
    parts += _digests(series(patch_dir(repo, "tools")))
    parts += [f"HOST_CFLAGS={TOOLS_HOST_CFLAGS}", *TOOLS_FLAGS, f"layout={LAYOUT_VERSION}"]
    return text_digest("\n".join(parts))[:24]


def render_config(cfg: KernelConfig) -> str:
    return render(template_env("netbsd-kernel"), "BUILDTOOL.j2", cfg=cfg)


def kernel_key(sources: Path, repo: Path, cfg: KernelConfig) -> str:
    parts = _digests([sources / n for n in TARBALLS])
    parts += _digests(series(patch_dir(repo, "common")))
    parts += [f"tools={tools_key(sources, repo)}", render_config(cfg), *MAKE_VARS, tool_versions(),
              f"layout={LAYOUT_VERSION}"]
    parts += [render(template_env("netbsd-kernel"), t, tools=Path("/T"), target=TARGET)
              for t in ("genassym.sh.j2", "clang-cpp.sh.j2")]
    return text_digest("\n".join(parts))[:24]


# --- locking and running ---------------------------------------------------------------------------------
def _lock(path: Path, out):
    return file_lock(path, waiting=f"netbsd-kernel: waiting for another run building {path.stem}", out=out)


def _step(line: str) -> str:
    """'compile' or 'link' for the quiet build's step lines ("#   compile  obj/foo.o"), else ''."""
    words = line.split()
    return words[1] if line.startswith("#") and len(words) > 2 and words[1] in ("compile", "link") else ""


def run_logged(argv: Sequence[str], log: Path, *, cwd: Path, timeout: float, what: str, out,
               env: dict[str, str] | None = None, progress: str = "") -> None:
    """Run `argv` niced with stdin from /dev/null, output into `log` (runlog.run: its own process group,
    stopped after `timeout`); with `progress`, print a line per 250 compiled files and at each link."""
    compiled = 0

    def show(text: str) -> None:
        nonlocal compiled
        step = _step(text) if progress else ""
        if step:
            compiled += 1
            if compiled % 250 == 0 or step == "link":
                print(f"{progress}: {compiled} steps ({text.split()[-1]})", file=out, flush=True)

    run(["nice", "-n", "10", *argv], log=log, cwd=cwd, env={"LC_ALL": "C", **(env or {})}, what=what,
        timeout=timeout, on_line=show)


def apply_patches(patches: list[Path], tree: Path, log: Path, info: Distinfo | None = None) -> None:
    """Our own series: each patch checked (header; its SHA1 against `info` when given) before any is
    applied, each with --dry-run first, no fuzz (patch.run_patch)."""
    for p in patches:
        check_header(p)
        if info is not None:
            verify_input_patch(p, info)
    with log.open("a") as f:
        for p in patches:
            for dry in (True, False):
                run = run_patch(p, tree, f, dry_run=dry, timeout=120)
                if run.returncode != 0:
                    raise PatchError(f"patch {p} does not apply to {tree} (the pristine 2016 sources):\n"
                                     f"{run.output.strip()}\nfull output: {log}")


# --- host tools: buildrump.sh's, with our config(1) -----------------------------------------------------
def ensure_tools(sources: Path, cache: Path, repo: Path, out, jobs: int = 2) -> Path:
    """The tool folder (bin/nbconfig, bin/nbgenassym), building it first when the cache has none; its
    inputs are verified against netbsd-kernel/distinfo first, every time."""
    info = verify_inputs(sources, repo, (RUMP_TARBALL, BUILDRUMP_TARBALL))
    key = tools_key(sources, repo)
    dest = cache / "netbsd-kernel" / f"tools-{key}"
    if (dest / "COMPLETE").is_file():
        return dest / "tooldir"
    with _lock(dest.with_suffix(".lock"), out):
        if (dest / "COMPLETE").is_file():
            return dest / "tooldir"
        tmp = Path(tempfile.mkdtemp(prefix=f".tools-{key}.", dir=dest.parent))
        try:
            t0 = time.monotonic()
            log = tmp / "build.log"
            print(f"netbsd-kernel: unpacking {RUMP_TARBALL} and {BUILDRUMP_TARBALL} for the host tools",
                  file=out, flush=True)
            for name in (RUMP_TARBALL, BUILDRUMP_TARBALL):
                run_logged(["tar", "-xf", str(sources / name), "-C", str(tmp)], log, cwd=tmp,
                           timeout=COPY_TIMEOUT, what=f"unpacking {name}", out=out)
            apply_patches(series(patch_dir(repo, "tools")), tmp / "src-netbsd", log, info)
            print(f"netbsd-kernel: building host tools with buildrump.sh (config(1) with our patches; about "
                  f"2-5 min; log {log})", file=out, flush=True)
            run_logged([str(tmp / "buildrump.sh" / "buildrump.sh"), "-s", str(tmp / "src-netbsd"),
                        "-o", str(tmp / "obj"), "-T", str(tmp / "tooldir"), "-d", str(tmp / "dest"),
                        "-j", str(jobs), *TOOLS_FLAGS, "tools"],
                       log, cwd=tmp, timeout=TOOLS_TIMEOUT,
                       what="building the host tools (buildrump.sh tools)", out=out,
                       env={"HOST_CFLAGS": TOOLS_HOST_CFLAGS}, progress="netbsd-kernel: tools")
            if not (tmp / "tooldir" / "bin" / "nbconfig").is_file():
                raise KernelError(f"buildrump.sh tools finished without tooldir/bin/nbconfig; see {log}")
            # only nbconfig and nbgenassym are used (neither depends on where the tool dir lives)
            for sub in ("src-netbsd", "buildrump.sh", "obj", "dest"):
                shutil.rmtree(tmp / sub, ignore_errors=True)
            marker = {"key": key, "seconds": round(time.monotonic() - t0, 1)}
            (tmp / "COMPLETE").write_text(json.dumps(marker) + "\n")
            if dest.exists():
                shutil.rmtree(dest)
            tmp.rename(dest)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return dest / "tooldir"


# --- the kernel -----------------------------------------------------------------------------------------
def _tree_copy(src: Path, dest: Path, log: Path, out) -> None:
    """A copy of the unpacked sys tree that the build only reads: hard links when the file system allows
    (a second or so), a real copy otherwise. Its own folder, so sys/../common is ours."""
    try:
        run_logged(["cp", "-al", str(src), str(dest)], log, cwd=dest.parent, timeout=COPY_TIMEOUT,
                   what="linking the sys tree", out=out)
    except PhaseError:
        shutil.rmtree(dest, ignore_errors=True)
        run_logged(["cp", "-a", str(src), str(dest)], log, cwd=dest.parent, timeout=COPY_TIMEOUT,
                   what="copying the sys tree", out=out)


def ensure_kernel(sources: Path, cache: Path, repo: Path, *, cfg: KernelConfig | None = None, jobs: int = 2,
                  out=None) -> BuiltKernel:
    """The cached kernel for these inputs, built first when the cache has none. Every input is verified
    against netbsd-kernel/distinfo first, on a cache hit too."""
    out = out or sys.stderr
    cfg = cfg or KernelConfig()
    missing = missing_tarballs(sources)
    if missing:
        raise KernelError(f"{sources}: missing {', '.join(missing)} (the NetBSD kernel is built from them; "
                          f"{ENV_SOURCES}=DIR names another folder holding them)")
    info = verify_inputs(sources, repo)
    key = kernel_key(sources, repo, cfg)
    dest = cache / "netbsd-kernel" / key
    if not (dest / "COMPLETE").is_file():
        with _lock(dest.with_suffix(".lock"), out):
            if not (dest / "COMPLETE").is_file():
                _build_kernel(sources, cache, repo, cfg, key, dest, jobs, out, info)
    return _built(dest, cfg)


def _built(dest: Path, cfg: KernelConfig) -> BuiltKernel:
    sysdir = dest / "src" / "sys"
    number, release = tree_version(sysdir)
    return BuiltKernel(dest, dest / "netbsd", sysdir, dest / "src" / "common" / "include", release, number,
                       cfg.md_root_sectors, json.loads((dest / "COMPLETE").read_text()))


def _build_kernel(sources: Path, cache: Path, repo: Path, cfg: KernelConfig, key: str, dest: Path, jobs: int,
                  out, info: Distinfo) -> None:
    t0 = time.monotonic()
    tooldir = ensure_tools(sources, cache, repo, out, jobs)
    tools_done = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=dest.parent))
    try:
        log = tmp / "build.log"
        print(f"netbsd-kernel: unpacking {SYS_TARBALL} and the 2016 common/ (cached by sha256)", file=out,
              flush=True)
        sys_tree = unpacked(sources / SYS_TARBALL, cache, log=log) / "netbsd-src" / "sys"
        rump = unpacked(sources / RUMP_TARBALL, cache, ("src-netbsd/common", "src-netbsd/share/mk"),
                        log=log) / "src-netbsd"
        src = tmp / "src"
        src.mkdir()
        _tree_copy(sys_tree, src / "sys", log, out)
        shutil.copytree(rump / "common", src / "common", symlinks=True)
        shutil.copytree(rump / "share" / "mk", src / "share" / "mk", symlinks=True)
        apply_patches(series(patch_dir(repo, "common")), src, log, info)
        wrap = tmp / "wrap"
        wrap.mkdir()
        env = template_env("netbsd-kernel")
        for name in ("genassym", "clang-cpp"):
            with atomic_path(wrap / name) as w:
                w.write_text(render(env, f"{name}.sh.j2", tools=tooldir, target=TARGET))
                w.chmod(0o755)
        conf = tmp / cfg.name
        conf.write_text(render_config(cfg))
        obj = tmp / "obj"
        obj.mkdir()
        print(f"netbsd-kernel: config(1) for {cfg.name}", file=out, flush=True)
        run_logged([str(tooldir / "bin" / "nbconfig"), "-b", str(obj), "-s", str(src / "sys"), str(conf)],
                   log, cwd=tmp, timeout=CONFIG_TIMEOUT, what="config(1) of the kernel", out=out)
        print(f"netbsd-kernel: building the kernel with clang/lld, bmake -j{jobs} (about 1-4 min; log "
              f"{log})", file=out, flush=True)
        run_logged(["bmake", "-m", str(src / "share" / "mk"), f"-j{jobs}", *MAKE_VARS,
                    f"CPP={wrap / 'clang-cpp'}", f"TOOL_GENASSYM={wrap / 'genassym'}"], log, cwd=obj,
                   timeout=KERNEL_TIMEOUT, what="building the NetBSD kernel (bmake)", out=out,
                   env={"PATH": f"{wrap}:{os.environ.get('PATH', '/usr/bin:/bin')}"},
                   progress="netbsd-kernel: kernel")
        kernel = obj / "netbsd"
        if not kernel.is_file() or MD_ROOT_MARKER not in kernel.read_bytes():
            raise KernelError(f"the kernel build finished without {kernel} holding an md_root_image; "
                              f"see {log}")
        shutil.move(str(kernel), tmp / "netbsd")
        shutil.rmtree(obj)  # 200+ MB of objects; the kernel is what is kept
        done = time.monotonic()
        marker = {"key": key, "tools_seconds": round(tools_done - t0, 1),
                  "kernel_seconds": round(done - tools_done, 1), "jobs": jobs,
                  "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (tmp / "COMPLETE").write_text(json.dumps(marker, indent=2) + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
        print(f"netbsd-kernel: built in {done - t0:.0f}s (tools {tools_done - t0:.0f}s, kernel "
              f"{done - tools_done:.0f}s): {dest / 'netbsd'}", file=out, flush=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# --- `buildtool makesum netbsd-kernel` / `makepatchsum netbsd-kernel` ------------------------------------
def makesum(repo: Path, force: bool = False, out=None) -> bool:
    """Record the sums of the tarballs in sources_dir() and of both patch series in netbsd-kernel/distinfo
    (a tarball whose recorded sums differ is refused unless `force`, as for a recipe's distfiles)."""
    from ..makesum import write_sums

    sources = sources_dir(repo)
    missing = missing_tarballs(sources)
    if missing:
        raise KernelError(f"{sources}: missing {', '.join(missing)}; nothing was recorded ({ENV_SOURCES}=DIR "
                          f"names another folder holding them)")
    return write_sums(distinfo_path(repo), INPUTS, [(n, sources / n) for n in TARBALLS], input_patches(repo),
                      force=force, out=out)


def makepatchsum(repo: Path) -> bool:
    """The SHA1 lines of both patch series in netbsd-kernel/distinfo; the tarballs' lines are kept."""
    from ..makesum import write_patch_sums

    return write_patch_sums(distinfo_path(repo), input_patches(repo))
