"""Saved prompt templates: ``<home>/templates/NAME.yaml``, reused by name (simonw/llm's templates).

A template is a YAML mapping; every key is optional::

    system: You review $language code. Be terse.
    prompt: "Review this, cost in $$:\\n\\n$input"    # $name or ${name}; $$ is a literal $
    defaults: {language: Python}                      # values of variables not given
    options: {temperature: 0}                         # generation options
    provider: openai                                  # the command's -p (scripts choose with with_llm)
    model: gpt-4o-mini                                # the provider's model option
    schema: {type: object, properties: {score: {type: integer}}, required: [score]}   # structured output

``$input`` is the command line's prompt; when a template's prompt does not use it, the command's prompt
follows the template's, after a blank line.

PyYAML is imported only when a template is read or written, and not even then once a template has been read
or saved: what a file parsed to is kept as JSON in ``<home>/templates/.parsed/NAME.json`` under the SHA-256 of
the file's bytes (any change to the file parses it again), because importing PyYAML costs more than the rest of
reading. So only a file changed outside ``pepperpy templates save|edit`` pays the import, on its next read.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from pepperpy.errors import TemplateError

FOLDER = "templates"
SUFFIX = ".yaml"
PARSED = ".parsed"  # <home>/templates/.parsed/NAME.json: what each file parsed to, by the hash of its bytes
INPUT = "input"  # the variable the command line's prompt fills
KEYS = ("system", "prompt", "defaults", "options", "provider", "model", "schema")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_JSON_TYPES: dict[str, type] = {"string": str, "integer": int, "number": float, "boolean": bool}


def templates_folder(home: str | Path) -> Path:
    """``<home>/templates``."""
    return Path(home) / FOLDER


def template_path(home: str | Path, name: str) -> Path:
    """``<home>/templates/NAME.yaml``; TemplateError for a name that is not a plain file name."""
    if not isinstance(name, str) or not _NAME.match(name) or name.endswith(SUFFIX):
        raise TemplateError(f"{name!r:.60} is not a template name; use letters, digits, '_', '-' and '.' "
                            "(no folders, no .yaml)")
    return templates_folder(home) / f"{name}{SUFFIX}"


def template_names(home: str | Path) -> list[str]:
    """The names of the saved templates, sorted."""
    folder = templates_folder(home)
    return sorted(p.name.removesuffix(SUFFIX) for p in folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []


@dataclass(frozen=True)
class Template:
    """A saved template: see the module docstring. ``path`` names its file in every error."""

    name: str
    path: Path
    system: str | None = None
    prompt: str | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    provider: str | None = None
    model: str | None = None
    schema: dict[str, Any] | None = None

    @property
    def variables(self) -> list[str]:
        """The ``$variables`` of its system prompt and prompt, in order of first use."""
        found: list[str] = []
        for text in (self.system, self.prompt):
            for name in string.Template(text or "").get_identifiers():
                if name not in found:
                    found.append(name)
        return found

    def render(self, params: dict[str, Any], input: str | None = None) -> tuple[str | None, str | None]:
        """``(system, prompt)`` with the variables filled from ``params``, then ``defaults``; ``input`` (the
        command's prompt) fills ``$input``, and is the prompt (or follows it) unless the prompt uses ``$input``.

        TemplateError naming the file and the variable for a variable not given or not in the template.
        """
        variables = self.variables
        for name in params:
            if name not in variables:
                raise TemplateError(self._where(f"has no variable ${name} (it uses {_listed(variables)})"
                                                + _close(name, variables) + "; check the name"), self.path, name)
        values = {**self.defaults, **{k: str(v) for k, v in params.items()}}
        if input is not None and INPUT in variables:
            values[INPUT] = input
        for name in variables:
            if name not in values:
                raise TemplateError(self._where(f"needs ${name}: {_how_to_give(name)}, or add it to defaults in "
                                                "the file"), self.path, name)
        system = string.Template(self.system).substitute(values) if self.system is not None else None
        prompt = string.Template(self.prompt).substitute(values) if self.prompt is not None else None
        if input and INPUT not in string.Template(self.prompt or "").get_identifiers():
            prompt = f"{prompt}\n\n{input}" if prompt else input
        return system, prompt

    def response_model(self) -> type[BaseModel] | None:
        """A pydantic model for ``schema`` (None without one)."""
        if self.schema is None:
            return None
        return _model_of(self.schema, _class_name(self.name), self, "schema")

    def to_yaml(self) -> str:
        """The template as its file holds it (only the keys that are set)."""
        import yaml

        data = {key: getattr(self, key) for key in KEYS if getattr(self, key) not in (None, {}, "")}
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)

    def _where(self, problem: str) -> str:
        return f"template {self.name} ({self.path}) {problem}"


def _listed(names: list[str]) -> str:
    return ", ".join(f"${n}" for n in names) if names else "no variables"


def _close(name: str, names: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, names, n=1)
    return f"; did you mean ${close[0]}?" if close else ""


def _how_to_give(name: str) -> str:
    if name == INPUT:
        return "give a prompt (pepperpy -t NAME \"...\", or from_template(..., input=...))"
    return f"pass -P {name} VALUE (or from_template(..., {name}=...))"


def _class_name(name: str) -> str:
    return "".join(word.capitalize() for word in re.split(r"[^A-Za-z0-9]+", name) if word) or "Answer"


# -- reading and writing -------------------------------------------------------------------


def load_template(home: str | Path, name: str) -> Template:
    """The template NAME of ``home``; TemplateError naming the file when it is missing or does not parse."""
    path = template_path(home, name)
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except FileNotFoundError:
        saved = template_names(home)
        hint = _close_names(name, saved)
        raise TemplateError(f"no template {name} ({path} does not exist){hint}; save one with pepperpy templates "
                            "save NAME --prompt ...", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"template {name}: cannot read {path} ({exc}); fix the file or save it again",
                            path) from None
    import hashlib

    digest = hashlib.sha256(raw).hexdigest()
    remembered = templates_folder(home) / PARSED / f"{name}.json"
    data = _remembered(remembered, digest)
    if data is not None:
        return _checked(name, path, data)
    template = parse_template(name, path, text)
    _remember(remembered, digest, _data(template))
    return template


def _remembered(path: Path, digest: str) -> dict[str, Any] | None:
    """What the template file with ``digest`` parsed to, when ``path`` remembers it; None otherwise."""
    import json

    try:
        kept = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(kept, dict) or kept.get("sha256") != digest or not isinstance(kept.get("data"), dict):
        return None
    return kept["data"]


def _data(template: Template) -> dict[str, Any]:
    return {key: getattr(template, key) for key in KEYS}


def _remember(path: Path, digest: str, data: dict[str, Any]) -> None:
    """Keep ``data`` for the next read, when JSON holds it exactly (best effort: a read-only home is fine)."""
    import json

    from pepperpy._atomic import atomic_write

    try:
        text = json.dumps({"sha256": digest, "data": data}, ensure_ascii=False)
        if json.loads(text)["data"] != data:  # YAML's dates, sets or number keys: not kept
            return
        atomic_write(path, text.encode("utf-8"))
    except (OSError, TypeError, ValueError):
        pass


def _close_names(name: str, names: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, names, n=1)
    if close:
        return f"; did you mean {close[0]}?"
    return f" (saved: {', '.join(names)})" if names else ""


def parse_template(name: str, path: Path, text: str, fix: str | None = None) -> Template:
    """A template from its YAML ``text``; TemplateError naming ``path``, the problem and ``fix`` (what to do;
    by default, to edit the file)."""
    import yaml

    fix = fix or f"fix it with pepperpy templates edit {name}"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc)
        began, found = getattr(exc, "context_mark", None), getattr(exc, "problem_mark", None)
        # where the construct began (an unclosed quote) when PyYAML knows it, else where it found the problem
        mark = began or found
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        if began is not None:
            problem = f"{exc.context}: {problem}" + (f" at line {found.line + 1}" if found is not None else "")
        raise TemplateError(f"template {name}: {path} is not valid YAML{where} ({problem}); {fix}", path) from None
    return _checked(name, path, {} if data is None else data, fix)


def _checked(name: str, path: Path, data: Any, fix: str | None = None) -> Template:
    """The template ``data`` describes, checked; TemplateError naming ``path`` and the problem."""
    fix = fix or f"fix it with pepperpy templates edit {name}"
    if not isinstance(data, dict):
        raise TemplateError(f"template {name}: {path} holds a {type(data).__name__}, not a mapping of "
                            f"{', '.join(KEYS)}; {fix}", path)
    for key in data:
        if key not in KEYS:
            import difflib

            close = difflib.get_close_matches(str(key), KEYS, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise TemplateError(f"template {name}: {path} has an unknown key '{key}' ({hint}keys: "
                                f"{', '.join(KEYS)}); {fix}", path)
    for key in ("system", "prompt", "provider", "model"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise TemplateError(f"template {name}: {key} in {path} is a {type(data[key]).__name__}, not text; "
                                f"{fix}", path)
    for key in ("defaults", "options", "schema"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise TemplateError(f"template {name}: {key} in {path} is not a mapping; {fix}", path)
    template = Template(name=name, path=path, **{k: v for k, v in data.items() if v is not None})
    _check_placeholders(template, fix)
    for variable in template.defaults:
        if variable not in template.variables:
            raise TemplateError(f"template {name}: defaults in {path} gives ${variable}, which the template does "
                                f"not use (it uses {_listed(template.variables)}); {fix}", path, str(variable))
    template.response_model()  # a schema it cannot use fails now, naming the file
    return template


def _check_placeholders(template: Template, fix: str) -> None:
    for key in ("system", "prompt"):
        text = getattr(template, key)
        if text is not None and not string.Template(text).is_valid():
            bad = re.search(r"\$(?!\$|[_a-zA-Z][_a-zA-Z0-9]*|\{[_a-zA-Z][_a-zA-Z0-9]*\})", text)
            shown = text[bad.start():bad.start() + 12] if bad else text[:12]
            raise TemplateError(f"template {template.name}: {key} in {template.path} has a bad placeholder near "
                                f"{shown!r} (write $name or ${{name}}, and $$ for a dollar sign); {fix}",
                                template.path)


def save_template(home: str | Path, template: Template) -> Path:
    """Write ``template`` to ``<home>/templates/NAME.yaml`` (atomically), what it parses to remembered (its first
    read needs no PyYAML); its path."""
    import hashlib

    from pepperpy._atomic import atomic_write

    path = template_path(home, template.name)
    text = template.to_yaml()
    # what is written reads back; nothing is written when it would not
    parsed = parse_template(template.name, path, text, "nothing was saved: correct what you gave and save again")
    atomic_write(path, text.encode("utf-8"))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    _remember(templates_folder(home) / PARSED / f"{template.name}.json", digest, _data(parsed))
    return path


# -- the schema as a pydantic model ---------------------------------------------------------


def _model_of(schema: dict[str, Any], class_name: str, template: Template, where: str) -> type[BaseModel]:
    """A pydantic model for an object schema: properties of JSON types, nested objects and arrays, ``required``."""
    from pydantic import create_model

    properties = schema.get("properties")
    if schema.get("type", "object") != "object" or not isinstance(properties, dict) or not properties:
        raise _schema_error(template, where, "is not an object schema with properties "
                            "({type: object, properties: {name: {type: string}}, required: [name]})")
    required = schema.get("required", [])  # as in JSON Schema: none unless listed
    fields: dict[str, Any] = {}
    for name, spec in properties.items():
        annotation = _type_of(spec, f"{class_name}{_class_name(str(name))}", template, f"{where}.properties.{name}")
        fields[str(name)] = (annotation, ...) if name in required else (annotation | None, None)
    return create_model(class_name, **fields)


def _type_of(spec: Any, class_name: str, template: Template, where: str) -> Any:
    if not isinstance(spec, dict):
        raise _schema_error(template, where, "is not a mapping")
    kind = spec.get("type")
    if kind in _JSON_TYPES:
        return _JSON_TYPES[kind]
    if kind == "object":
        return _model_of(spec, class_name, template, where)
    if kind == "array":
        return list[_type_of(spec.get("items", {"type": "string"}), class_name, template, f"{where}.items")]  # type: ignore[misc]
    raise _schema_error(template, where, f"has type {kind!r}; use string, integer, number, boolean, array or object")


def _schema_error(template: Template, where: str, problem: str) -> TemplateError:
    return TemplateError(f"template {template.name}: {where} in {template.path} {problem}; fix it with pepperpy "
                         f"templates edit {template.name}", template.path)


__all__ = [
    "INPUT", "KEYS", "Template", "load_template", "parse_template", "save_template", "template_names",
    "template_path", "templates_folder",
]
