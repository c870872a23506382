"""``pepperpy cooldown``: the install cooldown and its per-plugin exceptions, in ``<home>/install.json``.

PepperPy's installs ignore releases younger than the cooldown (pepperpy/_cooldown.py). ``set`` saves it,
``allow`` lets one plugin take named packages at any age (uv's ``--exclude-newer-package``), ``remove`` takes
that back, ``show`` prints what is in force. ``PEPPERPY_INSTALL_COOLDOWN`` still wins over the file.
"""

from __future__ import annotations

import click

from pepperpy.cli._common import manager, print_table
from pepperpy.cli.settings import _errors, split_id


@click.group(short_help="Install cooldown; packages a plugin may take at any age.")
def cooldown() -> None:
    """PepperPy's installs ignore releases younger than the cooldown (7 days by default), so a release withdrawn
    within days never reaches you. Saved in <home>/install.json; PEPPERPY_INSTALL_COOLDOWN wins over it."""


@cooldown.command("show", short_help="The cooldown in force and each plugin's exceptions.")
def cooldown_show() -> None:
    """The cooldown in force (and where it comes from), and the packages each plugin may take at any age."""
    from pepperpy import _cooldown

    home = manager().home
    with _errors():
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


@cooldown.command("set", short_help="Save the cooldown: 7 (days), 7d, 12h, 2w; 0 turns it off.")
@click.argument("duration")
def cooldown_set(duration: str) -> None:
    """Save the cooldown for every install: a number of days, or 7d, 12h, 2w; 0 turns it off."""
    from pepperpy import _cooldown

    home = manager().home
    with _errors():
        path = _cooldown.save_cooldown(home, duration)
        in_force = _cooldown.cooldown_for(home, "")
    click.echo(f"saved the cooldown {duration.strip()} in {path}; in force: {in_force.describe()}")


@cooldown.command("allow", short_help="Let PLUGIN install PACKAGEs at any age (for that plugin only).")
@click.argument("plugin")
@click.argument("packages", nargs=-1, required=True)
def cooldown_allow(plugin: str, packages: tuple[str, ...]) -> None:
    """Let PLUGIN ('category/name', or a bare llm name) install releases of PACKAGES of any age; every other
    plugin, and PLUGIN's other packages, keep the cooldown."""
    from pepperpy import _cooldown

    plugin_id = "/".join(split_id(plugin))
    home = manager().home
    with _errors():
        listed = _cooldown.allow_newer(home, plugin_id, packages)
    click.echo(f"{plugin_id} may install newer releases of {', '.join(listed)} ({_cooldown.settings_path(home)})")


@cooldown.command("remove", short_help="Take back PLUGIN's exceptions: the PACKAGEs named, or all.")
@click.argument("plugin")
@click.argument("packages", nargs=-1)
def cooldown_remove(plugin: str, packages: tuple[str, ...]) -> None:
    """PLUGIN's PACKAGES (or, none named, all its packages) keep the cooldown again."""
    from pepperpy import _cooldown

    plugin_id = "/".join(split_id(plugin))
    home = manager().home
    with _errors():
        left = _cooldown.disallow_newer(home, plugin_id, packages)
    still = f"; it may still install newer {', '.join(left)}" if left else ""
    click.echo(f"removed {', '.join(packages) or 'every exception'} of {plugin_id}{still}")


__all__ = ["cooldown"]
