"""A worker's ``self.logger`` output, shown in the parent: records cross the pipe as ``log`` messages.

In the worker, ``pepperpy.*`` records (PepperPy's modules, and the plugin's, which load as
``pepperpy.loaded_plugins.*``) and every ``self.logger`` record (bound with ``plugin=<id>``) at the
level the parent asked for (``pepperpy.core``'s "opened"/"closed" lines aside: the parent's stand-in
logs its own) go to the protocol's stdout as ``{"log": {"level", "no", "message",
"extra", "name", "function", "line"}}``; other loguru records go to the worker's stderr as before.
The parent asks for INFO and above, or for the lowest level one of its handlers takes (DEBUG, say)
when its own ``pepperpy`` logging was on when the worker started. The parent logs each record again
through ``pepperpy._log.logger``, with the same level, message and binding: its own loguru settings
(``logger.enable("pepperpy")`` or not, its sinks and their levels) decide what is shown.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from typing import Any

INFO = 20
_PLUGIN_MODULES = "pepperpy.loaded_plugins."


# -- parent ------------------------------------------------------------------------------------


def forward_level() -> int:
    """The lowest level the worker forwards: INFO, or lower when the parent's ``pepperpy`` logging is on and
    one of its handlers takes lower levels."""
    from loguru import logger as loguru

    core = getattr(loguru, "_core", None)  # loguru keeps these private: read them as pepperpy._log does
    if core is None or not _enabled(getattr(core, "activation_list", None) or [], _PLUGIN_MODULES):
        return INFO
    lowest = getattr(core, "min_level", INFO)
    return int(lowest) if isinstance(lowest, int) and lowest < INFO else INFO


def _enabled(activation: list[tuple[str, bool]], dotted_name: str) -> bool:
    """Whether loguru logs for module ``dotted_name``: the most specific ``enable``/``disable`` that covers it."""
    for prefix, status in activation:  # loguru keeps the longest names first
        if dotted_name.startswith(prefix):
            return bool(status)
    return True


def emit(record: Any, plugin_id: str) -> None:
    """Log a record forwarded by ``plugin_id``'s worker again, here (a malformed one is dropped)."""
    from pepperpy._log import logger

    message = record.get("message") if isinstance(record, dict) else None
    if not isinstance(message, str):
        return
    extra = record.get("extra")
    extra = dict(extra) if isinstance(extra, dict) else {}
    extra.setdefault("plugin", plugin_id)
    where = {key: record[key] for key in ("name", "function", "line") if key in record}
    if "name" in where:
        where["module"] = str(where["name"]).rpartition(".")[2]

    def placed(entry: Any) -> None:
        entry.update(where)  # shown as the worker's module, function and line

    bound = logger.bind(**extra).patch(placed)
    level, number = record.get("level"), record.get("no")
    try:
        bound.log(level if isinstance(level, str) else number, message)
    except (ValueError, TypeError):  # a level only the worker knows: its number, else INFO
        bound.log(number if isinstance(number, int) and number >= 0 else INFO, message)


# -- worker ------------------------------------------------------------------------------------


def forward_from_worker(send: Callable[[dict[str, Any]], None], level: int) -> None:
    """In the worker: send ``pepperpy.*`` records at ``level`` and above to the parent with ``send``;
    other loguru records keep going to stderr (the worker's stderr file)."""
    from loguru import logger as loguru

    import pepperpy._log  # noqa: F401 - its patch and its default state first

    def sink(message: Any) -> None:
        send({"log": to_wire(message.record)})

    loguru.remove()  # the default handler: it would also print pepperpy's records into the stderr file
    loguru.add(sys.stderr, filter=_not_pepperpy)
    loguru.add(sink, level=level, filter=_forwarded, format="{message}", catch=True)
    loguru.enable("pepperpy")


def _not_pepperpy(record: Any) -> bool:
    """A record of another library: for the worker's stderr, as before."""
    name = record["name"] or ""
    return name != "pepperpy" and not name.startswith("pepperpy.") and "plugin" not in record["extra"]


def _forwarded(record: Any) -> bool:
    """``pepperpy.*`` records and any ``self.logger`` record (bound with ``plugin``: one logged straight from a
    thread is named after the thread's module), except ``pepperpy.core``'s "opened"/"closed" lines: the
    parent's stand-in logs those itself."""
    name = record["name"] or ""
    if name == "pepperpy.core":
        return False
    return name.startswith("pepperpy.") or "plugin" in record["extra"]


def to_wire(record: Any) -> dict[str, Any]:
    """A loguru record as the protocol's ``log`` value (an exception's traceback appended to the message)."""
    from pepperpy._isolation import protocol

    message = record["message"]
    exception = record["exception"]
    if exception is not None and exception.type is not None:
        message += "\n" + "".join(traceback.format_exception(exception.type, exception.value, exception.traceback)).rstrip()
    extra = {}
    for key, value in record["extra"].items():
        try:
            extra[key] = protocol.to_wire(value)
        except protocol.WireError:
            extra[key] = repr(value)
    return {"level": record["level"].name, "no": record["level"].no, "message": message, "extra": extra,
            "name": record["name"], "function": record["function"], "line": record["line"]}


__all__ = ["emit", "forward_from_worker", "forward_level"]
