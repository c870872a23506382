"""``pepperpy cooldown``: the install cooldown and its per-plugin exceptions, in ``<home>/install.json``.

PepperPy's installs ignore releases younger than the cooldown (pepperpy/_cooldown.py). ``set`` saves it,
``allow`` lets one plugin take named packages at any age (uv's ``--exclude-newer-package``), ``remove`` takes
that back, ``show`` prints what is in force. ``PEPPERPY_INSTALL_COOLDOWN`` still wins over the file.
"""

from __future__ import annotations

from typing import Any

import click

from pepperpy.cli._common import fail, manager, print_table, stop_on_error


@click.group(short_help="Install cooldown; packages a plugin may take at any age.")
def cooldown() -> None:
    """PepperPy's installs ignore releases younger than the cooldown (7 days by default), so a release withdrawn
    within days never reaches you. Saved in <home>/install.json; PEPPERPY_INSTALL_COOLDOWN wins over it."""


@cooldown.command("show", short_help="The cooldown in force and each plugin's exceptions.")
def cooldown_show() -> None:
    """The cooldown in force (and where it comes from), and the packages each plugin may take at any age."""
    from pepperpy import _cooldown

    home = manager().home
    with stop_on_error():
        settings = _cooldown.read_settings(home)
        in_force = _cooldown.cooldown_for(home, "")
    click.echo(f"cooldown {in_force.describe()}")
    allowed = settings.get("allow_newer") or {}
    rows = [[plugin_id, ", ".join(names)] for plugin_id, names in sorted(allowed.items())]  # type: ignore[union-attr]
    if rows:
        print_table(["PLUGIN", "ANY AGE"], rows)
    else:
        click.echo("no plugin may take newer releases (pepperpy cooldown allow PLUGIN PACKAGE)")
    click.echo(f"settings: {_cooldown.settings_path(home)}")


@cooldown.command("set", short_help="Save the cooldown: 7 (days), 7d, 12h, 2w; 0 turns it off; default.")
@click.argument("duration")
def cooldown_set(duration: str) -> None:
    """Save the cooldown for every install: a number of days, or 7d, 12h, 2w; 0 turns it off; `default` removes
    the saved one (the default, 7 days, is in force again)."""
    from pepperpy import _cooldown

    home = manager().home
    with stop_on_error():
        if duration.strip().lower() == "default":
            path = _cooldown.forget_cooldown(home)
            saved = f"removed the saved cooldown from {path}"
        else:
            _checked_duration(duration)
            path = _cooldown.save_cooldown(home, duration, "the argument DURATION")
            saved = f"saved the cooldown {duration.strip()} in {path}"
        in_force = _cooldown.cooldown_for(home, "")
    click.echo(f"{saved}; in force: {in_force.describe()}")


@cooldown.command("allow", short_help="Let PLUGIN install PACKAGEs at any age (for that plugin only).")
@click.argument("plugin")
@click.argument("packages", nargs=-1, required=True)
@click.option("--force", is_flag=True, help="Save it for a category/name no plugin found from here has.")
def cooldown_allow(plugin: str, packages: tuple[str, ...], force: bool) -> None:
    """Let PLUGIN install releases of PACKAGES of any age; every other plugin, and PLUGIN's other packages, keep
    the cooldown. PLUGIN is category/name, or a bare name when only one category has it (as `plugins info`);
    --force saves a category/name no plugin found from here has. A package that is not among PLUGIN's
    requirements is saved with a warning (it still counts when a requirement depends on it)."""
    from pepperpy import _cooldown

    mgr = manager()
    plugin_id, requirements = _plugin(mgr, plugin, force)
    home = mgr.home
    with stop_on_error():
        listed = _cooldown.allow_newer(home, plugin_id, packages)
    click.echo(f"{plugin_id} may install newer releases of {', '.join(listed)} ({_cooldown.settings_path(home)})")
    if requirements is not None:
        from packaging.utils import canonicalize_name

        other = [p for p in packages if canonicalize_name(p) not in requirements]
        if other:
            effect = (f"its requirements: {', '.join(sorted(requirements))}; the exception counts only if one of "
                      "them depends on it") if requirements else "it requires no packages: the exception does nothing"
            click.echo(f"warning: {plugin_id} does not require {', '.join(other)} directly ({effect}); "
                       f"`pepperpy cooldown remove {plugin_id} {' '.join(other)}` takes it back", err=True)


@cooldown.command("remove", short_help="Take back PLUGIN's exceptions: the PACKAGEs named, or all.")
@click.argument("plugin")
@click.argument("packages", nargs=-1)
def cooldown_remove(plugin: str, packages: tuple[str, ...]) -> None:
    """PLUGIN's PACKAGES (or, none named, all its packages) keep the cooldown again. PLUGIN is category/name,
    or a bare name: the one plugin of that name with exceptions, else the one category that has it."""
    from pepperpy import _cooldown

    mgr = manager()
    home = mgr.home
    with stop_on_error():
        saved = _cooldown.read_settings(home).get("allow_newer") or {}
    named = [key for key in saved if key.split("/", 1)[-1] == plugin]  # type: ignore[union-attr]
    plugin_id = plugin if "/" in plugin else named[0] if len(named) == 1 else _plugin(mgr, plugin, False)[0]
    with stop_on_error():
        left = _cooldown.disallow_newer(home, plugin_id, packages)
    still = f"; it may still install newer {', '.join(left)}" if left else ""
    click.echo(f"removed {', '.join(packages) or 'every exception'} of {plugin_id}{still}")


def _checked_duration(duration: str) -> None:
    """Refuse a DURATION that is not a cooldown, naming the argument and the way back to the default."""
    from pepperpy import _cooldown
    from pepperpy.errors import ConfigError

    try:
        _cooldown.parse_duration(duration, "the argument DURATION")
    except ConfigError as exc:
        fail(f"{exc}; `pepperpy cooldown set default` goes back to the default")


def _plugin(mgr: Any, plugin: str, force: bool) -> tuple[str, set[str] | None]:
    """The id installs use for ``plugin`` (an alias is its plugin's id) and its requirement names (None: not
    known). An unknown plugin is refused with "did you mean", unless ``force`` and it is written category/name."""
    from packaging.utils import canonicalize_name

    from pepperpy.cli._plugin_ids import known_ids, resolved_id
    from pepperpy.errors import PepperPyError

    mgr.discover()
    if force and "/" in plugin and plugin not in known_ids(mgr):
        return plugin, None
    try:
        plugin_id, found = resolved_id(mgr, plugin)
    except click.ClickException as exc:
        more = f"; to save it anyway, run: pepperpy cooldown allow --force {plugin} ..." if "/" in plugin else ""
        fail(exc.format_message() + more)
    if found is None:
        return plugin_id, None
    try:
        needed = mgr.requirement_set(found)
    except PepperPyError:  # requirements that cannot be read: no warning about packages, the id still holds
        return plugin_id, None
    return plugin_id, {canonicalize_name(r.name) for r in (*needed.requirements, *needed.model_packages)}


__all__ = ["cooldown"]
