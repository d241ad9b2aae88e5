"""Command line: `buildtool fetch|extract|patch|build|package [PKG...]` and the helper commands."""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from . import pipeline
from .errors import DISK_ERRNOS, EXIT_CODES, BuildError, PhaseError, UsageError, disk_error
from .layout import Layout
from .recipe import load_all, select
from .vm.suite import default_guests

PHASE_COMMANDS = {
    "fetch": "fetch",
    "extract": "extract",
    "patch": "patch",
    "build": "kmod",  # build includes the kernel modules of the chosen --kernel profile
    "package": "package",
}


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2, help="parallel make jobs")
    p.add_argument("-n", "--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument("-v", "--verbose", action="store_true", help="echo build output as well as logging it")
    p.add_argument("--offline", action="store_true", help="use the distfile cache only; never download")
    p.add_argument("--no-progress", dest="progress", action="store_const", const=False, default=None,
                   help="plain log lines instead of a progress bar")
    p.add_argument("--no-ccache", dest="compiler_cache", action="store_false",
                   help="compile without the compiler cache (ccache; it never changes what is built)")
    p.add_argument("--work", type=Path, help="work tree (default: ./work)")
    p.add_argument("--packages", dest="packages_dir", type=Path,
                   help="package output directory (default: ./packages)")
    _kernel_args(p)


def _kernel_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kernel", default="linux-6.1",
                   help="kernel profile to build modules for (see `buildtool kernels`; 'none' skips modules)")
    p.add_argument("--sysdir", type=Path, help="kernel source tree (NetBSD profiles: SYSDIR)")
    p.add_argument("--kernel-dir", type=Path,
                   help="local kernel build tree (e.g. an unpacked linux-headers package) instead of apt")
    p.add_argument("--kernel-source", type=Path,
                   help="local kernel source tarball or tree (e.g. linux-source-6.1.tar.xz) instead of apt")
    p.add_argument("--common", type=Path,
                   help="NetBSD common/include (default: beside --sysdir, as in a NetBSD src checkout)")
    p.add_argument("--host", help="build host for NetBSD profiles, user@host[:port] (reached over SSH)")
    p.add_argument("--ssh-identity", type=Path, help="private key for --host (default: ssh-agent, ~/.ssh)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="buildtool", description="Build, package and verify the PPTP/MPPE stack (ppp-mppe, poptop).",
        epilog="exit codes: " + "; ".join(f"{c} {d}" for c, d in EXIT_CODES))
    sub = parser.add_subparsers(dest="command", required=True)
    for name in PHASE_COMMANDS:
        p = sub.add_parser(name, help=f"run the phases up to and including {name}")
        p.add_argument("packages", nargs="*", metavar="PKG", help="packages (default: all)")
        _common(p)
    for name, what in (("makesum", "regenerate distfile checksums in distinfo"),
                       ("makepatchsum", "regenerate patch checksums in distinfo")):
        p = sub.add_parser(name, help=what)
        p.add_argument("packages", nargs="+", metavar="PKG")
        if name == "makesum":
            p.add_argument("--force", action="store_true",
                           help="record a distfile even if it fails the sums distinfo has (prints both)")
        _common(p)
    p = sub.add_parser("kernels", help="list the kernel profiles and what each needs")
    p = sub.add_parser("clean", help="remove the work tree (keeps the download cache and packages)")
    p.add_argument("--work", type=Path)
    p = sub.add_parser("test", help="run the VM scenario suite (writes JUnit XML and console logs)")
    p.add_argument("-k", dest="keyword", help="only scenarios matching this pytest -k expression")
    p.add_argument("--control", action="store_true",
                   help="run the suite against the deliberately broken module variants; they must fail")
    p.add_argument("--results", type=Path, default=Path("results"), help="where JUnit XML and logs go")
    p.add_argument("--guests", type=int, default=None, metavar="N",
                   help="run the scenarios in N guest sessions at once, each with guests of its own "
                        f"(pytest-xdist workers; default here: {default_guests()}; 1: one after the other)")
    _common(p)
    p = sub.add_parser("pkgsrc", help="pkgsrc package directories")
    p.add_argument("action", choices=["export"])
    p.add_argument("--dest", type=Path, help="destination (default: ./pkgsrc)")
    return parser


def _layout(args: argparse.Namespace) -> Layout:
    """The trees this run uses. Outside a checkout the one buildtool was installed from is used, and the
    run says so (its work tree and packages are that checkout's)."""
    from .layout import find_checkout, installed_checkout

    root = find_checkout()
    if root is None:
        root = installed_checkout()
        if not getattr(args, "_told_root", False):
            args._told_root = True
            print(f"buildtool: {Path.cwd()} is not inside a buildtool checkout; using the checkout buildtool "
                  f"was installed from: {root} (work tree {getattr(args, 'work', None) or root / 'work'})",
                  file=sys.stderr, flush=True)
    return Layout.default(root=root, work=getattr(args, "work", None),
                          packages=getattr(args, "packages_dir", None))


def _options(args: argparse.Namespace, through: str) -> pipeline.Options:
    if args.jobs < 1:
        raise UsageError("-j needs a positive number of jobs")
    return pipeline.Options(
        jobs=args.jobs, dry_run=args.dry_run, verbose=args.verbose, offline=args.offline,
        progress=args.progress, kernel=args.kernel, through=through, compiler_cache=args.compiler_cache,
        kernel_options=_kernel_options(args))


def _check_kernel(args: argparse.Namespace, layout: Layout, building: bool) -> None:
    """--kernel and its options, all checked before any work starts (`building`: modules will be built)."""
    from .kernels import check_options

    check_options(args.kernel, _kernel_options(args), layout, building)


def _kernel_options(args: argparse.Namespace) -> dict:
    from .kernels import KERNEL_OPTIONS

    return {k: getattr(args, k) for k in KERNEL_OPTIONS}


def cmd_phases(args: argparse.Namespace) -> int:
    layout = _layout(args)
    recipes = select(load_all(layout.root), args.packages)
    builds_modules = (PHASE_COMMANDS[args.command] in ("kmod", "package")
                      and any(r.kernel_patches for r in recipes))
    _check_kernel(args, layout, building=builds_modules)
    ctx = pipeline.Context(layout=layout, options=_options(args, PHASE_COMMANDS[args.command]))
    if args.command == "fetch" and args.offline:
        from .fetch import check_cache_offline

        check_cache_offline(recipes, layout.distdir)
    if args.dry_run:
        print("plan: " + " -> ".join(r.name for r in recipes) + f" (through {ctx.options.through}, "
              f"kernel {args.kernel})", file=sys.stderr)
    try:
        pipeline.run(ctx, recipes)
    finally:
        print(ctx.summary.render(), file=sys.stderr)
    return 0


def cmd_makesum(args: argparse.Namespace, patches_only: bool) -> int:
    from . import makesum
    from .kernels import netbsd_kernel

    layout = _layout(args)
    # inputs that are not recipes: the NetBSD kernel's tarballs and patch series (netbsd-kernel/distinfo)
    others = {netbsd_kernel.INPUTS: (netbsd_kernel.distinfo_path(layout.root),
                                     lambda: netbsd_kernel.makepatchsum(layout.root),
                                     lambda: netbsd_kernel.makesum(layout.root, force=args.force))}
    for name in (n for n in args.packages if n in others):
        path, patch_sums, sums = others[name]
        print(f"{path}: {'updated' if (patch_sums if patches_only else sums)() else 'unchanged'}")
    names = [n for n in args.packages if n not in others]
    recipes = load_all(layout.root) if names else {}
    # every package named, and only those (select() adds their dependencies, in build order)
    for r in (r for r in select(recipes, names) if r.name in names):
        changed = (makesum.makepatchsum(r, layout) if patches_only
                   else makesum.makesum(r, layout, _options(args, "fetch"), force=args.force))
        print(f"{r.distinfo_path}: {'updated' if changed else 'unchanged'}")
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    """Remove the work tree, holding its lock: never under a running build."""
    import shutil

    from .layout import find_checkout

    if args.work is None and find_checkout() is None:
        raise UsageError(f"{Path.cwd()} is not inside a buildtool checkout, so `clean` would remove the "
                         f"work tree of the checkout buildtool was installed from. Run it in the checkout "
                         f"you mean to clean, or name the tree: buildtool clean --work DIR")
    work = _layout(args).work
    if not work.exists():
        print(f"{work}: nothing to remove")
        return 0
    with pipeline.work_tree_lock(work):
        # the lock file stays: a run waiting for it must lock the same file we held
        for entry in work.iterdir():
            if entry.name == ".lock":
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    print(f"removed {work} (all but its lock file)")
    return 0


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so that running commands are stopped and the run says so."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread (an embedding program): its own signal handling stands
        return _dispatch_to_stdout(args)
    try:
        return _dispatch_to_stdout(args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _dispatch_to_stdout(args: argparse.Namespace) -> int:
    """_dispatch, where a reader that stops early (`buildtool kernels | head`) ends the output quietly as
    it does for other programs: exit status 141 (128 + SIGPIPE), no traceback."""
    try:
        code = _dispatch(args)
        sys.stdout.flush()  # here, not at exit: a reader gone by then would get "Exception ignored"
        return code
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush is quiet
        return 141


def _dispatch(args: argparse.Namespace) -> int:
    try:
        if args.command in PHASE_COMMANDS:
            return cmd_phases(args)
        if args.command in ("makesum", "makepatchsum"):
            return cmd_makesum(args, patches_only=args.command == "makepatchsum")
        if args.command == "kernels":
            from .kernels import describe_profiles

            print(describe_profiles(load_all(_layout(args).root).values()))
            return 0
        if args.command == "clean":
            return cmd_clean(args)
        if args.command == "test":
            from .kernels import scenario_runner

            if args.guests is not None and args.guests < 1:
                raise UsageError(f"--guests needs a positive number of guest sessions, not {args.guests}")
            layout = _layout(args)
            _check_kernel(args, layout, building=args.packages_dir is None)
            return scenario_runner(args.kernel)(args, layout)
        if args.command == "pkgsrc":
            from .pkgsrc_export import export

            layout = _layout(args)
            dest = args.dest or layout.root / "pkgsrc"
            for path in export(load_all(layout.root), layout, dest):
                print(path)
            return 0
    except BuildError as e:
        print(f"buildtool: error: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:
        if e.errno not in DISK_ERRNOS:
            raise
        layout = _layout(args)
        err = disk_error(e, f"buildtool {args.command}",
                         where=f"one of {layout.work}, {layout.packages}, {layout.cache}")
        print(f"buildtool: error: {err}", file=sys.stderr)
        return err.exit_code
    except subprocess.TimeoutExpired as e:
        printed = e.stderr or e.output or ""
        if isinstance(printed, bytes):
            printed = printed.decode(errors="replace")
        tail = "\n".join(printed.strip().splitlines()[-10:]) or "(no output)"
        print(f"buildtool: error: `{shlex.join(map(str, e.cmd))}` did not finish within {e.timeout:.0f}s and "
              f"was stopped; its last output:\n{tail}", file=sys.stderr)
        return PhaseError.exit_code
    except BrokenPipeError:  # `buildtool kernels | head`: the reader has what it wanted
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt as e:
        what = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"
        print(f"buildtool: {what}; the next run resumes from the last finished phase", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
