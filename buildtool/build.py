"""The build phase: configure, build and install a package into its staging DESTDIR.

Commands come from the recipe as argv lists whose items are jinja2 templates; they are rendered with the
variables of BuildContext and run without a shell, so no value is ever spliced into a shell string.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from . import hosttools
from .ccache import CompilerCache
from .errors import RecipeError
from .layout import PREFIX, Layout
from .recipe import Recipe
from .runlog import run

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False)


@dataclass
class DepInfo:
    name: str
    stage: str  # the dependency's DESTDIR
    prefix: str  # stage + PREFIX: where its include/ and lib/ are


@dataclass
class BuildContext:
    wrksrc: Path
    destdir: Path
    log_dir: Path
    jobs: int = 2
    verbose: bool = False
    progress: bool | None = None  # None: a status line on a terminal, a line every ~10 s otherwise
    prefix: str = PREFIX
    deps: dict[str, DepInfo] = field(default_factory=dict)
    prefix_map: str = ""  # -ffile-prefix-map flags (Layout.prefix_map_flags) for reproducible objects
    source_date_epoch: str = ""  # for tools that stamp dates into what they build (openssl's "built on")
    compiler_cache: CompilerCache | None = None  # None: the compilers run directly

    @classmethod
    def for_recipe(cls, recipe: Recipe, layout: Layout, jobs: int = 2, verbose: bool = False,
                   progress: bool | None = None, compiler_cache: bool = True) -> BuildContext:
        deps = {d: DepInfo(d, str(layout.stage(d)), str(layout.stage_prefix(d))) for d in recipe.depends}
        return cls(wrksrc=layout.srcdir(recipe.name) / recipe.wrksrc, destdir=layout.stage(recipe.name),
                   log_dir=layout.logs(recipe.name), jobs=jobs, verbose=verbose, progress=progress, deps=deps,
                   prefix_map=layout.prefix_map_flags(), source_date_epoch=_source_date_epoch(layout, recipe),
                   compiler_cache=CompilerCache.find(layout.cache, compiler_cache))

    def variables(self) -> dict[str, object]:
        return {"prefix": self.prefix, "destdir": str(self.destdir), "stage_prefix": str(self.stage_prefix),
                "wrksrc": str(self.wrksrc), "jobs": self.jobs, "deps": self.deps,
                "prefix_map": self.prefix_map}

    @property
    def stage_prefix(self) -> Path:
        return self.destdir / self.prefix.lstrip("/")


def _source_date_epoch(layout: Layout, recipe: Recipe) -> str:
    """The user's SOURCE_DATE_EPOCH if set, else the date of the package's own sources."""
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return os.environ["SOURCE_DATE_EPOCH"]
    recorded = layout.source_date_file(recipe.name)
    return recorded.read_text().strip() if recorded.exists() else ""


def render(recipe: Recipe, template: str, variables: dict[str, object]) -> str:
    try:
        return _ENV.from_string(template).render(**variables)
    except jinja2.TemplateError as e:
        raise RecipeError(f"{recipe.toml_path}: cannot render {template!r}: {e}") from None


def render_argv(recipe: Recipe, argv: list[str], variables: dict[str, object]) -> list[str]:
    return [render(recipe, a, variables) for a in argv]


def build(recipe: Recipe, ctx: BuildContext) -> None:
    """configure -> build -> install into a fresh stage -> smoke checks; a log per step."""
    hosttools.require(*recipe.tools)
    if ctx.destdir.exists():
        shutil.rmtree(ctx.destdir)
    ctx.destdir.mkdir(parents=True)
    variables = ctx.variables()
    env = {k: render(recipe, v, variables) for k, v in recipe.env.items()}
    if ctx.source_date_epoch:
        env.setdefault("SOURCE_DATE_EPOCH", ctx.source_date_epoch)
    if ctx.compiler_cache is not None:  # its PATH wraps the recipe's (or the inherited) PATH
        path = env.pop("PATH", os.environ.get("PATH", os.defpath))
        env.update(ctx.compiler_cache.env(path))
    for step in ("configure", "build", "install", "smoke"):
        for argv in getattr(recipe, step):
            run(render_argv(recipe, argv, variables), log=ctx.log_dir / f"{step}.log", cwd=ctx.wrksrc,
                env=env, what=f"{recipe.name} {step}", verbose=ctx.verbose, progress=ctx.progress)
    _check_stage_contained(recipe, ctx)


def _check_stage_contained(recipe: Recipe, ctx: BuildContext) -> None:
    """Everything the install wrote must be under PREFIX inside the stage (nothing else gets packaged)."""
    stray = [p for p in ctx.destdir.iterdir() if p.name != ctx.prefix.lstrip("/").split("/")[0]]
    if stray:
        raise RecipeError(f"{recipe.name}: install wrote outside {ctx.prefix} in the stage: "
                          f"{', '.join(str(p) for p in stray)}")
