"""``pepperpy chat [PROMPT]``: one answer streamed to stdout, or a REPL on a terminal.

Piped stdin and ``-f`` fragments (files, ``-``, URLs, ``PREFIX:ARG`` through a loader plugin) are sent as
context before the prompt, in one user message; the call log stores each fragment once, by its hash.
``-t NAME`` uses a saved template (pepperpy/templates.py) and ``--save NAME`` saves one from the command line.
Calls go through a ``PepperPy`` facade and a ``Conversation`` (so hooks and the call log
see its conversation id) and are logged to ``<home>/logs.db`` unless ``--no-log``;
``-c`` and ``--cid`` continue a logged conversation, with the provider it used (``-p`` and
``-m`` recorded by ``_chat_providers.py``, else the call log's provider) unless ``-p`` is given.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pepperpy.cli._common import fail, manager, parse_key_values
from pepperpy.errors import PepperPyError, PluginNotFoundError

if TYPE_CHECKING:
    from pepperpy import PepperPy
    from pepperpy.chat import Conversation
    from pepperpy.llm import Message

HISTORY_FILE = "chat_history"
HISTORY_LENGTH = 1000
EXIT_WORDS = ("exit", "quit")
MULTI_START, MULTI_END = "!multi", "!end"
PROMPT = "> "
_PASS_OPTION = re.compile(r"\bpass (\w+)=")  # the library's "pass NAME=..." hint


def _describe(exc: BaseException) -> str:
    """``exc`` as one line; a group lists its members."""
    text = str(exc.args[0]) if isinstance(exc, ExceptionGroup) and exc.args else str(exc)
    if isinstance(exc, ExceptionGroup):
        text += ": " + "; ".join(_describe(member) for member in exc.exceptions)
    part = getattr(exc, "part", None)  # a part refused (UnsupportedPartError): a text file goes in with -f
    if part is not None and part.path:
        if (part.media_type or "").startswith("text/"):
            text += f" (or, as it is text, pass it with -f {part.path}: its text goes in the message)"
        elif (loader := _loader_for(part.path)) is not None:
            text += f" (or pass it with -f {part.path}: loader/{loader} reads its text into the message)"
    return " ".join(text.split())


def _loader_for(path: str) -> str | None:
    """The loader plugin that reads ``path`` by its suffix, or None."""
    from pepperpy._loaders import suffix_table

    try:
        return suffix_table(manager()).get(Path(path).suffix.lower())
    except PepperPyError:
        return None


def _in_command_terms(text: str, model_given: bool) -> str:
    """The library's wording made the command line's: ``pass NAME=...`` is ``-o NAME=...`` here, and an
    unknown ``model`` option says that ``-m`` set it."""
    text = _PASS_OPTION.sub(r"pass -o \1=", text)
    if model_given:
        text = re.sub(r"(unknown option 'model' for [^;]+)", r"\1 (-m sets the provider's model option)", text)
    return text


def _fragments(specs: tuple[str, ...], piped: str | None) -> list[Any]:
    """The ``-f`` fragments (piped stdin first) as message parts; URLs are fetched with the caps of
    ``PEPPERPY_FRAGMENT_MAX_BYTES`` and ``PEPPERPY_FRAGMENT_TIMEOUT``."""
    from pepperpy import _fragments

    limits = {"max_bytes": _number("PEPPERPY_FRAGMENT_MAX_BYTES", int, _fragments.MAX_BYTES),
              "timeout": _number("PEPPERPY_FRAGMENT_TIMEOUT", float, _fragments.TIMEOUT)}
    found = [_fragments.Fragment(piped, "stdin")] if piped else []

    async def read_all() -> None:
        for spec in specs:
            try:
                found.append(await _fragments.resolve(spec, fetch=True, manager=manager(), **limits))
            except PepperPyError as exc:
                fail(f"-f {_describe(exc)}")

    if specs:
        asyncio.run(read_all())
    return [fragment.part() for fragment in found if fragment.text.strip()]


def _number(variable: str, kind: type, default: Any) -> Any:
    raw = os.environ.get(variable)
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = 0
    if value <= 0:
        fail(f"{variable}={raw!r} is not a positive number; fix or unset it")
    return value


def _piped_stdin() -> str | None:
    if sys.stdin is None or sys.stdin.isatty():
        return None
    try:
        text = sys.stdin.read()
    except UnicodeDecodeError:
        fail("the text piped in on stdin is not UTF-8; pipe text, or pass a file with -f")
    return text.rstrip() or None


def _message(context: list[Any], prompt: str | None, attached: tuple[Any, ...] = ()) -> tuple[Any, ...]:
    """What one user message holds: the fragments, the prompt, then the attached parts."""
    return (*context, *([prompt] if prompt else []), *attached)


def _attached(paths: tuple[str, ...]) -> tuple[Any, ...]:
    """An Image, Audio or File part per ``-a`` path, by its extension."""
    from pepperpy.parts import part_for_path

    parts = []
    for path in paths:
        if Path(path).is_dir():
            fail(f"-a {path}: is a folder; attach files")
        if not path.startswith(("http://", "https://", "gs://", "s3://", "data:")) and not Path(path).is_file():
            fail(f"-a {path}: no such file; attach an existing file or a URL")
        try:
            parts.append(part_for_path(path))
        except PepperPyError as exc:
            fail(f"-a {_describe(exc)}")
    return tuple(parts)


def _facade(provider: str | None, config: dict[str, Any], log: bool) -> PepperPy:
    from pepperpy import PepperPy

    pepper = PepperPy()
    names = [name.strip().removeprefix("llm/") for name in (provider or "").split(",") if name.strip()]
    if len(names) > 1:
        pepper.with_llm(names, **config)
    else:
        pepper.with_llm(names[0] if names else None, **config)
    if log:
        pepper.with_logging()
    return pepper


def _history(log_path: Path, continue_last: bool, cid: str | None) -> tuple[str | None, list[Message]]:
    """The conversation id to continue and its messages (none when starting a new one)."""
    from pepperpy._calllog import conversation_messages, last_conversation

    if continue_last:
        cid = last_conversation(log_path)
        if cid is None:
            fail(f"-c: there is no conversation in the call log {log_path} yet; start one with pepperpy chat \"...\"")
    if cid is None:
        return None, []
    messages = conversation_messages(log_path, cid)
    if not messages:
        fail(f"no finished call of conversation {cid} in the call log {log_path}; "
             "see the ids with pepperpy logs, or start a new conversation without --cid")
    return cid, messages


def _conversation(pepper: PepperPy, system: str | None, cid: str | None, history: list[Message]) -> Conversation:
    conversation = pepper.conversation(system=system, conversation_id=cid)
    if history:
        if system is not None:  # a new system prompt replaces the logged one
            history = [m for m in history if m.role.value != "system"]
        conversation.messages = [*conversation.messages, *history]
    return conversation


async def _stream(conversation: Conversation, message: tuple[Any, ...]) -> None:
    """Write the answer to stdout as it comes, then end the line."""
    out = sys.stdout
    last = ""
    try:
        async for chunk in conversation.stream(*message):
            if chunk.content:
                out.write(chunk.content)
                out.flush()
                last = chunk.content
    finally:
        if last and not last.endswith("\n"):
            out.write("\n")
            out.flush()


def _served_by(provider: Any, fallback: dict[str, Any] | None) -> Any:
    """The provider that answered: ``provider`` itself, or the member of a fallback chain that served the call."""
    if fallback:
        for member in getattr(provider, "members", ()):
            if member.name == fallback.get("served_by") and member.provider is not None:
                return member.provider
    return provider


async def _as_json(pepper: PepperPy, conversation: Conversation, message: tuple[Any, ...]) -> dict[str, Any]:
    result = await conversation.say(*message)
    fallback = result.metadata.get("fallback")
    provider = _served_by(await pepper.configured("llm"), fallback)
    model = result.metadata.get("model") or getattr(provider, "model", None)
    answer = {
        "content": result.content,
        "usage": {"prompt_tokens": result.usage.prompt_tokens, "completion_tokens": result.usage.completion_tokens},
        "provider": provider.plugin_id,  # the plugin's id, also for an alias or a fallback member
        "model": model if isinstance(model, str) else None,
        "conversation_id": conversation.conversation_id,
    }
    if result.parsed is not None:  # a template's schema: the structured answer
        answer["parsed"] = result.parsed.model_dump(mode="json")
    return answer


def _open_history(home: Path) -> Any:
    """Load the REPL's readline history from ``<home>/chat_history``; the module, or None without readline."""
    try:
        import readline
    except ImportError:
        return None
    readline.set_history_length(HISTORY_LENGTH)
    try:
        readline.read_history_file(home / HISTORY_FILE)
    except OSError:
        pass
    return readline


def _save_history(readline: Any, home: Path) -> None:
    if readline is None:
        return
    try:
        home.mkdir(parents=True, exist_ok=True)
        readline.write_history_file(home / HISTORY_FILE)
    except OSError as exc:
        click.echo(f"pepperpy: the chat history was not saved to {home / HISTORY_FILE}: {exc.strerror or exc}", err=True)


def _read_turn() -> str:
    """One message from the terminal: a line, or the lines between ``!multi`` and ``!end``."""
    line = input(PROMPT)
    if line.strip() != MULTI_START:
        return line
    lines: list[str] = []
    while True:
        try:
            line = input("")
        except EOFError:
            break
        if line.strip() == MULTI_END:
            break
        lines.append(line)
    return "\n".join(lines)


def _repl(
    runner: asyncio.Runner, conversation: Conversation, context: list[Any], attached: tuple[Any, ...], label: str,
    model_given: bool,
) -> None:
    home = manager().home
    readline = _open_history(home)
    click.echo(f"Chatting with {label}. Type 'exit' or 'quit' (or Ctrl-D) to leave; {MULTI_START} starts a "
               f"message of several lines, {MULTI_END} sends it; Ctrl-C stops an answer.")
    try:
        while True:
            try:
                text = _read_turn()
            except EOFError:
                click.echo()
                return
            except KeyboardInterrupt:
                click.echo()
                continue
            if text.strip().lower() in EXIT_WORDS:
                return
            if not text.strip():
                continue
            # files, attachments and stdin go with the first message
            message, context, attached = _message(context, text, attached), [], ()
            try:
                runner.run(_stream(conversation, message))
            except KeyboardInterrupt:
                click.echo()
            except PepperPyError as exc:
                click.echo(f"pepperpy: {_in_command_terms(_describe(exc), model_given)}", err=True)
    finally:
        _save_history(readline, home)


@click.command()
@click.argument("prompt", nargs=-1)
@click.option("-p", "--provider", help="An llm plugin or alias, or a fallback list: openai,local.")
@click.option("-m", "--model", help="The model (the provider's model option).")
@click.option("-s", "--system", help="A system prompt.")
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE",
              help="A provider option, e.g. -o temperature=0 (repeatable).")
@click.option("-f", "--fragment", "--file", "files", multiple=True, metavar="PATH|-|URL|PREFIX:ARG",
              help="Context before the prompt: a file (a PDF through its loader), - for stdin, a URL, or PREFIX:ARG "
              "read by a loader plugin, e.g. pdf:report.pdf (repeatable).")
@click.option("-a", "--attach", "attachments", multiple=True, metavar="PATH",
              help="An image, audio or document (PDF, ...) sent with the prompt; the type from the extension (repeatable).")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (content, usage, provider, model, conversation_id) instead of streaming.")
@click.option("-c", "--continue", "continue_last", is_flag=True,
              help="Continue the last logged conversation, with its provider unless -p.")
@click.option("--cid", help="Continue the logged conversation with this id, with its provider unless -p.")
@click.option("--no-log", is_flag=True, help="Do not record the calls in the call log (<home>/logs.db).")
@click.option("--mcp", "mcp_configs", multiple=True, metavar="PATH",
              help="An mcpServers JSON file: the tools of its MCP servers are offered to the model (repeatable).")
@click.option("--approve", is_flag=True,
              help="With --mcp: ask on the terminal before each tool call (stdin then answers, it is not context).")
@click.option("-t", "--template", metavar="NAME",
              help="A saved template (pepperpy templates list): its system prompt, prompt, options, provider, model.")
@click.option("-P", "--param", "params", multiple=True, nargs=2, metavar="NAME VALUE",
              help="A value for the template's $NAME (repeatable).")
@click.option("--save", metavar="NAME",
              help="Save -s, the prompt, -p, -m, -o (sent with each call) and -P (as defaults) as template NAME "
              "instead of sending.")
def chat(
    prompt: tuple[str, ...], provider: str | None, model: str | None, system: str | None, options: tuple[str, ...],
    files: tuple[str, ...], attachments: tuple[str, ...], as_json: bool, continue_last: bool, cid: str | None,
    no_log: bool, mcp_configs: tuple[str, ...], approve: bool, template: str | None, params: tuple[tuple[str, str], ...],
    save: str | None,
) -> None:
    """Chat with an LLM: answer PROMPT (streamed), or a REPL when run on a terminal without one.

    Text piped on stdin and -f files are sent before the prompt, as context. Calls are
    recorded in the call log (see pepperpy logs) unless --no-log.

    \b
        cat notes.md | pepperpy chat "summarize"
        pepperpy chat -p openai,local -s "Be brief." "Why is the sky blue?"
        pepperpy chat -a cat.png "What is in this picture?"
        pepperpy chat -c "and then?"
        pepperpy chat --mcp mcp.json --approve "What files are in ~/notes?"
        pepperpy -t review -P language Go -f main.go
    """
    from pepperpy._calllog import default_path

    if continue_last and cid:
        raise click.UsageError("-c continues the last conversation and --cid a given one; pass one of them")
    config = parse_key_values(options, "-o")
    text = " ".join(prompt) or None
    if save is not None:
        return _save_template(save, template, system, text, provider, model, config, dict(params))
    call_options: dict[str, Any] = {}
    if template is not None:
        provider, model, system, text, call_options = _apply_template(
            template, dict(params), provider, model, system, text)
    elif params:
        raise click.UsageError("-P sets a template's variables: name the template with -t NAME")
    attached = _attached(attachments)
    if approve and not mcp_configs:
        raise click.UsageError("--approve asks before MCP tool calls: give the servers with --mcp mcp.json")
    servers = _mcp_servers(mcp_configs)
    interactive = text is None and sys.stdin.isatty() and sys.stdout.isatty()
    piped = None if approve or "-" in files else _piped_stdin()
    context = _fragments(files, piped)
    if not interactive and not context and not attached and text is None:
        fail('nothing to send: give a prompt (pepperpy chat "Hi"), pipe text in, or run it on a terminal for a REPL')
    home = manager().home
    inherited = ""
    try:
        conversation_id, history = _history(default_path(home), continue_last, cid)
        if conversation_id is not None and provider is None:  # go on with what the conversation used
            provider, recalled_model = _continued_provider(home, conversation_id)
            model = model or recalled_model
            if provider:
                inherited = f" (-p {provider}: what conversation {conversation_id} used; pass -p to choose another)"
        if model and "model" not in config:
            config["model"] = model
        try:
            pepper = _facade(provider, config, log=not no_log)
        except PepperPyError as exc:
            if template is not None and isinstance(exc, PluginNotFoundError):
                inherited += " (-p names the provider; give a template's variable with -P NAME VALUE)"
            raise click.ClickException(_in_command_terms(_describe(exc), model is not None) + inherited) from exc
        conversation = _conversation(pepper, system, conversation_id, history)
        conversation.options.update(call_options)
        conversation.tools, conversation.approve = servers, (_terminal_approval() if approve else None)
        if not no_log and (provider or model):
            _remember(home, conversation.conversation_id, provider, model)
        with asyncio.Runner() as runner:
            try:
                if interactive:
                    label = getattr(pepper.llm, "plugin_id", provider or "llm")
                    _repl(runner, conversation, context, attached, label, model is not None)
                elif as_json:
                    click.echo(json.dumps(runner.run(_as_json(pepper, conversation, _message(context, text, attached))),
                                          ensure_ascii=False))
                else:
                    runner.run(_stream(conversation, _message(context, text, attached)))
            finally:
                runner.run(pepper.aclose())
    except PepperPyError as exc:
        raise click.ClickException(_in_command_terms(_describe(exc), model is not None)) from exc


def _apply_template(
    name: str, params: dict[str, str], provider: str | None, model: str | None, system: str | None, text: str | None,
) -> tuple[str | None, str | None, str | None, str | None, dict[str, Any]]:
    """``-t NAME``: the template's provider, model, system prompt and prompt under those given on the command line
    (-p, -m, -s), and the options of each call (with its schema as the response model); the prompt given fills
    ``$input`` or follows the template's."""
    from pepperpy.templates import load_template

    loaded = load_template(manager().home, name)
    rendered_system, rendered = loaded.render(params, input=text)
    call_options = dict(loaded.options)
    if loaded.schema is not None:
        call_options["response_model"] = loaded.response_model()
    if provider is None or provider == loaded.provider:  # the template's model is for its provider only
        provider, model = loaded.provider, model or loaded.model
    return provider, model, system if system is not None else rendered_system, rendered, call_options


def _save_template(
    name: str, template: str | None, system: str | None, text: str | None, provider: str | None, model: str | None,
    config: dict[str, Any], params: dict[str, str],
) -> None:
    """``--save NAME``: the command line as a template, written and not sent."""
    from pepperpy.templates import Template, save_template, template_path

    if template is not None:
        raise click.UsageError("--save writes a new template from -s, the prompt, -p, -m and -o; -t reads one: "
                               "pass one of them (edit a saved one with pepperpy templates edit NAME)")
    if system is None and text is None:
        raise click.UsageError("--save needs something to save: a prompt and/or -s SYSTEM")
    home = manager().home
    saved = Template(name=name, path=template_path(home, name), system=system, prompt=text, defaults=params,
                     options=config, provider=provider, model=model)
    click.echo(f"Saved template {name} to {save_template(home, saved)}")


def _mcp_servers(paths: tuple[str, ...]) -> tuple[Any, ...]:
    from pepperpy.mcp import MCPServer

    try:
        return tuple(server for path in paths for server in MCPServer.from_config(path))
    except PepperPyError as exc:
        fail(f"--mcp {exc}")


def _terminal_approval() -> Any:
    """--approve: ask before each tool call (on stderr; the answer from stdin), one question at a time (the calls
    of one answer may run concurrently)."""
    asking = asyncio.Lock()

    async def ask(server: str | None, tool: str, arguments: dict[str, Any]) -> bool:
        shown = json.dumps(arguments, ensure_ascii=False)
        question = f"Run tool {tool} of MCP server {server} with {shown[:300]}?"
        async with asking:
            try:
                return await asyncio.to_thread(click.confirm, question, default=False, err=True)
            except click.Abort:  # no answer (end of input): refused
                return False

    return ask


def _continued_provider(home: Path, conversation_id: str) -> tuple[str | None, str | None]:
    """``(-p, -m)`` to continue ``conversation_id`` with: those it was started with (``_chat_providers``), else
    the provider of its last logged call; ``(None, None)`` when neither is known (the default provider)."""
    from pepperpy._calllog import default_path, recent
    from pepperpy.cli import _chat_providers

    provider, model, problem = _chat_providers.recall(home, conversation_id)
    if problem:
        click.echo(f"pepperpy: note: {problem}; ignored (it is rewritten by the next chat)", err=True)
    if provider is None:
        last = recent(default_path(home), 1, conversation_id=conversation_id)
        provider = last[0].provider if last else None
    return provider, model


def _remember(home: Path, conversation_id: str, provider: str | None, model: str | None) -> None:
    """Record the conversation's ``-p``/``-m`` for ``-c``; a failure is a note, the chat goes on."""
    from pepperpy.cli import _chat_providers

    try:
        _chat_providers.remember(home, conversation_id, provider, model)
    except (OSError, TimeoutError) as exc:
        click.echo(f"pepperpy: note: {_chat_providers.path_of(home)} was not updated ({exc}); -c may not "
                   "continue this conversation with the same provider", err=True)


__all__ = ["chat"]
