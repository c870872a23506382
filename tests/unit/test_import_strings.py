"""The modules named as strings (lazy export tables, the category base table), which no import checker sees."""

from __future__ import annotations

import importlib

import pytest

import pepperpy
import pepperpy.plugins
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
