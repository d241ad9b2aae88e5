"""Linux kernels from Debian's archive, and out-of-tree kbuild of the MPPE modules against them.

Resolution (online): `linux-image-<flavour>`'s dependency names the current ABI (Debian keeps only the newest,
so it is never pinned); from it come the image (VM kernel, stock modules, vermagic), the build tree
(`linux-headers-<abi>-<flavour>`, which includes `linux-headers-<abi>-common`'s Makefile through an absolute
/usr/src path and links scripts/ and tools/ into `linux-kbuild-<series>`) and the sources
(`linux-source-<series>`, of which only SOURCE_MEMBERS are unpacked). The .debs are fetched with
`apt-get download` through the tool's private apt configuration and unpacked with `dpkg-deb -x` under
`<cache>/kernel/<version>/`: nothing is installed on the host.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .. import hosttools
from .. import patch as patch_phase
from ..debian import AptArchive
from ..distinfo import Distinfo, patch_sha1
from ..errors import FetchError, HostToolError, KernelError
from ..extract import ARCHIVE_SUFFIXES, DECOMPRESS_COMMANDS, archive_suffix
from ..fsutil import atomic_path, text_digest, write_if_changed
from ..recipe import Recipe
from ..runlog import run
from ..templating import render, template_env
from .base import KernelFamily, KernelTarget, read_cached_manifest
from .profiles import Profile

# Members of the kernel source the modules need, relative to the tree root. Makefile only gives the upstream
# version (checked against the headers'); ppp-comp.h is identical in linux-headers-<abi>-common, where it is
# 2.6 s cheaper to get than from the end of the 1.3 GB tar stream.
SOURCE_MEMBERS: tuple[str, ...] = (
    "Makefile",
    "drivers/net/ppp/ppp_generic.c",
    "drivers/net/ppp/ppp_mppe.c",
    "drivers/net/ppp/ppp_mppe.h",
)
HEADER_MEMBERS: tuple[str, ...] = ("include/uapi/linux/ppp-comp.h",)
MODULE_DIR = "drivers/net/ppp"  # where the modules' sources sit in the tree (kbuild's M=)
# Our ppp_mppe (recipe [kmod] mppe = "ours"): the repository's kmod/mppe/{core,linux} are copied to the same
# place in the work tree (so negative-control patches name them as in the repository) and built there.
OUR_MPPE = "kmod/mppe"
OUR_MPPE_PARTS = ("core", "linux")
IMPLEMENTATION_FIELD = "implementation"  # the modinfo field only our ppp_mppe has
PATCHED_HEADER = "include/uapi/linux/ppp-comp.h"
STOCK_MODULE = "kernel/drivers/net/ppp/ppp_generic.ko"  # whose vermagic the VM kernel accepts


@dataclass(frozen=True)
class DebianPackages:
    """The binary packages of one Debian kernel ABI, by role."""

    image: str
    headers: str
    common: str
    kbuild: str
    source: str

    def by_role(self) -> dict[str, str]:
        return {"image": self.image, "headers": self.headers, "common": self.common, "kbuild": self.kbuild,
                "source": self.source}


def debian_packages(profile: Profile, abi: str) -> DebianPackages:
    flavour = profile.source.flavour
    return DebianPackages(
        image=f"linux-image-{abi}-{flavour}", headers=f"linux-headers-{abi}-{flavour}",
        common=f"linux-headers-{abi}-common", kbuild=f"linux-kbuild-{profile.version}",
        source=f"linux-source-{profile.version}")


def abi_from_depends(profile: Profile, depends: list[str]) -> str:
    """`['linux-image-6.1.0-56-amd64']` -> '6.1.0-56' (the meta package's dependency names the ABI)."""
    flavour = profile.source.flavour
    pattern = re.compile(rf"linux-image-({re.escape(profile.version)}\.\d+-\d+)-{re.escape(flavour)}")
    for dep in depends:
        if m := pattern.fullmatch(dep):
            return m[1]
    raise KernelError(
        f"{profile.source.meta_package} depends on {', '.join(depends) or 'nothing'}: no linux-image-"
        f"{profile.version}.<n>-<abi>-{flavour} among them, so the archive no longer carries a "
        f"{profile.version} kernel for profile {profile.name}.\n"
        f"Use --kernel-dir/--kernel-source for local copies.")


def check_versions(reference: tuple[str, str], versions: dict[str, str]) -> None:
    """Every package must have the reference package's version; the error names each one that is off."""
    ref_name, ref_version = reference
    off = {name: v for name, v in versions.items() if v != ref_version}
    if off:
        lines = "\n".join(f"  {name} is {v or 'missing'}, but {ref_name} is {ref_version}"
                          for name, v in sorted(off.items()))
        raise KernelError(
            f"the kernel packages disagree on the version:\n{lines}\n"
            f"Debian's archive is probably half-way through an update: retry later, or point at matching "
            f"local copies with --kernel-dir (build tree) and --kernel-source (source tarball).")


def config_value(config: Path, key: str) -> str:
    """A value of a kernel .config (quotes removed); KernelError if it is not set."""
    for line in config.read_text(errors="replace").splitlines():
        name, sep, value = line.partition("=")
        if sep and name == key:
            return value.strip().strip('"')
    raise KernelError(f"{config}: {key} is not set; is this a configured kernel build tree?")


def compiler_program(cc_version_text: str) -> str:
    """'gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0' -> 'gcc-12' (the program name `--version` printed)."""
    words = cc_version_text.split()
    if not words:
        raise KernelError("CONFIG_CC_VERSION_TEXT is empty: cannot tell which compiler built the kernel")
    return words[0]


def included_makefile(build_dir: Path, root: Path | None) -> Path | None:
    """The top Makefile a Debian build tree's stub Makefile includes, relocated under `root` if unpacked.

    Debian's `linux-headers-<abi>-<flavour>/Makefile` is one line, `include /usr/src/linux-headers-<abi>-
    common/Makefile`: an absolute path, so an unpacked (not installed) tree must be built with
    `make -C build_dir -f <that Makefile relocated>`, which makes the common tree kbuild's srctree.
    """
    text = (build_dir / "Makefile").read_text(errors="replace")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if len(lines) != 1 or not lines[0].startswith("include "):
        return None  # a complete tree: its own Makefile is the top Makefile
    target = Path(lines[0].split(None, 1)[1])
    candidates = [root / target.relative_to("/")] if root and target.is_absolute() else []
    candidates += [target, build_dir.parent / target.parent.name / target.name]
    for c in candidates:
        if c.is_file():
            return c
    raise KernelError(f"{build_dir / 'Makefile'} includes {target}, which is not there (looked at: "
                      f"{', '.join(map(str, candidates))}).\n"
                      f"Unpack the matching linux-headers-<abi>-common too.")


def makefile_version(makefile: Path) -> str:
    """'6.1.192' from a kernel top Makefile's VERSION, PATCHLEVEL and SUBLEVEL lines."""
    values = {}
    for line in makefile.read_text(errors="replace").splitlines()[:20]:
        m = re.match(r"^(VERSION|PATCHLEVEL|SUBLEVEL)\s*=\s*(\d*)\s*$", line)
        if m:
            values[m[1]] = m[2]
    if set(values) != {"VERSION", "PATCHLEVEL", "SUBLEVEL"}:
        raise KernelError(f"{makefile}: no VERSION/PATCHLEVEL/SUBLEVEL lines; not a kernel top Makefile")
    return ".".join(v for v in (values["VERSION"], values["PATCHLEVEL"], values["SUBLEVEL"]) if v)


def tree_release(build_dir: Path) -> str:
    """The release a build tree builds for: Debian's .kernelvariables override, else kernel.release."""
    variables = build_dir / ".kernelvariables"
    if variables.exists():
        for line in variables.read_text().splitlines():
            m = re.match(r"^\s*(?:override\s+)?KERNELRELEASE\s*:?=\s*(\S+)", line)
            if m:
                return m[1]
    release = build_dir / "include" / "config" / "kernel.release"
    if release.exists():
        return release.read_text().strip()
    raise KernelError(f"{build_dir}: no include/config/kernel.release; not a prepared kernel build tree")


def modinfo_field(module: Path, name: str) -> str:
    hosttools.require("modinfo")
    proc = subprocess.run(["modinfo", "-F", name, str(module)], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise KernelError(f"modinfo -F {name} {module} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def option_length(preprocessed: str) -> int:
    """The size of ppp_set_compress's option buffer in preprocessed ppp_generic.c."""
    m = re.search(r"\bccp_option\s*\[\s*(\d+)\s*\]", preprocessed)
    if not m:
        raise KernelError("ppp_generic.c (preprocessed) declares no ccp_option[] buffer; the source changed")
    return int(m[1])


def header_option_length(header: Path) -> int:
    m = re.search(r"^#define\s+CCP_MAX_OPTION_LENGTH\s+(\d+)", header.read_text(), re.M)
    if not m:
        raise KernelError(f"{header}: no #define CCP_MAX_OPTION_LENGTH")
    return int(m[1])


# --- unpacking ---------------------------------------------------------------------------------------------
@dataclass
class Extraction:
    seconds: float
    bytes_written: int
    members: list[str]


PIPELINE_TIMEOUT = 3600.0  # seconds for unpacking a kernel tree (hundreds of MB)


def _pipeline(cmds: list[list[str]], log: Path, cwd: Path | None = None) -> None:
    """Run cmds joined by pipes (sh, through runlog.run: one process group, logged, bounded); the last
    one's status decides, as in sh without pipefail (earlier ones may die of SIGPIPE once the last has
    what it wants: tar --occurrence stops reading early on purpose)."""
    line = " | ".join(shlex.join(c) for c in cmds)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as f:
        f.write("\n(a broken pipe reported by the commands before the last is expected: the last stops "
                "reading once it has what it wants)")
    rc = run(["sh", "-c", line], log=log, cwd=cwd, what="unpacking", timeout=PIPELINE_TIMEOUT, check=False)
    if rc != 0:
        raise KernelError(f"unpacking failed ({' | '.join(c[0] for c in cmds)}: exit status {rc}); "
                          f"see {log}")


def tar_prefix(tarball: Path) -> str:
    """The directory every member of a kernel source tarball sits in ('linux-source-6.1/')."""
    with tarfile.open(tarball, mode="r|*") as tf:
        first = tf.next()
    if first is None:
        raise KernelError(f"{tarball}: an empty tar archive")
    top = first.name.lstrip("./").split("/", 1)[0]
    return f"{top}/" if top else ""


def _tar_decompressor(name: str, jobs: int) -> list[str]:
    """The command decompressing a kernel source tarball: the archive suffixes of the extract phase, plus
    .tar.zst (tarfile cannot read it, a stream through zstd can) and an uncompressed .tar."""
    suffix = archive_suffix(name)
    if suffix is not None:
        compression = ARCHIVE_SUFFIXES[suffix]
        return [*DECOMPRESS_COMMANDS[compression], *([f"-T{max(1, jobs)}"] if compression == "xz" else [])]
    if name.endswith(".zst"):
        return ["zstd", "-dc"]
    return ["cat"]


def extract_source_members(source: Path, members: tuple[str, ...], dest: Path, log: Path, *,
                           series: str, jobs: int = 2) -> Extraction:
    """Unpack only `members` of a kernel source into `dest` (a fresh directory).

    `source` is the linux-source-<series> .deb (its tarball is streamed out, never written), a source tarball,
    or an unpacked tree. tar stops reading as soon as it has every member (--occurrence).
    """
    t0 = time.monotonic()
    dest.mkdir(parents=True)
    if source.is_dir():
        for m in members:
            if not (source / m).is_file():
                raise KernelError(f"--kernel-source {source}: no {m} in that tree")
            (dest / m).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / m, dest / m)
    else:
        hosttools.require("tar", "xz")
        if source.name.endswith(".deb"):
            hosttools.require("dpkg-deb")
            inner = f"./usr/src/linux-source-{series}.tar.xz"
            prefix = f"linux-source-{series}/"
            head = [["dpkg-deb", "--fsys-tarfile", str(source)], ["tar", "-xOf", "-", inner],
                    _tar_decompressor(inner, jobs)]
        else:
            prefix = tar_prefix(source)
            head = [_tar_decompressor(source.name, jobs) + [str(source)]]
        names = [prefix + m for m in members]
        strip = ["--strip-components", str(prefix.count("/"))] if prefix else []
        _pipeline([*head, ["tar", "-xf", "-", "--occurrence=1", "-C", str(dest), *strip, *names]], log)
        missing = [m for m in members if not (dest / m).is_file()]
        if missing:
            raise KernelError(f"{source}: the kernel source lacks {', '.join(missing)}")
    written = sum((dest / m).stat().st_size for m in members)
    return Extraction(time.monotonic() - t0, written, list(members))


def unpack_debs(debs: list[Path], dest: Path, log: Path) -> None:
    """`dpkg-deb -x` each .deb into a temporary directory renamed to `dest` when all are unpacked."""
    hosttools.require("dpkg-deb")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        for deb in debs:
            run(["dpkg-deb", "-x", str(deb), str(tmp)], log=log, what=f"unpacking {deb.name}")
        os.rename(tmp, dest)
    except OSError:
        if not dest.exists():
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


# --- the family class --------------------------------------------------------------------------------------
class LinuxKernel(KernelFamily):
    """A Debian Linux kernel profile: resolve it from apt (or local copies), build modules with kbuild."""

    @classmethod
    def needs(cls, profile: Profile) -> list[str]:
        p = profile
        return [
            f"Debian's archive through apt (the tool's own configuration under ~/.cache/buildtool/apt): "
            f"{p.source.meta_package} -> linux-image-<abi>-{p.source.flavour} (VM kernel, stock modules), "
            f"linux-headers-<abi>-{p.source.flavour} + linux-headers-<abi>-common + linux-kbuild-{p.version} "
            f"(build tree), linux-source-{p.version} (module sources); about 224 MB (214 MiB) of .debs once, "
            f"cached under "
            f"~/.cache/buildtool/kernel/<version>/, never installed on the host",
            "host programs: make, the compiler the kernel was built with (gcc-12 for bookworm), dpkg-deb, "
            "tar, xz, patch, modinfo (package kmod)",
            "instead of apt: --kernel-dir DIR (an unpacked linux-headers build tree), --kernel-source PATH "
            "(linux-source tarball, .deb or tree); --offline reuses the last resolved kernel",
        ]

    # resolution ---------------------------------------------------------------------------------------
    def resolve(self, offline: bool = False) -> KernelTarget:
        if offline:
            return self._offline()
        archive = AptArchive(self.layout.cache / "apt", log=self.log.parent / "apt.log")
        try:
            versions, debs = self._download(archive)
        except (FetchError, HostToolError) as e:
            raise KernelError(self._no_archive(e)) from None
        return self._assemble(versions, debs)

    def _no_archive(self, e: Exception) -> str:
        p = self.profile
        return (f"kernel profile {p.name}: Debian's archive cannot be used ({e})\n"
                f"The profile needs the packages {p.source.meta_package} (to find the ABI), "
                f"linux-image-<abi>-{p.source.flavour}, linux-headers-<abi>-{p.source.flavour}, "
                f"linux-headers-<abi>-common, "
                f"linux-kbuild-{p.version} and linux-source-{p.version}.\n"
                f"Point at local copies instead with --kernel-dir <unpacked linux-headers build tree> and "
                f"--kernel-source <linux-source-{p.version}.tar.xz or its .deb> (the image still comes from "
                f"the archive), use --offline to reuse the kernel resolved last time, or --kernel none.")

    def _download(self, archive: AptArchive) -> tuple[dict[str, str], dict[str, Path]]:
        p = self.profile
        archive.ensure_updated()
        meta_version = archive.candidate_version(p.source.meta_package)
        if meta_version is None:
            raise KernelError(f"the archive has no {p.source.meta_package}: check the host's apt sources "
                              f"list for Debian's main component, or use --kernel-dir/--kernel-source")
        abi = abi_from_depends(p, archive.depends(p.source.meta_package, meta_version))
        pkgs = debian_packages(p, abi)
        wanted = [pkgs.image]
        if not self.options.get("kernel_dir"):
            wanted += [pkgs.headers, pkgs.common, pkgs.kbuild]
            deps = archive.depends(pkgs.headers)
            for needed in (pkgs.common, pkgs.kbuild):
                if needed not in deps:
                    raise KernelError(f"{pkgs.headers} no longer depends on {needed} (it depends on "
                                      f"{', '.join(deps)}); the profile's package table needs updating")
        if not self.options.get("kernel_source"):
            wanted.append(pkgs.source)
        versions = {name: archive.candidate_version(name) or "" for name in wanted}
        check_versions((pkgs.image, versions[pkgs.image]), versions)
        debdir = self.layout.cache / "kernel" / versions[pkgs.image] / "debs"
        debs = {name: archive.download_binary(name, versions[name], debdir) for name in wanted}
        versions[p.source.meta_package] = meta_version
        return versions, debs

    def _assemble(self, versions: dict[str, str], debs: dict[str, Path]) -> KernelTarget:
        p = self.profile
        image_pkg = next(n for n in debs if n.startswith("linux-image-"))
        version = versions[image_pkg]
        abi = image_pkg.removeprefix("linux-image-").removesuffix(f"-{p.source.flavour}")
        release = f"{abi}-{p.source.flavour}"
        pkgs = debian_packages(p, abi)
        base = self.layout.cache / "kernel" / version
        image = base / "image"
        if not image.exists():
            unpack_debs([debs[pkgs.image]], image, self.log)
        vmlinuz = image / "boot" / f"vmlinuz-{release}"
        if not vmlinuz.is_file() or not (image / "lib" / "modules" / release).is_dir():
            raise KernelError(f"{debs[pkgs.image].name} has no boot/vmlinuz-{release} or "
                              f"lib/modules/{release}")
        build_dir, makefile = self._build_tree(pkgs, debs, base, release)
        source_dir = self._source_tree(pkgs, debs, base, makefile or build_dir / "Makefile", version)
        packages = dict(versions)
        for opt in ("kernel_dir", "kernel_source"):
            if self.options.get(opt):
                packages[f"--{opt.replace('_', '-')}"] = str(Path(self.options[opt]).resolve())
        cc_text = config_value(build_dir / ".config", "CONFIG_CC_VERSION_TEXT")
        target = KernelTarget(
            profile=p.name, release=release, abi=abi, package_version=version, vmlinuz=vmlinuz,
            modules_root=image, build_dir=build_dir, source_dir=source_dir,
            vermagic=self._stock_vermagic(image, release), packages=packages,
            compiler=compiler_program(cc_text), compiler_version=cc_text, makefile=makefile)
        check_compiler(target)
        return target

    def _build_tree(self, pkgs: DebianPackages, debs: dict[str, Path], base: Path,
                    release: str) -> tuple[Path, Path | None]:
        local = self.options.get("kernel_dir")
        if local:
            build_dir = Path(local).resolve()
            if not (build_dir / ".config").is_file() or not (build_dir / "Makefile").is_file():
                raise KernelError(f"--kernel-dir {build_dir}: not a kernel build tree (needs .config and "
                                  f"Makefile, as /usr/src/linux-headers-{release} has)")
            makefile = included_makefile(build_dir, None)
        else:
            headers = base / "headers"
            if not headers.exists():
                unpack_debs([debs[pkgs.headers], debs[pkgs.common], debs[pkgs.kbuild]], headers, self.log)
            build_dir = headers / "usr" / "src" / f"linux-headers-{release}"
            makefile = included_makefile(build_dir, headers)
        tree_rel = tree_release(build_dir)
        if tree_rel != release:
            raise KernelError(f"the build tree {build_dir} is for kernel {tree_rel}, but the VM kernel "
                              f"({pkgs.image}) is {release}")
        if not (build_dir / "scripts" / "basic" / "fixdep").exists():
            raise KernelError(f"{build_dir}/scripts has no basic/fixdep: the build tree needs Debian's "
                              f"{pkgs.kbuild} (scripts/ and tools/ link to /usr/lib/linux-kbuild-*)")
        return build_dir, makefile

    def _source_tree(self, pkgs: DebianPackages, debs: dict[str, Path], base: Path, top_makefile: Path,
                     version: str) -> Path:
        """The pristine partial source tree: SOURCE_MEMBERS from the sources, HEADER_MEMBERS from the
        build tree's srctree. Checks the source's upstream version against the headers'."""
        local = self.options.get("kernel_source")
        source = Path(local).resolve() if local else debs[pkgs.source]
        key = text_digest("\n".join([str(source), *SOURCE_MEMBERS, *HEADER_MEMBERS]))[:12]
        tree = (self.layout.work / "kernel" / self.profile.name if local else base) / f"source-{key}"
        if not tree.exists():
            tmp = tree.parent / f".{tree.name}.tmp{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            got = extract_source_members(source, SOURCE_MEMBERS, tmp, self.log, series=self.profile.version)
            srctree = top_makefile.parent
            for m in HEADER_MEMBERS:
                (tmp / m).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(srctree / m, tmp / m)
            with self.log.open("a") as f:
                f.write(f"extracted {len(got.members)} members of {source.name} ({got.bytes_written} bytes) "
                        f"in {got.seconds:.1f}s; {', '.join(HEADER_MEMBERS)} from {srctree}\n")
            try:
                os.rename(tmp, tree)
            except OSError:
                shutil.rmtree(tmp)  # another run got there first
        src_version, hdr_version = makefile_version(tree / "Makefile"), makefile_version(top_makefile)
        if src_version != hdr_version:
            raise KernelError(f"the kernel sources ({source}) are Linux {src_version}, but the build tree "
                              f"({top_makefile.parent}) is Linux {hdr_version}: they must match")
        return tree

    def _stock_vermagic(self, image: Path, release: str) -> str:
        root = image / "lib" / "modules" / release
        for candidate in (root / STOCK_MODULE, root / f"{STOCK_MODULE}.xz", root / f"{STOCK_MODULE}.zst"):
            if candidate.exists():
                return modinfo_field(candidate, "vermagic")
        raise KernelError(f"{root} has no {STOCK_MODULE}: cannot read the VM kernel's vermagic")

    def _offline(self) -> KernelTarget:
        target = read_cached_manifest(self.layout, self.profile.name)
        gone = [str(p) for p in (target.vmlinuz, target.modules_root, target.build_dir, target.source_dir)
                if not p.exists()]
        if gone:
            raise KernelError(f"--offline: the last resolved kernel ({target.package_version}) is no longer "
                              f"complete in the cache (missing: {', '.join(gone)});\n"
                              f"run once without --offline")
        check_compiler(target)
        return target

    # building -----------------------------------------------------------------------------------------
    def build_modules(self, target: KernelTarget, recipe: Recipe, patches: list[Path], distinfo: Distinfo, *,
                      jobs: int, log_dir: Path, extra_patches: list[Path], dest: Path,
                      mppe: str | None = None) -> list[Path]:
        hosttools.require("make", "patch", "modinfo", "objcopy")
        check_compiler(target)
        mppe = mppe or recipe.kernel_mppe
        variant = "series" if mppe == "ours" else f"series-{mppe}"
        if extra_patches:
            names = mppe + "".join(p.name + patch_sha1(p) for p in extra_patches)
            variant = "variant-" + text_digest(names)[:12]
        log = log_dir / ("kmod.log" if variant == "series" else f"kmod-{variant}.log")
        work = self.layout.pkg_work(recipe.name) / "kmod" / variant
        if work.exists():
            shutil.rmtree(work)
        tree = work / "tree"
        shutil.copytree(target.source_dir, tree, symlinks=True)
        if mppe == "ours":
            copy_our_mppe(self.layout.root / OUR_MPPE, tree / OUR_MPPE)
        patch_phase.apply_series(patches, distinfo, tree, log=log)
        if extra_patches:  # negative controls: deliberately not in distinfo
            unchecked = Distinfo(path=work / "extra-patches",
                                 patches={p.name: patch_sha1(p) for p in extra_patches})
            patch_phase.apply_series(extra_patches, unchecked, tree, log=log)
        moddir = tree / MODULE_DIR
        in_tree = [m for m in recipe.modules_for(self.profile.family)
                   if not (mppe == "ours" and m == "ppp_mppe")]
        write_if_changed(moddir / "Kbuild", render_kbuild(target, tree / "include", in_tree))
        run(kbuild_command(target, moddir, jobs, kcflags=self.layout.prefix_map_flags()) + ["modules"],
            log=log, what="building the kernel modules")
        built = [moddir / f"{m}{self.profile.module_suffix}" for m in in_tree]
        if mppe == "ours":
            ours = tree / OUR_MPPE
            write_if_changed(ours / "Kbuild", render_mppe_kbuild(target, ours))
            run(kbuild_command(target, ours, jobs, kcflags=self.layout.prefix_map_flags()) + ["modules"],
                log=log, what="building our ppp_mppe (kmod/mppe)")
            built.append(ours / f"ppp_mppe{self.profile.module_suffix}")
        missing = [p.name for p in built if not p.exists()]
        if missing:
            raise KernelError(f"kbuild finished but did not produce {', '.join(missing)}; see {log}")
        check_option_length(target, moddir, tree / PATCHED_HEADER, jobs, log)
        for ko in built:
            check_vermagic(ko, target)
        check_implementation(next(p for p in built if p.stem == "ppp_mppe"), mppe)
        return install_modules(built, dest, log)


def copy_our_mppe(src: Path, dest: Path) -> None:
    """The C sources and headers of kmod/mppe/{core,linux} (nothing else: no userspace build files)."""
    for part in OUR_MPPE_PARTS:
        files = sorted(p for p in (src / part).glob("*") if p.suffix in (".c", ".h"))
        if not any(p.suffix == ".c" for p in files):
            raise KernelError(f"{src / part} has no C sources: our ppp_mppe needs kmod/mppe/core (the "
                              f"portable core) and kmod/mppe/linux (the Linux glue); set [kmod] mppe = "
                              f"\"stock\" in the recipe to build the kernel's own ppp_mppe.c instead")
        (dest / part).mkdir(parents=True, exist_ok=True)
        for p in files:
            shutil.copy2(p, dest / part / p.name)


def our_mppe_digest(root: Path) -> dict[str, str]:
    """sha256 of every source file of our ppp_mppe (the kmod phase's key must change when one does)."""
    from ..fsutil import file_digest

    base = root / OUR_MPPE
    return {str(p.relative_to(base)): file_digest(p, "sha256") for part in OUR_MPPE_PARTS
            for p in sorted((base / part).glob("*")) if p.suffix in (".c", ".h")}


def check_implementation(module: Path, mppe: str) -> None:
    """Our ppp_mppe carries modinfo `implementation`; the kernel's does not. Proof of which was built."""
    got = modinfo_field(module, IMPLEMENTATION_FIELD)
    if mppe == "ours" and not got.startswith("buildtool"):
        raise KernelError(f"{module} was to be our ppp_mppe (kmod/mppe) but has no modinfo "
                          f"{IMPLEMENTATION_FIELD} field: the kernel's ppp_mppe.c was built instead")
    if mppe == "stock" and got:
        raise KernelError(f"{module} was to be the kernel's own ppp_mppe but says "
                          f"{IMPLEMENTATION_FIELD}={got}")


def kbuild_command(target: KernelTarget, moddir: Path, jobs: int, kcflags: str = "") -> list[str]:
    """make for an out-of-tree module dir, naming the tree, the release and the compiler explicitly."""
    cmd = ["make", "-C", str(target.build_dir)]
    if target.makefile is not None:
        cmd += ["-f", str(target.makefile)]
    cmd += [f"M={moddir}", f"KERNELRELEASE={target.release}", f"CC={target.compiler}", f"-j{jobs}"]
    return cmd + ([f"KCFLAGS={kcflags}"] if kcflags else [])


def render_kbuild(target: KernelTarget, include_dir: Path, modules: list[str]) -> str:
    return render(template_env("kmod"), "Kbuild.j2", profile=target.profile, release=target.release,
                  include_dir=include_dir, modules=modules)


def render_mppe_kbuild(target: KernelTarget, ours: Path) -> str:
    """The Kbuild of our ppp_mppe: every .c of kmod/mppe/{core,linux} linked into one module."""
    objects = [f"{part}/{p.stem}.o" for part in OUR_MPPE_PARTS for p in sorted((ours / part).glob("*.c"))]
    return render(template_env("kmod"), "Kbuild-mppe.j2", profile=target.profile, release=target.release,
                  objects=objects)


def check_compiler(target: KernelTarget) -> None:
    if shutil.which(target.compiler) is None:
        raise HostToolError(
            f"the {target.release} kernel was built with {target.compiler_version!r}; modules must be built "
            f"with the same compiler, and {target.compiler} is not installed.\n"
            f"install with: apt-get install {target.compiler}")


def check_option_length(target: KernelTarget, moddir: Path, header: Path, jobs: int, log: Path) -> int:
    """Preprocess ppp_generic.c with the module's own flags and check its option buffer has the size the
    tree's (patched) header defines: proof that our header, not the kernel's, was compiled."""
    run(kbuild_command(target, moddir, jobs) + ["ppp_generic.i"], log=log,
        what="preprocessing ppp_generic.c with the module's flags")
    compiled = option_length((moddir / "ppp_generic.i").read_text(errors="replace"))
    wanted = header_option_length(header)
    if compiled != wanted:
        raise KernelError(
            f"ppp_generic was compiled with ccp_option[{compiled}] but {header} defines "
            f"CCP_MAX_OPTION_LENGTH {wanted}: the kernel's own ppp-comp.h came first on the include path "
            f"(the Kbuild's NOSTDINC_FLAGS override did not take effect)")
    return compiled


def check_vermagic(module: Path, target: KernelTarget) -> None:
    got = modinfo_field(module, "vermagic")
    if got != target.vermagic:
        raise KernelError(f"{module.name} has vermagic {got!r}, but the VM kernel's modules have "
                          f"{target.vermagic!r}: it would not load into {target.release}")


def install_modules(built: list[Path], dest: Path, log: Path) -> list[Path]:
    """Copy the modules to `dest` without debug info (as Debian ships its own), each atomically."""
    dest.mkdir(parents=True, exist_ok=True)
    installed = []
    for ko in built:
        out = dest / ko.name
        with atomic_path(out) as tmp:
            run(["objcopy", "--strip-debug", str(ko), str(tmp)], log=log, what=f"stripping {ko.name}")
            tmp.chmod(0o644)
        installed.append(out)
    return installed
