"""The worker protocol's pure parts: lines, values, LLM requests, errors; and the manifest's ``isolation`` field."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from pepperpy import errors
from pepperpy._isolation import protocol, requested
from pepperpy.llm import GenerationResult, LLMProvider, Message, MessageRole
from pepperpy.tools import tool_from_function


def test_a_message_is_one_json_line() -> None:
    line = protocol.encode({"id": 3, "ok": "héllo\nworld"})
    assert line.endswith(b"\n") and line.count(b"\n") == 1  # a newline inside a value is escaped
    assert protocol.decode(line) == {"id": 3, "ok": "héllo\nworld"}


def test_a_line_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ValueError):
        protocol.decode(b"[1, 2]\n")
    with pytest.raises(ValueError):
        protocol.decode(b"not json\n")


def test_values_round_trip_with_bytes_and_models() -> None:
    class Point(BaseModel):
        x: int
        label: str

    value = {"raw": b"\x00\xff", "nested": [(1, 2.5), {"p": Point(x=1, label="a")}], "none": None}
    wired = protocol.to_wire(value)
    assert json.loads(json.dumps(wired)) == wired  # plain JSON
    assert protocol.from_wire(wired) == {"raw": b"\x00\xff", "nested": [[1, 2.5], {"p": {"x": 1, "label": "a"}}], "none": None}


def test_a_value_that_cannot_cross_is_a_wire_error() -> None:
    with pytest.raises(protocol.WireError, match="a value of type object cannot cross the process boundary"):
        protocol.to_wire([object()])
    with pytest.raises(protocol.WireError, match="dict key must be a str"):
        protocol.to_wire({1: "one"})


class Answer(BaseModel):
    """The answer."""

    city: str
    population: int


def multiply(a: int, b: int = 2) -> int:
    """Multiply two numbers."""
    return a * b


def test_an_llm_request_sends_messages_tools_as_schemas_and_the_response_model_as_its_schema() -> None:
    messages = [Message(role=MessageRole.USER, content="hi")]
    options = {"tools": [tool_from_function(multiply)], "response_model": Answer, "temperature": 0.5}
    args, kwargs = protocol.llm_request(messages, options)
    wired = json.loads(protocol.encode({"args": args, "kwargs": kwargs}))
    assert wired["args"] == [[{"role": "user", "content": "hi"}]]
    assert wired["kwargs"]["temperature"] == 0.5
    assert wired["kwargs"]["tools"] == [
        {"name": "multiply", "description": "Multiply two numbers.", "parameters": tool_from_function(multiply).parameters}
    ]
    assert wired["kwargs"]["response_model"] == {"$model": "Answer", "schema": Answer.model_json_schema()}

    # the worker's side: objects a provider can use
    rebuilt = protocol.llm_options(wired["kwargs"])
    model = rebuilt["response_model"]
    assert issubclass(model, BaseModel) and model.__name__ == "Answer"
    assert model.model_json_schema() == Answer.model_json_schema()
    tool = rebuilt["tools"][0]
    assert (tool.name, tool.parameters) == ("multiply", tool_from_function(multiply).parameters)


async def test_a_tool_in_the_worker_cannot_run_there() -> None:
    tool = protocol.llm_options({"tools": [{"name": "multiply", "description": "", "parameters": {}}]})["tools"][0]
    with pytest.raises(errors.PluginError, match="tool multiply runs in the parent process"):
        await tool.run({})


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (errors.LLMRateLimitError("slow down", status_code=429, retryable=True, retry_after=2.0), errors.LLMRateLimitError),
        (errors.ConfigError("bad option"), errors.ConfigError),
        (errors.MissingKeyError("set OPENAI_API_KEY"), errors.MissingKeyError),
    ],
)
def test_pepperpy_errors_keep_their_type_and_attributes(raised: Exception, expected: type) -> None:
    wired = json.loads(json.dumps(protocol.error_to_wire(raised)))
    rebuilt = protocol.error_from_wire(wired, "llm/x")
    assert type(rebuilt) is expected and str(rebuilt) == str(raised)
    for name in ("status_code", "retryable", "retry_after"):
        assert getattr(rebuilt, name, None) == getattr(raised, name, None)


def test_a_plugins_own_error_class_becomes_its_pepperpy_base() -> None:
    class QuotaError(errors.AuthenticationError):
        pass

    rebuilt = protocol.error_from_wire(protocol.error_to_wire(QuotaError("no quota", status_code=403)), "llm/x")
    assert type(rebuilt) is errors.AuthenticationError and rebuilt.status_code == 403
    assert str(rebuilt) == "no quota (QuotaError)"


def test_any_other_error_becomes_a_plugin_error_naming_its_type_with_the_worker_traceback() -> None:
    def broken() -> None:
        raise KeyError("missing")

    try:
        broken()
    except KeyError as exc:
        wired = protocol.error_to_wire(exc)
    rebuilt = protocol.error_from_wire(wired, "tts/say")
    assert type(rebuilt) is errors.PluginError
    assert str(rebuilt) == "tts/say: the plugin raised KeyError in its worker process: 'missing'"
    assert any("in broken" in note for note in rebuilt.__notes__)


def test_an_error_group_keeps_its_members() -> None:
    group = errors.PepperPyErrorGroup("two failed", [errors.ConfigError("a"), ValueError("b")])
    rebuilt = protocol.error_from_wire(protocol.error_to_wire(group), "llm/x")
    assert isinstance(rebuilt, errors.PepperPyErrorGroup)
    assert [type(e) for e in rebuilt.exceptions] == [errors.ConfigError, errors.PluginError]


# -- the setting ------------------------------------------------------------------------------


def test_the_manifest_field_defaults_to_inprocess_and_refuses_other_values(make_plugin, manager) -> None:
    make_plugin("plain")
    make_plugin("isolated", isolation="process")
    make_plugin("bad", isolation="thread")
    plugins = manager.discover()
    assert plugins["llm/plain"].manifest.isolation == "inprocess"
    assert plugins["llm/isolated"].manifest.isolation == "process"
    assert "llm/bad" not in plugins
    (broken,) = manager.broken
    assert "field 'isolation'" in broken.problem and "'inprocess' or 'process'" in broken.problem


def test_the_config_setting_wins_over_the_manifest_and_is_taken_out_of_the_options(make_plugin, manager) -> None:
    make_plugin("isolated", isolation="process")
    info = manager.discover()["llm/isolated"]
    config = {"isolation": "inprocess", "prefix": ">"}
    assert requested(info, config) is False and config == {"prefix": ">"}
    assert requested(info, {}) is True
    with pytest.raises(errors.ConfigError, match=r"llm/isolated: isolation='proces' is not a valid setting"):
        requested(info, {"isolation": "proces"})


def test_an_inprocess_provider_says_so(make_plugin, manager) -> None:
    make_plugin("plain")
    assert manager.create_provider("llm", "plain").isolation == "inprocess"


def test_is_isolated_reads_the_config_an_alias_preset_and_the_manifest_without_importing(make_plugin, manager) -> None:
    from pepperpy._isolation import is_isolated

    make_plugin("plain")
    make_plugin("isolated", isolation="process")
    manager.register_plugin_alias("llm", "walled", "plain", {"isolation": "process"})
    assert is_isolated(manager, "llm", "isolated", {}) is True
    assert is_isolated(manager, "llm", "isolated", {"isolation": "inprocess"}) is False
    assert is_isolated(manager, "llm", "plain", {}) is False
    assert is_isolated(manager, "llm", "plain", {"isolation": "process"}) is True
    assert is_isolated(manager, "llm", "walled", {}) is True
    assert is_isolated(manager, "llm", "nosuch", {}) is False
    manager.user_options.path.parent.mkdir(parents=True, exist_ok=True)
    manager.user_options.path.write_text(json.dumps({"llm/plain": {"isolation": "process"}}))  # options set
    assert is_isolated(manager, "llm", "plain", {}) is True  # as creating it would: a fallback chain must not import it
    assert is_isolated(manager, "llm", "plain", {"isolation": "inprocess"}) is False
    assert manager.loaded_folder_plugins() == []  # nothing was imported


def test_is_isolated_merges_the_config_as_creation_does(make_plugin, manager) -> None:
    """The options saved for an alias in the middle of a chain count, as when the provider is created."""
    from pepperpy._isolation import is_isolated

    make_plugin("plain")
    manager.register_plugin_alias("llm", "inner", "plain", {})
    manager.register_plugin_alias("llm", "outer", "inner", {})
    manager.user_options.path.parent.mkdir(parents=True, exist_ok=True)
    manager.user_options.path.write_text(json.dumps({"llm/inner": {"isolation": "process"}}))
    assert manager.creation_config("llm", "outer", {})[3] == {"isolation": "process"}
    assert is_isolated(manager, "llm", "outer", {}) is True
    assert is_isolated(manager, "llm", "outer", {"isolation": "inprocess"}) is False
    assert is_isolated(manager, "llm", "outer", {"isolation": "proces"}) is False  # creating it raises
    assert manager.loaded_folder_plugins() == []


class ShoutProvider(LLMProvider):
    """A class registered in code: it has no plugin folder for a worker to load."""

    shout: bool = False

    async def generate(self, messages, **options):
        return GenerationResult(content="HI" if self.shout else "hi")


def test_a_class_registered_in_code_refuses_process_isolation_and_says_it_needs_a_folder(manager) -> None:
    manager.register_plugin("llm", "shout", ShoutProvider)
    with pytest.raises(errors.ConfigError) as refused:
        manager.create_provider("llm", "shout", isolation="process")
    message = str(refused.value)
    assert message.startswith("llm/shout: isolation='process' needs a plugin folder")
    assert "the worker process loads the plugin from its folder" in message
    assert "put the class in a plugin folder" in message and "unknown option" not in message
    manager.register_plugin_alias("llm", "loud", "shout", {"isolation": "process", "shout": True})
    with pytest.raises(errors.ConfigError, match=r"llm/shout: isolation='process' needs a plugin folder"):
        manager.create_provider("llm", "loud")  # an alias's preset asking for it: the same answer
    with pytest.raises(errors.ConfigError, match=r"llm/shout: isolation='threads' is not a valid setting"):
        manager.create_provider("llm", "shout", isolation="threads")
    provider = manager.create_provider("llm", "shout", isolation="inprocess", shout=True)  # the default, said aloud
    assert provider.isolation == "inprocess" and provider.shout is True


def test_public_options_leave_out_keys_by_name_and_secret_values_but_keep_max_tokens() -> None:
    from pydantic import SecretStr

    from pepperpy._isolation.providers import public_options

    config = {"api_key": "sk-1", "apikey": "sk-2", "auth_token": "t", "password": "p", "credentials": SecretStr("c"),
              "max_tokens": 64, "model": "m", "key_file": "/k"}
    assert public_options(config) == {"max_tokens": 64, "model": "m", "key_file": "/k"}


# -- a worker's log records --------------------------------------------------------------------


class _Sink:
    """A loguru sink keeping records, removed after; PepperPy's logs switched on only inside ``enabled()``."""

    def __init__(self) -> None:
        from loguru import logger

        self.records: list = []
        self.id = logger.add(lambda message: self.records.append(message.record), level="DEBUG", format="{message}")

    def close(self) -> None:
        from loguru import logger

        logger.remove(self.id)
        logger.disable("pepperpy")


def test_a_log_record_crosses_as_json_and_is_logged_again_with_its_level_binding_and_place() -> None:
    from loguru import logger

    from pepperpy._isolation import logs

    sink = _Sink()
    try:
        try:
            raise KeyError("k")
        except KeyError:
            logger.bind(plugin="llm/x", handle=object()).opt(exception=True).warning("went {} {{way}}", "one")
        wired = logs.to_wire(sink.records[-1])
        assert json.loads(json.dumps(wired)) == wired  # plain JSON for the pipe
        assert (wired["level"], wired["no"], wired["function"]) == ("WARNING", 30, "test_a_log_record_crosses_as_json_and_is_logged_again_with_its_level_binding_and_place")
        assert wired["message"].startswith("went one {way}\nTraceback") and "KeyError: 'k'" in wired["message"]
        assert wired["extra"]["plugin"] == "llm/x" and wired["extra"]["handle"].startswith("<object object")

        sink.records.clear()
        logs.emit({**wired, "name": "pepperpy.loaded_plugins.llm_x.provider"}, "llm/x")
        assert sink.records == []  # PepperPy's logs are off here: the parent's switch decides
        logger.enable("pepperpy")
        logs.emit({**wired, "name": "pepperpy.loaded_plugins.llm_x.provider"}, "llm/x")
        logs.emit({"level": "NOTICE", "no": 25, "message": "a level only the worker has", "extra": {}}, "llm/y")
        logs.emit({"message": None}, "llm/y")  # malformed: dropped
        logs.emit(["not", "a", "record"], "llm/y")
        again, custom = sink.records
        assert again["message"] == wired["message"]  # logged as sent, not formatted a second time
        assert (again["level"].name, again["extra"]["plugin"], again["name"], again["module"]) == (
            "WARNING", "llm/x", "pepperpy.loaded_plugins.llm_x.provider", "provider")
        assert (custom["level"].no, custom["extra"]["plugin"]) == (25, "llm/y")  # bound to the worker's plugin
    finally:
        sink.close()


def test_the_worker_forwards_info_and_up_unless_the_parent_logs_lower_when_it_starts() -> None:
    from loguru import logger

    from pepperpy._isolation import logs

    sink = _Sink()
    try:
        assert logs.forward_level() == logs.INFO  # PepperPy's logs off: INFO and up, for a later enable
        logger.enable("pepperpy")
        assert logs.forward_level() == 10  # on, with a DEBUG sink: DEBUG lines cross too
        logger.disable("pepperpy.loaded_plugins")
        assert logs.forward_level() == logs.INFO  # the plugins' logs turned off again
    finally:
        sink.close()
