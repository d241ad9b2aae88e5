"""Recipes: one directory per package with recipe.toml, distinfo, PLIST (and DESCR text in the TOML).

The schema is one table (FIELDS): every key a recipe may hold, its type, whether it is required and what it
means. Loading, validation and the error messages all come from that table, so they cannot drift.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import RecipeError, UsageError

# Where recipes live, relative to the repository root. The two products sit at the top level; what they
# depend on or are tested against sits under deps/.
RECIPE_DIRS = (".", "deps")


@dataclass(frozen=True)
class Field:
    section: str
    key: str
    type: type | tuple[type, ...]
    required: bool
    help: str
    default: Any = None


FIELDS: tuple[Field, ...] = (
    Field("package", "name", str, True, "package name (PKGNAME without version)"),
    Field("package", "version", str, True, "upstream version"),
    Field("package", "comment", str, True, "one-line summary (COMMENT)"),
    Field("package", "description", str, True, "long description (DESCR)"),
    Field("package", "homepage", str, True, "upstream home page (HOMEPAGE)"),
    Field("package", "license", str, True, "pkgsrc license name(s) (LICENSE)"),
    Field("package", "categories", list, False, "pkgsrc categories", ["net"]),
    Field("package", "maintainer", str, False, "MAINTAINER", "pkgsrc-users@NetBSD.org"),
    Field("package", "depends", list, False, "names of recipes built (and staged) before this one", []),
    Field("package", "message", str, False, "text users must read after install (MESSAGE)", ""),
    Field("package", "packaged", bool, False, "make a binary package of it (false: build-only dependency)",
          True),
    Field("distfile", "name", str, True, "distfile name as upstream publishes it"),
    Field("distfile", "sites", list, True, "master sites in order (directory URLs ending in /)"),
    Field("distfile", "debian", dict, False,
          "Debian source archive mirror: {source, version, file} (file = the .orig tarball name)", None),
    Field("build", "wrksrc", str, True, "directory the distfile extracts to (WRKSRC)"),
    Field("build", "tools", list, False, "host programs the build runs (checked before building)", []),
    Field("build", "env", dict, False, "environment for every build command (values are templates)", {}),
    Field("build", "configure", list, False, "configure commands: a list of argv lists (templates)", []),
    Field("build", "build", list, False, "build commands: a list of argv lists (templates)", []),
    Field("build", "install", list, False, "install-into-stage commands: a list of argv lists", []),
    Field("build", "smoke", list, False, "commands run against the stage after install to prove it works",
          []),
    Field("plist", "modes", dict, False, "file (relative to PREFIX) -> octal mode, e.g. secrets 0600", {}),
    Field("plist", "vars", dict, False, "extra PLIST variables", {}),
    Field("kmod", "profile_patches", str, False,
          "glob of this package's patches applied to the kernel tree instead of the source tree", ""),
    Field("kmod", "mppe", str, False,
          "which ppp_mppe the kmod phase builds: 'ours' (kmod/mppe: portable core + Linux glue) or 'stock' "
          "(the kernel's own ppp_mppe.c, kept as the peer for tests)", "ours"),
    Field("kmod", "modules", dict, False,
          "the kernel modules the kmod phase builds, without suffix, by kernel family: "
          "{linux = [names], netbsd = [names], ...}; the first is the one a NetBSD PLIST names", {}),
    # What only the exported pkgsrc package directory needs (values are Makefile text, used as written).
    Field("pkgsrc", "configure", str, False, "'gnu' (GNU_CONFIGURE), 'plain' (HAS_CONFIGURE) or 'none'",
          "none"),
    Field("pkgsrc", "configure_args", list, False, "CONFIGURE_ARGS", []),
    Field("pkgsrc", "configure_args_opsys", dict, False,
          "CONFIGURE_ARGS for one OPSYS only: {OPSYS = [args]}", {}),
    Field("pkgsrc", "make_flags", list, False, "MAKE_FLAGS", []),
    Field("pkgsrc", "install_make_flags", list, False, "INSTALL_MAKE_FLAGS", []),
    Field("pkgsrc", "check_portability_skip", dict, False,
          "CHECK_PORTABILITY_SKIP: file of WRKSRC -> why pkgsrc's portability check may skip it", {}),
    Field("pkgsrc", "destdir_varname", str, False,
          "DESTDIR_VARNAME: the make variable upstream's install uses as the staging root, when it is not "
          "DESTDIR", ""),
    Field("pkgsrc", "use_tools", list, False, "USE_TOOLS", []),
    Field("pkgsrc", "buildlink3", list, False,
          "pkgsrc paths whose buildlink3.mk is included, e.g. security/openssl", []),
    Field("pkgsrc", "plist_subst", dict, False, "PLIST_SUBST: PLIST variable -> Makefile value", {}),
    Field("pkgsrc", "examples", dict, False,
          "example files the Makefile's post-install installs: {dir = under PREFIX, files = [WRKSRC paths]}",
          {}),
    Field("pkgsrc", "options", list, False,
          "options.mk: [[pkgsrc.options]] tables {name, default, help, configure_args, configure_args_off, "
          "buildlink3, plist (PLIST_VARS name), default_opsys (default only on these OPSYS), "
          "default_why (comment in options.mk saying why the default is what it is)}", []),
    Field("pkgsrc", "kmod", dict, False,
          "kernel-module part: {option, sysdir = {OPSYS = dir}, check = {OPSYS = file under SYSDIR}, "
          "copy = [kernel-tree files], build = {OPSYS = [commands]}, install = {OPSYS = [commands]}, "
          "unavailable = {OPSYS = message}, copy_opsys = [OPSYS that copy and patch kernel files], "
          "sources = {dest under files/kmod-src = repository folder}}", {}),
)

SECTIONS = {f.section for f in FIELDS}
ARRAY_SECTIONS = {"distfile"}  # [[distfile]] is an array of tables


@dataclass
class DebianMirror:
    source: str
    version: str
    file: str


@dataclass
class Distfile:
    name: str
    sites: list[str]
    debian: DebianMirror | None = None


@dataclass
class Recipe:
    name: str
    version: str
    comment: str
    description: str
    homepage: str
    license: str
    dir: Path
    categories: list[str] = field(default_factory=list)
    maintainer: str = ""
    depends: list[str] = field(default_factory=list)
    message: str = ""
    packaged: bool = True
    distfiles: list[Distfile] = field(default_factory=list)
    wrksrc: str = ""
    tools: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    configure: list[list[str]] = field(default_factory=list)
    build: list[list[str]] = field(default_factory=list)
    install: list[list[str]] = field(default_factory=list)
    smoke: list[list[str]] = field(default_factory=list)
    plist_modes: dict[str, str] = field(default_factory=dict)
    plist_vars: dict[str, str] = field(default_factory=dict)
    kernel_patches: str = ""
    kernel_mppe: str = "ours"  # [kmod] mppe: "ours" or "stock"
    kernel_modules: dict[str, tuple[str, ...]] = field(default_factory=dict)  # [kmod] modules by family
    pkgsrc: dict[str, Any] = field(default_factory=dict)  # [pkgsrc] values by key (see FIELDS)

    @property
    def pkgname(self) -> str:
        return f"{self.name}-{self.version}"

    @property
    def pkgsrc_categories(self) -> list[str]:
        """CATEGORIES as the pkgsrc Makefile sets them (net when the recipe names none)."""
        return self.categories or ["net"]

    @property
    def pkgpath(self) -> str:
        """PKGPATH: <first category>/<name>, where pkgsrc keeps the package (net/ppp-mppe)."""
        return f"{self.pkgsrc_categories[0]}/{self.name}"

    @property
    def toml_path(self) -> Path:
        return self.dir / "recipe.toml"

    @property
    def distinfo_path(self) -> Path:
        return self.dir / "distinfo"

    @property
    def plist_path(self) -> Path:
        return self.dir / "PLIST"

    def patch_dir(self, root: Path) -> Path:
        return root / "patches" / self.name

    def modules_for(self, family: str) -> tuple[str, ...]:
        """The kernel modules this recipe builds for a kernel family ([kmod] modules)."""
        if family not in self.kernel_modules:
            known = ", ".join(sorted(self.kernel_modules)) or "none"
            raise RecipeError(f"{self.toml_path}: key 'kmod.modules' names no modules for the kernel family "
                              f"{family!r} (it has: {known}); add e.g. {family} = [\"ppp_mppe\"] there")
        return self.kernel_modules[family]


def _check_type(path: Path, where: str, value: Any, f: Field) -> Any:
    if not isinstance(value, f.type):
        want = f.type.__name__ if isinstance(f.type, type) else "/".join(t.__name__ for t in f.type)
        raise RecipeError(f"{path}: key '{where}' must be a {want} ({f.help}), got {type(value).__name__}")
    if f.type is list and f.key in ("configure", "build", "install", "smoke"):
        for i, cmd in enumerate(value):
            if not (isinstance(cmd, list) and cmd and all(isinstance(a, str) for a in cmd)):
                raise RecipeError(f"{path}: key '{where}[{i}]' must be a non-empty list of strings (argv)")
    return value


def _section_values(path: Path, section: str, table: dict[str, Any]) -> dict[str, Any]:
    """Validate one table against FIELDS: unknown keys and missing required keys are errors."""
    known = {f.key: f for f in FIELDS if f.section == section}
    for key in table:
        if key not in known:
            raise RecipeError(
                f"{path}: unknown key '{section}.{key}' "
                f"(known keys in [{section}]: {', '.join(sorted(known))})")
    values = {}
    for key, f in known.items():
        if key in table:
            values[key] = _check_type(path, f"{section}.{key}", table[key], f)
        elif f.required:
            raise RecipeError(f"{path}: missing required key '{section}.{key}' ({f.help})")
        else:
            values[key] = f.default.copy() if isinstance(f.default, list | dict) else f.default
    return values


MPPE_CHOICES = ("ours", "stock")


def _mppe_choice(path: Path, value: str) -> str:
    if value not in MPPE_CHOICES:
        raise RecipeError(f"{path}: key 'kmod.mppe' is {value!r}; expected one of {', '.join(MPPE_CHOICES)}")
    return value


def _module_names(path: Path, raw: dict) -> dict[str, tuple[str, ...]]:
    for family, names in raw.items():
        if not (isinstance(names, list) and names and all(isinstance(n, str) and n for n in names)):
            raise RecipeError(f"{path}: key 'kmod.modules.{family}' must be a non-empty list of module "
                              f"names, got {names!r}")
    return {family: tuple(names) for family, names in raw.items()}


def _debian_mirror(path: Path, raw: dict | None) -> DebianMirror | None:
    if raw is None:
        return None
    keys = {"source", "version", "file"}
    if set(raw) != keys:
        raise RecipeError(f"{path}: key 'distfile.debian' needs exactly {sorted(keys)}, got {sorted(raw)}")
    return DebianMirror(**raw)


def load_recipe(recipe_dir: Path) -> Recipe:
    path = recipe_dir / "recipe.toml"
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise RecipeError(f"{path}: recipe file is missing") from None
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"{path}: not valid TOML: {e}") from None
    for section in data:
        if section not in SECTIONS:
            raise RecipeError(f"{path}: unknown section [{section}] (known: {', '.join(sorted(SECTIONS))})")
    pkg = _section_values(path, "package", data.get("package", {}))
    raw_distfiles = data.get("distfile", [])
    if not isinstance(raw_distfiles, list) or not raw_distfiles:
        raise RecipeError(f"{path}: missing required key 'distfile' (at least one [[distfile]] table)")
    distfiles = []
    for raw in raw_distfiles:
        d = _section_values(path, "distfile", raw)
        for site in d["sites"]:
            if not (isinstance(site, str) and site.endswith("/")):
                raise RecipeError(
                    f"{path}: key 'distfile.sites' entries must be URLs ending in '/': {site!r}")
        distfiles.append(Distfile(d["name"], d["sites"], _debian_mirror(path, d["debian"])))
    build = _section_values(path, "build", data.get("build", {}))
    plist = _section_values(path, "plist", data.get("plist", {}))
    kmod = _section_values(path, "kmod", data.get("kmod", {}))
    pkgsrc = _section_values(path, "pkgsrc", data.get("pkgsrc", {}))
    if pkg["name"] != recipe_dir.name:
        raise RecipeError(
            f"{path}: key 'package.name' is {pkg['name']!r} but the directory is {recipe_dir.name!r}")
    return Recipe(
        name=pkg["name"], version=pkg["version"], comment=pkg["comment"], description=pkg["description"],
        homepage=pkg["homepage"], license=pkg["license"], dir=recipe_dir, categories=pkg["categories"],
        maintainer=pkg["maintainer"], depends=pkg["depends"], message=pkg["message"],
        packaged=pkg["packaged"], distfiles=distfiles, wrksrc=build["wrksrc"], tools=build["tools"],
        env=build["env"], configure=build["configure"], build=build["build"], install=build["install"],
        smoke=build["smoke"], plist_modes=plist["modes"], plist_vars=plist["vars"],
        kernel_patches=kmod["profile_patches"], kernel_mppe=_mppe_choice(path, kmod["mppe"]),
        kernel_modules=_module_names(path, kmod["modules"]), pkgsrc=pkgsrc,
    )


def recipe_dirs(root: Path) -> dict[str, Path]:
    """All recipe directories under the repository root, by package name."""
    found = {}
    for sub in RECIPE_DIRS:
        base = root / sub
        for toml in sorted(base.glob("*/recipe.toml")):
            found[toml.parent.name] = toml.parent
    return found


def load_all(root: Path) -> dict[str, Recipe]:
    return {name: load_recipe(d) for name, d in recipe_dirs(root).items()}


def select(recipes: dict[str, Recipe], names: list[str]) -> list[Recipe]:
    """The named recipes plus everything they depend on, in build order (dependencies first)."""
    for n in names:
        if n not in recipes:
            raise UsageError(f"unknown package {n!r} (known: {', '.join(sorted(recipes))})")
    wanted = names or sorted(recipes)
    order: list[Recipe] = []
    visiting: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name not in recipes:
            raise RecipeError(f"{recipes[chain[-1]].toml_path}: depends on unknown package {name!r}")
        if any(r.name == name for r in order):
            return
        if name in visiting:
            raise RecipeError(f"dependency cycle: {' -> '.join((*chain, name))}")
        visiting.add(name)
        for dep in recipes[name].depends:
            visit(dep, (*chain, name))
        visiting.discard(name)
        order.append(recipes[name])

    for n in wanted:
        visit(n, ())
    return order
