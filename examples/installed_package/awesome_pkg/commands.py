"""A subcommand of `pepperpy` (entry-point group ``pepperpy.commands``): `pepperpy awesome NAME`."""

import click


@click.command(help="Greet someone from awesome-pkg.")
@click.argument("name", default="world")
def hello(name: str) -> None:
    click.echo(f"Hello from awesome-pkg, {name}!")
