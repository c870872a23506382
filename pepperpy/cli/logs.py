"""``pepperpy logs``: the last calls recorded in the call log (``<home>/logs.db``, pepperpy/_calllog.py)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from pepperpy.cli._common import fail, manager
from pepperpy.errors import PepperPyError

if TYPE_CHECKING:
    from pepperpy._calllog import LoggedCall

_ENDINGS = {"stopped": " [stopped]", "error": ""}


def _indented(label: str, text: str | None) -> str:
    lines = (text or "").splitlines() or [""]
    shown = [f"{label}: {lines[0]}", *(f"{' ' * (len(label) + 2)}{line}" for line in lines[1:])]
    return "\n".join(line.rstrip() for line in shown)


def _tokens(call: LoggedCall) -> str:
    if call.prompt_tokens is None and call.completion_tokens is None:
        return "tokens ?"
    details = [f"{count} {name}" for count, name in ((call.cache_read_tokens, "cache read"),
               (call.cache_write_tokens, "cache write"), (call.reasoning_tokens, "reasoning")) if count]
    shown = f" ({', '.join(details)})" if details else ""
    return f"tokens {call.prompt_tokens or 0}+{call.completion_tokens or 0}{shown}"


def format_call(call: LoggedCall) -> str:
    """One call as a few human-readable lines."""
    what = call.provider + (f" ({call.model})" if call.model else "")
    flags = "".join([" stream" if call.stream else "", " cache-hit" if call.cached else ""])
    header = (f"{call.time[:19].replace('T', ' ')} UTC  {what}  conversation {call.conversation_id or '-'}  {_tokens(call)}  "
              f"{call.duration_ms:.0f} ms{flags}{_ENDINGS.get(call.outcome, '')}")
    lines = [header, _indented("prompt", call.prompt)]
    if call.answer is not None or call.error is None:
        lines.append(_indented("answer", call.answer))
    if call.error is not None:
        lines.append(_indented("error", call.error))
    if call.fragments:
        lines.append(_indented("fragments", "\n".join(
            f"{f['source']} (sha256 {f['sha256'][:12]}, {f['size']} characters)" for f in call.fragments)))
    if call.fallback and call.fallback.get("failed"):
        failed = "; ".join(f"{f['member']}: {f['error']}" for f in call.fallback["failed"])
        lines.append(_indented("fallback", f"served by {call.fallback['served_by']} after {failed}"))
    return "\n".join(lines)


@click.command()
@click.option("-n", "count", type=click.IntRange(min=0), default=3, show_default=True,
              help="How many of the last calls to show (0: all).")
@click.option("--json", "as_json", is_flag=True, help="Print the calls as a JSON list.")
@click.option("-q", "--query", help="Only calls whose messages or answer contain this text.")
@click.option("--cid", help="Only the calls of this conversation.")
@click.option("--path", "show_path", is_flag=True, help="Print the path of the call log and exit.")
@click.option("--fragment", "fragment", metavar="HASH", help="Print the text of the fragment with this hash (or its "
              "first 8+ characters) and exit.")
def logs(count: int, as_json: bool, query: str | None, cid: str | None, show_path: bool, fragment: str | None) -> None:
    """Show the last LLM calls of the call log (newest last); each fragment a call used is named with its hash
    (the log keeps its text once: pepperpy logs --fragment HASH prints it)."""
    from pepperpy._calllog import default_path, fragment_text, recent

    path = default_path(manager().home)
    if show_path:
        click.echo(str(path))
        return
    if fragment is not None:
        text = fragment_text(path, fragment)
        if text is None:
            fail(f"no single fragment with hash {fragment!r} in {path}; copy the hash pepperpy logs shows "
                 "(8 characters at least)")
        click.echo(text, nl=False)
        return
    if not path.exists():
        if as_json:
            click.echo("[]")
        click.echo(f"No call log yet at {path}: pepperpy chat records its calls there, and so does "
                   "PepperPy().with_logging() in your code.", err=as_json)
        return
    try:
        calls = recent(path, count, query=query, conversation_id=cid)
    except PepperPyError as exc:
        fail(" ".join(str(exc).split()))
    if as_json:
        click.echo(json.dumps([call.to_dict() for call in calls], indent=2, ensure_ascii=False))
        return
    if not calls:
        wanted = " and ".join([*([f"text {query!r}"] if query else []), *([f"conversation {cid}"] if cid else [])])
        click.echo(f"No logged call{' with ' + wanted if wanted else ''} in {path}.")
        return
    click.echo("\n\n".join(format_call(call) for call in calls))


__all__ = ["format_call", "logs"]
