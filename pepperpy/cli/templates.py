"""``pepperpy templates``: save, list, show, edit and remove the templates of ``<home>/templates`` (pepperpy/templates.py).

Use one with ``pepperpy -t NAME -P variable value "..."``; save one from a chat line with ``--save NAME``.
"""

from __future__ import annotations

import json
from typing import Any

import click

from pepperpy.cli._common import LazyGroup, fail, manager, parse_key_values, print_table, shorten

SKELETON = """\
# A PepperPy template: every key is optional. $name is a variable (${name} inside words), $$ a dollar sign;
# $input is the prompt given on the command line. See README.md, "Templates".
system:
prompt:
# defaults: {name: value}
# options: {temperature: 0}
# provider: openai
# model: gpt-4o-mini
# schema: {type: object, properties: {answer: {type: string}}, required: [answer]}
"""


@click.group(cls=LazyGroup)
def templates() -> None:
    """Saved prompt templates (<home>/templates/NAME.yaml): pepperpy -t NAME -P variable value "..."."""


@templates.command("save")
@click.argument("name")
@click.option("-s", "--system", help="The system prompt ($variables allowed).")
@click.option("--prompt", help="The prompt ($variables allowed; $input is the command line's prompt).")
@click.option("-p", "--provider", help="The llm plugin, alias or fallback list it uses (-p of chat).")
@click.option("-m", "--model", help="The provider's model option.")
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE", help="A generation option (repeatable).")
@click.option("-d", "--default", "defaults", multiple=True, nargs=2, metavar="NAME VALUE",
              help="A default value for $NAME (repeatable).")
@click.option("--schema", help="A JSON schema of the answer (an object): structured output.")
@click.option("--force", is_flag=True, help="Replace a saved template of that name.")
def save(
    name: str, system: str | None, prompt: str | None, provider: str | None, model: str | None,
    options: tuple[str, ...], defaults: tuple[tuple[str, str], ...], schema: str | None, force: bool,
) -> None:
    """Save template NAME."""
    from pepperpy.templates import Template, save_template, template_path

    home = manager().home
    path = template_path(home, name)
    if path.exists() and not force:
        fail(f"template {name} exists ({path}); pass --force to replace it, or edit it: pepperpy templates edit {name}")
    if system is None and prompt is None:
        raise click.UsageError("give the template a --prompt and/or a --system prompt")
    saved = Template(name=name, path=path, system=system, prompt=prompt, defaults=dict(defaults),
                     options=parse_key_values(options, "-o"), provider=provider, model=model,
                     schema=_schema(schema))
    click.echo(f"Saved template {name} to {save_template(home, saved)}")


def _schema(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        schema = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON ({exc})", param_hint="--schema") from None
    if not isinstance(schema, dict):
        raise click.BadParameter("a JSON schema is an object: {\"type\": \"object\", \"properties\": {...}}",
                                 param_hint="--schema")
    return schema


@templates.command("list")
def list_() -> None:
    """The saved templates: name, provider and model, and the start of the prompt."""
    from pepperpy.errors import TemplateError
    from pepperpy.templates import load_template, template_names, templates_folder

    home = manager().home
    names = template_names(home)
    if not names:
        click.echo(f"No templates in {templates_folder(home)} yet; save one with pepperpy templates save NAME "
                   "--prompt \"...\" (or pepperpy --save NAME ...).")
        return
    rows = []
    for name in names:
        try:
            template = load_template(home, name)
        except TemplateError as exc:
            rows.append([name, "", f"broken: {exc}"])
            continue
        uses = " ".join(filter(None, [template.provider, template.model]))
        rows.append([name, uses, shorten(template.prompt or f"(system) {template.system or ''}", 200)])
    print_table(["NAME", "PROVIDER", "PROMPT"], rows, {"PROMPT": 80})


@templates.command("show")
@click.argument("name")
def show(name: str) -> None:
    """Print template NAME's file."""
    from pepperpy.templates import load_template

    template = load_template(manager().home, name)  # a broken one is reported, with its file
    click.echo(template.path.read_text(encoding="utf-8").rstrip("\n"))


@templates.command("edit")
@click.argument("name")
def edit(name: str) -> None:
    """Open template NAME in $EDITOR (a new one starts from a skeleton); it is checked when the editor exits."""
    from pepperpy._atomic import atomic_write
    from pepperpy.templates import load_template, template_path

    home = manager().home
    path = template_path(home, name)
    if not path.exists():
        atomic_write(path, SKELETON.encode("utf-8"))
    click.edit(filename=str(path))
    template = load_template(home, name)  # a TemplateError names the file and the problem; the file is kept
    click.echo(f"Template {name} ({path}): variables {', '.join('$' + v for v in template.variables) or 'none'}")


@templates.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Delete template NAME."""
    from pepperpy.templates import PARSED, template_names, template_path

    home = manager().home
    path = template_path(home, name)
    if not path.exists():
        saved = template_names(home)
        fail(f"no template {name} in {path.parent}" + (f" (saved: {', '.join(saved)})" if saved else ""))
    path.unlink()
    (path.parent / PARSED / f"{name}.json").unlink(missing_ok=True)
    click.echo(f"Removed template {name} ({path})")


__all__ = ["templates"]
