"""`buildtool pkgsrc export`: pkgsrc package directories (net/ppp-mppe, net/poptop) from the recipes.

Every file is rendered from buildtool/templates/pkgsrc/ (distinfo through distinfo.format_distinfo, the
same writer `buildtool makesum` uses) or copied from patches/. Only the patches pkgsrc's patch stage applies
to WRKSRC go to patches/; the kernel-side ones (the recipe's [kmod] profile_patches) go to files/kmod/ and
are applied by the kernel-module part of the Makefile to a copy of the SYSDIR files they touch.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from .distinfo import DISTFILE_ALGORITHMS, format_distinfo, patch_sha1, read_distinfo, verify_distfile
from .errors import RecipeError
from .extract import ARCHIVE_SUFFIXES, archive_suffix
from .fsutil import write_if_changed
from .layout import Layout
from .package import file_mode
from .patch import patch_targets, split_series
from .pkglint import distfile_files, patch_target_problems
from .plist import PlistEntry, parse_plist
from .recipe import Recipe
from .templating import render, template_env

# PLIST variables pkgsrc substitutes by itself (mk/bsd.prefs.mk and mk/plist/plist.mk).
STANDARD_PLIST_VARS = frozenset({"PKGVERSION", "PKGBASE", "PKGNAME", "OPSYS", "LOWER_OPSYS", "MACHINE_ARCH",
                                 "MACHINE_GNU_ARCH", "OS_VERSION", "PKGMANDIR", "PKGLOCALEDIR"})
OPTION_KEYS = {"name": str, "default": bool, "help": str, "configure_args": list, "configure_args_off": list,
               "buildlink3": list, "plist": str, "default_opsys": list, "default_why": str}
KMOD_KEYS = {"option": str, "sysdir": dict, "check": dict, "copy": list, "build": dict, "install": dict,
             "vars": dict, "unavailable": dict, "copy_opsys": list, "sources": dict}
EXAMPLES_KEYS = {"dir": str, "files": list}
_VAR = re.compile(r"\$\{([^}]+)\}")


@dataclass
class PkgsrcOption:
    name: str
    default: bool
    help: str
    configure_args: list[str] = field(default_factory=list)
    configure_args_off: list[str] = field(default_factory=list)
    buildlink3: list[str] = field(default_factory=list)
    plist: str = ""  # PLIST_VARS name set when the option is on ("" = none)
    default_opsys: list[str] = field(default_factory=list)  # default on only there ([] = everywhere)
    default_why: str = ""  # why the default is what it is (a comment in options.mk)


@dataclass
class KmodPart:
    option: str
    sysdir: dict[str, str]
    check: dict[str, str]
    copy: list[str]
    build: dict[str, list[str]]
    install: dict[str, list[str]]
    vars: dict[str, dict[str, str]] = field(default_factory=dict)  # OPSYS -> extra Makefile variables
    unavailable: dict[str, str] = field(default_factory=dict)  # OPSYS -> why there is no module build yet
    copy_opsys: list[str] = field(default_factory=list)  # OPSYS that copy + patch kernel files ([] = all)
    sources: dict[str, str] = field(default_factory=dict)  # files/kmod-src/<dest> -> repository folder


@dataclass
class ExampleFile:
    source: str  # relative to WRKSRC
    dest_dir: str  # relative to PREFIX
    mode: str  # "" for INSTALL_DATA's default, else an octal mode such as "600"

    @property
    def path(self) -> str:
        """The installed file, relative to PREFIX (as the PLIST lists it)."""
        return f"{self.dest_dir}/{Path(self.source).name}"


def exported_recipes(recipes: dict[str, Recipe], layout: Layout) -> list[Recipe]:
    """The products: packaged recipes at the top of the repository (deps/ are build or test helpers)."""
    return [r for _, r in sorted(recipes.items())
            if r.packaged and r.dir.resolve().parent == layout.root.resolve()]


def _assign(name: str, value: str) -> str:
    """`NAME=<tabs>value`, values starting at column 16 or the next tab stop after a longer name."""
    if not value:
        return name
    column = max(16, (len(name) // 8 + 1) * 8)
    tabs = -(-(column - len(name)) // 8)
    return f"{name}{chr(9) * tabs}{value}"


def _rewrap(text: str, width: int = 79) -> str:
    """Paragraphs of running text re-filled to `width` columns (pkglint wants DESCR and MESSAGE lines of
    at most 80); a paragraph with an indented line (a command, a table) is kept as it is."""
    out = []
    for para in text.strip().split("\n\n"):
        lines = para.splitlines()
        if any(line[:1].isspace() for line in lines):
            out.append(para)
        else:
            out.append(textwrap.fill(" ".join(line.strip() for line in lines), width=width,
                                     break_long_words=False, break_on_hyphens=False))
    return "\n\n".join(out)


def _env() -> jinja2.Environment:
    env = template_env("pkgsrc")
    env.filters["assign"] = _assign
    env.filters["rewrap"] = _rewrap
    return env


def _typed(recipe: Recipe, where: str, table: object, keys: dict[str, type], required: set[str]) -> dict:
    if not isinstance(table, dict):
        raise RecipeError(f"{recipe.toml_path}: key '{where}' must be a table")
    for key, value in table.items():
        if key not in keys:
            known = ", ".join(sorted(keys))
            raise RecipeError(f"{recipe.toml_path}: unknown key '{where}.{key}' (known: {known})")
        if not isinstance(value, keys[key]):
            raise RecipeError(f"{recipe.toml_path}: key '{where}.{key}' must be a {keys[key].__name__}")
    missing = sorted(required - set(table))
    if missing:
        raise RecipeError(f"{recipe.toml_path}: '{where}' needs key(s) {', '.join(missing)}")
    return table


def pkgsrc_options(recipe: Recipe) -> list[PkgsrcOption]:
    options = []
    for i, raw in enumerate(recipe.pkgsrc.get("options", [])):
        t = _typed(recipe, f"pkgsrc.options[{i}]", raw, OPTION_KEYS, {"name", "default", "help"})
        options.append(PkgsrcOption(
            name=t["name"], default=t["default"], help=t["help"], configure_args=t.get("configure_args", []),
            configure_args_off=t.get("configure_args_off", []), buildlink3=t.get("buildlink3", []),
            plist=t.get("plist", ""), default_opsys=t.get("default_opsys", []),
            default_why=t.get("default_why", "")))
        if options[-1].default_opsys and not options[-1].default:
            raise RecipeError(f"{recipe.toml_path}: 'pkgsrc.options[{i}].default_opsys' needs default = true")
    return options


def kmod_part(recipe: Recipe, options: list[PkgsrcOption]) -> KmodPart | None:
    raw = recipe.pkgsrc.get("kmod", {})
    if not raw:
        return None
    t = _typed(recipe, "pkgsrc.kmod", raw, KMOD_KEYS,
               set(KMOD_KEYS) - {"vars", "unavailable", "copy_opsys", "sources"})
    part = KmodPart(**t)
    if part.option not in {o.name for o in options}:
        raise RecipeError(f"{recipe.toml_path}: key 'pkgsrc.kmod.option' is {part.option!r}, "
                          "which is not one of the [[pkgsrc.options]]")
    if set(part.check) != set(part.sysdir):
        raise RecipeError(f"{recipe.toml_path}: 'pkgsrc.kmod' needs a check file for every OPSYS in sysdir")
    for opsys in part.sysdir:
        built = opsys in part.build and opsys in part.install
        if built == (opsys in part.unavailable):
            raise RecipeError(f"{recipe.toml_path}: 'pkgsrc.kmod' needs, for {opsys}, either build and "
                              "install commands or an 'unavailable' message, not both")
    return part


def kmod_sources(recipe: Recipe, kmod: KmodPart, root: Path) -> dict[str, bytes]:
    """files/kmod-src/<dest>/<file> for each [pkgsrc.kmod] sources entry (our module's own C code)."""
    out = {}
    for dest, folder in sorted(kmod.sources.items()):
        src = root / folder
        if not src.is_dir():
            raise RecipeError(f"{recipe.toml_path}: key 'pkgsrc.kmod.sources' names {folder}, which is not a "
                              f"folder of the repository")
        for path in sorted(p for p in src.iterdir() if p.is_file()):
            out[f"files/kmod-src/{dest}/{path.name}"] = path.read_bytes()
    return out


def example_files(recipe: Recipe) -> list[ExampleFile]:
    """[pkgsrc.examples]: what post-install copies; a file the package phase makes 0600 gets -m 600."""
    raw = recipe.pkgsrc.get("examples", {})
    if not raw:
        return []
    t = _typed(recipe, "pkgsrc.examples", raw, EXAMPLES_KEYS, set(EXAMPLES_KEYS))
    out = []
    for source in t["files"]:
        example = ExampleFile(source, t["dir"].strip("/"), "")
        mode = file_mode(recipe, example.path, 0o644)
        out.append(ExampleFile(source, example.dest_dir, "" if mode == 0o644 else f"{mode:o}"))
    return out


def split_distname(name: str) -> tuple[str, str]:
    """(DISTNAME, EXTRACT_SUFX) of a distfile name; the suffix is "" for pkgsrc's default .tar.gz."""
    suffix = archive_suffix(name)
    if suffix is None:
        raise RecipeError(f"distfile {name}: unknown archive suffix (known: {', '.join(ARCHIVE_SUFFIXES)})")
    return name[: -len(suffix)], "" if suffix == ".tar.gz" else suffix


def pkgname_expr(recipe: Recipe, distname: str) -> str:
    """PKGNAME as pkgsrc prefers it: derived from DISTNAME when only the name part differs."""
    if distname == recipe.pkgname:
        return ""
    base = distname.removesuffix(f"-{recipe.version}")
    if base != distname:
        return f"${{DISTNAME:S/^{base}-/{recipe.name}-/}}"
    return recipe.pkgname


def patch_split(recipe: Recipe, root: Path) -> tuple[list[Path], list[Path]]:
    """(patches for WRKSRC, kernel-tree patches), each sorted by name."""
    return split_series(recipe.patch_dir(root), recipe.kernel_patches)


def plist_texts(recipe: Recipe, env: jinja2.Environment) -> dict[str, tuple[str, list[PlistEntry]]]:
    """PLIST and each PLIST.<OPSYS>: sorted by path (ignoring a ${PLIST.x} guard), as pkglint wants."""
    out = {}
    for source in sorted(recipe.dir.glob("PLIST*")):
        if source.name != "PLIST" and not re.fullmatch(r"PLIST\.[A-Za-z]+", source.name):
            continue
        entries = sorted(parse_plist(source), key=lambda e: (e.path, e.raw))
        out[source.name] = (render(env, "PLIST.j2", lines=[e.raw for e in entries]), entries)
    if "PLIST" not in out:
        raise RecipeError(f"{recipe.plist_path}: PLIST is missing")
    return out


def _check_plist_vars(recipe: Recipe, entries: list[PlistEntry], subst: dict[str, str],
                      options: list[PkgsrcOption]) -> None:
    plist_vars = {o.plist for o in options if o.plist}
    for e in entries:
        if e.option is not None and e.option not in plist_vars:
            raise RecipeError(f"{recipe.plist_path}: ${{PLIST.{e.option}}} has no [[pkgsrc.options]] entry "
                              "with plist = true, so pkgsrc would leave it unsubstituted")
        for name in _VAR.findall(e.path):
            if name not in subst and name not in STANDARD_PLIST_VARS:
                raise RecipeError(f"{recipe.plist_path}: PLIST variable ${{{name}}} needs a value in "
                                  "[pkgsrc] plist_subst (the pkgsrc Makefile's PLIST_SUBST)")


def _check_kmod_targets(recipe: Recipe, kmod: KmodPart, kernel_patches: list[Path]) -> None:
    """Every file a kernel patch touches must be among those copied from SYSDIR, or patch would prompt."""
    for p in kernel_patches:
        for target in patch_targets(p):
            if target not in kmod.copy:
                raise RecipeError(f"{recipe.toml_path}: {p.name} patches {target}, which is not in "
                                  "'pkgsrc.kmod.copy' (the kernel files copied from SYSDIR)")


def _distinfo_text(recipe: Recipe, patches: list[Path]) -> str:
    info = read_distinfo(recipe.distinfo_path)
    sums = [info.distfile(d.name) for d in recipe.distfiles]
    for s in sums:
        missing = [alg for alg in DISTFILE_ALGORITHMS if alg not in s.hashes]
        if missing:
            raise RecipeError(f"{recipe.distinfo_path}: {s.name} has no {' or '.join(missing)} line "
                              f"(run: buildtool makesum {recipe.name})")
    return format_distinfo(sums, {p.name: patch_sha1(p) for p in patches})


def _buildlink3_users(recipe: Recipe, products: list[Recipe]) -> bool:
    """Does another exported package include this one's buildlink3.mk?"""
    wanted = recipe.pkgpath
    for other in products:
        paths = list(other.pkgsrc.get("buildlink3", []))
        paths += [p for o in pkgsrc_options(other) for p in o.buildlink3]
        if other is not recipe and wanted in paths:
            return True
    return False


def render_package(recipe: Recipe, products: list[Recipe], root: Path) -> dict[str, bytes]:
    """Every file of one pkgsrc package directory: relative path -> content."""
    if len(recipe.distfiles) != 1:
        raise RecipeError(f"{recipe.toml_path}: the pkgsrc export handles exactly one [[distfile]], "
                          f"this recipe has {len(recipe.distfiles)}")
    env = _env()
    spec = recipe.pkgsrc
    if spec.get("configure", "none") not in ("gnu", "plain", "none"):
        raise RecipeError(f"{recipe.toml_path}: key 'pkgsrc.configure' must be 'gnu', 'plain' or 'none'")
    distname, sufx = split_distname(recipe.distfiles[0].name)
    options = pkgsrc_options(recipe)
    kmod = kmod_part(recipe, options)
    patches, kernel_patches = patch_split(recipe, root)
    if kernel_patches and kmod is None:
        raise RecipeError(f"{recipe.toml_path}: kernel patches {', '.join(p.name for p in kernel_patches)} "
                          "need a [pkgsrc.kmod] table to be applied by the pkgsrc package")
    if kmod is not None:
        _check_kmod_targets(recipe, kmod, kernel_patches)
    subst = {**recipe.plist_vars, **spec.get("plist_subst", {})}
    plists = plist_texts(recipe, env)
    for _, entries in plists.values():
        _check_plist_vars(recipe, entries, subst, options)
    examples = example_files(recipe)
    listed = {e.path for _, entries in plists.values() for e in entries}
    for example in examples:
        if example.path not in listed:
            raise RecipeError(f"{recipe.toml_path}: [pkgsrc.examples] installs {example.path}, "
                              "which no PLIST lists")
    files: dict[str, str | bytes] = {
        "Makefile": render(
            env, "Makefile.j2", distname=distname, pkgname_expr=pkgname_expr(recipe, distname),
            categories=recipe.pkgsrc_categories, master_sites=recipe.distfiles[0].sites,
            extract_sufx=sufx,
            maintainer=recipe.maintainer, homepage=recipe.homepage, comment=recipe.comment,
            license=recipe.license, wrksrc="" if recipe.wrksrc == distname else recipe.wrksrc,
            configure=spec.get("configure", "none"), use_tools=spec.get("use_tools", []),
            configure_args=spec.get("configure_args", []),
            configure_args_opsys=spec.get("configure_args_opsys", {}), make_flags=spec.get("make_flags", []),
            install_make_flags=spec.get("install_make_flags", []),
            destdir_varname=spec.get("destdir_varname", ""),
            check_portability_skip=spec.get("check_portability_skip", {}), plist_subst=subst, options=options,
            examples=examples, example_dirs=sorted({e.dest_dir for e in examples}),
            buildlink3=spec.get("buildlink3", [])),
        "DESCR": render(env, "DESCR.j2", description=recipe.description),
        "distinfo": _distinfo_text(recipe, patches),
    }
    files.update({name: text for name, (text, _) in plists.items()})
    if recipe.message.strip():
        files["MESSAGE"] = render(env, "MESSAGE.j2", message=recipe.message)
    if options:
        files["options.mk"] = render(
            env, "options.mk.j2", name=recipe.name, options=options, kmod=kmod,
            suggested=[o.name for o in options if o.default and not o.default_opsys],
            plist_vars=[o.plist for o in options if o.plist],
            kmod_patches=[f"${{FILESDIR}}/kmod/{p.name}" for p in kernel_patches])
    if _buildlink3_users(recipe, products):
        files["buildlink3.mk"] = render(
            env, "buildlink3.mk.j2", name=recipe.name, version=recipe.version, pkgpath=recipe.pkgpath,
            guard=re.sub(r"[^A-Z0-9]", "_", recipe.name.upper()) + "_BUILDLINK3_MK")
    for p in patches:
        files[f"patches/{p.name}"] = p.read_bytes()
    for p in kernel_patches:
        files[f"files/kmod/{p.name}"] = p.read_bytes()
    if kmod is not None:
        files.update(kmod_sources(recipe, kmod, root))
    return {name: (data.encode() if isinstance(data, str) else data) for name, data in files.items()}


def _remove_stale(pkgdir: Path, keep: set[str]) -> None:
    """Delete files a previous export wrote that this one does not (a renamed patch, a dropped MESSAGE)."""
    for p in sorted(pkgdir.rglob("*"), reverse=True):
        rel = p.relative_to(pkgdir).as_posix()
        if p.is_file() and rel not in keep:
            p.unlink()
        elif p.is_dir() and not any(p.iterdir()):
            p.rmdir()


def check_patch_targets(recipe: Recipe, root: Path, distdir: Path) -> None:
    """Refuse a WRKSRC patch whose target is not in the distfile: pkgsrc's patch stage would stop on
    patch's "File to patch:" prompt and wait forever. Checked when the distfile is in distdir."""
    distfile = distdir / recipe.distfiles[0].name
    if not distfile.is_file():
        return
    verify_distfile(distfile, read_distinfo(recipe.distinfo_path).distfile(distfile.name))
    patches, _ = patch_split(recipe, root)
    problems = patch_target_problems(patches, distfile_files(distfile, recipe.wrksrc))
    if problems:
        raise RecipeError(f"{recipe.toml_path}: patches whose target is not in {distfile.name}:\n"
                          + "\n".join(f"  {p}" for p in problems))


def export(recipes: dict[str, Recipe], layout: Layout, dest: Path) -> list[Path]:
    """Render every product's package directory under dest/<category>/<name>/; return the files' paths.

    All directories are rendered and checked before anything is written, so an error leaves dest untouched.
    """
    products = exported_recipes(recipes, layout)
    if not products:
        raise RecipeError(f"{layout.root}: no packaged top-level recipes to export")
    rendered = {r.pkgpath: render_package(r, products, layout.root) for r in products}
    for r in products:
        check_patch_targets(r, layout.root, layout.distdir)
    written = []
    for path, files in rendered.items():
        pkgdir = dest / path
        for name, data in sorted(files.items()):
            write_if_changed(pkgdir / name, data, mode=0o644)
            written.append(pkgdir / name)
        _remove_stale(pkgdir, set(files))
    return written
