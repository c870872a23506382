"""Which provider each logged conversation of ``pepperpy chat`` was started with, for ``-c`` and ``--cid``.

The call log records the plugin id that answered (``llm/mock``), which loses an alias's presets
(``-p isomock``) and a fallback list (``-p openai,local``). So ``chat`` also keeps, per conversation
id, what ``-p`` and ``-m`` said, in ``<home>/chat_providers.json``::

    {"<conversation id>": {"provider": "isomock", "model": null}}

Only the newest ``KEEP`` conversations are kept. Writes are atomic, under ``<home>/chat_providers.json.lock``.
The file is a convenience: when it is missing, unreadable or has no entry, ``-c`` falls back to the call
log's provider of the conversation's last call (``pepperpy/_calllog.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FILE = "chat_providers.json"
KEEP = 1000
LOCK_TIMEOUT_S = 30.0


def path_of(home: Path) -> Path:
    """``<home>/chat_providers.json``."""
    return home / FILE


def _read(path: Path) -> tuple[dict[str, Any], str | None]:
    """The entries of ``path`` and, when the file is there but unusable, why (then no entries)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return {}, f"{path} cannot be read ({type(exc).__name__}: {exc})"
    if not isinstance(data, dict):
        return {}, f"{path} is not a JSON object"
    return data, None


def recall(home: Path, conversation_id: str) -> tuple[str | None, str | None, str | None]:
    """``(-p value, -m value, problem)`` recorded for ``conversation_id``; Nones when nothing usable is recorded.

    ``problem`` says why the file could not be used (it is then ignored), for a note to the user.
    """
    data, problem = _read(path_of(home))
    entry = data.get(conversation_id)
    if not isinstance(entry, dict):
        return None, None, problem
    provider, model = entry.get("provider"), entry.get("model")
    return (provider if isinstance(provider, str) and provider else None,
            model if isinstance(model, str) and model else None, problem)


def remember(home: Path, conversation_id: str, provider: str | None, model: str | None) -> None:
    """Record ``-p``/``-m`` for ``conversation_id`` (newest last; the oldest beyond ``KEEP`` are dropped).

    An unusable file is replaced; an unwritable home raises OSError.
    """
    from pepperpy._atomic import atomic_write
    from pepperpy._filelock import file_lock

    path = path_of(home)
    with file_lock(path.with_name(path.name + ".lock"), LOCK_TIMEOUT_S):
        data, _ = _read(path)
        data.pop(conversation_id, None)
        data[conversation_id] = {"provider": provider, "model": model}
        for old in list(data)[: max(len(data) - KEEP, 0)]:
            del data[old]
        atomic_write(path, (json.dumps(data, indent=1) + "\n").encode("utf-8"))


__all__ = ["FILE", "KEEP", "path_of", "recall", "remember"]
