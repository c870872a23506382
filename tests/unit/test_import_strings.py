"""The modules named as strings (lazy export tables, the category base table, the command table, the worker's
entry point), which no import checker sees."""

from __future__ import annotations

import importlib

import pytest

import pepperpy
import pepperpy.plugins
from pepperpy.cli import COMMANDS
from pepperpy.core import PepperpyPlugin
from pepperpy.plugin_manager import CATEGORY_BASES, GENERIC_BASE

LAZY_TABLES = [(module, name, target) for module in (pepperpy, pepperpy.plugins)
               for name, target in module._EXPORTS.items()]


@pytest.mark.parametrize(("module", "name", "target"), LAZY_TABLES,
                         ids=[f"{m.__name__}.{n}" for m, n, _ in LAZY_TABLES])
def test_every_lazy_export_is_defined_where_its_table_says(module, name, target):
    defined = getattr(importlib.import_module(target), name)
    assert getattr(module, name) is defined
    assert name in module.__all__


@pytest.mark.parametrize("spec", [*CATEGORY_BASES.values(), GENERIC_BASE])
def test_every_category_base_names_a_plugin_class(spec):
    module_name, class_name = spec.split(":")
    base = getattr(importlib.import_module(module_name), class_name)
    assert isinstance(base, type) and issubclass(base, PepperpyPlugin)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_of_the_cli_table_names_a_click_command(command):
    import click

    module_name, attribute = COMMANDS[command][0].split(":")
    assert isinstance(getattr(importlib.import_module(module_name), attribute), click.Command)


def test_the_worker_command_names_the_worker_entry_point():
    from pathlib import Path

    from pepperpy._isolation.client import worker_command

    command = worker_command(Path("python"))
    module_name = command[command.index("-m") + 1]
    assert callable(importlib.import_module(module_name).main)
