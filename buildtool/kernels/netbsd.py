"""NetBSD kernels: our ppp_mppe module built against a NetBSD kernel source tree (--sysdir), here with
clang/lld or on a build host over SSH (--host user@host[:port], fabric, POSIX sh commands).

netbsd-10 (`NetBSDKernel`): any tree with the module framework and if_ppp's compressor registry (NetBSD 7
and later, -current). The build happens in a build root under the work tree (netbsd_build.py), never in the
sysdir; then the checks of netbsd_checks.py. With --host the same commands run on the host: a POSIX host
with clang and ld.lld (a cross build host), or a NetBSD host (native `make` with bsd.kmodule.mk).

netbsd-1.4.1 (`NetBSDLKMKernel`): an LKM, which only a NetBSD 1.4.1 host can build (a.out objects; modern
toolchains cannot produce them); see the class.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..distinfo import Distinfo
from ..errors import BuildError, KernelError
from ..fsutil import atomic_path
from ..recipe import Recipe
from ..runner import LocalRunner, SSHRunner
from .base import KernelFamily, KernelTarget
from .buildhost import (
    HOST_TIMEOUT,
    REMOTE_BUILD_TIMEOUT,
    parse_host,
    probe_host,
    ssh_runner,
)
from .netbsd_build import (
    IF_PPP,
    MPPE_MODULE,
    ModulePlan,
    if_ppp_is_a_module,
    pack_inputs,
    plan_module,
    prepare_root,
    run_plan,
)
from .netbsd_checks import check_elf, check_modinfo, check_symbols
from .netbsd_lkm import build_lkm
from .netbsd_symbols import SymbolDeriver
from .netbsd_tree import inspect_tree
from .profiles import Profile


def release_matches(profile: Profile, uname_r: str) -> bool:
    """'10.0' matches profile version '10'; '1.4.1' matches '1.4.1' (and not '1.4.10')."""
    return uname_r == profile.version or uname_r.startswith(profile.version + ".")


class NetBSDKernel(KernelFamily):
    """netbsd-10: ppp_mppe.kmod for NetBSD 7 and later, built here or on a build host."""

    @classmethod
    def needs(cls, profile: Profile) -> list[str]:
        return [
            "--sysdir DIR: a NetBSD src/sys tree of NetBSD 7 or later (module framework and if_ppp's "
            "ppp_register_compressor); --common DIR for common/include unless it sits beside sys/",
            "here: clang, lld, llvm (x86_64-unknown-netbsd, flags of bsd.kmodule.mk), or --host "
            "user@host[:port] (SSH, fabric; --ssh-identity KEY): a POSIX host with clang and ld.lld, or a "
            "NetBSD host (native make)",
            "builds ppp_mppe.kmod (and if_ppp.kmod from the same tree for the checks) in the work tree; the "
            "sysdir is only read",
        ]

    @classmethod
    def status(cls, profile: Profile) -> list[str]:
        return [
            "verified here: the build from the shared NetBSD 10.99.12 sys tarball, locally and over SSH to a "
            "loopback OpenSSH server acting as a POSIX cross build host, and from a 7.99.34 tree (if_ppp in "
            "the kernel); ELF64 relocatable x86-64; modinfo "
            "ppp_mppe requires if_ppp; compile-time asserts on CCP_MAX_OPTION_LENGTH and struct compressor; "
            "every undefined symbol defined by if_ppp.kmod or by kernel sources of the same tree",
            "verified by the QEMU-booted NetBSD lane (profile netbsd-qemu, tests/netbsd_vm): the module "
            "built the same way from the same tree, loaded into a booted 10.99.12 kernel of that tree "
            "(modctl, autoload by if_ppp, EBUSY while in use) with traffic, loss, corruption and fuzz "
            "through it, driven by our test agent as PID 1",
            "not verified: a NetBSD userland (pppd, pptpd) on NetBSD, NetBSD 10.0 release kernels, and the "
            "native-NetBSD --host branch (no NetBSD system can run here)",
        ]

    # --- options --------------------------------------------------------------------------------------
    def check(self) -> None:
        """Before any work (kernels.check_options): the tree and --host's form, every problem named."""
        problems = []
        try:
            inspect_tree(self._sysdir(), self.options.get("common"))
        except KernelError as e:
            problems.append(str(e))
        if self.options.get("host"):
            try:
                parse_host(self.options["host"])
            except KernelError as e:
                problems.append(str(e))
        if problems:
            raise KernelError("\n".join(problems))

    def _sysdir(self) -> Path:
        sysdir = self.options.get("sysdir")
        if not sysdir:
            raise KernelError(f"{self.profile.name} needs --sysdir DIR (a NetBSD src/sys tree, e.g. "
                              f"{self.profile.source.default_sysdir}); see `buildtool kernels`")
        return Path(sysdir)

    def resolve(self, offline: bool = False) -> KernelTarget:
        tree = inspect_tree(self._sysdir(), self.options.get("common"))
        host = self.options.get("host")
        kind = "local"
        if host:
            if offline:
                raise KernelError(f"{self.profile.name}: --offline cannot reach the build host {host}")
            with ssh_runner(host, self.options.get("ssh_identity")) as runner:
                kind = probe_host(runner, host, self.log).kind
        else:
            from .. import hosttools

            hosttools.require("clang", "ld.lld")
        return KernelTarget(
            profile=self.profile.name, release=tree.release, abi=str(tree.version_number), package_version="",
            vmlinuz=Path("/dev/null"), modules_root=Path("/dev/null"), build_dir=tree.sysdir,
            source_dir=tree.sysdir, vermagic="",
            packages={"sysdir": str(tree.sysdir), "common": str(tree.common), "host": host or "",
                      "host_kind": kind, "ssh_identity": str(self.options.get("ssh_identity") or "")},
            compiler="clang")

    # --- building --------------------------------------------------------------------------------------
    def install_dir(self, stage_prefix: Path, target: KernelTarget, modules: tuple[str, ...]) -> Path:
        """lib/modules/<release>/<module>/<module><suffix>: the layout of /stand/<arch>/<version>/modules/."""
        return stage_prefix / "lib" / "modules" / target.release / modules[0]

    def build_modules(self, target: KernelTarget, recipe: Recipe, patches: list[Path], distinfo: Distinfo, *,
                      jobs: int, log_dir: Path, extra_patches: list[Path], dest: Path,
                      mppe: str | None = None) -> list[Path]:
        # patches/extra_patches are the Linux kernel series: nothing in them applies to a NetBSD tree
        work = self.layout.pkg_work(recipe.name) / "kmod" / self.profile.name
        result = build_and_check(target, self.layout.root / "kmod" / "mppe", work, self.layout.cache,
                                 log_dir / "kmod.log")
        print(f"  NetBSD {target.release} (sysdir {target.packages['sysdir']}): {result.figures()}",
              flush=True)
        dest.mkdir(parents=True, exist_ok=True)
        out = dest / result.kmod.name
        with atomic_path(out) as tmp:
            shutil.copyfile(result.kmod, tmp)
            tmp.chmod(0o444)
        return [out]


@dataclass
class BuildResult:
    kmod: Path
    if_ppp: Path | None  # None when the tree builds if_ppp into the kernel only (NetBSD 7)
    seconds: float
    where: str
    report: object  # netbsd_checks.SymbolReport

    def figures(self) -> str:
        return (f"{self.kmod.name}: built {self.where} in {self.seconds:.1f}s, {self.kmod.stat().st_size} "
                f"bytes; {self.report.summary()}")


def build_and_check(target: KernelTarget, mppe_sources: Path, work: Path, cache: Path, log: Path,
                    module_sources: Path | None = None) -> BuildResult:
    """Build if_ppp.kmod and ppp_mppe.kmod for `target` in `work`, run every check, return the figures.
    `module_sources` replaces kmod/mppe/netbsd (the negative controls use a modified copy)."""
    tree = inspect_tree(Path(target.packages["sysdir"]), Path(target.packages["common"]))
    root = work / "root"
    prepare_root(root, tree, mppe_sources, glue=module_sources)
    module = if_ppp_is_a_module(tree)
    plans = ([plan_module(root, IF_PPP)] if module else []) + [plan_module(root, MPPE_MODULE)]
    host = target.packages.get("host") or ""
    t0 = time.monotonic()
    if host:
        with ssh_runner(host, target.packages.get("ssh_identity") or None) as runner:
            kind = target.packages.get("host_kind", "cross")
            remote_build(runner, root, plans, work, log, native=kind == "netbsd")
        where = f"on {host} ({target.packages.get('host_kind')})"
    else:
        runner = LocalRunner()
        for plan in plans:
            run_plan(runner, plan, str(root / "modules" / plan.name), log)
        where = "locally"
    seconds = time.monotonic() - t0
    kmod = root / "modules" / MPPE_MODULE / plans[-1].kmod
    if_ppp = root / "modules" / IF_PPP / plans[0].kmod if module else None
    for path in (kmod, if_ppp):
        if path is not None and not path.is_file():
            raise KernelError(f"the build finished but did not produce {path}; see {log}")
        if path is not None:
            check_elf(path)
    check_modinfo(kmod, MPPE_MODULE, IF_PPP if module else None)
    report = check_symbols(kmod, if_ppp, SymbolDeriver(tree, work / "kernel-symbols", cache, log))
    result = BuildResult(kmod, if_ppp, seconds, where, report)
    with log.open("a") as f:
        f.write(f"\n{result.figures()}\nkernel symbols: "
                + ", ".join(f"{s} ({src})" for s, src in report.from_kernel.items()) + "\n")
    return result


def remote_build(runner: SSHRunner, root: Path, plans: list[ModulePlan], work: Path, log: Path, *,
                 native: bool) -> None:
    """Copy the build root's inputs to a temporary folder on the host, build there, copy the .kmod back."""
    bundle = work / "inputs.tar.gz"
    pack_inputs(root, plans, bundle)
    res = runner.run(["mktemp", "-d", "/tmp/buildtool-netbsd.XXXXXX"], log=log, timeout=HOST_TIMEOUT,
                     what="making a build folder on the host")
    remote = res.stdout.strip().splitlines()[-1]
    try:
        runner.put(bundle, f"{remote}/inputs.tar.gz")
        runner.run(["sh", "-c", "gzip -dc inputs.tar.gz | tar -xf - && rm inputs.tar.gz"], cwd=remote,
                   log=log, timeout=REMOTE_BUILD_TIMEOUT, what="unpacking the sources on the host")
        for plan in plans:
            moddir = f"{remote}/modules/{plan.name}"
            if native:
                runner.run(["make", f"S={remote}/sys", f"NETBSDSRCDIR={remote}", "USETOOLS=no"], cwd=moddir,
                           log=log, timeout=REMOTE_BUILD_TIMEOUT, what=f"make {plan.kmod} on the host")
            else:
                run_plan(runner, plan, moddir, log)
            runner.get(f"{moddir}/{plan.kmod}", root / "modules" / plan.name / plan.kmod)
    finally:
        try:
            runner.run(["rm", "-rf", remote], log=log, timeout=HOST_TIMEOUT, what="removing the build folder",
                       check=False)
        except BuildError:
            pass  # the connection is gone; the folder is under /tmp on the host


class NetBSDLKMKernel(NetBSDKernel):
    """netbsd-1.4.1: the LKM (kmod/mppe/netbsd14), built natively on a NetBSD 1.4.1 host.

    Only the host can build it (bsd.kmod.mk, gcc 2.91 producing a.out, modload against its /netbsd). The
    sources are copied to a temporary folder on the host; the profile's patch raises
    CCP_MAX_OPTION_LENGTH in the host's ${SYSDIR}/net/ppp-comp.h from 32 to 64 when it is still 32, as the
    1999 package did, and the kernel must then be rebuilt.
    """

    @classmethod
    def needs(cls, profile: Profile) -> list[str]:
        return [
            f"--host user@host: a NetBSD {profile.version} build host reached over SSH (fabric; POSIX sh "
            f"commands); the LKM is built there with bsd.kmod.mk (a.out objects no modern toolchain makes)",
            f"--sysdir DIR: the kernel source tree on that host (e.g. {profile.source.default_sysdir}); "
            "checked: "
            + ", ".join(f"${{SYSDIR}}/{c}" for c in profile.source.sysdir_checks),
            "patches the host's ${SYSDIR}/net/ppp-comp.h: CCP_MAX_OPTION_LENGTH 32 -> 64 (the kernel must be "
            "rebuilt with it, `options LKM`, then `modload -e mppe_lkmentry -o mppe mppe.o`)",
        ]

    @classmethod
    def status(cls, profile: Profile) -> list[str]:
        return [
            "verified here: the LKM glue and the core compile as C89 (gcc -std=c89 -pedantic -Werror) "
            "against a model of 1.4.1's interfaces written from KERNELS.md, not against 1.4.1's headers",
            "not verified: anything on a NetBSD 1.4.1 host (none can run here): the build, the patch, "
            "loading",
        ]

    def check(self) -> None:
        """Before any work: --sysdir (a path on the host, not checked here) and --host given, and its form."""
        p = self.profile
        sysdir, host = self.options.get("sysdir"), self.options.get("host")
        problems = []
        if not sysdir:
            problems.append(f"--sysdir {p.source.default_sysdir} (the kernel source tree on the NetBSD "
                            f"{p.version} host)")
        if not host:
            problems.append(f"--host user@host (a NetBSD {p.version} build host reachable over SSH)")
        if problems:
            raise KernelError(f"{p.name} needs " + " and ".join(problems) + "; see `buildtool kernels`")
        parse_host(host)

    def resolve(self, offline: bool = False) -> KernelTarget:
        p = self.profile
        self.check()
        sysdir, host = self.options.get("sysdir"), self.options.get("host")
        if offline:
            raise KernelError(f"{p.name}: --offline cannot reach the build host {host}")
        with ssh_runner(host, self.options.get("ssh_identity")) as runner:
            info = probe_host(runner, host, self.log)
            if info.system != "NetBSD" or not release_matches(p, info.release):
                raise KernelError(f"--host {host} runs {info.system} {info.release}; the profile {p.name} "
                                  f"builds only on NetBSD {p.version} (its LKMs are a.out objects)")
            checks = " && ".join(f"test -f {sysdir}/{c}" for c in p.source.sysdir_checks)
            res = runner.run(["sh", "-c", checks], log=self.log, timeout=HOST_TIMEOUT, check=False,
                             what="checking the host's SYSDIR")
            if res.returncode != 0:
                wanted = ", ".join(f"{sysdir}/{c}" for c in p.source.sysdir_checks)
                raise KernelError(f"--sysdir {sysdir} on {host} is not a NetBSD {p.version} kernel source "
                                  f"tree: it lacks one of {wanted}"
                                  " (the historic package checked ${SYSDIR}/lib/libkern/libkern.h)")
        return KernelTarget(
            profile=p.name, release=info.release, abi="", package_version="", vmlinuz=Path("/dev/null"),
            modules_root=Path("/dev/null"), build_dir=Path(sysdir), source_dir=Path(sysdir), vermagic="",
            packages={"sysdir": sysdir, "host": host, "host_kind": "netbsd",
                      "ssh_identity": str(self.options.get("ssh_identity") or "")},
            compiler="cc")

    def build_modules(self, target: KernelTarget, recipe: Recipe, patches: list[Path], distinfo: Distinfo, *,
                      jobs: int, log_dir: Path, extra_patches: list[Path], dest: Path,
                      mppe: str | None = None) -> list[Path]:
        return build_lkm(target, self.layout, recipe, log_dir / "kmod.log", dest)
