"""Rendering of generated files from the jinja2 templates under buildtool/templates/."""

from __future__ import annotations

import jinja2


def template_env(subdir: str) -> jinja2.Environment:
    """An environment for one template directory: strict about undefined names, block tags eat their line."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("buildtool", f"templates/{subdir}"),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        autoescape=False)


def render(env: jinja2.Environment, template: str, /, **context: object) -> str:
    return env.get_template(template).render(**context)
