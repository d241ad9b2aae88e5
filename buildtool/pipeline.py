"""The run: recipe -> fetch -> extract -> patch -> build -> kmod -> package, per package, with stamps.

This module only sequences phases and decides what is up to date; each phase lives in its own module and
takes plain values. A phase's stamp is written only after it succeeded, so a run killed at any point
resumes at the first phase whose stamp is missing or stale.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import build as build_phase
from . import extract as extract_phase
from . import fetch as fetch_phase
from . import hosttools
from . import package as package_phase
from . import patch as patch_phase
from .distinfo import Distinfo, patch_sha1, read_distinfo, verify_distfile
from .errors import RecipeError
from .fsutil import atomic_path, file_digest, file_lock
from .layout import Layout
from .recipe import Recipe
from .runlog import Summary, kill_leftover_groups
from .state import Stamps, phase_key

PHASES = ("fetch", "extract", "patch", "build", "kmod", "package")


@dataclass
class Options:
    jobs: int = 2
    dry_run: bool = False
    verbose: bool = False
    offline: bool = False
    progress: bool | None = None  # None: a bar on a terminal, plain lines otherwise
    kernel: str = "linux-6.1"  # kernel profile name, or "none" for userland only
    kernel_options: dict = field(default_factory=dict)  # --sysdir, --kernel-dir, --kernel-source, --host
    through: str = "package"  # last phase to run
    compiler_cache: bool = True  # compile through ccache when it is installed (buildtool/ccache.py)


@dataclass
class Context:
    """Everything one run shares: where things are, what was asked, what happened."""

    layout: Layout
    options: Options
    summary: Summary = field(default_factory=Summary)
    keys: dict[tuple[str, str], str] = field(default_factory=dict)  # (package, phase) -> key this run
    out: object = None  # where progress lines go (None: the current sys.stderr)
    kernel_target: object | None = None  # resolved once per run (kmod.KernelTarget)
    recipes: dict[str, Recipe] = field(default_factory=dict)  # this run's recipes by name (for @pkgdep)


def newest_mtime(tree: Path) -> int:
    """The newest file time in a freshly extracted tree: the release's date, as the tarball recorded it.
    Directories are left out: a tarball without directory members gets them created with today's date."""
    return max((int(p.lstat().st_mtime) for p in tree.rglob("*") if not p.is_dir() or p.is_symlink()),
               default=0)


def _wanted(phase: str, options: Options) -> bool:
    return PHASES.index(phase) <= PHASES.index(options.through)


def _has_kmod(recipe: Recipe, options: Options) -> bool:
    return bool(recipe.kernel_patches) and options.kernel != "none"


class PackageRun:
    """The phases of one package."""

    def __init__(self, ctx: Context, recipe: Recipe):
        self.ctx = ctx
        self.recipe = recipe
        self.layout = ctx.layout
        self.stamps = Stamps(ctx.layout.stamps(recipe.name))
        self.logs = ctx.layout.logs(recipe.name)
        self._distinfo: Distinfo | None = None

    @property
    def distinfo(self) -> Distinfo:
        if self._distinfo is None:
            self._distinfo = read_distinfo(self.recipe.distinfo_path)
        return self._distinfo

    def source_patches(self) -> list[Path]:
        return self._split_series()[0]

    def kernel_patches(self) -> list[Path]:
        return self._split_series()[1]

    def _split_series(self) -> tuple[list[Path], list[Path]]:
        return patch_phase.split_series(self.recipe.patch_dir(self.layout.root), self.recipe.kernel_patches)

    def _step(self, phase: str, key: str, action, outputs: tuple[Path, ...] = (), still_good=None,
              stamp: str | None = None) -> bool:
        """Run `action` unless the stamp for `phase` matches `key`, all its outputs exist and, if given,
        `still_good()` says they still verify (a stamp cannot vouch for a file changed since).

        `stamp` names the stamp file when it is not the phase's name (phases whose result depends on the
        kernel profile keep one stamp per profile, so switching --kernel back finds its work done). The
        action may return "restored" when it put a kept result back instead of making it again.
        """
        name = self.recipe.name
        stamp = stamp or phase
        self.ctx.keys[(name, phase)] = key
        with self.ctx.summary.phase(name, phase, out=self.ctx.out) as rec:
            current = (self.stamps.is_current(stamp, key) and all(p.exists() for p in outputs)
                       and (still_good is None or still_good()))
            if current:
                rec.outcome = "skipped"
                return False
            if self.ctx.options.dry_run:
                rec.outcome = "dry-run"
                print(f"would run: {name} {phase}", file=self.ctx.out or sys.stderr)
                return True
            self.stamps.clear(stamp)
            print(f"==> {name}: {phase} ...", file=self.ctx.out or sys.stderr, flush=True)
            if action() == "restored":
                rec.outcome = "restored"
            self.stamps.mark_done(stamp, key)
            return True

    def run(self) -> None:
        opts = self.ctx.options
        info = self.distinfo
        sums = {d.name: info.distfile(d.name).hashes for d in self.recipe.distfiles}
        k_fetch = phase_key("", distfiles=sums)
        self._step("fetch", k_fetch, self.fetch,
                   outputs=tuple(self.layout.distdir / d.name for d in self.recipe.distfiles),
                   still_good=lambda: not fetch_phase.cache_problems(self.recipe, info, self.layout.distdir))
        if not _wanted("extract", opts):
            return
        k_extract = phase_key(k_fetch, wrksrc=self.recipe.wrksrc)
        extracted = self._step("extract", k_extract, self.extract)
        if not _wanted("patch", opts):
            return
        patches = self.source_patches()
        # keyed by the files themselves: an edited patch reruns the phase, whose check against distinfo
        # then refuses it until `makepatchsum` records the change
        k_patch = phase_key(k_extract, patches={p.name: patch_sha1(p) for p in patches})

        def pristine_tree() -> None:
            """Extract and patch again, whatever the stamps say."""
            self.stamps.clear("extract")
            self.stamps.clear("patch")
            self._step("extract", k_extract, self.extract)
            self._step("patch", k_patch, lambda: self.patch(patches))
            self.tree_state.write_text("pristine\n")

        if not self.stamps.is_current("patch", k_patch) and not extracted and not opts.dry_run:
            pristine_tree()  # a half-applied or outdated series: start again from pristine sources
        elif self._step("patch", k_patch, lambda: self.patch(patches)) and not opts.dry_run:
            self.tree_state.write_text("pristine\n")
        if not _wanted("build", opts):
            return
        dep_keys = {d: self.ctx.keys.get((d, "build"), "") for d in self.recipe.depends}
        k_build = phase_key(k_patch, build=[self.recipe.env, self.recipe.configure, self.recipe.build,
                                            self.recipe.install, self.recipe.smoke],
                            deps=dep_keys, toolchain=hosttools.toolchain_id())
        if not self.stamps.is_current("build", k_build) and not opts.dry_run:
            # make compares only mtimes: objects of a build with other inputs must not be reused, while a
            # killed build of the same inputs resumes in its tree
            state = self.tree_state.read_text().strip() if self.tree_state.exists() else ""
            if state not in ("pristine", k_build):
                pristine_tree()
            self.tree_state.write_text(k_build + "\n")
        self._step("build", k_build, self.build)
        last = k_build
        if _has_kmod(self.recipe, opts) and _wanted("kmod", opts):
            last = self.run_kmod(k_build)
        if self.recipe.kernel_patches and _wanted("kmod", opts) and not opts.dry_run:
            self.sync_stage_modules()
        if not _wanted("package", opts) or not self.recipe.packaged:
            return
        plist_text = "".join(p.read_text() for p in sorted(self.recipe.dir.glob("PLIST*")))
        k_package = phase_key(last, plist=plist_text, meta=[self.recipe.comment, self.recipe.description,
                                                           self.recipe.plist_modes, self.recipe.message],
                              kmod=_has_kmod(self.recipe, opts), kernel=opts.kernel,
                              deps=package_phase.pkgdeps(self.recipe, self.ctx.recipes),
                              epoch=package_phase.source_date_epoch(os.environ),
                              writer=package_phase.writer_digest())
        output = self.layout.packages_all / f"{self.recipe.pkgname}.tgz"
        kept = self.layout.pkg_work(self.recipe.name) / "packages" / f"{k_package[:24]}.tgz"
        self._step("package", k_package, lambda: self.package(output, kept), outputs=(output,),
                   still_good=lambda: self._package_verifies(output) and _same_file(output, kept),
                   stamp=f"package@{opts.kernel}")

    def _package_verifies(self, output: Path) -> bool:
        """A package counts as made only while it verifies against its own +CONTENTS (a truncated or
        edited file is rebuilt, not reported up to date)."""
        problems = package_phase.verify_package(output)
        if problems:
            print(f"{output} does not verify, replacing it:\n  " + "\n  ".join(problems[:5]),
                  file=self.ctx.out or sys.stderr, flush=True)
        return not problems

    @property
    def tree_state(self) -> Path:
        """'pristine' after patching, else the key of the build that last used the source tree."""
        return self.layout.stamps(self.recipe.name) / "tree"

    # --- the phases -------------------------------------------------------------------------------
    def fetch(self) -> None:
        for d in self.recipe.distfiles:
            fetch_phase.fetch_distfile(
                d, self.distinfo.distfile(d.name), self.layout.distdir,
                fetch_phase.FetchOptions(offline=self.ctx.options.offline, progress=self.ctx.options.progress,
                                         apt_dir=self.layout.cache / "apt"),
                log=self.logs / "fetch.log")

    def extract(self) -> None:
        src = self.layout.srcdir(self.recipe.name)
        if src.exists():
            shutil.rmtree(src)
        for d in self.recipe.distfiles:
            # the fetch stamp cannot vouch for a file changed since: every read is checked first
            verify_distfile(self.layout.distdir / d.name, self.distinfo.distfile(d.name))
            extract_phase.extract(self.layout.distdir / d.name, src)
        if not (src / self.recipe.wrksrc).is_dir():
            found = ", ".join(sorted(p.name for p in src.iterdir()))
            raise RecipeError(f"{self.recipe.toml_path}: key 'build.wrksrc' is {self.recipe.wrksrc!r} but "
                              f"the distfiles extracted to: {found}")
        self.layout.source_date_file(self.recipe.name).write_text(f"{newest_mtime(src)}\n")

    def patch(self, patches: list[Path]) -> None:
        tree = self.layout.srcdir(self.recipe.name) / self.recipe.wrksrc
        applied = patch_phase.apply_series(patches, self.distinfo, tree, log=self.logs / "patch.log")
        (self.layout.pkg_work(self.recipe.name) / "applied-patches").write_text(
            "".join(f"{name}\n" for name in applied))

    def build(self) -> None:
        build_phase.build(self.recipe, build_phase.BuildContext.for_recipe(
            self.recipe, self.layout, jobs=self.ctx.options.jobs, verbose=self.ctx.options.verbose,
            progress=self.ctx.options.progress, compiler_cache=self.ctx.options.compiler_cache))

    def run_kmod(self, k_build: str) -> str:
        from . import kmod
        from .kernels.linux import our_mppe_digest

        if self.ctx.kernel_target is None:
            # a phase of its own in the summary: hundreds of MB of .debs the first time, and it can fail
            with self.ctx.summary.phase("kernel", "resolve", out=self.ctx.out) as rec:
                rec.outcome = "checked"  # timed and, if it fails, counted as failed; not a phase run
                self.ctx.kernel_target = kmod.resolve_target(
                    self.ctx.options.kernel, self.layout, self.ctx.options.kernel_options,
                    offline=self.ctx.options.offline, log=self.logs / "kmod.log")
        target = self.ctx.kernel_target
        kpatches = self.kernel_patches()
        k_kmod = phase_key(k_build, target=target.manifest(), modules=kmod.modules_of(target, self.recipe),
                           patches={p.name: patch_sha1(p) for p in kpatches}, mppe=self.recipe.kernel_mppe,
                           mppe_sources=our_mppe_digest(self.layout.root) if self.recipe.kernel_mppe == "ours"
                           else {})
        out = self.kmod_out(self.ctx.options.kernel)
        release_dir = out / "lib" / "modules" / target.release

        def build_modules() -> None:
            if out.exists():
                shutil.rmtree(out)
            kmod.build_modules(target, self.recipe, kpatches, self.distinfo, self.layout,
                               jobs=self.ctx.options.jobs, log_dir=self.logs,
                               dest=kmod.install_dir(target, self.recipe, out, self.layout))

        self._step("kmod", k_kmod, build_modules, outputs=(release_dir,),
                   stamp=f"kmod@{self.ctx.options.kernel}")
        return k_kmod

    def kmod_out(self, profile: str) -> Path:
        """Where the kmod phase of `profile` keeps its modules (lib/modules/<release>/extra/), one tree
        per profile, so switching --kernel back finds them built."""
        return self.layout.pkg_work(self.recipe.name) / "kmod-out" / profile

    def sync_stage_modules(self) -> None:
        """Make the stage's lib/modules/ exactly this profile's modules (none for --kernel none): the
        userland build is shared by every profile, the modules are not."""
        staged = self.layout.stage_prefix(self.recipe.name) / "lib" / "modules"
        if staged.exists():
            shutil.rmtree(staged)
        built = self.kmod_out(self.ctx.options.kernel) / "lib" / "modules"
        if _has_kmod(self.recipe, self.ctx.options) and built.is_dir():
            shutil.copytree(built, staged, symlinks=True)

    def package(self, output: Path, kept: Path) -> str | None:
        """Write the package; a copy is kept under the key, and a kept one is put back instead of being
        made again (switching --kernel back and forth rewrites packages/All from these)."""
        if kept.exists() and not package_phase.verify_package(kept):
            with atomic_path(output) as tmp:
                shutil.copyfile(kept, tmp)
                tmp.chmod(0o644)
            self.ctx.summary.written.append(output)
            return "restored"
        self.make_package()
        with atomic_path(kept) as tmp:
            shutil.copyfile(output, tmp)
        # keep only what a profile's stamp still names (the package stamp is written after this)
        wanted = {kept.name} | {f"{stamp.read_text().strip()[:24]}.tgz"
                                for stamp in self.stamps.directory.glob("package@*")}
        for old in kept.parent.glob("*.tgz"):
            if old.name not in wanted:
                old.unlink()
        return None

    def make_package(self) -> None:
        kmod_vars = {}
        if _has_kmod(self.recipe, self.ctx.options) and self.ctx.kernel_target is not None:
            from . import kmod

            kmod_vars = kmod.plist_vars(self.ctx.kernel_target, self.recipe)
        written = package_phase.make_package(
            self.recipe, self.layout.stage_prefix(self.recipe.name), self.layout.packages_all,
            plist_vars={**self.recipe.plist_vars, **kmod_vars},
            plist_options={"kmod": _has_kmod(self.recipe, self.ctx.options)},
            build_info=package_phase.default_build_info(self.recipe, self.ctx.options.kernel),
            pkgdeps=package_phase.pkgdeps(self.recipe, self.ctx.recipes))
        self.ctx.summary.written.append(written)


def _same_file(a: Path, b: Path) -> bool:
    """Whether `b` exists with exactly the bytes of `a` (packages/All holds the package of this key)."""
    return b.exists() and a.stat().st_size == b.stat().st_size and file_digest(a, "sha256") == file_digest(
        b, "sha256")


def run(ctx: Context, recipes: list[Recipe]) -> None:
    """Run every selected package through the wanted phases, dependencies first."""
    ctx.recipes.update({r.name: r for r in recipes})
    lock = contextlib.nullcontext() if ctx.options.dry_run else work_tree_lock(ctx.layout.work, out=ctx.out)
    with lock:
        for recipe in recipes:
            PackageRun(ctx, recipe).run()


@contextlib.contextmanager
def work_tree_lock(work: Path, out=None) -> Iterator[None]:
    """One run at a time per work tree: a second one waits (two builds into one stage would mix).

    Whoever holds the lock owns the tree: it first kills the process groups a killed earlier run left
    running in it (a `make` of a run killed with -9 must not write beside ours).
    """
    with file_lock(work / ".lock", waiting=f"waiting for another buildtool run in {work} to finish ...",
                   out=out):
        kill_leftover_groups(work, out=out)
        yield
