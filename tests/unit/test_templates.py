"""Saved templates (pepperpy/templates.py): real YAML files in a temporary home, rendered, and used by
``pepper.chat.from_template`` on llm/mock; every error names the template's file and the variable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pepperpy import PepperPy
from pepperpy.errors import TemplateError
from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir
from pepperpy.templates import Template, load_template, save_template, template_names, template_path


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def builtins(home) -> PluginManager:
    return PluginManager(search_paths=[builtin_plugins_dir()], home=home)


def write(home: Path, name: str, text: str) -> Path:
    path = home / "templates" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


REVIEW = """\
system: You review $language code for ${team}s.
prompt: "Review this (budget: $$5):\\n\\n$input"
defaults: {language: Python}
options: {temperature: 0}
provider: mock
model: echo-1
"""


def test_a_template_fills_its_variables_from_params_then_defaults(home):
    write(home, "review", REVIEW)
    template = load_template(home, "review")
    assert template.variables == ["language", "team", "input"]
    system, prompt = template.render({"team": "tester"}, input="x = 1")
    assert system == "You review Python code for testers."
    assert prompt == "Review this (budget: $5):\n\nx = 1"  # $$ is a dollar sign
    assert template.render({"team": "t", "language": "Go"}, input="y")[0] == "You review Go code for ts."
    assert (template.options, template.provider, template.model) == ({"temperature": 0}, "mock", "echo-1")


def test_the_prompt_given_follows_a_template_prompt_without_input(home):
    write(home, "summarize", "prompt: Summarize in $n words.\n")
    template = load_template(home, "summarize")
    assert template.render({"n": 5}, input="the text") == (None, "Summarize in 5 words.\n\nthe text")
    assert template.render({"n": 5}) == (None, "Summarize in 5 words.")
    write(home, "persona", "system: Talk like a pirate.\n")
    assert load_template(home, "persona").render({}, input="hello") == ("Talk like a pirate.", "hello")
    write(home, "judge", "system: Judge $input\n")  # a system prompt's $input does not use the prompt up
    assert load_template(home, "judge").render({}, input="x = 1") == ("Judge x = 1", "x = 1")


def test_a_missing_variable_names_the_file_and_the_variable(home):
    path = write(home, "review", REVIEW)
    template = load_template(home, "review")
    with pytest.raises(TemplateError) as missing:
        template.render({}, input="x")
    assert (missing.value.variable, missing.value.path) == ("team", str(path))
    assert str(path) in str(missing.value) and "$team" in str(missing.value) and "-P team VALUE" in str(missing.value)
    with pytest.raises(TemplateError, match=r"needs \$input: give a prompt") as no_input:
        template.render({"team": "t"})
    assert no_input.value.variable == "input"


def test_an_unknown_variable_names_the_file_and_suggests_the_close_one(home):
    path = write(home, "review", REVIEW)
    with pytest.raises(TemplateError) as unknown:
        load_template(home, "review").render({"team": "t", "langauge": "Go"}, input="x")
    assert unknown.value.variable == "langauge" and str(path) in str(unknown.value)
    assert "did you mean $language?" in str(unknown.value)


@pytest.mark.parametrize(("text", "problem"), [
    ("system: [unclosed\n", r"is not valid YAML at line \d+, column \d+"),
    ("- a list\n", "holds a list, not a mapping"),
    ("sytem: hi\n", "unknown key 'sytem' \\(did you mean 'system'\\?"),
    ("prompt: {a: 1}\n", "prompt in .* is a dict, not text"),
    ("defaults: [a]\n", "defaults in .* is not a mapping"),
    ("prompt: costs $5\n", "bad placeholder near '\\$5'"),
    ("prompt: hi $name\ndefaults: {nmae: x}\n", "defaults in .* gives \\$nmae, which the template does not use"),
    ("prompt: hi\nschema: {type: object, properties: {a: {type: date}}}\n", "schema.properties.a in .* has type 'date'"),
    ("prompt: hi\nschema: {type: string}\n", "schema in .* is not an object schema"),
])
def test_a_template_that_does_not_parse_names_its_file_and_the_problem(home, text, problem):
    path = write(home, "broken", text)
    with pytest.raises(TemplateError, match=problem) as broken:
        load_template(home, "broken")
    assert str(path) in str(broken.value) and "pepperpy templates edit broken" in str(broken.value)
    assert broken.value.path == str(path)


def test_yaml_that_does_not_parse_is_placed_where_the_broken_construct_begins(home):
    path = write(home, "open", 'system: hi\nprompt: "unterminated: $input\n\n')
    with pytest.raises(TemplateError) as broken:
        load_template(home, "open")
    assert (f"{path} is not valid YAML at line 2, column 9 (while scanning a quoted scalar: found unexpected end "
            "of stream at line 4)") in str(broken.value)


def test_a_template_that_cannot_be_saved_is_not_written_and_says_so(home):
    for bad in (Template(name="pay", path=template_path(home, "pay"), prompt="Pay $5"),
                Template(name="pay", path=template_path(home, "pay"), prompt="Hi $name", defaults={"nmae": "x"})):
        with pytest.raises(TemplateError, match="nothing was saved: correct what you gave and save again") as caught:
            save_template(home, bad)
        assert "templates edit" not in str(caught.value)
    assert not template_path(home, "pay").exists()


def test_a_missing_template_or_a_bad_name_says_what_to_do(home):
    write(home, "review", REVIEW)
    with pytest.raises(TemplateError, match=r"no template reveiw .*did you mean review\?"):
        load_template(home, "reveiw")
    for bad in ("../etc/passwd", "a/b", "", "x.yaml"):
        with pytest.raises(TemplateError, match="is not a template name"):
            template_path(home, bad)


def test_save_writes_yaml_that_reads_back(home):
    path = template_path(home, "ask")
    saved = Template(name="ask", path=path, system="Be $tone.", prompt="Q: $input", defaults={"tone": "brief"},
                     options={"temperature": 0.2}, provider="mock",
                     schema={"type": "object", "properties": {"answer": {"type": "string"}}})
    assert save_template(home, saved) == path
    assert load_template(home, "ask") == saved
    assert template_names(home) == ["ask"]
    assert "tone: brief" in path.read_text()


async def test_from_template_returns_an_ordinary_builder(builtins, home):
    write(home, "review", REVIEW.replace("model: echo-1\n", "").replace("options: {temperature: 0}\n", ""))
    async with PepperPy(plugin_manager=builtins).with_llm("mock") as pepper:
        chat = pepper.chat.from_template("review", team="tester", input="x = 1")
        assert [m.role.value for m in chat.messages] == ["system", "user"]
        assert chat.messages[0].content == "You review Python code for testers."
        answer = await chat.generate()  # the mock echoes the last user message
        assert answer.content == "Review this (budget: $5):\n\nx = 1"
        follow_up = chat.with_assistant(answer.content).with_user("and now?")
        assert "".join([c.content async for c in follow_up.stream()]) == "and now?"
        with pytest.raises(TemplateError, match=r"has no variable \$colour"):
            pepper.chat.from_template("review", team="t", input="x", colour="red")


async def test_a_template_schema_is_the_response_model(builtins, home):
    write(home, "score", "prompt: Score $input\n"
          "schema: {type: object, properties: {score: {type: integer}, tags: {type: array, items: {type: string}}},"
          " required: [score]}\n")
    async with PepperPy(plugin_manager=builtins).with_llm("mock", replies=['{"score": 7, "tags": ["ok"]}']) as pepper:
        answer = await pepper.chat.from_template("score", input="this").generate()
    assert (answer.parsed.score, answer.parsed.tags) == (7, ["ok"])
    assert type(answer.parsed).__name__ == "Score"
    fields = type(answer.parsed).model_fields
    assert fields["score"].is_required() and not fields["tags"].is_required()  # JSON Schema's "required"


async def test_template_options_reach_the_call_and_with_llm_chooses_the_model(builtins, home):
    write(home, "cold", "prompt: hi\noptions: {temperature: 0}\nmodel: gpt-4o-mini\nprovider: openai\n")
    seen = []

    async def spy(call, call_next):
        seen.append((dict(call.options), call.model))
        return await call_next(call)

    async with PepperPy(plugin_manager=builtins).with_llm("mock").with_hook(spy) as pepper:
        await pepper.chat.from_template("cold").generate()
    assert seen == [({"temperature": 0}, None)]  # the facade's provider and its (default) model, not the template's


def test_import_pepperpy_does_not_import_yaml():
    code = "import sys, pepperpy; print('yaml' in sys.modules, 'pepperpy.templates' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == \
        "False False\n"


def test_a_saved_template_is_read_the_first_time_without_yaml(home):
    save_template(home, Template("greet", template_path(home, "greet"), prompt="Hello $who", defaults={"who": "Ana"},
                                 options={"temperature": 0}))
    code = ("import sys; from pepperpy.templates import load_template; "
            f"t = load_template({str(home)!r}, 'greet'); print(t.render({{}})[1], t.options, 'yaml' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == \
        "Hello Ana {'temperature': 0} False\n"


def test_a_template_read_before_is_read_again_without_yaml_and_a_change_is_seen(home):
    path = write(home, "greet", "prompt: Hello $who\n")
    assert load_template(home, "greet").render({"who": "Ana"})[1] == "Hello Ana"  # parsed, and remembered
    code = ("import sys; from pepperpy.templates import load_template; "
            f"print(load_template({str(home)!r}, 'greet').render({{'who': 'Bo'}})[1], 'yaml' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == \
        "Hello Bo False\n"
    path.write_text("prompt: Howdy $who\n")  # the same size, maybe the same mtime: the hash tells
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == \
        "Howdy Bo True\n"
    path.write_text("prompt: Goodbye $who\ndefaults: {who: 2024-01-01}\n")  # a YAML date: not kept as JSON
    assert load_template(home, "greet").render({})[1] == "Goodbye 2024-01-01"
    assert load_template(home, "greet").render({})[1] == "Goodbye 2024-01-01"
    path.write_text("prompt: [broken\n")
    with pytest.raises(TemplateError, match="is not valid YAML"):
        load_template(home, "greet")
