"""A provider's options: the annotated class attributes that have a value, validated by pydantic.

``suffix: str = "!"`` is an option with a default, ``model: str = Field(description=...)``
a required one. A bare annotation (``client: httpx.AsyncClient``) is a type hint for
ordinary state; ``_names`` and ``ClassVar``s are never options. A subclass may give an
inherited option a new default with a plain assignment (``model = "gpt-4o"``).
"""

from __future__ import annotations

import copy
import difflib
import re
import sys
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, get_origin

from pydantic import TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from pepperpy._redact import is_secret_option
from pepperpy.errors import ConfigError, MissingKeyError, PluginLoadError

_CLASSVAR = re.compile(r"^(typing\.|t\.)?ClassVar\b")
_MISSING = object()


def _is_classvar(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return bool(_CLASSVAR.match(annotation))
    return annotation is ClassVar or get_origin(annotation) is ClassVar


def declared_options(cls: type) -> dict[str, tuple[type, Any, Any]]:
    """``{name: (owner class, annotation, value)}`` of every option of ``cls``, base classes first."""
    options: dict[str, tuple[type, Any, Any]] = {}
    for klass in reversed(cls.__mro__):
        annotations = klass.__dict__.get("__annotations__", {})
        for name, value in klass.__dict__.items():
            if name in options and name not in annotations:
                owner, annotation, _ = options[name]
                options[name] = (owner, annotation, value)  # a new default for an inherited option
        for name, annotation in annotations.items():
            if name.startswith("_") or _is_classvar(annotation) or name not in klass.__dict__:
                continue
            options[name] = (klass, annotation, klass.__dict__[name])
    return options


@dataclass(frozen=True)
class Option:
    name: str
    adapter: TypeAdapter[Any]
    field: FieldInfo

    @property
    def required(self) -> bool:
        return self.field.is_required()

    def default(self) -> Any:
        value = self.field.get_default(call_default_factory=True)
        return copy.deepcopy(value) if isinstance(value, (list, dict, set)) else value


def _resolve(owner: type, name: str, annotation: Any) -> Any:
    if not isinstance(annotation, str):
        return annotation
    module = sys.modules.get(owner.__module__)
    namespace = dict(vars(module)) if module is not None else {}
    try:
        return eval(annotation, namespace, dict(vars(owner)))  # noqa: S307 - a type annotation of the class
    except Exception as exc:
        raise PluginLoadError(
            f"{owner.__qualname__}: cannot resolve the type {annotation!r} of option {name!r} ({exc}); "
            "import the type at module level"
        ) from None


def build_options(cls: type) -> dict[str, Option]:
    options = {}
    for name, (owner, annotation, value) in declared_options(cls).items():
        field = value if isinstance(value, FieldInfo) else FieldInfo(default=value)
        adapter: TypeAdapter[Any] = TypeAdapter(
            Annotated[_resolve(owner, name, annotation), field], config={"arbitrary_types_allowed": True}
        )
        options[name] = Option(name, adapter, field)
    return options


def _problem(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]


def validate_value(plugin_id: str, option: Option, value: Any) -> Any:
    try:
        return option.adapter.validate_python(value)
    except ValidationError as exc:
        problems = "; ".join(_problem(e) for e in exc.errors())
        raise ConfigError(f"option {option.name!r} for {plugin_id}: {problems}") from None


def text_of(value: Any) -> str | None:
    """The text of a str or ``SecretStr`` value; None for anything else."""
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    return value if isinstance(value, str) else None


def validate_config(
    plugin_id: str, options: dict[str, Option], config: dict[str, Any], env: dict[str, str],
    saved: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Every option's validated value; unknown, missing and invalid options are one error listing each.

    ``saved``: option -> where it was saved (``pepperpy options set``) and how to remove it, told with its problem.
    """
    problems: list[str] = []
    missing_keys: list[str] = []
    saved = saved or {}
    for key in config:
        if key not in options:
            close = difflib.get_close_matches(key, list(options), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"options are: {', '.join(options) or 'none'}"
            source = f" ({saved[key]})" if key in saved else ""
            problems.append(f"unknown option {key!r} for {plugin_id}{source}; {hint}")
    values: dict[str, Any] = {}
    for name, option in options.items():
        value = config.get(name, _MISSING)
        if value is _MISSING:
            if not option.required:
                values[name] = option.default()
                continue
            variable = env.get(name)
            if variable:
                missing_keys.append(
                    f"{plugin_id} needs {name!r}: pass {name}=..., set the {variable} environment variable, "
                    f"or run `pepperpy keys set {variable}`"
                )
            else:
                problems.append(f"{plugin_id} needs the option {name!r}; pass {name}=...")
            continue
        text = text_of(value)
        if name in env and is_secret_option(name, value) and text is not None and text != text.strip():  # never shown
            problems.append(
                f"option {name!r} for {plugin_id} starts or ends with a space or a line break (a key read from a file "
                f"keeps its newline); pass it stripped ({name}=key.strip()) or save {env[name]} again without it"
            )
            continue
        try:
            values[name] = validate_value(plugin_id, option, value)
        except ConfigError as exc:
            problems.append(f"{exc} ({saved[name]})" if name in saved else str(exc))
    if problems or missing_keys:
        error = MissingKeyError if missing_keys and not problems else ConfigError
        raise error("; ".join(missing_keys + problems))
    return values


__all__ = ["Option", "build_options", "declared_options", "text_of", "validate_config", "validate_value"]
