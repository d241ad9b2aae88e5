"""Command line: `buildtool fetch|extract|patch|build|package [PKG...]` and the helper commands."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import pipeline
from .errors import EXIT_CODES, BuildError, UsageError
from .layout import Layout
from .recipe import load_all, select

PHASE_COMMANDS = {
    "fetch": "fetch",
    "extract": "extract",
    "patch": "patch",
    "build": "kmod",  # build includes the kernel modules of the chosen --kernel profile
    "package": "package",
}


KERNEL_OPTIONS = ("sysdir", "common", "kernel_dir", "kernel_source", "host", "ssh_identity")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2, help="parallel make jobs")
    p.add_argument("-n", "--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument("-v", "--verbose", action="store_true", help="echo build output as well as logging it")
    p.add_argument("--offline", action="store_true", help="use the distfile cache only; never download")
    p.add_argument("--no-progress", dest="progress", action="store_const", const=False, default=None,
                   help="plain log lines instead of a progress bar")
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
        _common(p)
    p = sub.add_parser("kernels", help="list the kernel profiles and what each needs")
    p = sub.add_parser("clean", help="remove the work tree (keeps the download cache and packages)")
    p.add_argument("--work", type=Path)
    p = sub.add_parser("test", help="run the VM scenario suite (writes JUnit XML and console logs)")
    p.add_argument("-k", dest="keyword", help="only scenarios matching this pytest -k expression")
    p.add_argument("--control", action="store_true",
                   help="run the suite against the deliberately broken module variants; they must fail")
    p.add_argument("--results", type=Path, default=Path("results"), help="where JUnit XML and logs go")
    _common(p)
    p = sub.add_parser("pkgsrc", help="pkgsrc package directories")
    p.add_argument("action", choices=["export"])
    p.add_argument("--dest", type=Path, help="destination (default: ./pkgsrc)")
    return parser


def _layout(args: argparse.Namespace) -> Layout:
    return Layout.default(work=getattr(args, "work", None), packages=getattr(args, "packages_dir", None))


def _options(args: argparse.Namespace, through: str) -> pipeline.Options:
    if args.jobs < 1:
        raise UsageError("-j needs a positive number of jobs")
    return pipeline.Options(
        jobs=args.jobs, dry_run=args.dry_run, verbose=args.verbose, offline=args.offline,
        progress=args.progress, kernel=args.kernel, through=through,
        kernel_options={k: getattr(args, k) for k in KERNEL_OPTIONS})


def _check_kernel(args: argparse.Namespace) -> None:
    if args.kernel == "none":
        return
    from .kernels import get_profile_class

    get_profile_class(args.kernel)  # raises UsageError listing the known profiles


def cmd_phases(args: argparse.Namespace) -> int:
    layout = _layout(args)
    _check_kernel(args)
    recipes = select(load_all(layout.root), args.packages)
    ctx = pipeline.Context(layout=layout, options=_options(args, PHASE_COMMANDS[args.command]))
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

    layout = _layout(args)
    recipes = load_all(layout.root)
    for r in select(recipes, args.packages)[-len(args.packages):] if args.packages else []:
        if r.name not in args.packages:
            continue
        changed = (makesum.makepatchsum(r, layout) if patches_only
                   else makesum.makesum(r, layout, _options(args, "fetch")))
        print(f"{r.distinfo_path}: {'updated' if changed else 'unchanged'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command in PHASE_COMMANDS:
            return cmd_phases(args)
        if args.command in ("makesum", "makepatchsum"):
            return cmd_makesum(args, patches_only=args.command == "makepatchsum")
        if args.command == "kernels":
            from .kernels import describe_profiles

            print(describe_profiles())
            return 0
        if args.command == "clean":
            import shutil

            work = _layout(args).work
            if work.exists():
                shutil.rmtree(work)
            print(f"removed {work}")
            return 0
        if args.command == "test":
            from .vm.suite import run_suite

            _check_kernel(args)
            return run_suite(args, _layout(args))
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
    except KeyboardInterrupt:
        print("buildtool: interrupted; the next run resumes from the last finished phase", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
