"""``pepperpy keys``, ``pepperpy aliases`` and ``pepperpy options``: what the user saves in PepperPy's home.

- keys: ``<home>/keys.json`` (names are listed, values never shown);
- aliases: ``<home>/aliases.json`` (pepperpy/_aliases.py);
- options: default options per plugin or alias in ``<home>/options.json`` (pepperpy/_user_options.py).
"""

from __future__ import annotations

import difflib
import getpass
import json
import re
import sys
from typing import TYPE_CHECKING, Any

import click

from pepperpy._redact import is_secret_option
from pepperpy.cli._common import fail, manager, parse_key_values, print_table, stop_on_error
from pepperpy.errors import PepperPyError, PluginNotFoundError

if TYPE_CHECKING:
    from pepperpy.plugin_manager import PluginManager

_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
HIDDEN = "<hidden>"
ISOLATION = "isolation"  # a reserved key, not a class option: where the plugin runs (pepperpy/_isolation)
ISOLATION_MODES = ("process", "inprocess")


def split_id(text: str, default_category: str = "llm") -> tuple[str, str]:
    """``category/name`` -> (category, name); a bare ``name`` is ``default_category/name``."""
    category, _, name = text.rpartition("/")
    category = category or default_category
    if not name or "/" in category:
        fail(f"{text!r} is not a plugin: write 'category/name' (for example llm/openai) or a bare llm name")
    return category, name


def is_key(option: str, env: dict[str, str], annotation: Any = None) -> bool:
    """True for a key (``_redact.is_secret_option``): by the option's name or declared type, or by the name of the
    variable it is read from (``env``: option -> variable, as in plugin.json)."""
    return is_secret_option(option, annotation=annotation) or is_secret_option(env.get(option, ""))


def shown(option: str, value: Any, env: dict[str, str], annotation: Any = None) -> str:
    """``value`` as JSON, or ``<hidden>`` for a key (``is_key``)."""
    return HIDDEN if is_key(option, env, annotation) else json.dumps(value)


def declared_types(m: PluginManager, category: str, name: str) -> dict[str, Any]:
    """Option -> declared type of the class behind ``category/name``, when it can be imported here now (installed,
    in-process); else ``{}``, and the option's name and variable alone tell a key."""
    from pepperpy._isolation import is_isolated

    try:
        if is_isolated(m, category, name, {}) or m.needs_install(category, name):
            return {}
        return _option_types(m.load_class(category, name))
    except PepperPyError:
        return {}


def _option_types(provider_class: type) -> dict[str, Any]:
    from pepperpy._options import declared_options

    return {option: annotation for option, (_, annotation, _) in declared_options(provider_class).items()}


def _plugin_of(m: PluginManager, category: str, name: str) -> tuple[str, dict[str, str]]:
    """The plugin id ``category/name`` stands for (itself, or the end of its alias chain) and its env mapping."""
    try:
        info, _, env, _ = m.resolve(category, name)
    except PluginNotFoundError as not_found:
        try:  # a provider class exposed by an installed distribution has no folder to resolve
            m.load_class(category, name)
        except PepperPyError:
            raise not_found from None
        return f"{category}/{name}", {}
    return info.id, dict(env)


def check_options(
    m: PluginManager, category: str, name: str, config: dict[str, Any], command: str
) -> str | None:
    """Refuse unknown, secret or invalid options for ``category/name`` (a plugin or an alias).

    ``isolation`` is a reserved key, not a class option: "process" or "inprocess". Returns None when
    the values were checked, or why they could not be checked now (they are checked when the plugin is
    first created then): it is not installed yet, or it runs in a worker process.
    """
    from pepperpy._isolation import is_isolated
    from pepperpy._options import validate_value

    plugin_id, env = _plugin_of(m, category, name)
    config = dict(config)
    if ISOLATION in config:
        _check_isolation(m, plugin_id, config.pop(ISOLATION), command)
    for option in config:
        if is_key(option, env):
            fail(_secret_refusal(plugin_id, option, env))
    if not config:
        return None
    if is_isolated(m, category, name, {}):
        return f"{plugin_id} runs in a worker process"  # its class is imported there, not here
    if m.needs_install(category, name):
        return f"{plugin_id} is not installed yet"
    provider_class = m.load_class(category, name)
    specs = provider_class.option_specs()
    annotations = _option_types(provider_class)
    for option, value in config.items():
        spec = specs.get(option)
        if spec is None:
            close = difflib.get_close_matches(option, list(specs), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"its options are: {', '.join(specs) or 'none'}"
            fail(f"{command}: {plugin_id} has no option {option!r}; {hint}")
        if is_key(option, env, annotations.get(option)):
            fail(_secret_refusal(plugin_id, option, env))
        validate_value(plugin_id, spec, value)
    return None


def _check_isolation(m: PluginManager, plugin_id: str, value: Any, command: str) -> None:
    """The reserved key ``isolation``: "process" or "inprocess", for a plugin folder (docs/plugins.md)."""
    if value not in ISOLATION_MODES:
        fail(f"{command}: isolation={json.dumps(value)} is not a valid setting for {plugin_id}; use isolation=process "
             "(a worker process with its own virtual environment) or isolation=inprocess (the default)")
    if value == "process" and plugin_id not in m.plugins:
        fail(f"{command}: {plugin_id} is a provider class without a plugin folder (an entry point's class), and a "
             "worker process loads a plugin from its folder; leave isolation out to run it in-process")


def _secret_refusal(plugin_id: str, option: str, env: dict[str, str]) -> str:
    variable = env.get(option)
    where = f"`pepperpy keys set {variable}`" if variable else f"pass {option}=... in code"
    return f"{plugin_id}: {option!r} is a key, and keys are not saved as options or alias presets; use {where}"


# -- keys ------------------------------------------------------------------------------------------


@click.group(short_help="API keys: save, list where each is set, show keys.json's path.")
def keys() -> None:
    """API keys: saved in <home>/keys.json (owner-only), or taken from the environment."""


@keys.command("set", short_help="Save a key, e.g. OPENAI_API_KEY (typed, no echo).")
@click.argument("name")
@click.option("--force", is_flag=True, help="Save it even though no plugin reads a variable of that name.")
def keys_set(name: str, force: bool) -> None:
    """Save the key NAME (e.g. OPENAI_API_KEY), typed without echo, or read as one line from stdin.

    NAME must be a variable a plugin reads (`pepperpy keys list` shows them); --force saves any other name.
    """
    from pepperpy._config import key_variables, save_key

    if not _VARIABLE.match(name):
        fail(f"{name!r} is not an environment variable name; use letters, digits and '_', as OPENAI_API_KEY")
    m = manager()
    with stop_on_error():
        known = key_variables(m)
    if name not in known and not force:
        close = difflib.get_close_matches(name, list(known), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        fail(f"no plugin reads {name}; {hint}`pepperpy keys list` shows the variables plugins read; to save it "
             f"anyway (for a plugin not found from here), run: pepperpy keys set --force {name}")
    value = getpass.getpass(f"{name}: ") if sys.stdin.isatty() else sys.stdin.readline().strip()
    if not value:
        fail(f"no key given for {name}; nothing saved")
    with stop_on_error():
        path = save_key(m.home, name, value)
    click.echo(f"saved {name} in {path}")


@keys.command("remove", short_help="Remove a saved key from keys.json.")
@click.argument("name")
def keys_remove(name: str) -> None:
    """Remove the key NAME from keys.json (the environment is left as it is)."""
    import os

    from pepperpy._config import remove_key

    with stop_on_error():
        path = remove_key(manager().home, name)
    click.echo(f"removed {name} from {path}")
    if os.environ.get(name):
        click.echo(f"note: {name} is still set in the environment, which plugins read first", err=True)


@keys.command("list", short_help="Key variables and where each is set (never a value).")
def keys_list() -> None:
    """Every key variable the plugins read, and every key in keys.json: where each is set. Never a value."""
    from pepperpy._config import key_sources, key_variables, keys_file_problem, list_key_names

    m = manager()
    problem = keys_file_problem(m.home)
    if problem:
        click.echo(f"warning: {problem}", err=True)
    with stop_on_error():
        users = key_variables(m)
        names = sorted(set(users) | set(list_key_names(m.home)))
        sources = key_sources(m.home, names)
    rows = [[name, ", ".join(sources[name]) or "not set", ", ".join(users.get(name, [])) or "-"] for name in names]
    print_table(["NAME", "SET IN", "USED BY"], rows)


@keys.command("path", short_help="Print the path of keys.json.")
def keys_path() -> None:
    """Print the path of keys.json."""
    from pepperpy._config import keys_path as path_of

    click.echo(str(path_of(manager().home)))


# -- aliases ---------------------------------------------------------------------------------------


@click.group(short_help="Other names for plugins with preset options (aliases.json).")
def aliases() -> None:
    """Other names for plugins with preset options: saved in <home>/aliases.json."""


@aliases.command("set", short_help="Make NAME another name for PLUGIN, with presets.")
@click.argument("name")
@click.argument("plugin")
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE", help="a preset option (repeatable)")
@click.option("--category", default="llm", show_default=True, help="the plugin category")
@click.option("--description", default="", help="shown by `pepperpy aliases list`")
def aliases_set(name: str, plugin: str, options: tuple[str, ...], category: str, description: str) -> None:
    """Make NAME another name for PLUGIN (a plugin or an alias) with preset options."""
    from pepperpy._aliases import save_user_alias

    config = parse_key_values(options, "-o")
    m = manager()
    with stop_on_error():
        plugins = m.discover()
        if f"{category}/{name}" in plugins or f"{category}/{name}" in m.entry_point_plugins:
            fail(f"{category}/{name} is a plugin, so an alias of that name would never be used; choose another name")
        _refuse_cycle(m, category, name, plugin)
        unchecked = check_options(m, category, plugin, config, "aliases set")
        path = save_user_alias(m.home, category, name, plugin, config, description=description)
    click.echo(f"saved the alias {category}/{name} -> {category}/{plugin} in {path}")
    if unchecked:
        click.echo(f"note: {unchecked}; its options are checked when it is first used")


def _refuse_cycle(m: PluginManager, category: str, name: str, target: str) -> None:
    path, current = [name], target
    while current not in path:
        path.append(current)
        alias = m.aliases.get(category, current)
        if alias is None:
            return
        current = alias.target
    if current == name:
        loop = " -> ".join(f"{category}/{n}" for n in [*path, current])
        fail(f"aliases set: {category}/{name} would make an alias cycle ({loop}); point it at a plugin")


@aliases.command("list", short_help="Every alias: target, presets, where it is defined.")
@click.option("--category", default=None, help="only this category")
def aliases_list(category: str | None) -> None:
    """Aliases of plugin manifests, of aliases.json and registered in code, with their target and presets."""
    m = manager()
    rows: list[list[str]] = []
    with stop_on_error():
        for info in m.list_plugins(category):
            for alias_name, alias in sorted(info.manifest.aliases.items()):
                env = {**info.manifest.env, **alias.env}
                preset = _shown_config(m, info.manifest.category, info.manifest.provider_name, alias.config, env)
                rows.append([f"{info.manifest.category}/{alias_name}", info.id, preset, str(info.path / "plugin.json")])
        user = m.aliases.user_aliases()
        for source, table in (("aliases.json", user), ("register_plugin_alias", m.aliases.registered())):
            for key, alias in sorted(table.items()):
                if category in (None, alias.category):
                    where = alias.source if source == "aliases.json" else source
                    target = f"{alias.category}/{alias.target}"
                    rows.append([key, target, _shown_config(m, alias.category, alias.name, alias.config), where])
    if not rows:
        click.echo("no aliases")
        return
    print_table(["ALIAS", "TARGET", "PRESET", "FROM"], rows)


def _shown_config(
    m: PluginManager, category: str, name: str, config: dict[str, Any], env: dict[str, str] | None = None
) -> str:
    """``key=value ...`` of options for ``category/name`` (a plugin or an alias), keys ``<hidden>``."""
    return " ".join(f"{key}={value}" for key, value in _shown_values(m, category, name, config, env)) or "-"


def _shown_values(
    m: PluginManager, category: str, name: str, config: dict[str, Any], env: dict[str, str] | None = None
) -> list[tuple[str, str]]:
    """``(option, value as JSON or <hidden>)`` of options for ``category/name`` (a plugin or an alias); ``env``
    (option -> variable) defaults to what ``category/name`` resolves to."""
    if not config:
        return []
    if env is None:
        try:
            env = _plugin_of(m, category, name)[1]
        except PepperPyError:  # an alias pointing at nothing: the option's name still tells a key
            env = {}
    types = declared_types(m, category, name)
    return [(key, shown(key, value, env, types.get(key))) for key, value in config.items()]


@aliases.command("remove", short_help="Remove an alias from aliases.json.")
@click.argument("name")
@click.option("--category", default="llm", show_default=True, help="the plugin category")
def aliases_remove(name: str, category: str) -> None:
    """Remove the alias NAME from aliases.json."""
    from pepperpy._aliases import remove_user_alias

    m = manager()
    with stop_on_error():
        path = remove_user_alias(m.home, category, name)
        left = {**m.aliases.user_aliases(), **m.aliases.registered()}
    click.echo(f"removed the alias {category}/{name} from {path}")
    for key, alias in sorted(left.items()):
        if alias.category == category and alias.target == name:
            click.echo(f"note: {key} points at {category}/{name}, which no longer exists", err=True)


# -- options ---------------------------------------------------------------------------------------


@click.group(short_help="Default options per plugin or alias (options.json).")
def options() -> None:
    """Default options per plugin or alias, saved in <home>/options.json.

    \b
    An option's value comes from the first that has it:
    explicit config > each alias's preset, then its saved options (nearest alias first)
    > the plugin's saved options > its environment variable, then keys.json
    > the manifest's config > the class default.
    """


@options.command("set", short_help="Save a default option for a plugin or alias.")
@click.argument("plugin")
@click.argument("key")
@click.argument("value")
def options_set(plugin: str, key: str, value: str) -> None:
    """Save KEY=VALUE for PLUGIN ('category/name', or a bare llm name); VALUE is JSON when it parses, else text."""
    from pepperpy._user_options import save_option

    category, name = split_id(plugin)
    parsed = parse_key_values([f"{key}={value}"], "KEY VALUE")[key]
    m = manager()
    with stop_on_error():
        m.user_options.all()  # a corrupt file is reported before anything else
        unchecked = check_options(m, category, name, {key: parsed}, "options set")
        path = save_option(m.home, f"{category}/{name}", key, parsed)
    click.echo(f"saved {category}/{name} {key}={json.dumps(parsed)} in {path}")
    if unchecked:
        click.echo(f"note: {unchecked}; {key} is checked when it is first used")


@options.command("list", short_help="The saved options, of every plugin or of one.")
@click.argument("plugin", required=False)
def options_list(plugin: str | None) -> None:
    """The saved options, of every plugin or only of PLUGIN."""
    m = manager()
    wanted = "/".join(split_id(plugin)) if plugin else None
    with stop_on_error():
        saved = m.user_options.all()
    rows = []
    for key, values in sorted(saved.items()):
        if wanted in (None, key):
            category, _, name = key.rpartition("/")
            shown_values = _shown_values(m, category, name, dict(sorted(values.items())))
            rows += [[key, option, value] for option, value in shown_values]
    if not rows:
        click.echo(f"no saved options{f' for {wanted}' if wanted else ''} ({m.user_options.path})")
        return
    print_table(["PLUGIN", "OPTION", "VALUE"], rows)


@options.command("remove", short_help="Remove one saved option of a plugin, or all.")
@click.argument("plugin")
@click.argument("key", required=False)
def options_remove(plugin: str, key: str | None) -> None:
    """Remove the saved option KEY of PLUGIN, or all of its saved options."""
    from pepperpy._user_options import remove_options

    plugin_key = "/".join(split_id(plugin))
    m = manager()
    with stop_on_error():
        path = remove_options(m.home, plugin_key, key)
    click.echo(f"removed {key or 'every option'} of {plugin_key} from {path}")


__all__ = ["aliases", "check_options", "is_key", "keys", "options", "shown", "split_id"]
